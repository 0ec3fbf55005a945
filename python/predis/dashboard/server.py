"""`DashboardServer`: the whole dashboard (history, scraper, web app) in one object, served
by uvicorn from a background thread. ``predis dashboard`` and ``predis demo`` both use it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from predis.dashboard.app import build_app
from predis.dashboard.config import DashboardConfig
from predis.dashboard.history import History
from predis.dashboard.scraper import MonitorTarget, PrometheusTarget, Scraper, Target, URLTarget
from predis.dashboard.views import Views
from predis.errors import InvalidArgumentError, PredisError
from predis.monitoring.auth import read_secret_file
from predis.monitoring.monitor import Monitor
from predis.security.tokens import TokenStore

__all__ = ["AppServer", "DashboardServer"]

log = logging.getLogger("predis.dashboard")


class AppServer:
    """An ASGI app served by uvicorn from a daemon thread (port 0: any free port)."""

    def __init__(
        self,
        app: Any,
        addr: str = "127.0.0.1",
        port: int = 0,
        tls_certfile: str | None = None,
        tls_keyfile: str | None = None,
    ) -> None:
        self.app = app
        self.addr = addr
        self.requested_port = port
        self.tls = tls_certfile is not None
        self._tls = (tls_certfile, tls_keyfile)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """The base URL (after :meth:`start`)."""
        if self.port is None:
            raise InvalidArgumentError("the server is not started; call start() first")
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def start(self, timeout: float = 30.0) -> AppServer:
        """Serve; returns once the port is bound."""
        import uvicorn  # noqa: PLC0415 - the dashboard extra

        cfg = uvicorn.Config(
            self.app,
            host=self.addr,
            port=self.requested_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            ssl_certfile=self._tls[0],
            ssl_keyfile=self._tls[1],
            timeout_graceful_shutdown=3,
            server_header=False,
        )
        self._server = uvicorn.Server(cfg)
        self._thread = threading.Thread(
            target=self._server.run, name="predis-dashboard", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise PredisError(
                    f"the dashboard could not listen on {self.addr}:{self.requested_port} "
                    "(port in use? see the log)"
                )
            time.sleep(0.02)
        self.port = int(self._server.servers[0].sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        """Stop serving (open streams are given a few seconds to end)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self.port = None

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class DashboardServer:
    """The dashboard: scrapes on an interval into the SQLite history and serves the pages.

    Args:
        config: the settings (validated here).
        monitors: in-process sources to read directly, by target name (for example
            ``{"demo": Monitor().add_cache(cache, "main")}``), beside ``config.scrape_urls``.

    Example (an exporter on this host, one customer)::

        from predis.dashboard import DashboardConfig, DashboardServer, load_customers
        cfg = DashboardConfig(customers=load_customers("customers.json"),
                              token_store="tokens.json",
                              scrape_urls=["http://127.0.0.1:9100/metrics"], port=0)
        with DashboardServer(cfg) as dash:
            print(dash.url)        # log in there with a `dashboard` token
    """

    def __init__(
        self, config: DashboardConfig, monitors: Mapping[str, Monitor] | None = None
    ) -> None:
        self.config = config.validate()
        token = (
            read_secret_file(config.scrape_token_file)
            if config.scrape_token_file is not None
            else None
        )
        targets: list[Target] = [URLTarget(u, token) for u in config.scrape_urls]
        if config.prometheus_url is not None:
            targets.append(PrometheusTarget(config.prometheus_url, token))
        for name, monitor in (monitors or {}).items():
            targets.append(MonitorTarget(monitor, f"in-process:{name}"))
        self.history = History(config.db_path)
        self.scraper = Scraper(self.history, targets, config.interval_s, config.retention_s)
        stale_after = config.stale_after_s or 3 * config.interval_s  # validate() set it
        self.views = Views(
            self.history,
            config.customers,
            config.interval_s,
            config.window_s,
            stale_after,
            config.registry_dir,
        )
        self.tokens = TokenStore(config.token_store)
        self._stopping = threading.Event()
        self.app = build_app(
            self.views,
            config.customers,
            self.tokens,
            session_ttl_s=config.session_ttl_s,
            login_failures=config.login_failures,
            login_window_s=config.login_window_s,
            refresh_s=config.refresh_s,
            tls=config.tls,
            stopping=self._stopping.is_set,
        )
        self._http = AppServer(
            self.app, config.addr, config.port, config.tls_certfile, config.tls_keyfile
        )

    @property
    def url(self) -> str:
        """The dashboard's base URL (after :meth:`start`)."""
        return self._http.url

    @property
    def port(self) -> int | None:
        """The bound port (after :meth:`start`)."""
        return self._http.port

    def start(self, timeout: float = 30.0) -> DashboardServer:
        """Start scraping and serving; returns once the port is bound (``.url`` is real)."""
        self._stopping.clear()
        self.scraper.start()
        try:
            self._http.start(timeout)
        except PredisError:
            self.scraper.stop()
            raise
        log.info("predis dashboard: serving %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and scraping (open live streams end) and close the history."""
        self._stopping.set()
        self._http.stop()
        self.scraper.stop()
        self.history.close()

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

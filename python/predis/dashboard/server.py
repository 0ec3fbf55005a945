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

__all__ = ["DashboardServer"]

log = logging.getLogger("predis.dashboard")


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
        assert config.stale_after_s is not None  # noqa: S101 - set by validate()
        self.views = Views(
            self.history,
            config.customers,
            config.interval_s,
            config.window_s,
            config.stale_after_s,
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
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """The dashboard's base URL (after :meth:`start`)."""
        if self.port is None:
            raise InvalidArgumentError("the dashboard is not started; call start() first")
        host = f"[{self.config.addr}]" if ":" in self.config.addr else self.config.addr
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://{host}:{self.port}"

    def start(self, timeout: float = 30.0) -> DashboardServer:
        """Start scraping and serving; returns once the port is bound (``.url`` is real)."""
        import uvicorn  # noqa: PLC0415 - the dashboard extra

        if self._thread is not None:
            return self
        cfg = uvicorn.Config(
            self.app,
            host=self.config.addr,
            port=self.config.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            ssl_certfile=self.config.tls_certfile,
            ssl_keyfile=self.config.tls_keyfile,
            timeout_graceful_shutdown=3,
            server_header=False,
        )
        self._server = uvicorn.Server(cfg)
        self._stopping.clear()
        self.scraper.start()
        self._thread = threading.Thread(
            target=self._server.run, name="predis-dashboard", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise PredisError(
                    f"the dashboard could not listen on {self.config.addr}:{self.config.port} "
                    "(port in use? see the log)"
                )
            time.sleep(0.02)
        sock = self._server.servers[0].sockets[0]
        self.port = int(sock.getsockname()[1])
        log.info("predis dashboard: serving %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and scraping (open live streams end) and close the history."""
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self.scraper.stop()
        self.history.close()
        self.port = None

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

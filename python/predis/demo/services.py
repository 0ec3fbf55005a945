"""The demo's services: the exporter on loopback, a fresh dashboard token, and the ROI
dashboard when the ``dashboard`` extra is installed.

:func:`start_services` is the one place where the demo starts servers; each one it starts
is closed by :meth:`DemoServices.close`. Headless runs (``--no-serve``) start none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from predis.cache import Cache
from predis.mlops.collector import Collector
from predis.mlops.registry import ModelRegistry
from predis.monitoring import MetricsServer, Monitor, serve
from predis.security.tokens import TokenStore
from predis.security.validation import safe_path

__all__ = ["DemoServices", "start_services"]

log = logging.getLogger("predis.demo")

#: The dashboard token's scopes: read-only, and logging in to the dashboard.
TOKEN_SCOPES = ("read", "dashboard")


@dataclass
class DemoServices:
    """What :func:`start_services` started.

    Attributes:
        metrics: the exporter serving ``/metrics`` (None when headless).
        dashboard_url: the ROI dashboard's address (None when headless or when the
            ``dashboard`` extra is not installed; ``dashboard_missing`` then says why).
        token: the dashboard token, shown once and never written anywhere by the demo.
        token_id: its id in the token file.
        token_file: the token store (hashes only).
    """

    metrics: MetricsServer | None = None
    dashboard_url: str | None = None
    dashboard_missing: str | None = None
    token: str | None = None
    token_id: str | None = None
    token_file: Path | None = None
    _closers: list[Any] = field(default_factory=list)

    @property
    def metrics_url(self) -> str | None:
        """The exporter's ``/metrics`` URL."""
        return None if self.metrics is None else self.metrics.url

    def close(self) -> None:
        """Stop every server, newest first."""
        while self._closers:
            closer = self._closers.pop()
            try:
                closer.close()
            except Exception:  # one server failing to stop must not keep the others up
                log.exception("stopping %r failed", closer)

    def describe(self) -> dict[str, object]:
        """The services for the report (the token's secret is left out)."""
        return {
            "metrics_url": self.metrics_url,
            "dashboard_url": self.dashboard_url,
            "dashboard_token_id": self.token_id,
            "token_file": None if self.token_file is None else str(self.token_file),
        }


def start_services(
    *,
    cache: Cache,
    collector: Collector,
    registry: ModelRegistry,
    workdir: Path,
    customer: str,
    port: int,
    roi_prices: dict[str, float],
) -> DemoServices:
    """Start the exporter (``127.0.0.1:port``, 0 for any free port) with the cache, the
    collector and the registry as metric sources, create a read-only dashboard token for
    ``customer`` in ``workdir/tokens.json``, and start the ROI dashboard on a free loopback
    port, reading the same sources in process, with ``roi_prices`` as the customer's ROI
    inputs (see :class:`predis.dashboard.ROIInputs`)."""
    services = DemoServices()
    try:
        monitor = Monitor().add_cache(cache, customer)
        monitor.add_collector(collector, customer).add_registry(registry)
        services.metrics = serve(port=port, addr="127.0.0.1", monitor=monitor, gpu=False)
        services._closers.append(services.metrics)
        services.token_file = safe_path(workdir, "tokens.json")
        token, info = TokenStore(services.token_file).create(customer, TOKEN_SCOPES)
        services.token, services.token_id = token, info.id
        _start_dashboard(services, monitor, workdir, customer, registry, roi_prices)
    except BaseException:
        services.close()
        raise
    return services


def _start_dashboard(
    services: DemoServices,
    monitor: Monitor,
    workdir: Path,
    customer: str,
    registry: ModelRegistry,
    roi_prices: dict[str, float],
) -> None:
    """Start the ROI dashboard beside the exporter, or record why it cannot run."""
    try:
        from predis.dashboard import (  # noqa: PLC0415 - the optional `dashboard` extra
            DashboardConfig,
            DashboardServer,
            parse_customers,
        )
    except ImportError as exc:
        services.dashboard_missing = (
            f"the dashboard needs the `dashboard` extra ({exc.name} is missing): "
            "pip install 'predis[dashboard]'"
        )
        return
    customers = parse_customers(
        {"customers": {customer: {"caches": [customer], "roi": roi_prices}}},
        "the demo's customer",
    )
    config = DashboardConfig(
        customers=customers,
        token_store=services.token_file,
        db_path=safe_path(workdir, "dashboard.sqlite"),
        registry_dir=registry.dir.parent,
        interval_s=1.0,
        refresh_s=1.0,
        port=0,
    )
    dashboard = DashboardServer(config, monitors={customer: monitor})
    dashboard.start()
    services._closers.append(_Stopper(dashboard))
    services.dashboard_url = dashboard.url


class _Stopper:
    """``close()`` for a server whose method is ``stop()``."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def close(self) -> None:
        self.server.stop()

    def __repr__(self) -> str:
        return f"_Stopper({self.server!r})"

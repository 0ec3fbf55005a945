"""The demo's services: the exporter on loopback and a fresh dashboard token.

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

#: The dashboard token's scopes: read-only.
TOKEN_SCOPES = ("read",)


@dataclass
class DemoServices:
    """What :func:`start_services` started.

    Attributes:
        metrics: the exporter serving ``/metrics`` (None when headless).
        token: the dashboard token, shown once and never written anywhere by the demo.
        token_id: its id in the token file.
        token_file: the token store (hashes only).
    """

    metrics: MetricsServer | None = None
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
) -> DemoServices:
    """Start the exporter (``127.0.0.1:port``, 0 for any free port) with the cache, the
    collector and the registry as metric sources, and create a read-only dashboard token
    for ``customer`` in ``workdir/tokens.json``."""
    services = DemoServices()
    try:
        monitor = Monitor().add_cache(cache, customer)
        monitor.add_collector(collector, customer).add_registry(registry)
        services.metrics = serve(port=port, addr="127.0.0.1", monitor=monitor, gpu=False)
        services._closers.append(services.metrics)
        services.token_file = safe_path(workdir, "tokens.json")
        token, info = TokenStore(services.token_file).create(customer, TOKEN_SCOPES)
        services.token, services.token_id = token, info.id
    except BaseException:
        services.close()
        raise
    return services

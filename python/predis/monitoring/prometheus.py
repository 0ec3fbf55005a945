"""Prometheus: a custom collector over a :class:`~predis.monitoring.Monitor`, and the HTTP
server that serves it.

The collector builds fresh metric families on every scrape from the live sources: the
scrape *is* the batch update. The cache's core only increments its padded counters; nothing
is pushed per request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString

from predis.errors import InvalidArgumentError
from predis.monitoring.auth import MetricsAuth
from predis.monitoring.metrics import HistogramValue, MetricDef, Sample
from predis.monitoring.monitor import Monitor
from predis.security.validation import validate_host

__all__ = ["MetricsServer", "PredisCollector", "families", "serve"]

log = logging.getLogger("predis.monitoring")


def families(samples: list[Sample]) -> list[Metric]:
    """Group samples into Prometheus metric families, in catalogue order of appearance."""
    grouped: dict[str, tuple[MetricDef, list[Sample]]] = {}
    for s in samples:
        grouped.setdefault(s.metric.name, (s.metric, []))[1].append(s)
    out: list[Metric] = []
    for metric, items in grouped.values():
        labels = list(metric.labels)
        if metric.type == "histogram":
            hist = HistogramMetricFamily(metric.name, metric.help, labels=labels)
            for s in items:
                if isinstance(s.value, HistogramValue):
                    buckets = [(floatToGoString(b), float(n)) for b, n in s.value.buckets]
                    hist.add_metric([v for _, v in s.labels], buckets, s.value.sum)
            out.append(hist)
            continue
        fam: CounterMetricFamily | GaugeMetricFamily
        if metric.type == "counter":
            fam = CounterMetricFamily(metric.name, metric.help, labels=labels)
        else:  # gauge, info (a gauge of value 1 in the text format)
            fam = GaugeMetricFamily(metric.name, metric.help, labels=labels)
        for s in items:
            if not isinstance(s.value, HistogramValue):
                fam.add_metric([v for _, v in s.labels], s.value)
        out.append(fam)
    return out


class PredisCollector:
    """A ``prometheus_client`` collector that reads a :class:`Monitor` on each scrape.

    Example:
        >>> from prometheus_client import CollectorRegistry
        >>> import predis
        >>> cache = predis.Cache(capacity_bytes=1 << 20)
        >>> registry = CollectorRegistry()
        >>> registry.register(PredisCollector(Monitor().add_cache(cache, "main")))
        >>> registry.get_sample_value("predis_up", {"cache": "main"})
        1.0
    """

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def describe(self) -> list[Metric]:
        """No families up front: registering must not read the sources."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The metric families of one collection of the monitor's sources."""
        yield from families(self.monitor.collect())


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "predis-exporter"
    sys_version = ""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._reply(200, b"predis exporter: see /metrics\n", "text/plain; charset=utf-8")
            return
        if path != "/metrics":
            self._reply(404, b"not found: the metrics are at /metrics\n", "text/plain")
            return
        auth = self.server.auth
        if auth is not None and not auth.check(self.headers.get("Authorization")):
            challenge = ", ".join(f'{s} realm="predis"' for s in auth.schemes)
            self._reply(401, b"unauthorized\n", "text/plain", {"WWW-Authenticate": challenge})
            return
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        try:
            body = encoder(self.server.registry)
        except Exception:
            log.exception("predis: rendering /metrics failed")
            self._reply(500, b"collection failed; see the exporter's log\n", "text/plain")
            return
        self._reply(200, body, content_type)

    def _reply(
        self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("predis exporter: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: CollectorRegistry
    auth: MetricsAuth | None


class MetricsServer:
    """An HTTP server for ``/metrics`` in a daemon thread. ``port`` is the bound port
    (useful after asking for port 0). Call :meth:`close` to stop it."""

    def __init__(
        self,
        registry: CollectorRegistry,
        port: int = 9090,
        addr: str = "127.0.0.1",
        auth: MetricsAuth | None = None,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidArgumentError(
                f"port must be an int in 0..65535 (0: any free), got {port!r}"
            )
        addr = validate_host(addr)
        try:
            self._server = _Server((addr, port), _Handler)
        except OSError as exc:
            hint = " (9090 is also the Prometheus server's default: pick another port)"
            raise InvalidArgumentError(
                f"cannot listen on {addr}:{port}: {exc.strerror}{hint if port == 9090 else ''}"
            ) from exc
        self._server.registry = registry
        self._server.auth = auth
        self.addr = addr
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="predis-metrics", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The ``/metrics`` URL."""
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(
    cache: Any = None,
    port: int = 9090,
    addr: str = "127.0.0.1",
    *,
    name: str = "default",
    monitor: Monitor | None = None,
    auth: MetricsAuth | None = None,
    gpu: bool = True,
) -> MetricsServer:
    """Serve Predis metrics at ``http://addr:port/metrics`` from a daemon thread.

    Args:
        cache: a :class:`~predis.Cache` to export as ``cache=name`` (optional when
            ``monitor`` already holds the sources).
        port: TCP port; 9090 is also the Prometheus server's default, so pick another when
            both run on one host. 0 picks a free port (see ``MetricsServer.port``).
        addr: the address to bind; loopback unless you choose otherwise.
        monitor: a :class:`Monitor` with more sources (MLOps components, other caches).
        auth: who may scrape; default: :meth:`MetricsAuth.from_env` (None: anyone who can
            reach the port).
        gpu: add GPU metrics when NVML is usable.
    """
    monitor = monitor if monitor is not None else Monitor()
    if cache is not None:
        monitor.add_cache(cache, name)
    if gpu:
        monitor.add_gpu()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PredisCollector(monitor))  # type: ignore[arg-type]
    return MetricsServer(registry, port, addr, auth if auth is not None else MetricsAuth.from_env())

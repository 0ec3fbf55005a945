"""Datadog: DogStatsD datagrams over UDP, through the ``datadog`` package.

Counters go as DogStatsD counts of their change since the previous flush, gauges and
``_info`` metrics as gauges, histograms as two counts (``.count`` and ``.sum`` changes).
Names drop the ``_total`` suffix and take a ``.`` after ``predis``
(``predis_keyspace_hits_total`` -> ``predis.keyspace_hits``); labels become tags. The
agent address comes from the arguments or ``DD_AGENT_HOST`` / ``DD_DOGSTATSD_PORT``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from predis.errors import InvalidArgumentError
from predis.monitoring.integrations import Point, PushExporter, SendError, finite
from predis.monitoring.metrics import HistogramValue
from predis.monitoring.monitor import Monitor
from predis.security.validation import validate_host, validate_port

__all__ = ["DogStatsDExporter", "dogstatsd_name"]

DATAGRAM_BYTES = 1432  # Datadog's advice for UDP: one datagram within an Ethernet MTU
_TAG_BAD = str.maketrans({",": "_", "|": "_", "#": "_", "\n": "_", " ": "_"})


def dogstatsd_name(prom_name: str) -> str:
    """The DogStatsD name of a catalogue metric."""
    base = prom_name.removesuffix("_total")
    return base.replace("predis_", "predis.", 1)


class DogStatsDExporter(PushExporter):
    """Pushes to a Datadog agent's DogStatsD port (default 127.0.0.1:8125)."""

    kind = "datadog"

    def __init__(
        self,
        monitor: Monitor,
        host: str | None = None,
        port: int | None = None,
        *,
        constant_tags: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        from datadog.dogstatsd.base import DogStatsd  # noqa: PLC0415 - `exporters` extra

        super().__init__(monitor, **kwargs)
        host = validate_host(host or os.environ.get("DD_AGENT_HOST") or "127.0.0.1")
        if port is None:
            try:
                port = int(os.environ.get("DD_DOGSTATSD_PORT", "8125"))
            except ValueError:
                raise InvalidArgumentError("DD_DOGSTATSD_PORT must be a port number") from None
        self.host, self.port = host, validate_port(port)
        self._statsd = DogStatsd(
            host=host,
            port=self.port,
            constant_tags=[str(t).translate(_TAG_BAD) for t in constant_tags],
            disable_buffering=False,
            disable_telemetry=True,
            # encode() sizes each batch to one datagram; the buffer must never flush early,
            # so that flush_buffered_metrics() reports the one send's outcome.
            max_buffer_size=65_000,
        )

    def encode(self, points: Sequence[Point]) -> list[tuple[Any, int]]:
        lines: list[tuple[str, str, float, list[str]]] = []
        for p in points:
            tags = [f"{k}:{v}".translate(_TAG_BAD) for k, v in p.labels]
            name = dogstatsd_name(p.metric.name)
            if isinstance(p.delta, HistogramValue):
                lines.append(("count", f"{name}.count", float(p.delta.count), tags))
                lines.append(("count", f"{name}.sum", p.delta.sum, tags))
            elif p.metric.type == "counter" and isinstance(p.delta, float):
                lines.append(("count", name, p.delta, tags))
            elif isinstance(p.value, float):
                lines.append(("gauge", name, p.value, tags))
        batches: list[tuple[Any, int]] = []
        current: list[tuple[str, str, float, list[str]]] = []
        size = 0
        for line in lines:
            if not finite(line[2]):
                continue
            # name:value|c|#tags plus slack for the value's digits and the newline
            n = len(line[1]) + sum(len(t) + 1 for t in line[3]) + 32
            if current and size + n > DATAGRAM_BYTES:
                batches.append((current, len(current)))
                current, size = [], 0
            current.append(line)
            size += n
        if current:
            batches.append((current, len(current)))
        return batches

    def send(self, batch: Any) -> None:
        s = self._statsd
        dropped = s.packets_dropped_writer
        for kind, name, value, tags in batch:
            if kind == "count":
                s.count(name, value, tags=tags)
            else:
                s.gauge(name, value, tags=tags)
        if not s.flush_buffered_metrics() or s.packets_dropped_writer != dropped:
            # Over UDP only an ICMP "port unreachable" from an earlier datagram shows here;
            # a datagram lost on the way is never known (DogStatsD is fire-and-forget).
            raise SendError(f"DogStatsD at {self.host}:{self.port} refused the datagram")

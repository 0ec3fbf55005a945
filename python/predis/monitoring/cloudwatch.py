"""CloudWatch: the Embedded Metric Format (EMF), built with ``aws-embedded-metrics``.

Each flush writes one EMF JSON document per label set (labels become dimensions; empty
label values are left out, as EMF requires), serialised by the library's ``LogSerializer``
(which also splits documents at EMF's 100-metrics limit). Counters go as their change since
the previous flush (unit Count), gauges and ``_info`` metrics as values, histograms as
``.count`` and ``.sum`` changes.

Destinations: ``"stdout"`` (for Lambda, ECS and EKS log drivers that ship stdout to
CloudWatch Logs), or the CloudWatch agent's EMF endpoint, ``tcp://host:port`` or
``udp://host:port`` (the agent's default is ``tcp://127.0.0.1:25888``). The default is
``$AWS_EMF_AGENT_ENDPOINT`` when set, else stdout. The library's own agent sink is not
used: it swallows send errors, and this exporter needs them to retry and count drops.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence
from typing import Any, TextIO
from urllib.parse import urlsplit

from predis.errors import InvalidArgumentError
from predis.monitoring.integrations import Point, PushExporter, SendError, finite
from predis.monitoring.metrics import HistogramValue
from predis.monitoring.monitor import Monitor
from predis.security.validation import validate_host, validate_name

__all__ = ["CloudWatchEMFExporter"]

_UNITS = {"seconds": "Seconds", "bytes": "Bytes"}
_MAX_UDP = 65_000


class CloudWatchEMFExporter(PushExporter):
    """Pushes EMF documents to stdout or to the CloudWatch agent."""

    kind = "cloudwatch"

    def __init__(
        self,
        monitor: Monitor,
        destination: str | None = None,
        *,
        namespace: str = "Predis",
        log_group: str | None = None,
        stream: TextIO | None = None,
        **kwargs: Any,
    ) -> None:
        from aws_embedded_metrics.logger.metrics_context import (  # noqa: PLC0415
            MetricsContext,
        )
        from aws_embedded_metrics.serializers.log_serializer import (  # noqa: PLC0415
            LogSerializer,
        )

        super().__init__(monitor, **kwargs)
        self._context_cls = MetricsContext
        self._serializer = LogSerializer
        self.namespace = validate_name(namespace, "CloudWatch namespace")
        self.log_group = None if log_group is None else validate_name(log_group, "log group")
        dest = destination or os.environ.get("AWS_EMF_AGENT_ENDPOINT") or "stdout"
        self._stream = stream
        if dest == "stdout":
            self.scheme, self.host, self.port = "stdout", "", 0
        else:
            parts = urlsplit(dest)
            if parts.scheme not in ("tcp", "udp") or parts.port is None or not parts.hostname:
                raise InvalidArgumentError(
                    f"destination must be 'stdout', tcp://host:port or udp://host:port, "
                    f"got {dest[:100]!r}"
                )
            self.scheme = parts.scheme
            self.host = validate_host(parts.hostname)
            self.port = parts.port

    def encode(self, points: Sequence[Point]) -> list[tuple[Any, int]]:
        groups: dict[tuple[tuple[str, str], ...], list[tuple[str, float, str]]] = {}
        for p in points:
            dims = tuple((k, v) for k, v in p.labels if v)
            rows = groups.setdefault(dims, [])
            if isinstance(p.delta, HistogramValue):
                rows.append((p.metric.name + ".count", float(p.delta.count), "Count"))
                rows.append(
                    (p.metric.name + ".sum", p.delta.sum, _UNITS.get(p.metric.unit, "None"))
                )
            elif p.metric.type == "counter" and isinstance(p.delta, float):
                rows.append((p.metric.name, p.delta, _UNITS.get(p.metric.unit, "Count")))
            elif isinstance(p.value, float):
                rows.append((p.metric.name, p.value, _UNITS.get(p.metric.unit, "None")))
        lines: list[str] = []
        n = 0
        for dims, rows in groups.items():
            ctx = self._context_cls(namespace=self.namespace)
            ctx.set_dimensions([dict(dims)] if dims else [], use_default=False)
            if self.log_group is not None:
                ctx.meta["LogGroupName"] = self.log_group
            for name, value, unit in rows:
                if finite(value):
                    ctx.put_metric(name, value, unit)
                    n += 1
            if ctx.metrics:
                lines += self._serializer.serialize(ctx)
        return [(lines, n)] if lines else []

    def send(self, batch: Any) -> None:
        payload = "".join(line + "\n" for line in batch)
        if self.scheme == "stdout":
            stream = self._stream or sys.stdout
            stream.write(payload)
            stream.flush()
            return
        data = payload.encode("utf-8")
        try:
            if self.scheme == "tcp":
                with socket.create_connection((self.host, self.port), timeout=self.timeout) as s:
                    s.sendall(data)
            else:
                with socket.socket(
                    socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM
                ) as s:
                    for line in batch:
                        raw = (line + "\n").encode("utf-8")
                        if len(raw) > _MAX_UDP:
                            raise SendError("an EMF document is too large for UDP", False)
                        s.sendto(raw, (self.host, self.port))
        except OSError as exc:
            raise SendError(
                f"CloudWatch agent at {self.scheme}://{self.host}:{self.port}: {exc}"
            ) from None

"""OpenTelemetry: OTLP/HTTP with protobuf, the vendor-neutral path.

Samples become OpenTelemetry SDK metric data (monotonic cumulative ``Sum`` for counters,
``Gauge`` for gauges and ``_info`` metrics, explicit-bucket ``Histogram`` for histograms),
encoded by the SDK's own OTLP encoder into an ``ExportMetricsServiceRequest`` and POSTed to
``/v1/metrics``. Cumulative series start when the exporter first saw them.

The endpoint is the argument, else ``$OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``, else
``$OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/metrics``, else ``http://127.0.0.1:4318/v1/metrics``.
Extra headers (an authorization header for a hosted back end) come only from
``$OTEL_EXPORTER_OTLP_HEADERS`` (``k1=v1,k2=v2``, values URL-encoded).
"""

from __future__ import annotations

import gzip
import itertools
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from predis.errors import InvalidArgumentError
from predis.monitoring.integrations import Point, PushExporter, http_post
from predis.monitoring.metrics import HistogramValue
from predis.monitoring.monitor import Monitor

__all__ = ["OTLPExporter", "parse_headers"]

_UNITS = {"seconds": "s", "bytes": "By", "ratio": "1", "": "1"}


def parse_headers(text: str) -> dict[str, str]:
    """``k1=v1,k2=v2`` (the OTEL_EXPORTER_OTLP_HEADERS format) as a dict."""
    out = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key, value = unquote(key.strip()), unquote(value.strip())
        if not sep or not key or any(c in key + value for c in "\r\n\0"):
            raise InvalidArgumentError("OTEL_EXPORTER_OTLP_HEADERS must be k1=v1,k2=v2")
        out[key] = value
    return out


def _default_endpoint() -> str:
    explicit = os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    if explicit:
        return explicit
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if base:
        return base.rstrip("/") + "/v1/metrics"
    return "http://127.0.0.1:4318/v1/metrics"


class OTLPExporter(PushExporter):
    """Pushes OTLP/HTTP protobuf to an OpenTelemetry collector or back end."""

    kind = "otlp"

    def __init__(
        self,
        monitor: Monitor,
        endpoint: str | None = None,
        *,
        service_name: str = "predis",
        compress: bool = True,
        **kwargs: Any,
    ) -> None:
        from opentelemetry.exporter.otlp.proto.common.metrics_encoder import (  # noqa: PLC0415
            encode_metrics,
        )

        super().__init__(monitor, **kwargs)
        self.endpoint = endpoint or _default_endpoint()
        if not self.endpoint.startswith(("http://", "https://")):
            raise InvalidArgumentError("the OTLP endpoint must be an http(s) URL")
        self._encode_metrics = encode_metrics
        self._headers = {"Content-Type": "application/x-protobuf"}
        self._headers.update(parse_headers(os.environ.get("OTEL_EXPORTER_OTLP_HEADERS", "")))
        self._compress = compress
        if compress:
            self._headers["Content-Encoding"] = "gzip"
        self.service_name = service_name
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope  # noqa: PLC0415

        from predis import __version__  # noqa: PLC0415

        # Built once: Resource.create runs the SDK's resource detectors (in threads).
        self._resource = Resource.create({"service.name": service_name})
        self._scope = InstrumentationScope("predis.monitoring", __version__)

    def encode(self, points: Sequence[Point]) -> list[tuple[Any, int]]:
        from opentelemetry.sdk.metrics.export import (  # noqa: PLC0415
            AggregationTemporality,
            Gauge,
            Histogram,
            HistogramDataPoint,
            Metric,
            MetricsData,
            NumberDataPoint,
            ResourceMetrics,
            ScopeMetrics,
            Sum,
        )

        grouped: dict[str, list[Point]] = {}
        for p in points:
            grouped.setdefault(p.metric.name, []).append(p)
        metrics = []
        cumulative = AggregationTemporality.CUMULATIVE
        for name, pts in grouped.items():
            m = pts[0].metric
            data: Any
            if m.type == "histogram":
                hps = []
                for p in pts:
                    if not isinstance(p.value, HistogramValue):
                        continue
                    bounds = [b for b, _ in p.value.buckets[:-1]]
                    cum = [n for _, n in p.value.buckets]
                    counts = [cum[0]] + [b - a for a, b in itertools.pairwise(cum)]
                    hps.append(
                        HistogramDataPoint(
                            attributes=p.label_dict,
                            start_time_unix_nano=p.start_ns,
                            time_unix_nano=p.time_ns,
                            count=p.value.count,
                            sum=p.value.sum,
                            bucket_counts=counts,
                            explicit_bounds=bounds,
                            min=None,  # type: ignore[arg-type]  # unknown: left unset
                            max=None,  # type: ignore[arg-type]
                            exemplars=[],
                        )
                    )
                data = Histogram(data_points=hps, aggregation_temporality=cumulative)
            else:
                nps = [
                    NumberDataPoint(
                        attributes=p.label_dict,
                        start_time_unix_nano=p.start_ns,
                        time_unix_nano=p.time_ns,
                        value=float(p.value),  # type: ignore[arg-type]
                        exemplars=[],
                    )
                    for p in pts
                ]
                if m.type == "counter":
                    data = Sum(
                        data_points=nps, aggregation_temporality=cumulative, is_monotonic=True
                    )
                else:
                    data = Gauge(data_points=nps)
            metrics.append(
                Metric(name=name, description=m.help, unit=_UNITS.get(m.unit, "1"), data=data)
            )
        doc = MetricsData(
            resource_metrics=[
                ResourceMetrics(
                    resource=self._resource,
                    scope_metrics=[ScopeMetrics(scope=self._scope, metrics=metrics, schema_url="")],
                    schema_url="",
                )
            ]
        )
        body = self._encode_metrics(doc).SerializeToString()
        return [(gzip.compress(body) if self._compress else body, len(points))]

    def send(self, batch: Any) -> None:
        http_post(self.endpoint, batch, self._headers, self.timeout)

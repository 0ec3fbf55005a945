"""New Relic: the Metric API, gzipped JSON with the ``Api-Key`` header.

One POST carries at most ``batch_size`` metrics. Counters go as ``count`` metrics of their
change over the flush interval, gauges and ``_info`` metrics as ``gauge`` metrics,
histograms as two counts (``.count`` and ``.sum``). Labels become attributes. The key comes
only from the environment (``NEW_RELIC_API_KEY`` by default: a license or insert key).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Sequence
from typing import Any

from predis.errors import InvalidArgumentError
from predis.monitoring.integrations import Point, PushExporter, chunks, finite, http_post
from predis.monitoring.metrics import HistogramValue
from predis.monitoring.monitor import Monitor

__all__ = ["DEFAULT_ENDPOINT", "NewRelicExporter"]

DEFAULT_ENDPOINT = "https://metric-api.newrelic.com/metric/v1"


class NewRelicExporter(PushExporter):
    """Pushes to the New Relic Metric API (``endpoint``: the US one by default; use
    ``https://metric-api.eu.newrelic.com/metric/v1`` for EU accounts)."""

    kind = "newrelic"

    def __init__(
        self,
        monitor: Monitor,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        api_key_env: str = "NEW_RELIC_API_KEY",
        attributes: dict[str, str] | None = None,
        batch_size: int = 1000,
        **kwargs: Any,
    ) -> None:
        super().__init__(monitor, **kwargs)
        if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
            raise InvalidArgumentError("endpoint must be an http(s) URL")
        key = os.environ.get(api_key_env, "").strip()
        if not key:
            raise InvalidArgumentError(
                f"set ${api_key_env} to a New Relic license or insert key (never in code)"
            )
        if not 1 <= batch_size <= 100_000:
            raise InvalidArgumentError("batch_size must be in 1..100000")
        self.endpoint = endpoint
        self._headers = {
            "Api-Key": key,
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        self._attributes = {str(k): str(v) for k, v in (attributes or {}).items()}
        self._batch_size = batch_size

    def encode(self, points: Sequence[Point]) -> list[tuple[Any, int]]:
        interval_ms = round(self.interval * 1000)
        metrics: list[dict[str, Any]] = []
        for p in points:
            ts = p.time_ns // 1_000_000
            attrs = p.label_dict
            if isinstance(p.delta, HistogramValue):
                for suffix, v in ((".count", float(p.delta.count)), (".sum", p.delta.sum)):
                    metrics.append(
                        {
                            "name": p.metric.name + suffix,
                            "type": "count",
                            "value": v,
                            "timestamp": ts - interval_ms,
                            "interval.ms": interval_ms,
                            "attributes": attrs,
                        }
                    )
            elif p.metric.type == "counter":
                metrics.append(
                    {
                        "name": p.metric.name,
                        "type": "count",
                        "value": p.delta,
                        "timestamp": ts - interval_ms,
                        "interval.ms": interval_ms,
                        "attributes": attrs,
                    }
                )
            else:
                metrics.append(
                    {
                        "name": p.metric.name,
                        "type": "gauge",
                        "value": p.value,
                        "timestamp": ts,
                        "attributes": attrs,
                    }
                )
        metrics = [m for m in metrics if finite(float(m["value"]))]
        out = []
        for group in chunks(metrics, self._batch_size):  # type: ignore[arg-type]
            doc = [{"common": {"attributes": self._attributes}, "metrics": group}]
            out.append((gzip.compress(json.dumps(doc).encode("utf-8")), len(group)))
        return out

    def send(self, batch: Any) -> None:
        http_post(self.endpoint, batch, self._headers, self.timeout)

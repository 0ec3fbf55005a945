"""Monitoring: one metric catalogue, a Prometheus endpoint (in-process or the exporter
sidecar), and push exporters for Datadog, New Relic, CloudWatch and OTLP.

In-process::

    import predis, predis.monitoring
    cache = predis.Cache(capacity_bytes=64 << 20)
    server = predis.monitoring.serve(cache, port=9100)   # http://127.0.0.1:9100/metrics

Sidecar: create the cache with ``stats_shm="main"`` and run ``predis exporter --cache main``.
Push exporters (the ``exporters`` extra) live in :mod:`predis.monitoring.dogstatsd`,
:mod:`~predis.monitoring.newrelic`, :mod:`~predis.monitoring.cloudwatch` and
:mod:`~predis.monitoring.otlp`. See ``docs/monitoring.md``.
"""

from __future__ import annotations

from predis.monitoring.auth import MetricsAuth
from predis.monitoring.metrics import CATALOGUE, HistogramValue, MetricDef, Sample
from predis.monitoring.monitor import Monitor
from predis.monitoring.prometheus import MetricsServer, PredisCollector, serve
from predis.monitoring.shm import StatsBlockError, StatsPublisher, read_block

__all__ = [
    "CATALOGUE",
    "HistogramValue",
    "MetricDef",
    "MetricsAuth",
    "MetricsServer",
    "Monitor",
    "PredisCollector",
    "Sample",
    "StatsBlockError",
    "StatsPublisher",
    "read_block",
    "serve",
]

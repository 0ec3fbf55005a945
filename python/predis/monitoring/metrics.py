"""The metric catalogue: every metric Predis exports, defined once.

Each :class:`MetricDef` gives the name, the type, the base unit, the help text and the label
names. The Prometheus collector, the exporter sidecar and the push exporters (DogStatsD,
New Relic, CloudWatch, OTLP) all build their output from this table and from
:class:`Sample` values, so a metric cannot be spelt two ways.

Naming follows the Prometheus rules: a ``predis_`` prefix, base units (seconds, bytes,
ratios in [0, 1]), ``_total`` on counters, ``_info`` on metadata gauges whose value is 1.
Cache names mirror ``redis_exporter`` (``keyspace_hits_total``, ``evicted_keys_total``,
``memory_used_bytes``, ``up``).

Example:
    >>> CATALOGUE["predis_keyspace_hits_total"].type
    'counter'
    >>> CATALOGUE["predis_keyspace_hits_total"].labels
    ('cache',)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from predis.errors import InvalidArgumentError

__all__ = [
    "CATALOGUE",
    "METRIC_TYPES",
    "HistogramValue",
    "MetricDef",
    "Sample",
    "sample",
]

METRIC_TYPES = ("counter", "gauge", "histogram", "info")


@dataclass(frozen=True)
class MetricDef:
    """One metric: its name, type, base unit ('' when dimensionless), help and labels."""

    name: str
    type: str
    unit: str
    help: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class HistogramValue:
    """A cumulative histogram: ``buckets`` are (upper bound, cumulative count) pairs in
    increasing order ending with (inf, count); ``sum`` is the sum of observations."""

    buckets: tuple[tuple[float, int], ...]
    sum: float

    @property
    def count(self) -> int:
        """The number of observations (the +Inf bucket)."""
        return self.buckets[-1][1] if self.buckets else 0


@dataclass(frozen=True)
class Sample:
    """One observed series: a metric of the catalogue, its label values and its value
    (a float for counters, gauges and info metrics; a :class:`HistogramValue` for
    histograms)."""

    metric: MetricDef
    labels: tuple[tuple[str, str], ...]
    value: float | HistogramValue

    @property
    def label_dict(self) -> dict[str, str]:
        """The labels as a dict."""
        return dict(self.labels)


def _defs(rows: Sequence[tuple[str, str, str, str, tuple[str, ...]]]) -> dict[str, MetricDef]:
    out: dict[str, MetricDef] = {}
    for name, kind, unit, text, labels in rows:
        if name in out:
            raise ImportError(f"metric {name} is defined twice")
        if kind == "counter" and not name.endswith("_total"):
            raise ImportError(f"counter {name} must end with _total")
        if kind == "info" and not name.endswith("_info"):
            raise ImportError(f"info metric {name} must end with _info")
        out[name] = MetricDef(name, kind, unit, text, labels)
    return out


_C = ("cache",)
CATALOGUE: dict[str, MetricDef] = _defs(
    [
        # ---- exporter ----
        ("predis_up", "gauge", "", "1 if the cache's stats could be read, 0 otherwise.", _C),
        (
            "predis_exporter_scrape_duration_seconds",
            "gauge",
            "seconds",
            "Seconds the last collection of all sources took.",
            (),
        ),
        (
            "predis_exporter_last_scrape_error",
            "gauge",
            "",
            "1 if the last collection had an error in any source, 0 otherwise.",
            (),
        ),
        ("predis_exporter_scrapes_total", "counter", "", "Collections served.", ()),
        (
            "predis_exporter_source_errors_total",
            "counter",
            "",
            "Collections in which a source raised (see the exporter's log).",
            ("source",),
        ),
        (
            "predis_stats_block_age_seconds",
            "gauge",
            "seconds",
            "Age of the shared-memory stats block's last heartbeat (sidecar only).",
            _C,
        ),
        # ---- cache ----
        (
            "predis_cache_info",
            "info",
            "",
            "Cache metadata: backend, eviction policy and Predis version.",
            ("cache", "backend", "policy", "version"),
        ),
        ("predis_keyspace_hits_total", "counter", "", "Lookups that found their key.", _C),
        ("predis_keyspace_misses_total", "counter", "", "Lookups that missed.", _C),
        (
            "predis_hit_ratio",
            "gauge",
            "ratio",
            "hits / (hits + misses) since the cache was created; absent before the first lookup.",
            _C,
        ),
        (
            "predis_commands_total",
            "counter",
            "",
            "Operations by type: get (hits + misses), put (inserts + updates), "
            "delete (of live keys).",
            ("cache", "cmd"),
        ),
        (
            "predis_commands_per_second",
            "gauge",
            "",
            "Operations per second between the two latest collections (at least 0.5 s apart).",
            _C,
        ),
        ("predis_inserted_keys_total", "counter", "", "Puts that added a new key.", _C),
        ("predis_updated_keys_total", "counter", "", "Puts that replaced a value.", _C),
        ("predis_deleted_keys_total", "counter", "", "Deletes that removed a live key.", _C),
        ("predis_evicted_keys_total", "counter", "", "Entries evicted to make room.", _C),
        (
            "predis_expired_keys_total",
            "counter",
            "",
            "Entries removed because their TTL ran out.",
            _C,
        ),
        ("predis_keys", "gauge", "", "Entries held now.", _C),
        ("predis_max_keys", "gauge", "", "The most entries the cache keeps.", _C),
        ("predis_memory_used_bytes", "gauge", "bytes", "Bytes of capacity in use.", _C),
        ("predis_memory_max_bytes", "gauge", "bytes", "Capacity in bytes.", _C),
        (
            "predis_memory_reserved_bytes",
            "gauge",
            "bytes",
            "Bytes the value arena has reserved from the host.",
            _C,
        ),
        ("predis_table_bytes", "gauge", "bytes", "Bytes of the hash table itself.", _C),
        (
            "predis_access_log_events_total",
            "counter",
            "",
            "Access events written to the access-log ring.",
            _C,
        ),
        (
            "predis_access_log_dropped_events_total",
            "counter",
            "",
            "Access events dropped because the ring was full.",
            _C,
        ),
        ("predis_access_log_pending_events", "gauge", "", "Events waiting in the ring.", _C),
        (
            "predis_op_duration_seconds",
            "histogram",
            "seconds",
            "Duration of sampled cache calls by operation (get, put, put_prefetched, delete, "
            "contains, and the *_batch calls timed per call); counts are of timed calls only.",
            ("cache", "op"),
        ),
        (
            "predis_op_duration_sampling_period",
            "gauge",
            "",
            "1 cache call in this many is timed into predis_op_duration_seconds (0: off).",
            _C,
        ),
        ("predis_access_log_capacity_events", "gauge", "", "Slots in the access-log ring.", _C),
        # ---- ML: prefetch ----
        ("predis_prefetch_issued_total", "counter", "", "Prefetch loads issued.", _C),
        (
            "predis_prefetch_used_total",
            "counter",
            "",
            "Prefetched entries read before leaving the cache.",
            _C,
        ),
        (
            "predis_prefetch_wasted_total",
            "counter",
            "",
            "Prefetched entries that left the cache unread.",
            _C,
        ),
        ("predis_prefetch_errors_total", "counter", "", "Prefetch loads that failed.", _C),
        (
            "predis_prefetch_dropped_total",
            "counter",
            "",
            "Prefetch candidates dropped because the loader pool was full.",
            _C,
        ),
        (
            "predis_ml_inference_batches_total",
            "counter",
            "",
            "Batches the prefetch model scored.",
            _C,
        ),
        (
            "predis_ml_inference_duration_seconds",
            "histogram",
            "seconds",
            "Latency of one batch of prefetch-model inference.",
            _C,
        ),
        # ---- GPU ----
        (
            "predis_gpu_utilization_ratio",
            "gauge",
            "ratio",
            "GPU busy fraction over the driver's last sample period (NVML).",
            ("gpu", "name"),
        ),
        (
            "predis_gpu_memory_used_bytes",
            "gauge",
            "bytes",
            "GPU memory in use, all processes (NVML).",
            ("gpu", "name"),
        ),
        (
            "predis_gpu_memory_total_bytes",
            "gauge",
            "bytes",
            "GPU memory in all (NVML).",
            ("gpu", "name"),
        ),
        # ---- MLOps: drift ----
        (
            "predis_drift_score",
            "gauge",
            "",
            "A drift detector's latest statistic: stream mean (ADWIN), per-feature PSI and "
            "JS divergence, popularity JS divergences.",
            ("detector", "kind", "statistic", "feature"),
        ),
        (
            "predis_drift_events_total",
            "counter",
            "",
            "Confirmed drift events.",
            ("detector", "kind"),
        ),
        # ---- MLOps: registry ----
        (
            "predis_model_version_info",
            "info",
            "",
            "The model version each alias points to, per customer.",
            ("customer", "alias", "version"),
        ),
        (
            "predis_model_versions",
            "gauge",
            "",
            "Model versions stored in the registry, per customer.",
            ("customer",),
        ),
        # ---- MLOps: A/B test ----
        (
            "predis_abtest_requests_total",
            "counter",
            "",
            "Requests recorded per arm of an A/B test.",
            ("test", "arm"),
        ),
        (
            "predis_abtest_hits_total",
            "counter",
            "",
            "Hits recorded per arm of an A/B test.",
            ("test", "arm"),
        ),
        (
            "predis_abtest_hit_ratio",
            "gauge",
            "ratio",
            "Hit ratio per arm; absent before the arm's first request.",
            ("test", "arm"),
        ),
        (
            "predis_abtest_p_value",
            "gauge",
            "",
            "The sequential test's always-valid p-value.",
            ("test",),
        ),
        (
            "predis_abtest_decision",
            "gauge",
            "",
            "1 for the test's current state (undecided, champion or challenger), 0 for the others.",
            ("test", "state"),
        ),
        # ---- MLOps: retraining ----
        (
            "predis_retraining_runs_total",
            "counter",
            "",
            "Retraining jobs finished, by outcome: registered (passed the validation gate), "
            "rejected (dropped by the gate), failed (no challenger: too little data, training "
            "raised or was stopped); skipped counts triggers dropped while a job ran.",
            ("loop", "outcome"),
        ),
        (
            "predis_retraining_duration_seconds",
            "histogram",
            "seconds",
            "Duration of one retraining job (training, validation and registration).",
            ("loop",),
        ),
        (
            "predis_retraining_last_run_timestamp_seconds",
            "gauge",
            "seconds",
            "Unix time the latest retraining job ended; absent before the first.",
            ("loop",),
        ),
        (
            "predis_retraining_in_progress",
            "gauge",
            "",
            "1 while a retraining job is queued or running, else 0.",
            ("loop",),
        ),
        (
            "predis_mlops_events_total",
            "counter",
            "",
            "MLOps loop events by kind (drift, retrain-*, validation-failed, ab-started, "
            "ab-stopped, promoted, watch-passed, rollback, error) since the source was added.",
            ("loop", "kind"),
        ),
        (
            "predis_mlops_loop_state",
            "gauge",
            "",
            "1 for the MLOps loop's current state (serving, training, testing, watching), "
            "0 for the others.",
            ("loop", "state"),
        ),
        # ---- MLOps: access-log collector ----
        (
            "predis_collector_events_total",
            "counter",
            "",
            "Access events the collector drained from the ring and wrote to segments.",
            ("collector", "stage"),
        ),
        (
            "predis_collector_dropped_events_total",
            "counter",
            "",
            "Access events lost, by reason (ring full, low disk, write errors, stop).",
            ("collector", "reason"),
        ),
        (
            "predis_collector_written_bytes_total",
            "counter",
            "bytes",
            "Bytes of segment files written.",
            ("collector",),
        ),
        (
            "predis_collector_segments_written_total",
            "counter",
            "",
            "Segment files written.",
            ("collector",),
        ),
        (
            "predis_collector_write_errors_total",
            "counter",
            "",
            "Segment writes that failed.",
            ("collector",),
        ),
        # ---- push exporters ----
        (
            "predis_push_batches_total",
            "counter",
            "",
            "Batches a push exporter handled, by outcome (sent, dropped).",
            ("exporter", "outcome"),
        ),
        (
            "predis_push_retries_total",
            "counter",
            "",
            "Send attempts a push exporter retried after an error.",
            ("exporter",),
        ),
        (
            "predis_push_queue_batches",
            "gauge",
            "",
            "Batches waiting in a push exporter's queue.",
            ("exporter",),
        ),
    ]
)


def sample(
    name: str, value: float | HistogramValue, labels: Mapping[str, str] | None = None
) -> Sample:
    """A :class:`Sample` of catalogue metric ``name``; the labels must be exactly its labels.

    Example:
        >>> sample("predis_keys", 3, {"cache": "main"}).value
        3.0
    """
    metric = CATALOGUE.get(name)
    if metric is None:
        raise InvalidArgumentError(f"{name!r} is not in the metric catalogue")
    given = dict(labels or {})
    if set(given) != set(metric.labels):
        raise InvalidArgumentError(
            f"{name} takes labels {list(metric.labels)}, got {sorted(given)}"
        )
    if metric.type == "histogram":
        if not isinstance(value, HistogramValue):
            raise InvalidArgumentError(f"{name} is a histogram; pass a HistogramValue")
        out: float | HistogramValue = value
    else:
        if isinstance(value, HistogramValue):
            raise InvalidArgumentError(f"{name} is a {metric.type}, not a histogram")
        out = float(value)
        if math.isnan(out):
            raise InvalidArgumentError(f"{name}: NaN is not a value")
    return Sample(metric, tuple((k, str(given[k])) for k in metric.labels), out)

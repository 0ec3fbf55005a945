"""Metric sources: each reads one live object on demand and returns catalogue samples.

A source is anything with a ``name`` and a ``collect() -> list[Sample]``. Sources for a
cache read ``Cache.stats()`` in-process or a shared-memory stats block (the sidecar); the
others read the GPU through NVML and the MLOps components (drift detectors, the model
registry, A/B tests, the access-log collector). Nothing is cached between collections
except the previous operation count, which ``predis_commands_per_second`` needs.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from predis.monitoring.metrics import HistogramValue, Sample, sample
from predis.monitoring.shm import StatsBlockError, read_block, validate_block_name

__all__ = [
    "ABTestSource",
    "BlockSource",
    "CacheSource",
    "CollectorSource",
    "DriftSource",
    "GpuSource",
    "RegistrySource",
    "RetrainingSource",
    "Source",
    "cache_samples",
    "latency_samples",
    "prefetch_samples",
]

log = logging.getLogger("predis.monitoring")


class Source(Protocol):
    """What the monitor collects from."""

    name: str

    def collect(self) -> list[Sample]:
        """Samples of the source's current state."""
        ...


class _Rate:
    """Operations per second between two observations at least ``min_gap`` seconds apart."""

    def __init__(self, min_gap: float = 0.5) -> None:
        self._min_gap = min_gap
        self._last: tuple[float, float] | None = None
        self._rate: float | None = None
        self._lock = threading.Lock()

    def update(self, total: float, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._last is None or total < self._last[1]:
                self._last = (now, total)  # first observation, or the counters restarted
                self._rate = None
            elif now - self._last[0] >= self._min_gap:
                self._rate = (total - self._last[1]) / (now - self._last[0])
                self._last = (now, total)
            return self._rate


def _get(obj: Any, field: str) -> Any:
    return obj[field] if isinstance(obj, dict) else getattr(obj, field)


def cache_samples(name: str, stats: Any, rate: float | None) -> list[Sample]:
    """Samples of one cache's counters (``stats``: a CacheStats or a dict of its fields)."""
    c = {"cache": name}
    hits, misses = int(_get(stats, "hits")), int(_get(stats, "misses"))
    inserts, updates = int(_get(stats, "inserts")), int(_get(stats, "updates"))
    out = [
        sample("predis_keyspace_hits_total", hits, c),
        sample("predis_keyspace_misses_total", misses, c),
        sample("predis_commands_total", hits + misses, {"cache": name, "cmd": "get"}),
        sample("predis_commands_total", inserts + updates, {"cache": name, "cmd": "put"}),
        sample("predis_commands_total", _get(stats, "deletes"), {"cache": name, "cmd": "delete"}),
        sample("predis_inserted_keys_total", inserts, c),
        sample("predis_updated_keys_total", updates, c),
        sample("predis_deleted_keys_total", _get(stats, "deletes"), c),
        sample("predis_evicted_keys_total", _get(stats, "evictions"), c),
        sample("predis_expired_keys_total", _get(stats, "expirations"), c),
        sample("predis_keys", _get(stats, "items"), c),
        sample("predis_max_keys", _get(stats, "max_items"), c),
        sample("predis_memory_used_bytes", _get(stats, "bytes_used"), c),
        sample("predis_memory_max_bytes", _get(stats, "capacity_bytes"), c),
        sample("predis_memory_reserved_bytes", _get(stats, "bytes_reserved"), c),
        sample("predis_table_bytes", _get(stats, "table_bytes"), c),
        sample("predis_access_log_events_total", _get(stats, "events_logged"), c),
        sample("predis_access_log_dropped_events_total", _get(stats, "events_dropped"), c),
        sample("predis_access_log_pending_events", _get(stats, "events_pending"), c),
        sample("predis_access_log_capacity_events", _get(stats, "log_capacity"), c),
    ]
    if hits + misses:
        out.append(sample("predis_hit_ratio", hits / (hits + misses), c))
    if rate is not None:
        out.append(sample("predis_commands_per_second", rate, c))
    return out


def latency_samples(name: str, period: int, op_latency: Any) -> list[Sample]:
    """Samples of one cache's sampled call durations (``op_latency``: op -> OpLatency).
    Every op is exported, zero counts included, so its series do not come and go."""
    c = {"cache": name}
    out = [sample("predis_op_duration_sampling_period", period, c)]
    for op, h in op_latency.items():
        hist = HistogramValue(h.cumulative(), h.sum_seconds)
        out.append(sample("predis_op_duration_seconds", hist, {"cache": name, "op": op}))
    return out


def _ops(stats: Any) -> int:
    return sum(int(_get(stats, f)) for f in ("hits", "misses", "inserts", "updates", "deletes"))


def prefetch_samples(name: str, prefetch: Any) -> list[Sample]:
    """Samples of a prefetcher's counters (a ``PrefetchStats``, or a
    :class:`~predis.monitoring.shm.PrefetchSnapshot` read from a stats block)."""
    c = {"cache": name}
    out = [
        sample("predis_prefetch_issued_total", prefetch.issued, c),
        sample("predis_prefetch_used_total", prefetch.used, c),
        sample("predis_prefetch_wasted_total", prefetch.wasted, c),
        sample("predis_prefetch_errors_total", prefetch.errors, c),
        sample("predis_prefetch_dropped_total", prefetch.dropped, c),
        sample("predis_ml_inference_batches_total", prefetch.inference_batches, c),
    ]
    buckets = tuple((float(b), int(n)) for b, n in prefetch.inference_latency_buckets)
    if buckets:
        if not math.isinf(buckets[-1][0]):
            buckets = (*buckets, (math.inf, buckets[-1][1]))
        hist = HistogramValue(buckets, float(prefetch.inference_seconds_total))
        out.append(sample("predis_ml_inference_duration_seconds", hist, c))
    return out


class CacheSource:
    """A :class:`~predis.Cache` in this process, labelled ``cache=name``."""

    def __init__(self, cache: Any, name: str = "default") -> None:
        self.cache = cache
        self.name = validate_block_name(name)
        self._rate = _Rate()

    def collect(self) -> list[Sample]:
        """This source's samples now (see :class:`Source`)."""
        c = {"cache": self.name}
        try:
            stats = self.cache.stats()
        except Exception:
            log.exception("predis: reading cache %s failed", self.name)
            return [sample("predis_up", 0, c)]
        from predis import __version__  # noqa: PLC0415 - avoids an import cycle

        info = {
            "cache": self.name,
            "backend": str(self.cache.backend),
            "policy": str(self.cache.policy),
            "version": __version__,
        }
        out = [sample("predis_up", 1, c), sample("predis_cache_info", 1, info)]
        out += cache_samples(self.name, stats, self._rate.update(_ops(stats)))
        out += latency_samples(self.name, stats.latency_period, stats.op_latency)
        prefetch = getattr(stats, "prefetch", None)
        if prefetch is not None:
            out += prefetch_samples(self.name, prefetch)
        return out


class BlockSource:
    """A cache in another process, read from its shared-memory stats block (the sidecar).

    ``predis_up`` is 0, and no other series of the cache is exported, while the block is
    missing, invalid, closed, or its host is gone.
    """

    def __init__(self, name: str) -> None:
        self.name = validate_block_name(name)
        self._rate = _Rate()
        self.last_error: str | None = None

    def collect(self) -> list[Sample]:
        """This source's samples now (see :class:`Source`)."""
        c = {"cache": self.name}
        try:
            reading = read_block(self.name)
        except StatsBlockError as exc:
            self.last_error = str(exc)
            return [sample("predis_up", 0, c)]
        age = sample("predis_stats_block_age_seconds", reading.age_s(), c)
        if not reading.host_alive():
            self.last_error = f"the host process {reading.pid} is gone or closed the cache"
            return [sample("predis_up", 0, c), age]
        self.last_error = None
        info = {
            "cache": self.name,
            "backend": reading.backend,
            "policy": reading.policy,
            "version": reading.predis_version,
        }
        stats = reading.stats
        out = [sample("predis_up", 1, c), age, sample("predis_cache_info", 1, info)]
        out += cache_samples(self.name, stats, self._rate.update(_ops(stats)))
        out += latency_samples(self.name, reading.latency_period, reading.op_latency)
        if reading.prefetch is not None:
            out += prefetch_samples(self.name, reading.prefetch)
        return out


class GpuSource:
    """GPU utilisation and memory through NVML (the ``nvidia-ml-py`` package).

    :meth:`open` returns None when NVML cannot be used (package missing, no driver, no
    device): the GPU metrics are then absent, never zero.
    """

    name = "gpu"

    def __init__(self, nvml: Any, handles: list[tuple[str, str, Any]]) -> None:
        self._nvml = nvml
        self._handles = handles

    @classmethod
    def open(cls) -> GpuSource | None:
        """A source over every GPU NVML sees, or None."""
        try:
            import pynvml  # noqa: PLC0415 - optional (gpu extra)

            pynvml.nvmlInit()
            handles = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                h = pynvml.nvmlDeviceGetHandleByIndex(i)
                raw = pynvml.nvmlDeviceGetName(h)
                name = raw.decode() if isinstance(raw, bytes) else str(raw)
                handles.append((str(i), name, h))
        except Exception as exc:  # ImportError, NVMLError: no GPU metrics
            log.info("predis: no GPU metrics (%s)", exc)
            return None
        return cls(pynvml, handles) if handles else None

    def collect(self) -> list[Sample]:
        """This source's samples now (see :class:`Source`)."""
        out = []
        for index, name, h in self._handles:
            labels = {"gpu": index, "name": name}
            util = self._nvml.nvmlDeviceGetUtilizationRates(h)
            mem = self._nvml.nvmlDeviceGetMemoryInfo(h)
            out.append(sample("predis_gpu_utilization_ratio", util.gpu / 100.0, labels))
            out.append(sample("predis_gpu_memory_used_bytes", mem.used, labels))
            out.append(sample("predis_gpu_memory_total_bytes", mem.total, labels))
        return out


class DriftSource:
    """A drift detector of :mod:`predis.mlops.drift`: its latest statistics and a count of
    the drift events it confirmed since it was added (it is subscribed to)."""

    def __init__(self, detector: Any, name: str) -> None:
        from predis.mlops.drift import (  # noqa: PLC0415
            FeatureDriftDetector,
            PopularityDriftDetector,
            StreamDriftDetector,
        )

        self.name = validate_block_name(name)
        self.detector = detector
        if isinstance(detector, StreamDriftDetector):
            self.kind = "performance"
        elif isinstance(detector, FeatureDriftDetector):
            self.kind = "feature"
        elif isinstance(detector, PopularityDriftDetector):
            self.kind = "popularity"
        else:
            from predis.errors import InvalidArgumentError  # noqa: PLC0415

            raise InvalidArgumentError(
                f"expected a predis.mlops drift detector, got {type(detector).__name__}"
            )
        self._events = 0
        self._lock = threading.Lock()
        detector.subscribe(self._on_event)

    def _on_event(self, event: Any) -> None:
        del event
        with self._lock:
            self._events += 1

    def collect(self) -> list[Sample]:
        """This source's samples now (see :class:`Source`)."""
        base = {"detector": self.name, "kind": self.kind}
        with self._lock:
            out = [sample("predis_drift_events_total", self._events, base)]
        d = self.detector

        def score(statistic: str, feature: str, value: float) -> Sample:
            labels = {**base, "statistic": statistic, "feature": feature}
            return sample("predis_drift_score", value, labels)

        if self.kind == "performance":
            out.append(score("mean", "", d.mean))
        elif self.kind == "feature":
            check = d.last_check
            if check is not None:
                out += [score("psi", f, v) for f, v in check.psi.items()]
                out += [score("js", f, v) for f, v in check.js.items()]
        else:
            stats = d.last_statistics
            if stats is not None:
                out += [score(k, "", v) for k, v in stats.items()]
        return out


class RegistrySource:
    """A :class:`~predis.mlops.ModelRegistry`: which version each alias points to."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry
        self.name = f"registry-{registry.customer}"

    def collect(self) -> list[Sample]:
        """This source's samples now (see :class:`Source`)."""
        customer = self.registry.customer
        out = [
            sample(
                "predis_model_versions", len(self.registry.list_versions()), {"customer": customer}
            )
        ]
        for alias, version in sorted(self.registry.aliases().items()):
            if version is not None:
                labels = {"customer": customer, "alias": alias, "version": str(version)}
                out.append(sample("predis_model_version_info", 1, labels))
        return out


class ABTestSource:
    """An :class:`~predis.mlops.MSPRT` A/B test: per-arm counts and hit ratios, the
    always-valid p-value and the decision."""

    def __init__(self, test: Any, name: str) -> None:
        self.test = test
        self.name = validate_block_name(name)

    def collect(self) -> list[Sample]:
        """This source's samples now (see :class:`Source`)."""
        result = self.test.result()
        out = []
        for arm in ("champion", "challenger"):
            counts = getattr(self.test, arm)
            labels = {"test": self.name, "arm": arm}
            out.append(sample("predis_abtest_requests_total", counts.requests, labels))
            out.append(sample("predis_abtest_hits_total", counts.hits, labels))
            if counts.requests:
                out.append(sample("predis_abtest_hit_ratio", counts.hit_rate, labels))
        out.append(sample("predis_abtest_p_value", result.p_value, {"test": self.name}))
        state = result.winner if result.decided and result.winner else "undecided"
        for s in ("undecided", "champion", "challenger"):
            out.append(
                sample("predis_abtest_decision", float(s == state), {"test": self.name, "state": s})
            )
        return out


class RetrainingSource:
    """A :class:`~predis.mlops.Retrainer`, or a whole :class:`~predis.mlops.MLOpsLoop`:
    retraining jobs by outcome, their durations, the latest one's end, and a count of the
    loop's events by kind (promotions, rollbacks, ...) since the source was added.

    For a loop it also reads what the loop replaces as it goes (so a source bound to one
    object would go stale): its state, its current hit/miss drift detector's mean, and the
    router's per-arm counts during an A/B test or rollback watch (``test`` = the loop's
    name; the arms are ``champion`` and ``challenger`` or ``holdback``; they restart from 0
    when the roles change, which Prometheus treats as a counter reset)."""

    def __init__(self, target: Any, name: str) -> None:
        from predis.mlops.controller import MLOpsLoop  # noqa: PLC0415
        from predis.mlops.events import EVENT_KINDS  # noqa: PLC0415
        from predis.mlops.retraining import Retrainer  # noqa: PLC0415

        self.name = validate_block_name(name)
        self.loop: Any = None
        if isinstance(target, MLOpsLoop):
            self.loop = target
            self.retrainer = target.retrainer
        elif isinstance(target, Retrainer):
            self.retrainer = target
        else:
            from predis.errors import InvalidArgumentError  # noqa: PLC0415

            raise InvalidArgumentError(
                f"expected a predis.mlops MLOpsLoop or Retrainer, got {type(target).__name__}"
            )
        self._events = dict.fromkeys(EVENT_KINDS, 0)
        self._lock = threading.Lock()
        self.retrainer.events.subscribe(self._on_event)

    def _on_event(self, event: Any) -> None:
        with self._lock:
            self._events[event.kind] = self._events.get(event.kind, 0) + 1

    def collect(self) -> list[Sample]:
        """This source's samples now (see :class:`Source`)."""
        s = self.retrainer.stats()
        c = {"loop": self.name}

        def runs(outcome: str, n: int) -> Sample:
            return sample("predis_retraining_runs_total", n, {**c, "outcome": outcome})

        out = [runs(k, v) for k, v in s.runs.items()]
        out.append(runs("skipped", s.skipped))
        hist = HistogramValue(s.duration_buckets, s.duration_seconds_total)
        out.append(sample("predis_retraining_duration_seconds", hist, c))
        out.append(sample("predis_retraining_in_progress", float(s.busy), c))
        if s.last_run_unix is not None:
            out.append(sample("predis_retraining_last_run_timestamp_seconds", s.last_run_unix, c))
        with self._lock:
            events = dict(self._events)
        out += [sample("predis_mlops_events_total", n, {**c, "kind": k}) for k, n in events.items()]
        if self.loop is not None:
            out += self._loop_samples()
        return out

    def _loop_samples(self) -> list[Sample]:
        from predis.mlops.controller import STATES  # noqa: PLC0415

        loop = self.loop
        state = str(loop.state).split(":")[0]
        out = [
            sample("predis_mlops_loop_state", float(s == state), {"loop": self.name, "state": s})
            for s in STATES
        ]
        drift = {"detector": self.name, "kind": "performance", "statistic": "mean", "feature": ""}
        out.append(sample("predis_drift_score", loop.detector.mean, drift))
        roles = loop.router.roles
        if roles.other is not None:
            for arm, counts in (
                ("champion", roles.champion_stats),
                (str(roles.other_role), roles.other_stats),
            ):
                labels = {"test": self.name, "arm": arm}
                out.append(sample("predis_abtest_requests_total", counts.requests, labels))
                out.append(sample("predis_abtest_hits_total", counts.hits, labels))
                if counts.requests:
                    out.append(sample("predis_abtest_hit_ratio", counts.hit_rate, labels))
        experiment = loop.experiment
        if experiment is not None:
            # The sequential test as of the loop's latest look (every decide_every requests
            # at first, then further apart).
            seq = experiment.sequential()
            test = {"test": self.name}
            out.append(sample("predis_abtest_p_value", seq.p_value, test))
            verdict = seq.winner if seq.decided and seq.winner else "undecided"
            for v in ("undecided", "champion", "challenger"):
                out.append(
                    sample("predis_abtest_decision", float(v == verdict), {**test, "state": v})
                )
        return out


class CollectorSource:
    """An access-log :class:`~predis.mlops.Collector`: events, drops and bytes."""

    def __init__(self, collector: Any, name: str) -> None:
        self.collector = collector
        self.name = validate_block_name(name)

    def collect(self) -> list[Sample]:
        """This source's samples now (see :class:`Source`)."""
        s = self.collector.stats()
        c = {"collector": self.name}

        def stage(x: str, v: int) -> Sample:
            return sample("predis_collector_events_total", v, {**c, "stage": x})

        def dropped(x: str, v: int) -> Sample:
            return sample("predis_collector_dropped_events_total", v, {**c, "reason": x})

        return [
            stage("drained", s.events_drained),
            stage("written", s.events_written),
            dropped("ring_full", s.ring_events_dropped),
            dropped("low_disk", s.events_skipped_low_disk),
            dropped("write_errors", s.events_dropped_after_errors),
            dropped("unwritten_at_stop", s.events_unwritten_at_stop),
            sample("predis_collector_written_bytes_total", s.bytes_written, c),
            sample("predis_collector_segments_written_total", s.segments_written, c),
            sample("predis_collector_write_errors_total", s.write_errors, c),
        ]


class CallableSource:
    """Adapts a function returning samples (used for the exporters' own metrics)."""

    def __init__(self, name: str, fn: Callable[[], list[Sample]]) -> None:
        self.name = name
        self._fn = fn

    def collect(self) -> list[Sample]:
        """This source's samples now (see :class:`Source`)."""
        return self._fn()

"""`Monitor`: the set of metric sources that one exporter serves or pushes.

Sources are read on demand (a Prometheus scrape, a push exporter's flush). A source that
raises is logged and counted, and the others are still collected: one broken component
never blanks the whole page.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from predis.errors import InvalidArgumentError
from predis.monitoring.metrics import Sample, sample
from predis.monitoring.sources import (
    ABTestSource,
    BlockSource,
    CacheSource,
    CollectorSource,
    DriftSource,
    GpuSource,
    RegistrySource,
    RetrainingSource,
    Source,
)

__all__ = ["Monitor"]

log = logging.getLogger("predis.monitoring")


class Monitor:
    """The sources one exporter reads, and the exporter's own scrape metrics.

    Example:
        >>> import predis
        >>> from predis.monitoring import Monitor
        >>> cache = predis.Cache(capacity_bytes=1 << 20)
        >>> cache.put(1, b"x"); _ = cache.get(1)
        >>> m = Monitor().add_cache(cache, "main")
        >>> [s.value for s in m.collect() if s.metric.name == "predis_keyspace_hits_total"]
        [1.0]
    """

    def __init__(self) -> None:
        self._sources: list[Source] = []
        self._lock = threading.Lock()
        self._scrapes = 0
        self._errors: dict[str, int] = {}
        self._last_duration: float | None = None
        self._last_error = 0

    # ---- registration ----

    def add_source(self, source: Source) -> Monitor:
        """Add any object with ``name`` and ``collect() -> list[Sample]``."""
        if not callable(getattr(source, "collect", None)) or not isinstance(
            getattr(source, "name", None), str
        ):
            raise InvalidArgumentError("a source needs a str `name` and a `collect()` method")
        with self._lock:
            if any(s.name == source.name and type(s) is type(source) for s in self._sources):
                raise InvalidArgumentError(
                    f"a {type(source).__name__} named {source.name!r} is already added"
                )
            self._sources.append(source)
        return self

    def add_cache(self, cache: Any, name: str = "default") -> Monitor:
        """A cache in this process, labelled ``cache=name``."""
        return self.add_source(CacheSource(cache, name))

    def add_stats_block(self, name: str) -> Monitor:
        """A cache in another process, through its shared-memory stats block."""
        return self.add_source(BlockSource(name))

    def add_gpu(self) -> bool:
        """GPU metrics through NVML; False (and nothing added) when NVML is unusable."""
        if any(isinstance(s, GpuSource) for s in self.sources):
            return True
        source = GpuSource.open()
        if source is None:
            return False
        self.add_source(source)
        return True

    def add_drift_detector(self, detector: Any, name: str) -> Monitor:
        """A drift detector of :mod:`predis.mlops.drift`."""
        return self.add_source(DriftSource(detector, name))

    def add_registry(self, registry: Any) -> Monitor:
        """A :class:`~predis.mlops.ModelRegistry` (one customer's aliases)."""
        return self.add_source(RegistrySource(registry))

    def add_abtest(self, test: Any, name: str) -> Monitor:
        """An :class:`~predis.mlops.MSPRT` A/B test."""
        return self.add_source(ABTestSource(test, name))

    def add_retraining(self, target: Any, name: str) -> Monitor:
        """A :class:`~predis.mlops.MLOpsLoop` or :class:`~predis.mlops.Retrainer`:
        retraining runs by outcome, durations, last run, and the loop's events by kind."""
        return self.add_source(RetrainingSource(target, name))

    def add_collector(self, collector: Any, name: str) -> Monitor:
        """An access-log :class:`~predis.mlops.Collector`."""
        return self.add_source(CollectorSource(collector, name))

    @property
    def sources(self) -> list[Source]:
        """The sources, in the order added."""
        with self._lock:
            return list(self._sources)

    # ---- collection ----

    def collect(self) -> list[Sample]:
        """Every source's samples, then the exporter's own (scrape count, the previous
        collection's duration and error flag)."""
        start = time.perf_counter()
        samples: list[Sample] = []
        error = 0
        for source in self.sources:
            try:
                samples += source.collect()
            except Exception:
                error = 1
                with self._lock:
                    self._errors[source.name] = self._errors.get(source.name, 0) + 1
                log.exception("predis: metric source %s failed", source.name)
            if getattr(source, "last_error", None):
                error = 1
        with self._lock:
            self._scrapes += 1
            self._last_duration = time.perf_counter() - start
            self._last_error = error
            samples.append(sample("predis_exporter_scrapes_total", self._scrapes))
            samples.append(sample("predis_exporter_scrape_duration_seconds", self._last_duration))
            samples.append(sample("predis_exporter_last_scrape_error", self._last_error))
            for name, n in sorted(self._errors.items()):
                samples.append(sample("predis_exporter_source_errors_total", n, {"source": name}))
        return samples

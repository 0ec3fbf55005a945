"""Replay a trace through a real `predis.Cache` in front of a simulated back end."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from predis.cache import Cache
from predis.errors import InvalidArgumentError
from predis.sim.backend import SimulatedBackend
from predis.sim.prefetcher import Prefetcher

__all__ = ["ReplayResult", "coverage", "replay"]


@dataclass(frozen=True)
class ReplayResult:
    """What a replay measured. Demand requests are the trace's; prefetches are extra."""

    requests: int
    hits: int
    misses: int
    prefetches_issued: int
    prefetches_used: int
    backend_fetches: int
    bytes_fetched: int
    backend_busy_s: float
    backend_cost: float
    elapsed_s: float

    @property
    def miss_ratio(self) -> float:
        """Demand misses per request."""
        return self.misses / self.requests if self.requests else 0.0

    @property
    def hit_ratio(self) -> float:
        """Demand hits per request."""
        return self.hits / self.requests if self.requests else 0.0

    @property
    def fetches_per_request(self) -> float:
        """Back-end fetches (demand misses plus prefetches) per request."""
        return self.backend_fetches / self.requests if self.requests else 0.0

    @property
    def precision(self) -> float:
        """Share of prefetched entries that a demand request used; 0 when none were issued."""
        return self.prefetches_used / self.prefetches_issued if self.prefetches_issued else 0.0

    @property
    def requests_per_s(self) -> float:
        """Replay throughput (wall clock of the replay loop)."""
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, float | int]:
        """Every field and derived metric, JSON-ready."""
        d: dict[str, float | int] = asdict(self)
        for name in (
            "miss_ratio",
            "hit_ratio",
            "fetches_per_request",
            "precision",
            "requests_per_s",
        ):
            d[name] = getattr(self, name)
        return d


def coverage(result: ReplayResult, baseline: ReplayResult) -> float:
    """Share of the baseline's demand misses that ``result`` removed (negative if it added)."""
    if result.requests != baseline.requests:
        raise InvalidArgumentError("coverage compares replays of the same trace")
    if baseline.misses == 0:
        return 0.0
    return (baseline.misses - result.misses) / baseline.misses


def _keys_of(chunk: np.ndarray) -> np.ndarray:
    if chunk.dtype.names is not None:
        if "key" not in chunk.dtype.names:
            raise InvalidArgumentError("request chunks need a 'key' field")
        return chunk["key"]
    if chunk.dtype.kind not in "ui":
        raise InvalidArgumentError(f"request chunks must hold integer keys, got {chunk.dtype}")
    return chunk


def replay(
    requests: Iterable[np.ndarray],
    cache: Cache,
    backend: SimulatedBackend | None = None,
    prefetcher: Prefetcher | None = None,
    *,
    total: int | None = None,
    progress: bool = False,
    warmup: np.ndarray | None = None,
) -> ReplayResult:
    """Serve every request in order: a hit is a hit; a miss fetches from ``backend`` and
    stores the value. With a ``prefetcher``, every ``prefetcher.batch_size`` requests its
    proposals that are not cached yet are fetched and stored with
    :meth:`~predis.Cache.put_prefetched`, and counted as prefetches.

    ``requests`` yields uint64 key arrays or structured arrays with a ``key`` field (such
    as :data:`predis.workloads.traces.REQUEST_DTYPE` chunks). Each request is one get of a
    unit-size object. ``total`` sizes the progress bar. ``warmup`` keys are served first,
    exactly the same way, and not counted: the cache and the prefetcher start the counted
    part warm (for a train-on-the-first-half, score-the-second-half evaluation).
    """
    backend = backend if backend is not None else SimulatedBackend()
    if warmup is not None and len(warmup):
        _serve(
            np.asarray(warmup),
            cache,
            SimulatedBackend(backend.model, backend.value_size),
            prefetcher,
        )
    start = time.perf_counter()
    with tqdm(total=total, unit="req", unit_scale=True, disable=not progress, desc="replay") as bar:
        counts = _serve_all(requests, cache, backend, prefetcher, bar)
    elapsed = time.perf_counter() - start
    hits, misses, issued, used = counts
    return ReplayResult(
        requests=hits + misses,
        hits=hits,
        misses=misses,
        prefetches_issued=issued,
        prefetches_used=used,
        backend_fetches=backend.fetches,
        bytes_fetched=backend.bytes_fetched,
        backend_busy_s=backend.busy_s,
        backend_cost=backend.cost,
        elapsed_s=elapsed,
    )


def _serve(
    keys: np.ndarray, cache: Cache, backend: SimulatedBackend, prefetcher: Prefetcher | None
) -> tuple[int, int, int, int]:
    return _serve_all([keys], cache, backend, prefetcher, None)


def _serve_all(
    requests: Iterable[np.ndarray],
    cache: Cache,
    backend: SimulatedBackend,
    prefetcher: Prefetcher | None,
    bar: tqdm | None,
) -> tuple[int, int, int, int]:
    """(hits, misses, prefetches issued, prefetches used) of serving ``requests``."""
    get, put, contains = cache.get, cache.put, cache.contains
    put_prefetched, cached = cache.put_prefetched, cache.mcontains
    fetch = backend.fetch
    hits = misses = issued = used = 0
    pending: set[int] = set()  # prefetched and not yet used by a demand request
    propose = prefetcher.propose if prefetcher is not None else None
    seen_keys: list[int] = []
    seen_hits: list[bool] = []
    for chunk in requests:
        keys = _keys_of(np.asarray(chunk)).tolist()
        for key in keys:
            if get(key) is not None:
                hits += 1
                hit = True
                if key in pending:
                    pending.discard(key)
                    used += 1
            else:
                misses += 1
                hit = False
                pending.discard(key)  # prefetched but evicted before use: wasted
                put(key, fetch(key))
            if prefetcher is not None:
                seen_keys.append(key)
                seen_hits.append(hit)
                # Read every time: a prefetcher may change its cadence as it goes.
                if len(seen_keys) >= prefetcher.batch_size:
                    proposed, confidence = propose(  # type: ignore[misc]
                        np.array(seen_keys, dtype=np.uint64), np.array(seen_hits), cached
                    )
                    seen_keys.clear()
                    seen_hits.clear()
                    for p, c in zip(proposed.tolist(), confidence.tolist(), strict=True):
                        if not contains(p):
                            put_prefetched(p, fetch(p, prefetch=True), c)
                            pending.add(p)
                            issued += 1
        if prefetcher is not None:
            prefetcher.flush()  # the chunk's requests are all accounted for on return
        if bar is not None:
            bar.update(len(keys))
    return hits, misses, issued, used

"""Counters of a prefetcher's work, as :meth:`predis.Cache.stats` reports them."""

from __future__ import annotations

import bisect
import math
import threading
from dataclasses import dataclass

__all__ = ["LATENCY_BUCKETS_S", "LatencyHistogram", "PrefetchStats"]

#: Upper bounds (seconds) of the inference-latency histogram; the last bucket is +inf.
LATENCY_BUCKETS_S: tuple[float, ...] = (
    1e-5,
    2.5e-5,
    5e-5,
    1e-4,
    2.5e-4,
    5e-4,
    1e-3,
    2.5e-3,
    5e-3,
    1e-2,
    2.5e-2,
    0.1,
)


class LatencyHistogram:
    """A thread-safe cumulative histogram of durations over ``bounds`` (increasing upper
    bounds in seconds; default :data:`LATENCY_BUCKETS_S`), plus a +inf bucket."""

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self._bounds = tuple(float(b) for b in bounds)
        self._counts = [0] * (len(self._bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        """Count one duration."""
        i = bisect.bisect_left(self._bounds, seconds)  # the first bound >= seconds
        with self._lock:
            self._counts[i] += 1
            self._sum += seconds

    def totals(self) -> tuple[int, float]:
        """(durations counted, their sum in seconds): the cheap read for per-batch deltas."""
        with self._lock:
            return sum(self._counts), self._sum

    def snapshot(self) -> tuple[tuple[tuple[float, int], ...], int, float]:
        """((upper bound, cumulative count) ... ending with (inf, total)), total, sum."""
        with self._lock:
            counts, total_s = list(self._counts), self._sum
        out, running = [], 0
        for bound, c in zip((*self._bounds, math.inf), counts, strict=True):
            running += c
            out.append((bound, running))
        return tuple(out), running, total_s


@dataclass(frozen=True)
class PrefetchStats:
    """A snapshot of prefetch activity (cumulative).

    Attributes:
        issued: prefetch loads that stored a value in the cache.
        used: prefetched entries that a demand request hit before they left the cache.
        wasted: prefetched entries that left (evicted, or aged out of tracking) unused.
        errors: prefetch loads whose loader raised (counted and logged, never raised).
        dropped: proposals not loaded: queue full, over the load budget, or already in flight.
        inference_batches: model calls.
        inference_rows: candidate rows scored.
        inference_seconds_total: time spent in model inference.
        inference_latency_buckets: (upper bound s, cumulative count) pairs, ending with
            (inf, inference_batches).
        model_version: how many models have been swapped in (0: none yet).
    """

    issued: int
    used: int
    wasted: int
    errors: int
    dropped: int
    inference_batches: int
    inference_rows: int
    inference_seconds_total: float
    inference_latency_buckets: tuple[tuple[float, int], ...]
    model_version: int

    @property
    def precision(self) -> float:
        """used / (used + wasted): the share of settled prefetches that paid off."""
        settled = self.used + self.wasted
        return self.used / settled if settled else 0.0

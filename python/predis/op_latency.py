"""Sampled operation latency: the log2 histograms the native core keeps per operation type.

The core times 1 call in ``Cache.latency_sampling`` (a power of two, default 64; 0 turns
timing off) on each of its counter shards and adds the duration to a histogram of that
call's operation type. Single-key calls are timed per call; batch calls (``mget``,
``get_into``, ``mput``, ``mdelete``, ``mcontains``) per call too, under their own ``*_batch``
type, never per key. Counts are of *timed* calls: multiply by the sampling period for an
estimate of all calls.

Buckets are powers of two of nanoseconds: the first holds durations up to 64 ns, each next
one up to twice the previous bound, the last finite bound is 2**30 ns (about 1.07 s), and the
final bucket takes everything longer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from predis import _core

__all__ = ["LATENCY_BOUNDS_S", "OPS", "OpLatency", "op_latencies"]

#: Operation types, in the core's order.
OPS = (
    "get",
    "put",
    "put_prefetched",
    "delete",
    "contains",
    "get_batch",
    "put_batch",
    "delete_batch",
    "contains_batch",
)
#: The finite upper bounds of the buckets, in seconds (the last bucket is +Inf).
LATENCY_BOUNDS_S: tuple[float, ...] = tuple(b / 1e9 for b in _core.LATENCY_BUCKET_BOUNDS_NS)


@dataclass(frozen=True)
class OpLatency:
    """The timed calls of one operation type: per-bucket counts (not cumulative, one more
    than :data:`LATENCY_BOUNDS_S`: the last is +Inf) and their summed duration."""

    counts: tuple[int, ...]
    sum_seconds: float

    @property
    def count(self) -> int:
        """Calls timed."""
        return sum(self.counts)

    def cumulative(self) -> tuple[tuple[float, int], ...]:
        """(upper bound in seconds, calls at most that long) pairs, ending with +Inf, as a
        Prometheus histogram wants them."""
        out = []
        total = 0
        for bound, n in zip((*LATENCY_BOUNDS_S, math.inf), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return tuple(out)


def op_latencies(raw: Mapping[str, Any]) -> dict[str, OpLatency]:
    """Convert the core's ``stats()["latency"]`` (op -> (counts, sum in ns))."""
    return {op: OpLatency(tuple(int(c) for c in raw[op][0]), int(raw[op][1]) / 1e9) for op in OPS}

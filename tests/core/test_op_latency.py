"""Sampled operation latency in the native core: counts checked against known activity,
the sampling period, the bucket boundaries against a reference model, real threads."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import predis
from predis import InvalidArgumentError, _core
from predis.op_latency import LATENCY_BOUNDS_S, OPS, OpLatency

BOUNDS_NS = _core.LATENCY_BUCKET_BOUNDS_NS


def counts(cache: predis.Cache) -> dict[str, int]:
    return {op: h.count for op, h in cache.stats().op_latency.items()}


def reference_bucket(ns: int) -> int:
    """The first bucket whose upper bound holds ns; the +Inf bucket past the last bound."""
    for i, bound in enumerate(BOUNDS_NS):
        if ns <= bound:
            return i
    return len(BOUNDS_NS)


def test_bounds_are_powers_of_two_from_64_ns():
    assert tuple(1 << (6 + i) for i in range(len(BOUNDS_NS))) == BOUNDS_NS
    assert BOUNDS_NS[-1] == 1 << 30
    assert tuple(b / 1e9 for b in BOUNDS_NS) == LATENCY_BOUNDS_S


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 2**64 - 1))
def test_bucket_of_any_duration_matches_the_reference(ns):
    assert _core.latency_bucket(ns) == reference_bucket(ns)


@pytest.mark.parametrize("k", range(6, 31))
def test_bucket_edges(k):
    edge = 1 << k
    assert _core.latency_bucket(edge) == k - 6  # a bound belongs to its own bucket
    assert _core.latency_bucket(edge + 1) == k - 5
    assert _core.latency_bucket(edge - 1) == max(0, k - 6)


def test_every_call_counted_with_sampling_one():
    cache = predis.Cache(capacity_bytes=1 << 20, latency_sampling=1)
    for k in range(100):
        cache.put(k, b"v")
    for k in range(150):
        cache.get(k)
    for k in range(7):
        cache.delete(k)
    for k in range(5):
        _ = k in cache
    cache.mget(list(range(40)))
    cache.mget(np.arange(10, dtype=np.uint64))
    cache.mput(list(range(200, 220)), [b"x"] * 20)
    cache.mdelete([200, 201, 202])
    cache.mcontains([1, 2, 3])
    out = np.zeros((4, 8), dtype=np.uint8)
    cache.get_into([1, 2, 3, 4], out)
    got = counts(cache)
    # Batch calls are timed once per call, whatever their length.
    assert got == {
        "get": 150,
        "put": 100,
        "put_prefetched": 0,
        "delete": 7,
        "contains": 5,
        "get_batch": 3,
        "put_batch": 1,
        "delete_batch": 1,
        "contains_batch": 1,
    }
    s = cache.stats()
    assert s.latency_period == 1
    for op in OPS:
        h = s.op_latency[op]
        assert len(h.counts) == len(BOUNDS_NS) + 1
        assert (h.sum_seconds > 0) == (h.count > 0)
        cumulative = h.cumulative()
        assert cumulative[-1] == (math.inf, h.count)
        assert [c for _, c in cumulative] == sorted(c for _, c in cumulative)


def test_sampling_period_takes_one_call_in_n():
    cache = predis.Cache(capacity_bytes=1 << 20, latency_sampling=4)
    for k in range(400):
        cache.get(k)
    assert counts(cache)["get"] == 100  # one thread: one shard, an exact 1 in 4
    cache.latency_sampling = 64
    for k in range(640):
        cache.get(k)
    assert counts(cache)["get"] == 110
    assert cache.latency_sampling == 64


def test_sampling_zero_times_nothing():
    cache = predis.Cache(capacity_bytes=1 << 20, latency_sampling=0)
    for k in range(1000):
        cache.put(k, b"v")
        cache.get(k)
    assert sum(counts(cache).values()) == 0
    assert cache.stats().latency_period == 0
    cache.latency_sampling = 1
    cache.get(1)
    assert counts(cache)["get"] == 1


def test_default_sampling():
    cache = predis.Cache(capacity_bytes=1 << 20)
    assert cache.latency_sampling == 64 == _core.DEFAULT_LATENCY_PERIOD
    for k in range(64 * 10):
        cache.get(k)
    assert counts(cache)["get"] == 10


@pytest.mark.parametrize("bad", [3, 6, -1, 1 << 31, 2**70, True, 1.5, "64", None])
def test_bad_sampling_is_refused_and_nothing_changes(bad):
    with pytest.raises(InvalidArgumentError, match="latency_sampling"):
        predis.Cache(capacity_bytes=1 << 20, latency_sampling=bad)
    cache = predis.Cache(capacity_bytes=1 << 20, latency_sampling=8)
    with pytest.raises(InvalidArgumentError, match="latency_sampling"):
        cache.latency_sampling = bad
    assert cache.latency_sampling == 8


def test_threads_lose_no_timed_call():
    cache = predis.Cache(capacity_bytes=8 << 20, latency_sampling=1)
    n_threads, per_thread = 6, 3000
    start = threading.Barrier(n_threads)

    def work(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            key = t * per_thread + i
            cache.put(key, b"value")
            cache.get(key)
        cache.mget(list(range(t * 100, t * 100 + 50)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    got = counts(cache)
    assert got["put"] == got["get"] == n_threads * per_thread
    assert got["get_batch"] == n_threads


def test_op_latency_cumulative_is_consistent():
    h = OpLatency(tuple([1, 0, 2] + [0] * (len(BOUNDS_NS) - 3) + [4]), 1.5)
    c = h.cumulative()
    assert c[0] == (LATENCY_BOUNDS_S[0], 1)
    assert c[2] == (LATENCY_BOUNDS_S[2], 3)
    assert c[-2] == (LATENCY_BOUNDS_S[-1], 3)
    assert c[-1] == (math.inf, 7)
    assert h.count == 7

"""Replay metrics on hand-computed cases, the back-end model, and the prefetcher hook."""

from __future__ import annotations

import numpy as np
import pytest

from predis import Cache, InvalidArgumentError
from predis.sim import (
    BackendModel,
    NextKeysPrefetcher,
    Prefetcher,
    SimulatedBackend,
    coverage,
    replay,
)
from predis.workloads.traces import REQUEST_DTYPE


def big_cache() -> Cache:
    return Cache(capacity_bytes=1 << 20, max_items=10_000, clock="manual", sample_rate=0.0)


def test_demand_only_counts():
    backend = SimulatedBackend(BackendModel(latency_s=0.01, cost_per_fetch=0.5, cost_per_gb=2.0))
    r = replay([np.array([1, 2, 1, 3, 1, 2], dtype=np.uint64)], big_cache(), backend)
    assert (r.requests, r.hits, r.misses) == (6, 3, 3)
    assert r.miss_ratio == 0.5
    assert r.backend_fetches == 3
    assert r.fetches_per_request == 0.5
    assert r.bytes_fetched == 3 * 8
    assert r.backend_busy_s == pytest.approx(0.03)
    assert r.backend_cost == pytest.approx(3 * 0.5 + 24 / 1e9 * 2.0)
    assert (r.prefetches_issued, r.prefetches_used, r.precision) == (0, 0, 0.0)


def test_structured_chunks_and_several_chunks():
    reqs = np.zeros(4, dtype=REQUEST_DTYPE)
    reqs["key"] = [5, 5, 6, 5]
    r = replay([reqs[:2], reqs[2:]], big_cache())
    assert (r.hits, r.misses) == (2, 2)


def test_sequential_prefetch_precision_and_coverage():
    keys = np.array([10, 11, 12, 13], dtype=np.uint64)
    base = replay([keys], big_cache())
    r = replay([keys], big_cache(), prefetcher=NextKeysPrefetcher(depth=1))
    # 10 miss -> prefetch 11; 11 hit; 12 miss -> prefetch 13; 13 hit.
    assert (r.hits, r.misses) == (2, 2)
    assert (r.prefetches_issued, r.prefetches_used) == (2, 2)
    assert r.precision == 1.0
    assert r.backend_fetches == 4
    assert coverage(r, base) == 0.5


def test_unused_prefetches_lower_precision():
    r = replay([np.array([10, 20], dtype=np.uint64)], big_cache(), prefetcher=NextKeysPrefetcher(1))
    assert (r.prefetches_issued, r.prefetches_used, r.precision) == (2, 0, 0.0)
    assert r.fetches_per_request == 2.0


def test_prefetch_of_a_cached_key_is_not_issued():
    class Always(Prefetcher):
        """Proposes key 1 every time, ignoring what the cache holds."""

        def propose(self, keys, hits, cached):
            return np.array([1], dtype=np.uint64), np.ones(1)

    r = replay([np.array([1, 2, 3], dtype=np.uint64)], big_cache(), prefetcher=Always())
    assert r.prefetches_issued == 0


def test_prefetched_then_evicted_is_wasted():
    # One slot: the prefetched key evicts nothing useful but is itself evicted before use.
    cache = Cache(capacity_bytes=1024, max_items=1, clock="manual", sample_rate=0.0)
    r = replay([np.array([1, 5, 2], dtype=np.uint64)], cache, prefetcher=NextKeysPrefetcher(1))
    assert r.prefetches_used == 0
    assert r.misses == 3


def test_backend_values_are_deterministic():
    b = SimulatedBackend(value_size=12)
    assert b.value(1) == (1).to_bytes(8, "little") + (1).to_bytes(8, "little")[:4]
    assert b.fetch(7, size=3) == b"\x07\x00\x00"
    assert (b.fetches, b.bytes_fetched) == (1, 3)


@pytest.mark.parametrize(
    "make",
    [
        lambda: BackendModel(latency_s=-1),
        lambda: BackendModel(cost_per_fetch=float("nan")),
        lambda: NextKeysPrefetcher(depth=0),
        lambda: replay([np.array([1.5])], big_cache()),
        lambda: coverage(
            replay([np.array([1], np.uint64)], big_cache()),
            replay([np.array([1, 2], np.uint64)], big_cache()),
        ),
    ],
)
def test_bad_arguments(make):
    with pytest.raises(InvalidArgumentError):
        make()


def test_warmup_is_served_but_not_counted():
    cache = big_cache()
    r = replay(
        [np.array([1, 2, 3], dtype=np.uint64)], cache, warmup=np.array([1, 2], dtype=np.uint64)
    )
    assert (r.requests, r.hits, r.misses, r.backend_fetches) == (3, 2, 1, 1)


def test_batched_prefetcher_sees_every_request_in_order():
    seen: list[list[int]] = []

    class Recorder(Prefetcher):
        batch_size = 3

        def propose(self, keys, hits, cached):
            seen.append(keys.tolist())
            return np.empty(0, dtype=np.uint64), np.empty(0)

    replay([np.arange(7, dtype=np.uint64)], big_cache(), prefetcher=Recorder())
    assert seen == [[0, 1, 2], [3, 4, 5]]  # the last, partial batch is never proposed on

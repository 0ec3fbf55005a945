"""A prefetched entry ranks for eviction by its confidence."""

from __future__ import annotations

import pytest

from predis import Cache, InvalidArgumentError
from predis.access_log import AccessOp


def small(policy: str) -> Cache:
    c = Cache(capacity_bytes=1 << 16, max_items=8, policy=policy, clock="manual")
    for k in range(20):  # move the operation clock past a fresh cache's first ticks
        c.get(k)
    return c


@pytest.mark.parametrize("policy", ["lru", "lfu"])
def test_a_weak_guess_is_evicted_before_demand_entries(policy):
    c = small(policy)
    for k in range(1, 8):
        c.put(k, b"v")
    c.put_prefetched(100, b"guess", confidence=0.0)  # full: 8 entries
    c.put(8, b"v")  # one must go: the guess, though it is the newest
    assert 100 not in c
    assert all(k in c for k in range(1, 9))


def test_a_sure_guess_ranks_like_a_fresh_store_under_lru():
    c = small("lru")
    for k in range(1, 8):
        c.put(k, b"v")
    c.put_prefetched(100, b"sure", confidence=1.0)  # full: 8 entries
    c.put(8, b"v")  # evicts the least recently used entry, key 1
    assert 100 in c
    assert 1 not in c


def test_a_guess_never_replaces_a_live_entry_and_is_not_logged():
    c = small("lru")
    c.put(1, b"newer")  # stored by the host while the loader was fetching an older value
    c.drain_events()
    c.put_prefetched(1, b"stale", confidence=1.0)
    assert c.get(1) == b"newer"
    assert c.drain_events()["op"].tolist() == [AccessOp.GET]
    c.put_prefetched(2, b"fresh", confidence=0.5)
    assert c.drain_events()["op"].tolist() == [AccessOp.PREFETCH]


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "high", True])
def test_confidence_must_be_a_probability(bad):
    c = small("lru")
    with pytest.raises(InvalidArgumentError, match="confidence"):
        c.put_prefetched(1, b"v", bad)
    assert len(c) == 0

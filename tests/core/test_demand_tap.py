"""The native demand tap: what a cache's drains hand out, kept for one consumer.

Checked against a plain list model: every demand get of an int key, in order, with the hit
bit the cache returned; bytes keys, puts and deletes left out; past the capacity, new
requests dropped and counted. Waiting uses real threads and asserts outcomes only.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import predis
from predis import InvalidArgumentError, _core


def _cache(**kwargs) -> predis.Cache:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a CPU-only build's fallback warning
        return predis.Cache(1 << 20, max_items=64, backend="cpu", **kwargs)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("get"), st.integers(0, 40)),
        st.tuples(st.just("get_bytes"), st.integers(0, 40)),
        st.tuples(st.just("put"), st.integers(0, 40)),
        st.tuples(st.just("delete"), st.integers(0, 40)),
        st.tuples(st.just("drain"), st.integers(1, 50)),
        st.tuples(st.just("take"), st.integers(1, 30)),
        st.tuples(st.just("peek"), st.integers(1, 30)),
    ),
    max_size=200,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, capacity=st.integers(1, 24))
def test_the_tap_keeps_each_int_demand_get_in_order_up_to_its_capacity(ops, capacity):
    cache = _cache(access_log_capacity=1 << 12)
    tap = _core.DemandTap(capacity)
    cache._core.attach_demand_tap(tap)
    logged: list[tuple[int, bool]] = []  # demand int gets not drained yet
    kept: list[tuple[int, bool]] = []  # the model of the tap
    seen = dropped = 0
    taken: list[tuple[int, bool]] = []
    expected: list[tuple[int, bool]] = []
    peeked = 0  # of `kept`, the oldest `peeked` were peeked at
    for op, arg in ops:
        if op == "get":
            logged.append((arg, cache.get(arg) is not None))
        elif op == "get_bytes":
            cache.get(str(arg).encode())
        elif op == "put":
            cache.put(arg, b"v")
        elif op == "delete":
            cache.delete(arg)
        elif op == "drain":
            # A drain of `arg` events hands out the int gets among them; the rest wait.
            events = cache._drain_native(arg)
            gets = int(np.count_nonzero((events["op"] == 0) & (events["key_kind"] == 0)))
            for request in logged[:gets]:
                seen += 1
                if len(kept) < capacity:
                    kept.append(request)
                else:
                    dropped += 1
            del logged[:gets]
        elif op == "peek":
            # A copy of the next requests not peeked at; they stay kept.
            keys, hits = tap.peek(arg)
            assert (
                list(zip(keys.tolist(), hits.tolist(), strict=True)) == kept[peeked : peeked + arg]
            )
            peeked = min(len(kept), peeked + arg)
        else:
            keys, hits = tap.take(arg)
            assert keys.dtype == np.uint64
            assert hits.dtype == np.bool_
            taken += list(zip(keys.tolist(), hits.tolist(), strict=True))
            expected += kept[:arg]
            del kept[:arg]
            peeked = max(0, peeked - arg)
        assert (tap.seen, tap.pending, tap.dropped) == (seen, len(kept), dropped)
        assert tap.peeked == peeked
    assert taken == expected
    assert tap.taken == len(taken)


def test_a_waiter_wakes_for_a_full_chunk_for_an_old_request_and_at_close():
    cache = _cache()
    tap = _core.DemandTap(1000)
    cache._core.attach_demand_tap(tap)
    got: list[int] = []

    def wait(min_count: int, max_wait_s: float) -> None:
        got.append(tap.wait(min_count, max_wait_s))

    # A full chunk: the waiter (no timer while nothing is kept) returns once it is there.
    waiter = threading.Thread(target=wait, args=(50, 3600.0))
    waiter.start()
    for k in range(60):
        cache.get(k)
        if k % 7 == 6:
            cache._drain_native()
    cache._drain_native()
    waiter.join(60)
    assert not waiter.is_alive()
    assert len(got) == 1
    assert 50 <= got[0] <= 60
    assert tap.take(1000)[0].tolist() == list(range(60))
    # One old request and a chunk that will not fill: the oldest request's wait ends it.
    cache.get(7)
    cache._drain_native()
    waiter = threading.Thread(target=wait, args=(10_000, 0.05))
    waiter.start()
    waiter.join(60)
    assert not waiter.is_alive()
    assert got[-1] == 1
    # Nothing kept: only close() ends the wait; what was kept can still be taken.
    tap.take(10)
    waiter = threading.Thread(target=wait, args=(10, 3600.0))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()
    tap.close()
    waiter.join(60)
    assert not waiter.is_alive()
    assert got[-1] == 0
    assert tap.closed
    cache.get(1)
    cache._drain_native()
    assert tap.seen == 61  # a closed tap takes nothing more


def test_a_waiter_counts_only_the_requests_not_peeked_at():
    cache = _cache()
    tap = _core.DemandTap(1000)
    cache._core.attach_demand_tap(tap)
    for k in range(40):
        cache.get(k)
    cache._drain_native()
    assert tap.peek(1000)[0].tolist() == list(range(40))
    got: list[int] = []
    # 40 kept, all peeked at: a chunk of 30 is not there yet (no timer: an hour).
    waiter = threading.Thread(target=lambda: got.append(tap.wait(30, 3600.0)))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()
    for k in range(40, 75):
        cache.get(k)
    cache._drain_native()
    waiter.join(60)
    assert not waiter.is_alive()
    assert got == [75]  # it counts the kept ones, peeked at or not
    assert tap.peek(10)[0].tolist() == list(range(40, 50))
    keys, _ = tap.take(45)  # the peeked ones and five more leave together
    assert keys.tolist() == list(range(45))
    assert (tap.peeked, tap.pending) == (5, 30)
    assert tap.peek(1000)[0].tolist() == list(range(50, 75))
    assert tap.take(1000)[0].tolist() == list(range(45, 75))
    assert (tap.peeked, tap.pending, tap.taken) == (0, 0, 75)


def test_a_nudge_ends_a_wait_early_once():
    tap = _core.DemandTap(100)
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(tap.wait(50, 3600.0)))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # nothing kept, no timer: it would wait for good
    tap.nudge()
    waiter.join(60)
    assert not waiter.is_alive()
    assert got == [0]
    tap.nudge()  # with no one waiting: the next wait returns at once, and only that one
    assert tap.wait(50, 3600.0) == 0
    waiter = threading.Thread(target=lambda: got.append(tap.wait(50, 3600.0)))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()
    tap.close()
    waiter.join(60)
    assert got == [0, 0]


def test_detaching_stops_the_offers_and_bad_settings_are_refused():
    cache = _cache()
    tap = _core.DemandTap(10)
    cache._core.attach_demand_tap(tap)
    assert cache._core.demand_tap is tap
    cache.get(1)
    cache._drain_native()
    cache._core.attach_demand_tap(None)
    assert cache._core.demand_tap is None
    cache.get(2)
    cache._drain_native()
    assert tap.seen == 1
    for capacity in (0, 1 << 31):
        with pytest.raises(InvalidArgumentError, match="capacity"):
            _core.DemandTap(capacity)
    for wait in (-1.0, float("nan"), 1e9):
        with pytest.raises(InvalidArgumentError, match="max_wait_s"):
            tap.wait(1, wait)

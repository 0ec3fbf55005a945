"""Edge cases found in review: each test pins a behaviour that once was wrong."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import predis
from predis import InvalidArgumentError


def test_loader_miss_is_counted_and_logged_once():
    cache = predis.Cache(1 << 20, loader=lambda _key: b"v")
    assert cache.get(1) == b"v"
    s = cache.stats()
    assert (s.misses, s.hits, s.inserts) == (1, 0, 1)
    ops = cache.drain_events()["op"].tolist()
    assert ops == [predis.AccessOp.GET, predis.AccessOp.PUT]


def test_large_hits_then_misses_do_not_overreserve():
    # 256 hits of 64 KiB followed by many misses: the result is 16 MiB, and must not be
    # extrapolated from the first values into a reservation of the whole batch.
    cache = predis.Cache(64 << 20, max_value_size=1 << 16)
    big = bytes(1 << 16)
    cache.mput(list(range(256)), [big] * 256)
    offsets, data, found = cache.mget_arrays(np.arange(256 + 2_000_000, dtype=np.uint64))
    assert found[:256].all()
    assert not found[256:].any()
    assert len(data) == 256 << 16
    assert offsets[-1] == len(data)
    s = cache.stats()
    assert (s.hits, s.misses) == (256, 2_000_000)


def test_a_list_changed_by_another_thread_during_a_batch_is_safe():
    cache = predis.Cache(256 << 20, max_value_size=1 << 16)
    n = 400
    keys = [bytes([i % 251]) * 60_000 + i.to_bytes(4, "little") for i in range(n)]
    values = [i.to_bytes(4, "little") for i in range(n)]
    expected = dict(zip(keys, values, strict=True))
    mutate = keys  # the very list object the batch reads
    stop = threading.Event()

    def vandal() -> None:
        while not stop.is_set():
            mutate[:] = [b"z"] * n
            mutate[:] = list(expected)

    t = threading.Thread(target=vandal)
    t.start()
    try:
        for _ in range(5):
            cache.mput(mutate, values)
    finally:
        stop.set()
        t.join(timeout=30)
    assert not t.is_alive()
    # Every stored key is one the caller passed, with its own value.
    for k, v in expected.items():
        got = cache.get(k)
        assert got is None or got == v
    z = cache.get(b"z")
    assert z is None or z in values


def test_huge_ttl_saturates_instead_of_expiring_at_once():
    cache = predis.Cache(1 << 20, clock="manual")
    for _ in range(5):
        cache.advance_time(100 * 365 * 24 * 3600)
    cache.put(1, b"x", ttl=100 * 365 * 24 * 3600)
    assert cache.get(1) == b"x"
    assert cache.stats().expirations == 0


def test_manual_clock_refuses_to_wrap():
    cache = predis.Cache(1 << 20, clock="manual")
    century = 100 * 365 * 24 * 3600
    for _ in range(5):
        cache.advance_time(century)  # 5 centuries: 1.6e19 of the 1.8e19 ns the clock holds
    with pytest.raises(InvalidArgumentError, match="past 2\\*\\*64"):
        cache.advance_time(century)
    cache.put(1, b"x")
    assert cache.get(1) == b"x"


@pytest.mark.parametrize("dtype", [np.ulonglong, np.longlong, np.uint64, np.int64])
def test_equivalent_integer_dtypes_are_accepted(dtype):
    cache = predis.Cache(1 << 20)
    cache.put(2, b"two")
    assert cache.mget(np.array([1, 2], dtype=dtype)) == [None, b"two"]


def test_big_endian_keys_are_refused():
    cache = predis.Cache(1 << 20)
    with pytest.raises(InvalidArgumentError, match="dtype"):
        cache.mget(np.array([1, 2], dtype=">u8"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_value_size": 2**64}, "at most"),
        ({"max_items": 2**70}, "at most"),
        ({"access_log_capacity": 2**64}, "at most"),
    ],
)
def test_integers_beyond_uint64_are_predis_errors(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        predis.Cache(1 << 20, **kwargs)


def test_footprint_and_drain_bounds():
    cache = predis.Cache(1 << 20)
    with pytest.raises(InvalidArgumentError):
        cache.footprint(1, 2**64)
    assert len(cache.drain_events(2**62)) == 0


def test_bucket_table_costs_no_resident_memory_up_front():
    # A large cache's table is reserved address space until used.
    cache = predis.Cache(4 << 30, sample_rate=0.0)
    assert cache.stats().table_bytes > 1 << 30
    with open("/proc/self/status") as f:
        rss_kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    assert rss_kb < 1 << 20  # under 1 GiB resident

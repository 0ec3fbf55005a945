"""Unit tests of `predis.Cache` with exact expected values.

Every cache here uses ``clock="manual"`` unless the test is about the clock itself, so
time moves only through ``advance_time`` and no test sleeps or measures time.
"""

from __future__ import annotations

import numpy as np
import pytest

import predis
from predis import EVENT_DTYPE, AccessOp, KeyKind

MASK64 = (1 << 64) - 1


def fnv1a64(data: bytes) -> int:
    """64-bit FNV-1a: offset basis 0xcbf29ce484222325, prime 0x100000001b3."""
    h = 0xCBF29CE484222325
    for byte in data:
        h ^= byte
        h = (h * 0x100000001B3) & MASK64
    return h


def fmix64(k: int) -> int:
    """MurmurHash3's 64-bit finalizer."""
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & MASK64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & MASK64
    k ^= k >> 33
    return k


def key_hash(key: bytes | str) -> int:
    """The documented hash of a bytes/str key: fmix64(fnv1a64(UTF-8 bytes))."""
    raw = key.encode("utf-8") if isinstance(key, str) else key
    return fmix64(fnv1a64(raw))


def make(capacity: int = 1 << 20, **kwargs: object) -> predis.Cache:
    kwargs.setdefault("clock", "manual")
    return predis.Cache(capacity, **kwargs)  # type: ignore[arg-type]


# ---- the reference hash itself ----


def test_reference_hash_matches_published_vectors() -> None:
    # FNV-1a 64 test vectors from the FNV reference (isthe.com/chongo/tech/comp/fnv).
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8
    # fmix64 fixes 0 and is a bijection on a few spot values.
    assert fmix64(0) == 0
    assert len({fmix64(i) for i in range(1000)}) == 1000


# ---- single keys ----


def test_put_get_delete_contains_single_key() -> None:
    cache = make()
    assert cache.get(1) is None
    assert cache.get(1, b"dflt") == b"dflt"
    assert not cache.contains(1)
    cache.put(1, b"one")
    assert cache.get(1) == b"one"
    assert cache.contains(1)
    assert len(cache) == 1
    cache.put(1, b"uno")
    assert cache.get(1) == b"uno"
    assert len(cache) == 1
    assert cache.delete(1) is True
    assert cache.delete(1) is False
    assert cache.get(1) is None
    assert len(cache) == 0


def test_get_returns_bytes_for_any_bytes_like_value() -> None:
    cache = make()
    cache.put(1, bytearray(b"ba"))
    cache.put(2, memoryview(b"mv"))
    cache.put(3, np.array([1, 2, 3], dtype=np.uint8))
    cache.put(4, np.array([1, 2], dtype="<u4"))  # any C-contiguous buffer: its raw bytes
    cache.put(5, memoryview(b"xxabcxx")[2:5])  # a contiguous slice
    assert cache.get(1) == b"ba"
    assert cache.get(2) == b"mv"
    assert cache.get(3) == b"\x01\x02\x03"
    assert cache.get(4) == b"\x01\x00\x00\x00\x02\x00\x00\x00"
    assert cache.get(5) == b"abc"
    for k in range(1, 6):
        assert type(cache.get(k)) is bytes


def test_value_is_copied_at_put() -> None:
    cache = make()
    buf = bytearray(b"before")
    arr = np.zeros(4, dtype=np.uint8)
    cache.put(1, buf)
    cache.put(2, arr)
    buf[:] = b"after!"
    arr[:] = 7
    assert cache.get(1) == b"before"
    assert cache.get(2) == b"\x00\x00\x00\x00"


def test_dunder_protocol() -> None:
    cache = make()
    cache[b"k"] = b"v"
    assert b"k" in cache
    assert "k" in cache
    assert b"x" not in cache
    assert cache[b"k"] == b"v"
    assert len(cache) == 1
    with pytest.raises(KeyError) as missing:
        _ = cache[b"x"]
    assert missing.value.args == (b"x",)
    del cache[b"k"]
    assert b"k" not in cache
    with pytest.raises(KeyError) as gone:
        del cache[b"k"]
    assert gone.value.args == (b"k",)
    assert len(cache) == 0


def test_str_is_its_utf8_bytes() -> None:
    cache = make()
    cache.put("a", b"1")
    assert cache.get(b"a") == b"1"
    cache.put(b"a", b"2")
    assert cache.get("a") == b"2"
    assert len(cache) == 1
    s = cache.stats()
    assert (s.inserts, s.updates) == (1, 1)
    cache.put("ключ", b"3")
    assert cache.get("ключ".encode()) == b"3"
    cache.put("", b"empty")
    assert cache.get(b"") == b"empty"
    assert cache.delete(b"a") is True
    assert cache.get("a") is None
    assert cache.mcontains(["ключ", "ключ".encode(), "", b""]).tolist() == [True] * 4
    assert len(cache) == 2


def test_int_keys_never_alias_bytes_keys() -> None:
    cache = make()
    cache.put(97, b"int")
    cache.put(b"a", b"bytes")
    cache.put(0, b"zero")
    cache.put(b"", b"empty")
    cache.put(b"\x00", b"nul")
    assert cache.get(97) == b"int"
    assert cache.get(b"a") == b"bytes"
    assert cache.get(0) == b"zero"
    assert cache.get(b"") == b"empty"
    assert cache.get(b"\x00") == b"nul"
    assert len(cache) == 5


def test_bytes_keys_with_equal_prefix_or_length_are_distinct() -> None:
    cache = make()
    keys = [b"k", b"k\x00", b"k\x00\x00", b"K", b"\x00k", b"kk"]
    for i, k in enumerate(keys):
        cache.put(k, bytes([i]))
    for i, k in enumerate(keys):
        assert cache.get(k) == bytes([i])
    assert len(cache) == len(keys)


def test_int_keys_at_the_ends_of_the_range() -> None:
    cache = make()
    top = 2**64 - 1
    cache.put(0, b"lo")
    cache.put(top, b"hi")
    cache.put(2**63, b"mid")
    assert cache.get(0) == b"lo"
    assert cache.get(top) == b"hi"
    assert cache.get(2**63) == b"mid"
    assert cache.mget(np.array([0, top, 2**63, 5], dtype=np.uint64)) == [b"lo", b"hi", b"mid", None]
    assert cache.mget(np.array([0, 2**63 - 1], dtype=np.int64)) == [b"lo", None]
    assert cache.mdelete(np.array([top], dtype=np.uint64)).tolist() == [True]
    assert cache.get(top) is None
    assert len(cache) == 2


def test_numpy_integer_scalars_are_int_keys() -> None:
    cache = make()
    cache.put(np.uint64(3), b"three")
    cache.put(np.int32(4), b"four")
    cache.put(np.uint64(2**64 - 1), b"top")
    assert cache.get(3) == b"three"
    assert cache.get(np.int64(3)) == b"three"
    assert cache.get(np.uint8(4)) == b"four"
    assert cache.get(2**64 - 1) == b"top"
    assert np.uint16(4) in cache
    assert cache.mget([np.uint64(3), 4, np.int16(5)]) == [b"three", b"four", None]
    cache.put(3, b"again")  # the same key
    assert len(cache) == 3
    assert cache.stats().updates == 1
    assert cache.delete(np.uint32(4)) is True
    events = cache.drain_events()
    assert events["key"].tolist()[:3] == [3, 4, 2**64 - 1]
    assert (events["key_kind"] == KeyKind.INT).all()


def test_longest_key_is_accepted() -> None:
    cache = make()
    key = b"k" * 65535
    assert cache.get(key) is None
    cache.put(key, b"v")
    assert cache.get(key) == b"v"
    assert cache.get(key[:-1]) is None
    assert cache.delete(key) is True


def test_values_of_varied_lengths_up_to_max_value_size() -> None:
    cache = make(1 << 20, max_value_size=4096)
    lengths = [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 255, 256, 1000, 4095, 4096]
    for n in lengths:
        value = bytes((n + i) % 251 for i in range(n))
        cache.put(n, value)  # int key: the short ones are stored inline
        cache.put(f"s{n}", value)  # bytes key: always a record
    for n in lengths:
        value = bytes((n + i) % 251 for i in range(n))
        assert cache.get(n) == value
        assert cache.get(f"s{n}") == value
    assert len(cache) == 2 * len(lengths)


def test_zero_length_values() -> None:
    cache = make()
    cache.put(1, b"")
    cache.put(b"e", bytearray())
    cache.mput([2, 3], np.zeros((2, 0), dtype=np.uint8))
    assert cache.get(1) == b""
    assert cache.get(b"e") == b""
    assert cache.get(2) == b""
    assert cache.get(3) == b""
    assert cache.get(1, b"default") == b""  # an empty value is a hit, not a miss
    assert cache.mget([1, b"e", 4]) == [b"", b"", None]
    offsets, data, found = cache.mget_arrays([1, 4, 2])
    assert offsets.tolist() == [0, 0, 0, 0]
    assert data.size == 0
    assert found.tolist() == [True, False, True]
    assert cache.stats().hits == 9


def test_bytes_used_is_the_sum_of_footprints() -> None:
    cache = make()
    entries = {
        1: b"",
        2: b"12345678",
        3: b"123456789",
        b"k": b"",
        "key": b"x" * 100,
        2**64 - 1: b"z" * 1000,
    }
    for k, v in entries.items():
        cache.put(k, v)
    expected = sum(cache.footprint(k, len(v)) for k, v in entries.items())
    assert cache.stats().bytes_used == expected
    assert cache.footprint(1, 0) == cache.footprint(1, 8) == 16  # inline int-key values
    assert cache.footprint(b"", 0) >= 16
    cache.delete(3)
    expected -= cache.footprint(3, 9)
    assert cache.stats().bytes_used == expected
    cache.put(2, b"x" * 100)  # a bigger value for an existing key
    expected += cache.footprint(2, 100) - cache.footprint(2, 8)
    assert cache.stats().bytes_used == expected


def test_properties_and_repr() -> None:
    cache = predis.Cache(1 << 16, max_items=100, policy="lfu", backend="cpu")
    assert cache.capacity_bytes == 1 << 16
    assert cache.max_items == 100
    assert cache.policy == "lfu"
    assert cache.backend == "cpu"
    assert cache.default_ttl is None
    assert cache.sample_rate == 1.0
    cache.sample_rate = 0.25
    assert cache.sample_rate == 0.25
    cache.put(1, b"abc")
    text = repr(cache)
    assert text.startswith("Cache(")
    assert "backend='cpu'" in text
    assert "policy='lfu'" in text
    assert "items=1" in text
    assert f"capacity_bytes={1 << 16}" in text


@pytest.mark.skipif(
    bool(predis.cuda_devices()["devices"]),
    reason="a usable CUDA device is present: auto picks it (tests/gpu checks that)",
)
def test_auto_backend_is_cpu() -> None:
    assert predis.Cache(4096).backend == "cpu"


def test_default_max_items_is_capacity_over_128() -> None:
    assert predis.Cache(1 << 20).max_items == (1 << 20) // 128


def test_explicit_max_items_is_the_limit() -> None:
    """max_items is documented as "the most entries kept"; an explicit value is honoured."""
    cache = make(1 << 20, max_items=4)
    assert cache.max_items == 4
    for k in range(10):
        cache.put(k, b"v")
    assert len(cache) == 4
    assert cache.stats().evictions == 6


# ---- TTL ----


def test_ttl_expires_exactly_at_the_deadline() -> None:
    cache = make()
    cache.put(1, b"v", ttl=1)
    cache.advance_time(0.999999)
    assert cache.get(1) == b"v"
    assert cache.contains(1)
    cache.advance_time(0.000001)  # now exactly 1 s after the put: the deadline
    assert cache.get(1) is None
    assert not cache.contains(1)
    assert len(cache) == 0


def test_ttl_gone_after_advancing_past_it() -> None:
    cache = make()
    cache.put(b"k", b"v", ttl=1)
    cache.advance_time(1.5)
    assert cache.get(b"k") is None
    assert b"k" not in cache


def test_default_ttl_and_per_key_override() -> None:
    cache = make(ttl=10)
    assert cache.default_ttl == 10
    cache.put(1, b"default")
    cache.put(2, b"short", ttl=1)
    cache.put(3, b"long", ttl=100)
    cache.mput([4, 5], [b"a", b"b"])  # the default, too
    cache.mput([6], [b"c"], ttl=2)
    cache.advance_time(1)
    assert cache.mget([1, 2, 3, 4, 5, 6]) == [b"default", None, b"long", b"a", b"b", b"c"]
    cache.advance_time(1)
    assert cache.mget([1, 3, 4, 5, 6]) == [b"default", b"long", b"a", b"b", None]
    cache.advance_time(7.999999)
    assert cache.mget([1, 3, 4, 5]) == [b"default", b"long", b"a", b"b"]
    cache.advance_time(0.000001)
    assert cache.mget([1, 3, 4, 5]) == [None, b"long", None, None]
    cache.advance_time(90)
    assert cache.get(3) is None
    assert len(cache) == 0


def test_no_ttl_never_expires() -> None:
    cache = make()
    cache.put(1, b"forever")
    cache.advance_time(1e9)  # ~31 years
    cache.advance_time(1e9)
    assert cache.get(1) == b"forever"
    assert cache.stats().expirations == 0


def test_put_resets_the_deadline_and_can_clear_it() -> None:
    cache = make()
    cache.put(1, b"a", ttl=1)
    cache.put(2, b"b", ttl=1)
    cache.advance_time(0.5)
    cache.put(1, b"a2", ttl=1)  # new deadline: 1.5 s
    cache.put(2, b"b2")  # no ttl: never expires
    cache.advance_time(0.9)  # t = 1.4
    assert cache.get(1) == b"a2"
    assert cache.get(2) == b"b2"
    cache.advance_time(0.1)  # t = 1.5
    assert cache.get(1) is None
    cache.advance_time(100)
    assert cache.get(2) == b"b2"


def test_expirations_are_counted() -> None:
    cache = make()
    for k in range(1, 6):
        cache.put(k, b"v", ttl=1)
    cache.advance_time(2)
    assert len(cache) == 5  # expired entries leave lazily
    assert cache.get(1) is None  # a get of an expired entry: a miss and an expiration
    assert cache.contains(2) is False  # contains: an expiration, not a miss
    assert cache.delete(3) is False  # delete of an expired entry: not a delete
    cache.put(4, b"new")  # put over an expired entry: an insert, not an update
    s = cache.stats()
    assert s.expirations == 4
    assert s.misses == 1
    assert s.hits == 0
    assert s.deletes == 0
    assert s.inserts == 6
    assert s.updates == 0
    assert s.items == 2  # 4 (live) and 5 (expired, not yet collected)
    assert s.inserts - s.deletes - s.evictions - s.expirations == s.items
    assert cache.mget([4, 5]) == [b"new", None]
    assert cache.stats().expirations == 5
    assert len(cache) == 1


# ---- counters ----


def test_counters_after_a_known_sequence() -> None:
    cache = make()
    s = cache.stats()
    assert (s.hits, s.misses, s.inserts, s.updates, s.deletes, s.evictions, s.expirations) == (
        0,
    ) * 7
    assert s.hit_ratio == 0.0
    cache.put(1, b"a")  # insert
    cache.put(2, b"b")  # insert
    cache.put(1, b"c")  # update
    assert cache.get(1) == b"c"  # hit
    assert cache.get(3) is None  # miss
    assert cache.get(2) == b"b"  # hit
    assert cache.delete(2) is True  # delete
    assert cache.delete(2) is False  # nothing
    assert cache.mget([1, 2, 3]) == [b"c", None, None]  # 1 hit, 2 misses
    assert cache.contains(1)  # not an access
    assert cache.mcontains([1, 2]).tolist() == [True, False]  # not accesses
    cache.mput([4, 5], [b"d", b"e"])  # 2 inserts
    cache.mput([5], [b"f"])  # update
    assert cache.mdelete([4, 6]).tolist() == [True, False]  # 1 delete
    s = cache.stats()
    assert s.hits == 3
    assert s.misses == 3
    assert s.inserts == 4
    assert s.updates == 2
    assert s.deletes == 2
    assert s.evictions == 0
    assert s.expirations == 0
    assert s.items == 2
    assert s.hit_ratio == 0.5
    assert len(cache) == 2
    assert s.capacity_bytes == 1 << 20
    assert s.bytes_used == cache.footprint(1, 1) + cache.footprint(5, 1)


# ---- eviction ----


def test_tiny_capacity_keeps_bytes_used_within_capacity() -> None:
    cache = make(1024)
    fp = cache.footprint(0, 100)
    assert fp == 120
    per_cache = 1024 // fp  # 8
    for k in range(100):
        cache.put(k, bytes([k]) * 100)
        s = cache.stats()
        assert s.bytes_used <= 1024
        assert s.items == min(k + 1, per_cache)
        assert cache.get(k) == bytes([k]) * 100  # the newest entry is never the one evicted
    s = cache.stats()
    assert s.items == per_cache
    assert s.bytes_used == per_cache * fp
    assert s.evictions == 100 - per_cache
    assert s.inserts == 100
    # Whatever survived is intact.
    survivors = [k for k in range(100) if k in cache]
    assert len(survivors) == per_cache
    for k in survivors:
        assert cache.get(k) == bytes([k]) * 100


def test_max_items_limit_under_many_small_values() -> None:
    cache = make(1 << 20, max_items=16)
    for k in range(200):
        cache.put(k, b"v")
        assert len(cache) <= 16
    s = cache.stats()
    assert s.items == 16
    assert s.evictions == 200 - 16


def test_one_entry_as_large_as_the_capacity_allows() -> None:
    cache = make(1024, max_value_size=900)
    cache.put(1, b"x" * 100)
    assert cache.footprint(1, 100) + cache.footprint(2, 900) > 1024
    cache.put(2, b"y" * 900)  # needs nearly all of the capacity: everything else goes
    assert cache.get(2) == b"y" * 900
    assert cache.get(1) is None
    s = cache.stats()
    assert s.items == 1
    assert s.bytes_used <= 1024


@pytest.mark.parametrize("policy", ["lru", "lfu"])
def test_hot_key_survives_when_read_between_inserts(policy: str) -> None:
    # 16 items in a table this small: every eviction samples every bucket, so the policy
    # is exact and the outcome certain.
    cache = make(1 << 20, max_items=16, policy=policy)
    cache.put(b"hot", b"H")
    for k in range(100):
        cache.put(k, b"cold")
        assert cache.get(b"hot") == b"H"
    assert b"hot" in cache
    assert len(cache) == 16
    s = cache.stats()
    assert s.evictions == 101 - 16
    if policy == "lru":
        # Least recently used first: the newest 15 cold keys are what is left beside it.
        assert [k for k in range(100) if k in cache] == list(range(85, 100))


def test_lru_evicts_an_unread_first_key() -> None:
    cache = make(1 << 20, max_items=16, policy="lru")
    cache.put(b"first", b"F")
    for k in range(100):
        cache.put(k, b"cold")
    assert b"first" not in cache
    assert [k for k in range(100) if k in cache] == list(range(84, 100))


def test_lru_keeps_a_key_read_recently_even_if_read_once() -> None:
    cache = make(1 << 20, max_items=16, policy="lru")
    for k in range(16):
        cache.put(k, b"v")
    assert cache.get(0) == b"v"  # 0 is now the most recently used
    cache.put(100, b"v")  # evicts the least recently used: 1
    assert 0 in cache
    assert 1 not in cache
    assert len(cache) == 16


def test_lfu_keeps_a_frequently_read_key_that_lru_would_evict() -> None:
    lfu = make(1 << 20, max_items=16, policy="lfu")
    lru = make(1 << 20, max_items=16, policy="lru")
    for cache in (lfu, lru):
        cache.put(b"hot", b"H")
        for _ in range(3):
            assert cache.get(b"hot") == b"H"
        for k in range(100):  # the hot key is never read again
            cache.put(k, b"cold")
    assert b"hot" in lfu
    assert b"hot" not in lru
    # Among equally frequent entries LFU evicts the oldest first.
    assert [k for k in range(100) if k in lfu] == list(range(85, 100))


def test_lfu_frequency_beats_recency() -> None:
    cache = make(1 << 20, max_items=16, policy="lfu")
    for k in range(16):
        cache.put(k, b"v")
    for k in range(1, 16):
        assert cache.get(k) == b"v"  # every key but 0 has two accesses
    cache.put(100, b"v")  # evicts 0, the least frequently used
    assert 0 not in cache
    assert all(k in cache for k in range(1, 16))
    assert 100 in cache


def test_lru_put_over_an_existing_key_counts_as_a_use() -> None:
    cache = make(1 << 20, max_items=16, policy="lru")
    for k in range(16):
        cache.put(k, b"v")
    cache.put(0, b"v2")  # an update: 0 becomes the most recently used
    cache.put(100, b"v")
    assert cache.get(0) == b"v2"
    assert 1 not in cache


@pytest.mark.parametrize("policy", ["lru", "lfu"])
def test_contains_is_not_an_access(policy: str) -> None:
    cache = make(1 << 20, max_items=16, policy=policy)
    for k in range(16):
        cache.put(k, b"v")
    assert cache.contains(0)
    assert 0 in cache
    assert cache.mcontains([0, 0, 0]).tolist() == [True] * 3
    cache.put(100, b"v")  # 0 is still the least recently / frequently used
    assert 0 not in cache
    assert all(k in cache for k in range(1, 16))
    s = cache.stats()
    assert (s.hits, s.misses) == (0, 0)


def test_growing_a_value_under_pressure_keeps_that_key() -> None:
    cache = make(1024)
    for k in range(8):
        cache.put(k, bytes([k]) * 100)  # 8 x 120 bytes
    assert len(cache) == 8
    cache.put(0, b"G" * 400)  # 0 is the oldest entry, but the one being written
    assert cache.get(0) == b"G" * 400
    s = cache.stats()
    assert s.bytes_used <= 1024
    assert s.items == 1 + (1024 - cache.footprint(0, 400)) // 120
    assert s.evictions == 8 - s.items
    assert s.updates == 1


def test_inline_and_record_values_switch_on_update() -> None:
    # Int keys with values of at most 8 bytes are stored inline; longer ones in a record.
    cache = make()
    for value in [
        b"",
        b"\x00",
        b"\x00" * 8,
        b"\xff" * 8,
        b"\x00" * 9,
        b"abc",
        b"x" * 300,
        b"\x00\x01",
    ]:
        cache.put(1, value)
        assert cache.get(1) == value
        assert cache.mget([1]) == [value]
        assert cache.stats().bytes_used == cache.footprint(1, len(value))
    assert len(cache) == 1


# ---- batches ----


def test_mget_arrays_layout() -> None:
    cache = make()
    cache.put(1, b"ab")
    cache.put(3, b"cde")
    cache.put(b"k", b"")
    cache.put(4, b"0123456789")
    offsets, data, found = cache.mget_arrays([1, 2, 3, b"k", 4, 3])
    assert offsets.dtype == np.int64
    assert data.dtype == np.uint8
    assert found.dtype == np.bool_
    assert offsets.tolist() == [0, 2, 2, 5, 5, 15, 18]
    assert data.tobytes() == b"abcde0123456789cde"  # pragma: allowlist secret
    assert found.tolist() == [True, False, True, True, True, True]
    # With a uint64 array of keys.
    offsets, data, found = cache.mget_arrays(np.array([4, 9, 1], dtype=np.uint64))
    assert offsets.tolist() == [0, 10, 10, 12]
    assert data.tobytes() == b"0123456789ab"
    assert found.tolist() == [True, False, True]
    # Empty.
    offsets, data, found = cache.mget_arrays([])
    assert offsets.tolist() == [0]
    assert data.shape == (0,)
    assert found.shape == (0,)


def test_mget_arrays_does_not_call_the_loader() -> None:
    calls: list[object] = []
    cache = make(loader=lambda k: calls.append(k) or b"loaded")
    offsets, data, found = cache.mget_arrays([1])
    assert found.tolist() == [False]
    assert offsets.tolist() == [0, 0]
    assert data.size == 0
    assert calls == []


def test_get_into_pads_with_zeros_and_reports_found() -> None:
    cache = make()
    cache.put(1, b"ab")
    cache.put(3, b"cdef")
    cache.put(b"k", b"")
    out = np.full((4, 4), 0xAA, dtype=np.uint8)
    found = cache.get_into([1, 2, 3, b"k"], out)
    assert found.dtype == np.bool_
    assert found.tolist() == [True, False, True, True]
    assert out.tolist() == [
        [ord("a"), ord("b"), 0, 0],
        [0, 0, 0, 0],
        [ord("c"), ord("d"), ord("e"), ord("f")],
        [0, 0, 0, 0],
    ]
    out2 = np.full((2, 6), 0xFF, dtype=np.uint8)
    found2 = cache.get_into(np.array([3, 7], dtype=np.uint64), out2)
    assert found2.tolist() == [True, False]
    assert out2.tobytes() == b"cdef\x00\x00" + bytes(6)
    assert cache.stats().hits == 4
    assert cache.stats().misses == 2


def test_get_into_with_zero_rows() -> None:
    cache = make()
    out = np.zeros((0, 8), dtype=np.uint8)
    found = cache.get_into([], out)
    assert found.shape == (0,)


def test_mput_with_a_2d_array() -> None:
    cache = make()
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    cache.mput([1, b"two", "three"], arr)
    assert cache.get(1) == bytes([0, 1, 2, 3])
    assert cache.get(b"two") == bytes([4, 5, 6, 7])
    assert cache.get(b"three") == bytes([8, 9, 10, 11])
    arr[:] = 0  # the cache holds copies
    assert cache.get(1) == bytes([0, 1, 2, 3])
    wide = np.full((2, 300), 7, dtype=np.uint8)
    cache.mput(np.array([10, 11], dtype=np.uint64), wide, ttl=5)
    assert cache.mget([10, 11]) == [bytes([7]) * 300] * 2
    cache.advance_time(5)
    assert cache.mget([10, 11]) == [None, None]


def test_mput_with_duplicate_keys_keeps_the_last() -> None:
    cache = make()
    cache.mput([1, 1, b"a", "a"], [b"first", b"second", b"x", b"y"])
    assert cache.get(1) == b"second"
    assert cache.get(b"a") == b"y"
    assert len(cache) == 2
    s = cache.stats()
    assert (s.inserts, s.updates) == (2, 2)


def test_mput_accepts_mixed_bytes_like_values() -> None:
    cache = make()
    cache.mput(
        [1, 2, 3, 4],
        [b"b", bytearray(b"ba"), memoryview(b"mvw"), np.array([9, 8], dtype=np.uint8)],
    )
    assert cache.mget([1, 2, 3, 4]) == [b"b", b"ba", b"mvw", b"\x09\x08"]
    cache.mput((5, 6), (b"t1", b"t2"))  # tuples are sequences too
    assert cache.mget((5, 6)) == [b"t1", b"t2"]


def test_mdelete_and_mcontains_return_bool_arrays() -> None:
    # The CPU backend: its rule for a key repeated in one batch is checked below (the first
    # delete reports True); the GPU applies a batch's keys concurrently (docs/api.md).
    cache = make(backend="cpu")
    cache.mput([1, 2, b"x"], [b"a", b"b", b"c"])
    present = cache.mcontains([1, 3, b"x", "x", 2])
    assert present.dtype == np.bool_
    assert present.shape == (5,)
    assert present.tolist() == [True, False, True, True, True]
    removed = cache.mdelete([1, 3, "x", b"x", 1])
    assert removed.dtype == np.bool_
    assert removed.tolist() == [True, False, True, False, False]
    assert cache.mcontains(np.array([1, 2], dtype=np.uint64)).tolist() == [False, True]
    assert cache.mdelete(np.array([2], dtype=np.int64)).tolist() == [True]
    assert cache.mdelete([]).shape == (0,)
    assert cache.mcontains([]).shape == (0,)
    assert len(cache) == 0
    assert cache.stats().deletes == 3


def test_empty_batches() -> None:
    cache = make()
    assert cache.mget([]) == []
    assert cache.mget(np.array([], dtype=np.uint64)) == []
    cache.mput([], [])
    cache.mput([], np.zeros((0, 3), dtype=np.uint8))
    s = cache.stats()
    assert (s.hits, s.misses, s.inserts, s.items) == (0, 0, 0, 0)


def test_clear() -> None:
    cache = make()
    cache.mput(list(range(10)), [b"v"] * 10)
    cache.put(b"k", b"x" * 100)
    assert cache.get(1) == b"v"
    cache.clear()
    assert len(cache) == 0
    s = cache.stats()
    assert s.items == 0
    assert s.bytes_used == 0
    assert s.inserts == 11  # counters are kept
    assert s.hits == 1
    assert s.evictions == 0
    assert s.deletes == 0
    assert cache.get(1) is None
    assert b"k" not in cache
    cache.put(1, b"again")
    assert cache.get(1) == b"again"
    assert cache.stats().inserts == 12
    cache.clear()
    cache.clear()  # clearing an empty cache is fine
    assert len(cache) == 0


# ---- access log ----


def test_access_events_for_each_op() -> None:
    cache = make()
    cache.put(5, b"abc")
    cache.put(5, b"abcd")
    assert cache.get(5) == b"abcd"
    assert cache.get(7) is None
    assert cache.delete(5) is True
    assert cache.delete(5) is False
    assert cache.contains(5) is False  # contains is not logged
    events = cache.drain_events()
    assert events.dtype == EVENT_DTYPE
    assert events["key"].tolist() == [5, 5, 5, 7, 5, 5]
    assert events["op"].tolist() == [
        AccessOp.PUT,
        AccessOp.PUT,
        AccessOp.GET,
        AccessOp.GET,
        AccessOp.DELETE,
        AccessOp.DELETE,
    ]
    assert events["hit"].tolist() == [0, 1, 1, 0, 1, 0]
    assert events["value_size"].tolist() == [3, 4, 4, 0, 0, 0]
    assert events["key_kind"].tolist() == [KeyKind.INT] * 6
    assert events["timestamp_ns"].tolist() == [events["timestamp_ns"][0]] * 6
    assert events["reserved"].tolist() == [0] * 6
    assert cache.drain_events().size == 0
    s = cache.stats()
    assert s.events_logged == 6
    assert s.events_dropped == 0
    assert s.events_pending == 0


def test_access_events_hash_bytes_and_str_keys() -> None:
    cache = make()
    keys = [b"user:1", "user:1", "ключ", b"", b"\x00\xff", 2**64 - 1]
    for k in keys:
        cache.get(k)
    events = cache.drain_events()
    expected = [
        key_hash(b"user:1"),
        key_hash(b"user:1"),
        key_hash("ключ"),
        key_hash(b""),
        key_hash(b"\x00\xff"),
        2**64 - 1,
    ]
    assert events["key"].tolist() == expected
    assert events["key_kind"].tolist() == [KeyKind.BYTES] * 5 + [KeyKind.INT]
    assert key_hash(b"") == fmix64(0xCBF29CE484222325)


def test_access_event_timestamps_follow_the_manual_clock() -> None:
    cache = make()
    cache.get(1)
    cache.advance_time(1)
    cache.get(2)
    cache.advance_time(0.5)
    cache.put(3, b"x")
    ts = cache.drain_events()["timestamp_ns"].tolist()
    assert ts[1] - ts[0] == 1_000_000_000
    assert ts[2] - ts[1] == 500_000_000


def test_batch_ops_log_one_event_per_key_in_order() -> None:
    cache = make()
    cache.mput([1, b"b", 3], [b"x", b"yy", b"zzz"])
    cache.mget([3, 4])
    cache.mget_arrays([b"b"])
    cache.get_into([1, 9], np.zeros((2, 8), dtype=np.uint8))
    cache.mdelete(np.array([1, 5], dtype=np.uint64))
    cache.mcontains([1, 2, 3])  # not logged
    e = cache.drain_events()
    hb = key_hash(b"b")
    assert e["key"].tolist() == [1, hb, 3, 3, 4, hb, 1, 9, 1, 5]
    assert e["op"].tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 2, 2]
    assert e["hit"].tolist() == [0, 0, 0, 1, 0, 1, 1, 0, 1, 0]
    assert e["value_size"].tolist() == [1, 2, 3, 3, 0, 2, 1, 0, 0, 0]


def test_sample_rate_zero_logs_nothing() -> None:
    cache = make(sample_rate=0.0)
    assert cache.sample_rate == 0.0
    for k in range(100):
        cache.put(k, b"v")
        cache.get(k)
    cache.mget(list(range(50)))
    s = cache.stats()
    assert (s.events_logged, s.events_dropped, s.events_pending) == (0, 0, 0)
    assert cache.drain_events().size == 0
    cache.sample_rate = 1.0
    cache.get(1)
    events = cache.drain_events()
    assert events["key"].tolist() == [1]


def test_full_ring_drops_and_counts() -> None:
    cache = make(access_log_capacity=8)
    s = cache.stats()
    assert s.log_capacity == 8
    for k in range(20):
        cache.get(k)
    s = cache.stats()
    assert s.events_logged == 8
    assert s.events_dropped == 12
    assert s.events_logged + s.events_dropped == 20
    assert s.events_pending == 8
    first = cache.drain_events(3)
    assert first["key"].tolist() == [0, 1, 2]
    assert cache.stats().events_pending == 5
    rest = cache.drain_events()
    assert rest["key"].tolist() == [3, 4, 5, 6, 7]
    assert cache.drain_events().size == 0
    assert cache.drain_events(0).size == 0
    # Room again: a batch fills the ring and the overflow is dropped.
    cache.mget(list(range(100, 110)))
    s = cache.stats()
    assert s.events_logged == 16
    assert s.events_dropped == 14
    assert cache.drain_events()["key"].tolist() == list(range(100, 108))


def test_access_log_capacity_rounds_up_to_a_power_of_two() -> None:
    assert make(access_log_capacity=5).stats().log_capacity == 8
    assert make(access_log_capacity=2).stats().log_capacity == 2
    assert make().stats().log_capacity == 1 << 16


def test_build_info_has_the_documented_keys() -> None:
    info = predis.build_info()
    for key in (
        "version",
        "compiler",
        "cxx_standard",
        "backends",
        "cuda",
        "cuda_version",
        "sanitizers",
        "debug",
        "slots_per_bucket",
        "bucket_bytes",
        "false_sharing_range",
    ):
        assert key in info, key
    assert info["version"] == predis.__version__
    assert isinstance(info["compiler"], str)
    assert info["compiler"]
    assert info["cxx_standard"] >= 201703
    assert "cpu" in info["backends"]
    assert isinstance(info["cuda"], bool)
    assert (info["cuda_version"] is None) == (not info["cuda"])
    assert isinstance(info["sanitizers"], tuple)
    assert isinstance(info["debug"], bool)
    assert info["slots_per_bucket"] == 16
    assert info["bucket_bytes"] == 64 + 16 * 32
    assert info["false_sharing_range"] in (64, 128, 256)
    assert predis.build_info() is not predis.build_info()  # a fresh dict each time


def test_cuda_devices_reports_devices_or_a_reason() -> None:
    info = predis.cuda_devices()
    assert isinstance(info["devices"], list)
    if not info["devices"]:
        assert isinstance(info["error"], str)
        assert info["error"]

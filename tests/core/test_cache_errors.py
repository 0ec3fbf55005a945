"""Every validation path of `predis.Cache`.

Each test checks the exception class, that it is a `predis.PredisError`, that its message
names the problem, and (for calls on an existing cache) that the cache is unchanged: the
same keys with the same values, and the same items, bytes_used and write counters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import predis
from predis import (
    InvalidArgumentError,
    InvalidKeyError,
    InvalidValueError,
    PredisError,
    ValueTooLargeError,
)

# The keys a test cache holds (and a few it does not), for snapshots.
SEEDED = {1: b"one", 2: b"two" * 10, b"k": b"kv", "s": b"sv", 2**64 - 1: b"top", 3: b""}
PROBE_KEYS = [*SEEDED, 4, b"missing", 0]


@pytest.fixture
def cache() -> predis.Cache:
    c = predis.Cache(1 << 16, clock="manual", max_value_size=1000)
    for k, v in SEEDED.items():
        c.put(k, v)
    return c


def snapshot(cache: predis.Cache) -> tuple[Any, ...]:
    """Contents and the counters an error must not move (reads here count hits: not compared)."""
    offsets, data, found = cache.mget_arrays(PROBE_KEYS)
    s = cache.stats()
    return (
        offsets.tolist(),
        data.tobytes(),
        found.tolist(),
        len(cache),
        s.items,
        s.bytes_used,
        s.inserts,
        s.updates,
        s.deletes,
        s.evictions,
        s.expirations,
    )


@contextmanager
def unchanged(cache: predis.Cache) -> Iterator[None]:
    before = snapshot(cache)
    yield
    assert snapshot(cache) == before


def check(
    cache: predis.Cache,
    exc: type[PredisError],
    match: str,
    fn: Callable[..., object],
    *args: object,
    **kwargs: object,
) -> PredisError:
    """fn(*args) raises exc (a PredisError) matching `match`, and leaves `cache` unchanged."""
    with unchanged(cache), pytest.raises(exc, match=match) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, PredisError)
    # Still usable afterwards.
    assert cache.get(1) == b"one"
    return info.value


# ---- the exception hierarchy ----


def test_exception_hierarchy() -> None:
    assert issubclass(InvalidKeyError, TypeError)
    assert issubclass(InvalidValueError, TypeError)
    assert issubclass(ValueTooLargeError, ValueError)
    assert issubclass(InvalidArgumentError, ValueError)
    for cls in (
        InvalidKeyError,
        InvalidValueError,
        ValueTooLargeError,
        InvalidArgumentError,
        predis.LoaderError,
        predis.BackendUnavailable,
        predis.OutOfMemoryError,
    ):
        assert issubclass(cls, PredisError)
    assert issubclass(predis.OutOfMemoryError, MemoryError)


# ---- keys ----

BAD_KEYS = [
    pytest.param(1.5, "not float", id="float"),
    pytest.param(np.float64(1.0), "not numpy.float64", id="np-float"),
    pytest.param(None, "not NoneType", id="None"),
    pytest.param(True, "not bool", id="True"),
    pytest.param(False, "not bool", id="False"),
    pytest.param((1,), "not tuple", id="tuple"),
    pytest.param(bytearray(b"k"), "not bytearray", id="bytearray"),
    pytest.param(memoryview(b"k"), "not memoryview", id="memoryview"),
    pytest.param([1], "not list", id="list"),
    pytest.param(-1, r"int keys must be in \[0, 2\*\*64 - 1\], got -1", id="negative"),
    pytest.param(-(2**70), r"int keys must be in \[0, 2\*\*64 - 1\]", id="very-negative"),
    pytest.param(
        2**64, r"int keys must be in \[0, 2\*\*64 - 1\], got 18446744073709551616", id="2**64"
    ),
    pytest.param(2**100, r"int keys must be in \[0, 2\*\*64 - 1\]", id="2**100"),
    pytest.param(np.int64(-1), r"int keys must be in \[0, 2\*\*64 - 1\], got -1", id="np-negative"),
    pytest.param(np.bool_(True), "not numpy.bool", id="np-bool"),
    pytest.param(b"k" * 65536, "key of 65536 bytes exceeds the 65535-byte limit", id="long-bytes"),
    pytest.param("k" * 65536, "key of 65536 bytes exceeds the 65535-byte limit", id="long-str"),
    pytest.param("ж" * 32768, "key of 65536 bytes exceeds the 65535-byte limit", id="long-utf8"),
    pytest.param("\ud800", "cannot be encoded as UTF-8", id="lone-surrogate"),
]

KEY_OPS: list[Any] = [
    pytest.param(lambda c, k: c.get(k), id="get"),
    pytest.param(lambda c, k: c.put(k, b"v"), id="put"),
    pytest.param(lambda c, k: c.delete(k), id="delete"),
    pytest.param(lambda c, k: c.contains(k), id="contains"),
    pytest.param(lambda c, k: k in c, id="in"),
    pytest.param(lambda c, k: c[k], id="getitem"),
    pytest.param(lambda c, k: c.__setitem__(k, b"v"), id="setitem"),
    pytest.param(lambda c, k: c.__delitem__(k), id="delitem"),
    pytest.param(lambda c, k: c.mget([k]), id="mget"),
    pytest.param(lambda c, k: c.mput([k], [b"v"]), id="mput"),
    pytest.param(lambda c, k: c.mput([k], np.zeros((1, 2), np.uint8)), id="mput-array"),
    pytest.param(lambda c, k: c.mdelete([k]), id="mdelete"),
    pytest.param(lambda c, k: c.mcontains([k]), id="mcontains"),
    pytest.param(lambda c, k: c.mget_arrays([k]), id="mget_arrays"),
    pytest.param(lambda c, k: c.get_into([k], np.zeros((1, 8), np.uint8)), id="get_into"),
    pytest.param(lambda c, k: c.footprint(k, 1), id="footprint"),
]


@pytest.mark.parametrize(("key", "match"), BAD_KEYS)
@pytest.mark.parametrize("op", KEY_OPS)
def test_bad_keys(cache: predis.Cache, op: Callable[..., object], key: object, match: str) -> None:
    check(cache, InvalidKeyError, match, op, cache, key)


BATCH_OPS_WITH_BAD_MIDDLE: list[Any] = [
    pytest.param(lambda c, ks: c.mget(ks), id="mget"),
    pytest.param(lambda c, ks: c.mput(ks, [b"x"] * len(ks)), id="mput"),
    pytest.param(lambda c, ks: c.mput(ks, np.ones((len(ks), 3), np.uint8)), id="mput-array"),
    pytest.param(lambda c, ks: c.mdelete(ks), id="mdelete"),
    pytest.param(lambda c, ks: c.mcontains(ks), id="mcontains"),
    pytest.param(lambda c, ks: c.mget_arrays(ks), id="mget_arrays"),
    pytest.param(lambda c, ks: c.get_into(ks, np.zeros((len(ks), 8), np.uint8)), id="get_into"),
]


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        pytest.param(1.5, "not float", id="float"),
        pytest.param(None, "not NoneType", id="None"),
        pytest.param(True, "not bool", id="bool"),
        pytest.param(-3, "int keys must be in", id="negative"),
        pytest.param(b"x" * 65536, "exceeds the 65535-byte limit", id="long"),
    ],
)
@pytest.mark.parametrize("op", BATCH_OPS_WITH_BAD_MIDDLE)
def test_one_bad_key_in_a_batch_rejects_the_whole_batch(
    cache: predis.Cache, op: Callable[..., object], bad: object, match: str
) -> None:
    # The good keys around the bad one exist (1, b"k") or are new (5, 6): nothing may be
    # stored, deleted, touched or read.
    keys = [5, 1, b"k", bad, 6, 2]
    check(cache, InvalidKeyError, match, op, cache, keys)
    assert cache.get(5) is None
    assert cache.get(6) is None
    assert cache.get(b"k") == b"kv"


# ---- values ----

BAD_VALUES = [
    pytest.param(
        "text", InvalidValueError, "must be bytes-like, not str; encode it first", id="str"
    ),
    pytest.param("", InvalidValueError, "not str", id="empty-str"),
    pytest.param(5, InvalidValueError, "C-contiguous bytes-like object .* not int", id="int"),
    pytest.param(None, InvalidValueError, "not NoneType", id="None"),
    pytest.param([1, 2], InvalidValueError, "not list", id="list"),
    pytest.param(
        memoryview(b"abcdef")[::2], InvalidValueError, "C-contiguous", id="strided-memoryview"
    ),
    pytest.param(
        np.arange(10, dtype=np.uint8)[::2], InvalidValueError, "C-contiguous", id="strided-numpy"
    ),
    pytest.param(
        np.asfortranarray(np.arange(9, dtype=np.uint8).reshape(3, 3)),
        InvalidValueError,
        "C-contiguous",
        id="fortran-numpy",
    ),
    pytest.param(
        b"x" * 1001,
        ValueTooLargeError,
        r"value of 1001 bytes( at index \d)? exceeds max_value_size 1000",
        id="oversized",
    ),
    pytest.param(
        np.zeros(5000, dtype=np.uint8),
        ValueTooLargeError,
        r"value of 5000 bytes( at index \d)? exceeds max_value_size 1000",
        id="oversized-np",
    ),
]


@pytest.mark.parametrize(("value", "exc", "match"), BAD_VALUES)
@pytest.mark.parametrize(
    "op",
    [
        pytest.param(lambda c, v: c.put(1, v), id="put-existing"),
        pytest.param(lambda c, v: c.put(9, v), id="put-new"),
        pytest.param(lambda c, v: c.__setitem__(b"k", v), id="setitem"),
        pytest.param(lambda c, v: c.mput([9], [v]), id="mput"),
        pytest.param(lambda c, v: c.mput([9, 1, 10], [b"ok", v, b"ok"]), id="mput-middle"),
    ],
)
def test_bad_values(
    cache: predis.Cache,
    op: Callable[..., object],
    value: object,
    exc: type[PredisError],
    match: str,
) -> None:
    check(cache, exc, match, op, cache, value)
    assert cache.get(9) is None
    assert cache.get(10) is None


def test_oversized_value_in_a_batch_names_its_index(cache: predis.Cache) -> None:
    err = check(
        cache,
        ValueTooLargeError,
        "value of 1001 bytes at index 2 exceeds max_value_size 1000",
        cache.mput,
        [7, 8, 9],
        [b"a", b"b", b"x" * 1001],
    )
    assert isinstance(err, ValueError)
    check(
        cache,
        ValueTooLargeError,
        "value of 1001 bytes at index 0 exceeds max_value_size 1000",
        cache.mput,
        [7, 8],
        np.zeros((2, 1001), dtype=np.uint8),
    )
    assert cache.mget([7, 8, 9]) == [None, None, None]


def test_value_exactly_max_value_size_is_accepted(cache: predis.Cache) -> None:
    cache.put(9, b"x" * 1000)
    assert cache.get(9) == b"x" * 1000


def test_entry_larger_than_the_capacity_is_rejected() -> None:
    cache = predis.Cache(1024, clock="manual")  # max_value_size defaults to 512
    cache.put(1, b"one")
    before = snapshot(cache)
    # A 512-byte value fits alone, but not beside a 600-byte key.
    with pytest.raises(ValueTooLargeError, match="needs more than capacity_bytes 1024"):
        cache.put(b"k" * 600, b"v" * 512)
    with pytest.raises(ValueTooLargeError, match="at index 1 needs more than capacity_bytes 1024"):
        cache.mput([2, b"k" * 600], [b"v", b"v" * 512])
    assert snapshot(cache) == before
    assert cache.get(2) is None
    with pytest.raises(ValueTooLargeError, match="value of 513 bytes exceeds max_value_size 512"):
        cache.put(2, b"v" * 513)
    assert snapshot(cache) == before


# ---- ttl and time ----

BAD_TTLS = [
    pytest.param(-1, "ttl must be a positive, finite number of seconds, got -1", id="negative"),
    pytest.param(0, "ttl must be a positive, finite number of seconds, got 0", id="zero"),
    pytest.param(0.0, "ttl must be a positive, finite number of seconds", id="zero-float"),
    pytest.param(-0.5, "ttl must be a positive", id="negative-float"),
    pytest.param(math.nan, "ttl must be a positive, finite number of seconds, got nan", id="nan"),
    pytest.param(math.inf, "ttl must be a positive, finite number of seconds, got inf", id="inf"),
    pytest.param(-math.inf, "ttl must be a positive", id="-inf"),
    pytest.param(1e10, r"ttl must be at most \d+ seconds \(100 years\)", id="too-long"),
    pytest.param("1", "ttl must be a number of seconds, got str", id="str"),
    pytest.param(True, "ttl must be a number of seconds, got bool", id="bool"),
    pytest.param([1], "ttl must be a number of seconds, got list", id="list"),
    pytest.param(1 + 0j, "ttl must be a number of seconds, got complex", id="complex"),
]


@pytest.mark.parametrize(("ttl", "match"), BAD_TTLS)
@pytest.mark.parametrize(
    "op",
    [
        pytest.param(lambda c, t: c.put(1, b"new", ttl=t), id="put"),
        pytest.param(lambda c, t: c.mput([1, 9], [b"new", b"new"], ttl=t), id="mput"),
        pytest.param(
            lambda c, t: c.mput([1, 9], np.ones((2, 2), np.uint8), ttl=t), id="mput-array"
        ),
    ],
)
def test_bad_ttl(cache: predis.Cache, op: Callable[..., object], ttl: object, match: str) -> None:
    check(cache, InvalidArgumentError, match, op, cache, ttl)
    assert cache.get(9) is None


@pytest.mark.parametrize(("ttl", "match"), BAD_TTLS)
def test_bad_default_ttl(ttl: object, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match) as info:
        predis.Cache(4096, ttl=ttl)  # type: ignore[arg-type]
    assert isinstance(info.value, PredisError)


@pytest.mark.parametrize(
    ("seconds", "match"),
    [
        pytest.param(0, "seconds must be a positive, finite number of seconds, got 0", id="zero"),
        pytest.param(-1, "seconds must be a positive", id="negative"),
        pytest.param(math.nan, "seconds must be a positive, finite number", id="nan"),
        pytest.param(math.inf, "seconds must be a positive, finite number", id="inf"),
        pytest.param("1", "seconds must be a number of seconds, got str", id="str"),
        pytest.param(None, "seconds must be", id="None"),
    ],
)
def test_bad_advance_time(cache: predis.Cache, seconds: object, match: str) -> None:
    cache.put(5, b"short", ttl=1)
    check(cache, InvalidArgumentError, match, cache.advance_time, seconds)
    assert cache.get(5) == b"short"  # the clock did not move


def test_advance_time_needs_a_manual_clock() -> None:
    cache = predis.Cache(4096)
    cache.put(1, b"one")
    check(
        cache,
        InvalidArgumentError,
        "advance_time needs a cache created with clock='manual'",
        cache.advance_time,
        1,
    )


# ---- the constructor ----


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param(
            {"capacity_bytes": 1023},
            "capacity_bytes must be at least 1024, got 1023",
            id="capacity-small",
        ),
        pytest.param(
            {"capacity_bytes": 0}, "capacity_bytes must be at least 1024", id="capacity-zero"
        ),
        pytest.param(
            {"capacity_bytes": -1}, "capacity_bytes must be at least 1024", id="capacity-negative"
        ),
        pytest.param(
            {"capacity_bytes": 4096.0},
            "capacity_bytes must be an int, got float",
            id="capacity-float",
        ),
        pytest.param(
            {"capacity_bytes": True}, "capacity_bytes must be an int, got bool", id="capacity-bool"
        ),
        pytest.param(
            {"capacity_bytes": "4096"}, "capacity_bytes must be an int, got str", id="capacity-str"
        ),
        pytest.param({"max_items": 0}, "max_items must be at least 1, got 0", id="max-items-zero"),
        pytest.param({"max_items": -5}, "max_items must be at least 1", id="max-items-negative"),
        pytest.param({"max_items": 2.5}, "max_items must be an int", id="max-items-float"),
        pytest.param(
            {"max_items": 2**40}, r"max_items must be at most 2\*\*36", id="max-items-huge"
        ),
        pytest.param(
            {"policy": "fifo"}, r"policy must be one of \('lru', 'lfu'\), got 'fifo'", id="policy"
        ),
        pytest.param({"policy": "LRU"}, "policy must be one of", id="policy-case"),
        pytest.param(
            {"backend": "gpu"},
            r"backend must be one of \('auto', 'cpu', 'cuda'\), got 'gpu'",
            id="backend",
        ),
        pytest.param(
            {"clock": "wall"},
            r"clock must be one of \('monotonic', 'manual'\), got 'wall'",
            id="clock",
        ),
        pytest.param(
            {"sample_rate": 1.5}, r"sample_rate must be in \[0, 1\]", id="sample-rate-high"
        ),
        pytest.param(
            {"sample_rate": -0.1}, r"sample_rate must be in \[0, 1\]", id="sample-rate-negative"
        ),
        pytest.param(
            {"sample_rate": math.nan}, r"sample_rate must be in \[0, 1\]", id="sample-rate-nan"
        ),
        pytest.param(
            {"sample_rate": "1"}, r"sample_rate must be a number in \[0, 1\]", id="sample-rate-str"
        ),
        pytest.param(
            {"sample_rate": True},
            r"sample_rate must be a number in \[0, 1\]",
            id="sample-rate-bool",
        ),
        pytest.param({"loader": "not callable"}, "loader must be callable", id="loader"),
        pytest.param({"loader": 5}, "loader must be callable", id="loader-int"),
        pytest.param(
            {"max_value_size": 4096},
            "max_value_size 4096 does not fit in capacity_bytes 4096; "
            "raise capacity_bytes or lower max_value_size",
            id="max-value-over-capacity",
        ),
        pytest.param(
            {"max_value_size": 1 << 20}, "does not fit in capacity_bytes 4096", id="max-value-huge"
        ),
        pytest.param(
            {"max_value_size": -1}, "max_value_size must be at least 0", id="max-value-negative"
        ),
        pytest.param(
            {"max_value_size": 2**33}, "max_value_size must be below 4 GiB", id="max-value-4g"
        ),
        pytest.param(
            {"access_log_capacity": 1},
            "access_log_capacity must be at least 2",
            id="log-capacity-1",
        ),
        pytest.param(
            {"access_log_capacity": 2**31},
            r"log_capacity must be in \[2, 2\*\*30\]",
            id="log-capacity-huge",
        ),
        pytest.param({"ttl": 0}, "ttl must be a positive", id="ttl-zero"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"capacity_bytes": 4096, **kwargs}
    with pytest.raises(InvalidArgumentError, match=match) as info:
        predis.Cache(**args)  # type: ignore[arg-type]
    assert isinstance(info.value, PredisError)
    assert isinstance(info.value, ValueError)


def test_constructor_boundaries_are_accepted() -> None:
    assert predis.Cache(1024).capacity_bytes == 1024
    assert predis.Cache(4096, sample_rate=0).sample_rate == 0.0
    assert predis.Cache(4096, sample_rate=1).sample_rate == 1.0
    assert predis.Cache(4096, access_log_capacity=2).stats().log_capacity == 2
    cache = predis.Cache(4096, max_value_size=0)
    cache.put(1, b"")
    assert cache.get(1) == b""
    with pytest.raises(ValueTooLargeError):
        cache.put(2, b"x")


# ---- batches ----

KEY_ARRAY_OPS: list[Any] = [
    pytest.param(lambda c, ks: c.mget(ks), id="mget"),
    pytest.param(lambda c, ks: c.mput(ks, [b"x"] * ks.size), id="mput"),
    pytest.param(lambda c, ks: c.mput(ks, np.ones((ks.size, 2), np.uint8)), id="mput-array"),
    pytest.param(lambda c, ks: c.mdelete(ks), id="mdelete"),
    pytest.param(lambda c, ks: c.mcontains(ks), id="mcontains"),
    pytest.param(lambda c, ks: c.mget_arrays(ks), id="mget_arrays"),
    pytest.param(lambda c, ks: c.get_into(ks, np.zeros((ks.size, 8), np.uint8)), id="get_into"),
]


@pytest.mark.parametrize(
    ("keys", "exc", "match"),
    [
        pytest.param(
            np.arange(10, dtype=np.uint64)[::2],
            InvalidArgumentError,
            "key array must be C-contiguous",
            id="strided",
        ),
        pytest.param(
            np.array([[1, 2], [3, 4]], dtype=np.uint64),
            InvalidArgumentError,
            "key array must be 1-D, got 2-D",
            id="2d",
        ),
        pytest.param(
            np.array(5, dtype=np.uint64),
            InvalidArgumentError,
            "key array must be 1-D, got 0-D",
            id="0d",
        ),
        pytest.param(
            np.array([1.0, 2.0]),
            InvalidArgumentError,
            "key array dtype must be uint64 or int64, got float64",
            id="float",
        ),
        pytest.param(
            np.array([1, 2], dtype=np.int32),
            InvalidArgumentError,
            "dtype must be uint64 or int64, got int32",
            id="int32",
        ),
        pytest.param(
            np.array([1, 2], dtype=np.uint32),
            InvalidArgumentError,
            "dtype must be uint64 or int64, got uint32",
            id="uint32",
        ),
        pytest.param(
            np.array([True]),
            InvalidArgumentError,
            "dtype must be uint64 or int64, got bool",
            id="bool",
        ),
        pytest.param(
            np.array([1, -2, 3], dtype=np.int64),
            InvalidKeyError,
            "int keys must be non-negative, got -2 at index 1",
            id="negative-int64",
        ),
    ],
)
@pytest.mark.parametrize("op", KEY_ARRAY_OPS)
def test_bad_key_arrays(
    cache: predis.Cache,
    op: Callable[..., object],
    keys: np.ndarray,
    exc: type[PredisError],
    match: str,
) -> None:
    check(cache, exc, match, op, cache, keys)
    assert cache.get(5) is None  # nothing from the batch was stored


@pytest.mark.parametrize(
    ("keys", "match"),
    [
        pytest.param(b"abc", "not a single str/bytes", id="bytes"),
        pytest.param("abc", "not a single str/bytes", id="str"),
        pytest.param(5, "keys must be a sequence or a numpy integer array, not int", id="int"),
        pytest.param(
            None, "keys must be a sequence or a numpy integer array, not NoneType", id="None"
        ),
        # Unordered or one-shot iterables have no order to match results to.
        pytest.param({1, 2}, "keys must be a sequence or a numpy integer array, not set", id="set"),
        pytest.param(
            (k for k in (1, 2)),
            "keys must be a sequence or a numpy integer array, not generator",
            id="generator",
        ),
    ],
)
@pytest.mark.parametrize(
    "op",
    [
        pytest.param(lambda c, ks: c.mget(ks), id="mget"),
        pytest.param(lambda c, ks: c.mput(ks, [b"x"]), id="mput"),
        pytest.param(lambda c, ks: c.mdelete(ks), id="mdelete"),
        pytest.param(lambda c, ks: c.mcontains(ks), id="mcontains"),
        pytest.param(lambda c, ks: c.mget_arrays(ks), id="mget_arrays"),
    ],
)
def test_keys_that_are_not_a_batch(
    cache: predis.Cache, op: Callable[..., object], keys: object, match: str
) -> None:
    check(cache, InvalidArgumentError, match, op, cache, keys)


@pytest.mark.parametrize(
    ("keys", "values", "match"),
    [
        pytest.param([7, 8, 9], [b"a", b"b"], "got 2 values for 3 keys", id="list-short"),
        pytest.param([7], [b"a", b"b"], "got 2 values for 1 keys", id="list-long"),
        pytest.param([], [b"a"], "got 1 values for 0 keys", id="list-no-keys"),
        pytest.param(
            np.array([7, 8, 9], dtype=np.uint64),
            [b"a", b"b"],
            "got 2 values for 3 keys",
            id="uint64-keys",
        ),
        pytest.param(
            [7, 8, 9], np.zeros((2, 4), np.uint8), "values has 2 rows for 3 keys", id="array-short"
        ),
        pytest.param(
            [7, 8],
            np.zeros((2, 4), np.int32),
            "a values array must be 2-D, uint8 and C-contiguous",
            id="int32",
        ),
        pytest.param(
            [7, 8],
            np.zeros(8, np.uint8),
            "a values array must be 2-D, uint8 and C-contiguous",
            id="1d",
        ),
        pytest.param(
            [7, 8],
            np.zeros((2, 4, 1), np.uint8),
            "a values array must be 2-D, uint8 and C-contiguous",
            id="3d",
        ),
        pytest.param(
            [7, 8],
            np.zeros((2, 8), np.uint8)[:, ::2],
            "a values array must be 2-D, uint8 and C-contiguous",
            id="strided",
        ),
        pytest.param(
            [7, 8],
            np.asfortranarray(np.zeros((2, 4), np.uint8)),
            "a values array must be 2-D, uint8 and C-contiguous",
            id="fortran",
        ),
        pytest.param(
            [7],
            b"abc",
            "values must be a sequence of bytes-like objects or a 2-D uint8 array",
            id="bytes",
        ),
        pytest.param([7], "abc", "values must be a sequence of bytes-like objects", id="str"),
        pytest.param([7], 5, "values must be a sequence of bytes-like objects", id="int"),
    ],
)
def test_mput_values_that_do_not_match_the_keys(
    cache: predis.Cache, keys: object, values: object, match: str
) -> None:
    check(cache, InvalidArgumentError, match, cache.mput, keys, values)
    assert cache.mget([7, 8, 9]) == [None, None, None]


def test_mput_bad_value_in_the_middle_stores_nothing(cache: predis.Cache) -> None:
    check(cache, InvalidValueError, "not str", cache.mput, [7, 1, 8], [b"a", "b", b"c"])
    check(
        cache,
        InvalidValueError,
        "C-contiguous",
        cache.mput,
        [7, 1, 8],
        [b"a", b"b", memoryview(b"abcd")[::2]],
    )
    assert cache.mget([7, 8]) == [None, None]
    assert cache.get(1) == b"one"


# ---- get_into ----


@pytest.mark.parametrize(
    ("out", "match"),
    [
        pytest.param(np.zeros((3, 8), np.int32), "out must be a 2-D uint8 numpy array", id="int32"),
        pytest.param(np.zeros((3, 8), np.int8), "out must be a 2-D uint8 numpy array", id="int8"),
        pytest.param(np.zeros(24, np.uint8), "out must be a 2-D uint8 numpy array", id="1d"),
        pytest.param(np.zeros((3, 8, 1), np.uint8), "out must be a 2-D uint8 numpy array", id="3d"),
        pytest.param([[0] * 8] * 3, "out must be a 2-D uint8 numpy array", id="list"),
        pytest.param(bytearray(24), "out must be a 2-D uint8 numpy array", id="bytearray"),
        pytest.param(np.zeros((2, 8), np.uint8), "out has 2 rows for 3 keys", id="too-few-rows"),
        pytest.param(np.zeros((4, 8), np.uint8), "out has 4 rows for 3 keys", id="too-many-rows"),
        pytest.param(np.zeros((3, 16), np.uint8)[:, ::2], "out must be C-contiguous", id="strided"),
        pytest.param(
            np.asfortranarray(np.zeros((3, 8), np.uint8)), "out must be C-contiguous", id="fortran"
        ),
    ],
)
def test_get_into_bad_out(cache: predis.Cache, out: object, match: str) -> None:
    check(cache, InvalidArgumentError, match, cache.get_into, [1, 2, 4], out)


def test_get_into_read_only_out(cache: predis.Cache) -> None:
    out = np.full((3, 8), 0xAA, np.uint8)
    out.flags.writeable = False
    check(cache, InvalidArgumentError, "out must be writeable", cache.get_into, [1, 2, 4], out)
    assert (out == 0xAA).all()


def test_get_into_value_longer_than_the_row(cache: predis.Cache) -> None:
    out = np.zeros((4, 4), np.uint8)
    err = check(
        cache,
        ValueTooLargeError,
        "1 value\\(s\\) longer than the row width 4; the first is at index 2 with 30 bytes",
        cache.get_into,
        [1, 4, 2, b"k"],  # 1: 3 bytes, 4: missing, 2: 30 bytes, b"k": 2 bytes
        out,
    )
    assert isinstance(err, ValueError)
    check(
        cache,
        ValueTooLargeError,
        "2 value\\(s\\) longer than the row width 0; the first is at index 0 with 3 bytes",
        cache.get_into,
        [1, 3, b"k"],  # 3 holds an empty value, which fits a zero-width row
        np.zeros((3, 0), np.uint8),
    )


# ---- other arguments ----


def test_bad_drain_events_arguments(cache: predis.Cache) -> None:
    pending = cache.stats().events_pending
    assert pending == len(SEEDED)
    with pytest.raises(InvalidArgumentError, match="max_events must be at least 0, got -1"):
        cache.drain_events(-1)
    with pytest.raises(InvalidArgumentError, match="max_events must be an int, got float"):
        cache.drain_events(1.5)  # type: ignore[arg-type]
    assert cache.stats().events_pending == pending  # nothing was drained


@pytest.mark.parametrize(
    ("rate", "match"),
    [
        pytest.param(1.5, r"sample_rate must be in \[0, 1\]", id="high"),
        pytest.param(-0.01, r"sample_rate must be in \[0, 1\]", id="negative"),
        pytest.param(math.nan, r"sample_rate must be in \[0, 1\]", id="nan"),
        pytest.param("0.5", r"sample_rate must be a number in \[0, 1\]", id="str"),
        pytest.param(None, r"sample_rate must be a number in \[0, 1\]", id="None"),
        pytest.param(False, r"sample_rate must be a number in \[0, 1\]", id="bool"),
    ],
)
def test_bad_sample_rate_setter(cache: predis.Cache, rate: object, match: str) -> None:
    cache.sample_rate = 0.25
    with pytest.raises(InvalidArgumentError, match=match) as info:
        cache.sample_rate = rate  # type: ignore[assignment]
    assert isinstance(info.value, PredisError)
    assert cache.sample_rate == 0.25


def test_footprint_arguments(cache: predis.Cache) -> None:
    check(
        cache,
        ValueTooLargeError,
        "value_len 1001 exceeds max_value_size 1000",
        cache.footprint,
        1,
        1001,
    )
    check(
        cache, InvalidArgumentError, "value_len must be at least 0, got -1", cache.footprint, 1, -1
    )
    check(
        cache, InvalidArgumentError, "value_len must be an int, got float", cache.footprint, 1, 1.0
    )
    check(cache, InvalidKeyError, "not float", cache.footprint, 1.0, 1)

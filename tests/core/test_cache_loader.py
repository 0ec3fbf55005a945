"""The read-through loader: misses call it, its result is stored, concurrent misses share it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

import predis
from predis import LoaderError

JOIN_TIMEOUT_S = 30.0


class CountingLoader:
    """loader(key) -> values[key] (None when absent), recording every call."""

    def __init__(self, values: dict[object, object]) -> None:
        self.values = values
        self.calls: list[object] = []
        self.lock = threading.Lock()

    def __call__(self, key: object) -> object:
        with self.lock:
            self.calls.append(key)
        return self.values.get(key)


def make(loader: Callable[[object], object], **kwargs: object) -> predis.Cache:
    return predis.Cache(1 << 20, loader=loader, clock="manual", **kwargs)  # type: ignore[arg-type]


def test_miss_calls_the_loader_and_stores_the_result() -> None:
    loader = CountingLoader({1: b"one", b"k": b"kay"})
    cache = make(loader)
    assert cache.get(1) == b"one"
    assert loader.calls == [1]
    assert cache.contains(1)
    assert cache.get(1) == b"one"  # now a hit: no second call
    assert cache[1] == b"one"
    assert loader.calls == [1]
    assert cache.get(b"k") == b"kay"
    assert loader.calls == [1, b"k"]
    assert len(cache) == 2
    s = cache.stats()
    assert s.inserts == 2
    assert s.hits == 2


def test_loader_gets_the_key_as_passed_and_str_aliases_bytes() -> None:
    loader = CountingLoader({"name": b"by-str"})
    cache = make(loader)
    assert cache.get("name") == b"by-str"
    assert loader.calls == ["name"]
    assert cache.get(b"name") == b"by-str"  # the same key: stored, no new load
    assert loader.calls == ["name"]


@pytest.mark.parametrize(
    "result",
    [bytearray(b"val"), memoryview(b"val")],
    ids=["bytearray", "memoryview"],
)
def test_loader_may_return_any_bytes_like(result: object) -> None:
    cache = make(lambda _k: result)
    got = cache.get(1)
    assert got == b"val"
    assert type(got) is bytes
    assert cache.get(1) == b"val"


def test_loader_returning_none_is_a_miss_and_stores_nothing() -> None:
    loader = CountingLoader({})
    cache = make(loader)
    assert cache.get(1) is None
    assert cache.get(1, b"dflt") == b"dflt"
    with pytest.raises(KeyError):
        _ = cache[1]
    assert loader.calls == [1, 1, 1]  # nothing cached, so each miss asks again
    assert len(cache) == 0
    assert not cache.contains(1)
    assert cache.stats().inserts == 0


def test_loader_empty_value_is_a_value() -> None:
    loader = CountingLoader({1: b""})
    cache = make(loader)
    assert cache.get(1, b"dflt") == b""
    assert cache.get(1) == b""
    assert loader.calls == [1]


def test_loader_exception_becomes_loader_error_and_nothing_is_cached() -> None:
    boom = ValueError("backend down")
    attempts: list[object] = []

    def loader(key: object) -> bytes:
        attempts.append(key)
        if len(attempts) == 1:
            raise boom
        return b"recovered"

    cache = make(loader)
    with pytest.raises(LoaderError, match="loader failed for key 7") as info:
        cache.get(7)
    err = info.value
    assert isinstance(err, predis.PredisError)
    assert err.__cause__ is boom
    assert err.key == 7
    assert len(cache) == 0
    assert not cache.contains(7)
    # A later get retries the loader.
    assert cache.get(7) == b"recovered"
    assert attempts == [7, 7]
    assert cache.get(7) == b"recovered"
    assert attempts == [7, 7]


@pytest.mark.parametrize(
    "result",
    [5, "a str", [1, 2], 1.5, {"k": "v"}],
    ids=["int", "str", "list", "float", "dict"],
)
def test_loader_returning_a_non_bytes_value_is_a_loader_error(result: object) -> None:
    cache = make(lambda _k: result)
    with pytest.raises(LoaderError, match="loader failed for key 3") as info:
        cache.get(3)
    assert isinstance(info.value.__cause__, predis.InvalidValueError)
    assert "it must return bytes-like or None" in str(info.value.__cause__)
    assert len(cache) == 0


def test_loader_value_too_large_is_a_loader_error() -> None:
    cache = make(lambda _k: b"x" * 2000, max_value_size=1000)
    with pytest.raises(LoaderError) as info:
        cache.get(3)
    assert isinstance(info.value.__cause__, predis.ValueTooLargeError)
    assert len(cache) == 0


def test_loader_is_not_called_on_a_hit_or_by_contains_mget_arrays_get_into() -> None:
    loader = CountingLoader({1: b"one", 2: b"two"})
    cache = make(loader)
    cache.put(1, b"stored")
    assert cache.get(1) == b"stored"
    assert not cache.contains(2)
    assert 2 not in cache
    assert cache.mcontains([2]).tolist() == [False]
    assert cache.mget_arrays([2])[2].tolist() == [False]
    assert cache.get_into([2], np.zeros((1, 4), np.uint8)).tolist() == [False]
    assert loader.calls == []


def test_loader_and_ttl() -> None:
    loader = CountingLoader({1: b"one"})
    cache = make(loader, ttl=10)
    assert cache.get(1) == b"one"
    cache.advance_time(9)
    assert cache.get(1) == b"one"
    assert loader.calls == [1]
    cache.advance_time(1)  # the loaded entry got the default ttl
    assert cache.get(1) == b"one"
    assert loader.calls == [1, 1]


def test_mget_fills_misses_through_the_loader() -> None:
    loader = CountingLoader({1: b"one", 3: b"three", b"k": b"kay"})
    cache = make(loader)
    cache.put(2, b"two")
    assert cache.mget([1, 2, 3, 4, b"k"]) == [b"one", b"two", b"three", None, b"kay"]
    assert loader.calls == [1, 3, 4, b"k"]
    assert cache.mget([1, 3, b"k"]) == [b"one", b"three", b"kay"]  # stored
    assert loader.calls == [1, 3, 4, b"k"]
    assert len(cache) == 4


def test_mget_with_a_numpy_key_array_fills_misses_through_the_loader() -> None:
    loader = CountingLoader({1: b"one", 3: b"three"})
    cache = make(loader)
    cache.put(2, b"two")
    keys = np.array([1, 2, 3, 4], dtype=np.uint64)
    assert cache.mget(keys) == [b"one", b"two", b"three", None]
    assert loader.calls == [1, 3, 4]
    assert cache.get(1) == b"one"
    assert cache.get(3) == b"three"
    assert loader.calls == [1, 3, 4]


def test_mget_loader_error_propagates() -> None:
    def loader(key: object) -> bytes:
        if key == 2:
            raise KeyError("no such row")
        return b"ok"

    cache = make(loader)
    with pytest.raises(LoaderError) as info:
        cache.mget([1, 2, 3])
    assert isinstance(info.value.__cause__, KeyError)
    assert cache.get(1) == b"ok"  # loaded before the failure
    assert not cache.contains(2)


# ---- single flight ----


def _wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Poll `predicate` (a progress condition, not a timing assertion) for up to 30 s."""
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.001)


def _run_threads(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.start()


def _join_all(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.join(JOIN_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), "a thread hung"


def test_single_flight_concurrent_misses_call_the_loader_once() -> None:
    n = 16
    release = threading.Event()
    entered = threading.Event()
    calls: list[object] = []
    calls_lock = threading.Lock()

    def loader(key: object) -> bytes:
        with calls_lock:
            calls.append(key)
        entered.set()
        assert release.wait(JOIN_TIMEOUT_S), "the test never released the loader"
        return b"the value"

    cache = make(loader)
    results: list[object] = [None] * n
    errors: list[BaseException] = []
    start = threading.Barrier(n, timeout=JOIN_TIMEOUT_S)

    def worker(i: int) -> None:
        try:
            start.wait()
            results[i] = cache.get(b"shared")
        except BaseException as exc:  # recorded and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    _run_threads(threads)
    try:
        assert entered.wait(JOIN_TIMEOUT_S), "the loader was never called"
        # Every thread has missed (16 misses; the leader's re-check under the flight counts none)
        # while the loader is still blocked, so every thread must share this one load.
        _wait_until(lambda: cache.stats().misses >= n, "all threads to miss")
    finally:
        release.set()
        _join_all(threads)
    assert errors == []
    assert calls == [b"shared"]
    assert results == [b"the value"] * n
    assert cache.get(b"shared") == b"the value"
    assert len(cache) == 1
    assert cache.stats().inserts == 1


def test_single_flight_shares_the_error_and_a_later_get_retries() -> None:
    n = 8
    release = threading.Event()
    entered = threading.Event()
    calls: list[object] = []
    failure = RuntimeError("flaky")

    def loader(key: object) -> bytes:
        calls.append(key)
        if len(calls) == 1:
            entered.set()
            assert release.wait(JOIN_TIMEOUT_S)
            raise failure
        return b"second time"

    cache = make(loader)
    outcomes: list[object] = [None] * n
    start = threading.Barrier(n, timeout=JOIN_TIMEOUT_S)

    def worker(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = cache.get(42)
        except LoaderError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    _run_threads(threads)
    try:
        assert entered.wait(JOIN_TIMEOUT_S)
        _wait_until(lambda: cache.stats().misses >= n, "all threads to miss")
    finally:
        release.set()
        _join_all(threads)
    # The one load failed, and every thread that shared it got its error. (A thread that
    # missed but reached the flight only after it ended starts a new load, which succeeds.)
    assert calls[0] == 42
    failed = [o for o in outcomes if isinstance(o, LoaderError)]
    assert failed, outcomes
    assert all(o.__cause__ is failure for o in failed)
    assert all(o == b"second time" for o in outcomes if not isinstance(o, LoaderError)), outcomes
    assert len(calls) == 1 + (len(failed) < n)
    assert cache.get(42) == b"second time"
    assert calls == [42, 42]


def test_single_flight_is_per_key() -> None:
    """Loads of different keys do not wait for each other."""
    release_a = threading.Event()
    a_entered = threading.Event()

    def loader(key: object) -> bytes:
        if key == b"a":
            a_entered.set()
            assert release_a.wait(JOIN_TIMEOUT_S)
        return b"v-" + (key if isinstance(key, bytes) else b"?")

    cache = make(loader)
    got: dict[str, object] = {}
    a = threading.Thread(target=lambda: got.setdefault("a", cache.get(b"a")))
    b = threading.Thread(target=lambda: got.setdefault("b", cache.get(b"b")))
    a.start()
    try:
        assert a_entered.wait(JOIN_TIMEOUT_S)
        b.start()
        b.join(JOIN_TIMEOUT_S)
        assert not b.is_alive(), "the load of b'b' waited for the load of b'a'"
        assert got == {"b": b"v-b"}
    finally:
        release_a.set()
        a.join(JOIN_TIMEOUT_S)
        b.join(JOIN_TIMEOUT_S)
    assert not a.is_alive()
    assert got == {"a": b"v-a", "b": b"v-b"}

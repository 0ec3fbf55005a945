"""predis._core.U64Ring driven from Python: two real threads, then single-thread edges.

push_batch and pop_batch release the GIL, so the producer and consumer threads below really
do run the ring's two sides at once.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import predis
from predis import _core

JOIN_TIMEOUT_S = 60.0


def _run_pair(capacity: int, n: int, max_chunk: int, seed: int) -> None:
    """Producer pushes 0..n-1 in random-size chunks; consumer pops random-size batches."""
    ring = _core.U64Ring(capacity)
    items = np.arange(n, dtype=np.uint64)
    received: list[np.ndarray] = []
    errors: list[BaseException] = []
    stop = threading.Event()  # set on failure or timeout, so neither side spins forever
    deadline = time.monotonic() + JOIN_TIMEOUT_S

    def producer() -> None:
        try:
            rng = np.random.default_rng(seed)
            start = 0
            while start < n and not stop.is_set():
                end = min(n, start + int(rng.integers(1, max_chunk + 1)))
                chunk = items[start:end]
                done = 0
                while done < len(chunk):  # retry the part that did not fit
                    if stop.is_set() or time.monotonic() > deadline:
                        return
                    pushed = ring.push_batch(chunk[done:])
                    assert 0 <= pushed <= len(chunk) - done
                    if pushed == 0:
                        time.sleep(0)
                    done += pushed
                start = end
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    def consumer() -> None:
        try:
            rng = np.random.default_rng(seed + 1)
            count = 0
            while count < n and not stop.is_set():
                if time.monotonic() > deadline:
                    errors.append(TimeoutError(f"consumer got {count} of {n} items"))
                    stop.set()
                    return
                got = ring.pop_batch(int(rng.integers(1, max_chunk + 1)))
                assert got.dtype == np.uint64
                assert got.ndim == 1
                if len(got) == 0:
                    time.sleep(0)
                    continue
                received.append(got)
                count += len(got)
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=producer, name="ring-producer", daemon=True),
        threading.Thread(target=consumer, name="ring-consumer", daemon=True),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=JOIN_TIMEOUT_S)
    alive = [t.name for t in threads if t.is_alive()]
    stop.set()
    assert not alive, f"threads still running after {JOIN_TIMEOUT_S} s: {alive}"
    assert not errors, f"errors in threads: {errors!r}"

    got = np.concatenate(received) if received else np.empty(0, dtype=np.uint64)
    assert len(got) == n, f"received {len(got)} items, expected {n}"
    mismatch = np.flatnonzero(got != items)
    assert mismatch.size == 0, (
        f"first out-of-order item at position {mismatch[0]}: got {got[mismatch[0]]}"
    )
    assert len(ring) == 0, "items left in the ring after the consumer had all n"


@pytest.mark.parametrize(
    ("capacity", "n", "max_chunk"),
    [
        (1024, 300_000, 3000),  # chunks often larger than the ring: partial pushes
        (64, 50_000, 100),
        (2, 5_000, 3),  # smallest ring: full and empty on nearly every call
    ],
)
def test_two_threads_exact_order(capacity: int, n: int, max_chunk: int) -> None:
    _run_pair(capacity, n, max_chunk, seed=capacity * 7919 + n)


def test_capacity_rounds_up_to_power_of_two() -> None:
    assert _core.U64Ring(5).capacity == 8
    assert _core.U64Ring(1).capacity == 2
    assert _core.U64Ring(8).capacity == 8
    assert _core.U64Ring(1000).capacity == 1024


def test_push_into_full_ring_is_partial() -> None:
    ring = _core.U64Ring(8)
    assert ring.push_batch(np.arange(5, dtype=np.uint64)) == 5
    assert ring.push_batch(np.arange(100, 110, dtype=np.uint64)) == 3  # only 3 fit
    assert len(ring) == 8
    assert ring.push_batch(np.arange(1, dtype=np.uint64)) == 0  # full
    out = ring.pop_batch(100)
    assert out.tolist() == [0, 1, 2, 3, 4, 100, 101, 102]
    assert len(ring) == 0


def test_pop_from_empty_ring_returns_empty_array() -> None:
    ring = _core.U64Ring(4)
    out = ring.pop_batch(10)
    assert out.dtype == np.uint64
    assert out.shape == (0,)
    assert ring.pop_batch(0).shape == (0,)
    assert ring.push_batch(np.empty(0, dtype=np.uint64)) == 0
    assert len(ring) == 0


def test_wraps_around_many_times() -> None:
    ring = _core.U64Ring(4)
    for base in range(0, 400, 3):
        chunk = np.arange(base, base + 3, dtype=np.uint64)
        assert ring.push_batch(chunk) == 3
        assert ring.pop_batch(3).tolist() == chunk.tolist()


def test_zero_capacity_is_invalid() -> None:
    with pytest.raises(predis.InvalidArgumentError):
        _core.U64Ring(0)


def test_push_rejects_two_dimensional_array() -> None:
    ring = _core.U64Ring(4)
    with pytest.raises(predis.InvalidArgumentError):
        ring.push_batch(np.zeros((2, 2), dtype=np.uint64))

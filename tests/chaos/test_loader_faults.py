"""Chaos: the back end behind the loader fails, then hangs, then recovers, while threads
serve traffic and the learned prefetcher loads ahead.

Must hold: hits keep being served from the cache whatever the back end does; a failed load
raises LoaderError to its caller, stores nothing, and a later request retries; a hung key
holds only its own callers (single flight) while other keys are served; prefetch failures
are counted, never raised into the host; after recovery every path works again.
"""

from __future__ import annotations

import threading

import pytest
from chaos_helpers import eventually

import predis
from predis import LoaderError
from predis.prefetch import TrainConfig, train_model
from predis.prefetch.learned import LearnedPrefetcher
from predis.workloads import CorrelatedSessions


class Backend:
    """A back end whose state the test switches: up, down (raises) or hanging on a key."""

    def __init__(self) -> None:
        self.state = "up"
        self.hang_key: int | None = None
        self.release = threading.Event()
        self.calls: dict[int, int] = {}
        self.lock = threading.Lock()

    def load(self, key: int) -> bytes:
        with self.lock:
            self.calls[key] = self.calls.get(key, 0) + 1
        if key == self.hang_key:
            self.release.wait()
        if self.state == "down":
            raise ConnectionError("back end down")
        return key.to_bytes(8, "little")


def test_demand_path_through_failure_hang_and_recovery():
    backend = Backend()
    cache = predis.Cache(1 << 22, loader=backend.load)
    warm = list(range(100))
    for k in warm:
        assert cache.get(k) == k.to_bytes(8, "little")

    backend.state = "down"
    for k in warm:  # hits: served, the back end is never asked
        assert cache.get(k) == k.to_bytes(8, "little")
    with pytest.raises(LoaderError, match="back end down"):
        cache.get(1_000)
    assert not cache.contains(1_000)  # nothing stored for a failed load

    backend.state = "up"
    backend.hang_key = 2_000
    waiting = [threading.Thread(target=cache.get, args=(2_000,)) for _ in range(3)]
    for t in waiting:
        t.start()
    eventually(lambda: backend.calls.get(2_000) == 1, "the hung load started")
    served: list[bytes | None] = []
    other = threading.Thread(
        target=lambda: served.extend(cache.get(k) for k in range(3_000, 3_050))
    )
    other.start()
    other.join(timeout=60)
    assert not other.is_alive()  # other keys were served while one key hung
    assert served == [k.to_bytes(8, "little") for k in range(3_000, 3_050)]
    assert all(t.is_alive() for t in waiting)  # only the hung key's callers wait
    backend.release.set()
    for t in waiting:
        t.join(timeout=60)
    assert backend.calls[2_000] == 1  # single flight: one load for three callers
    assert cache.get(1_000) == (1_000).to_bytes(8, "little")  # the failed key, retried
    cache.close()


def test_prefetch_failures_are_counted_never_raised():
    train = TrainConfig(num_trees=20, threads=1, batch_size=16, max_rows=40_000)
    sessions = CorrelatedSessions(1_000_000, 200, 12, alpha=0.8, noise=0.05, seed=5)
    model = train_model(sessions.take(15_000), train, cache_items=150)
    assert model.threshold < 1.0  # it does prefetch on this workload
    backend = Backend()
    demand_calls: list[int] = []

    def load(key: int) -> bytes:
        demand_calls.append(key)
        return backend.load(key)

    cache = predis.Cache(
        1 << 22,
        max_items=150,
        loader=load,
        prefetcher=LearnedPrefetcher(model, batch_size=16),
    )
    stream = sessions.take(12_000)
    served_while_down = 0
    for i, k in enumerate(stream):
        if i == 8_000:
            # The back end stays down until the prefetch thread has met it: on a loaded
            # machine it may still be working through the down window's requests.
            eventually(lambda: cache.stats().prefetch.errors > 0, "prefetch errors counted")
        backend.state = "down" if 4_000 <= i < 8_000 else "up"
        try:
            assert cache.get(int(k)) == int(k).to_bytes(8, "little")
            served_while_down += backend.state == "down"
        except LoaderError:
            assert backend.state == "down"
    assert served_while_down > 0  # hits kept coming while the back end was down
    issued = cache.stats().prefetch.issued
    backend.state = "up"
    for k in sessions.take(4_000):
        assert cache.get(int(k)) == int(k).to_bytes(8, "little")
    eventually(lambda: cache.stats().prefetch.issued > issued, "prefetching resumed")
    cache.close()

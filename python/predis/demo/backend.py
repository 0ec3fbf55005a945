"""The demo's back end: :class:`predis.sim.SimulatedBackend` behind a cache loader.

The cache calls its loader from two places: the host's thread on a demand miss, and the
prefetch executor's workers for a prefetch. The simulated back end's counters are plain
integers, so every fetch goes through one lock, and the fetch is counted as a prefetch
when it runs on any thread other than the host's.
"""

from __future__ import annotations

import threading

from predis.sim.backend import BackendModel, SimulatedBackend

__all__ = ["DemoBackend"]


class DemoBackend:
    """A thread-safe loader over a :class:`SimulatedBackend` with ``latency_s`` per fetch.

    Args:
        latency_s: seconds each fetch costs on the simulated clock (never slept).
        host_thread: the ident of the thread that serves demand requests (default: the
            thread that creates this object).
    """

    def __init__(self, latency_s: float, host_thread: int | None = None) -> None:
        self.backend = SimulatedBackend(BackendModel(latency_s=latency_s), value_size=8)
        self._lock = threading.Lock()
        self._host = threading.get_ident() if host_thread is None else host_thread

    def __call__(self, key: object) -> bytes:
        """Fetch ``key`` (an int key) from the simulated back end."""
        prefetch = threading.get_ident() != self._host
        with self._lock:
            return self.backend.fetch(int(key), prefetch=prefetch)  # type: ignore[call-overload]

    @property
    def demand_fetches(self) -> int:
        """Fetches made on the host's thread (demand misses)."""
        with self._lock:
            return self.backend.fetches - self.backend.prefetch_fetches

    @property
    def prefetch_fetches(self) -> int:
        """Fetches made by the prefetch executor."""
        with self._lock:
            return self.backend.prefetch_fetches

    @property
    def latency_s(self) -> float:
        """Seconds per fetch."""
        return self.backend.model.latency_s

"""The prefetch executor: a bounded pool of threads that loads proposed keys.

It never blocks its caller: a proposal that is already in flight is skipped, one that
finds the queue full or the load budget spent is dropped, and both are counted. A loader
that raises is counted and logged (once per distinct error type and minute, so a broken
back end cannot flood the log); a loader that hangs holds one worker, the queue fills
and later proposals are dropped, while the host's own requests go on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from predis.errors import InvalidArgumentError

__all__ = ["ExecutorStats", "PrefetchExecutor"]

log = logging.getLogger("predis.prefetch")

#: Loads one key and stores it (returns whether a value was stored).
LoadFn = Callable[[int, float], bool]


@dataclass(frozen=True)
class ExecutorStats:
    """Cumulative counts of the executor's work."""

    submitted: int  # proposals accepted into the queue
    completed: int  # loads that stored a value
    empty: int  # loads whose loader returned None (no such key)
    errors: int  # loads whose loader raised
    deduped: int  # proposals skipped: the key was already queued or loading
    dropped_full: int  # proposals dropped: the queue was full
    dropped_budget: int  # proposals dropped: the loads-per-second budget was spent
    in_flight: int  # queued or loading now


class PrefetchExecutor:
    """A bounded pool that runs ``load(key, confidence)`` for proposed keys.

    Args:
        load: loads and stores one key; returns True when it stored a value.
        workers: threads calling ``load`` (1..64).
        queue_size: proposals waiting at most; beyond it they are dropped.
        max_loads_per_s: a token-bucket cap on loads started per second (None: no cap),
            so prefetching cannot add more than this to the back end's load.
    """

    def __init__(
        self,
        load: LoadFn,
        *,
        workers: int = 2,
        queue_size: int = 1024,
        max_loads_per_s: float | None = None,
    ) -> None:
        if not callable(load):
            raise InvalidArgumentError("load must be callable (key, confidence) -> bool")
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
            raise InvalidArgumentError(f"workers must be an int in [1, 64], got {workers!r}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise InvalidArgumentError(f"queue_size must be a positive int, got {queue_size!r}")
        if max_loads_per_s is not None and (
            isinstance(max_loads_per_s, bool)
            or not isinstance(max_loads_per_s, (int, float))
            or not max_loads_per_s > 0
        ):
            raise InvalidArgumentError(
                f"max_loads_per_s must be > 0 or None, got {max_loads_per_s!r}"
            )
        self._load = load
        self._queue: queue.Queue[tuple[int, float] | None] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._in_flight: set[int] = set()
        self._rate = None if max_loads_per_s is None else float(max_loads_per_s)
        self._tokens = self._rate if self._rate is not None else 0.0
        self._last_refill = time.monotonic()
        self._counts = dict.fromkeys(
            (
                "submitted",
                "completed",
                "empty",
                "errors",
                "deduped",
                "dropped_full",
                "dropped_budget",
            ),
            0,
        )
        self._last_logged: dict[str, float] = {}
        self._closed = False
        self._threads = [
            threading.Thread(target=self._run, name=f"predis-prefetch-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def _take_token(self) -> bool:
        if self._rate is None:
            return True
        now = time.monotonic()
        # A one-second bucket: bursts up to the per-second rate, then the steady rate.
        self._tokens = min(self._rate, self._tokens + (now - self._last_refill) * self._rate)
        self._last_refill = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def submit(self, key: int, confidence: float) -> bool:
        """Queue one load; False (and counted) when skipped or dropped. Never blocks."""
        with self._lock:
            if self._closed:
                return False
            if key in self._in_flight:
                self._counts["deduped"] += 1
                return False
            if not self._take_token():
                self._counts["dropped_budget"] += 1
                return False
            try:
                self._queue.put_nowait((key, confidence))
            except queue.Full:
                self._counts["dropped_full"] += 1
                return False
            self._in_flight.add(key)
            self._counts["submitted"] += 1
            return True

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            key, confidence = item
            outcome = "errors"
            try:
                outcome = "completed" if self._load(key, confidence) else "empty"
            except Exception as exc:  # a prefetch must never take the host down
                self._log_error(exc)
            finally:
                with self._lock:
                    self._counts[outcome] += 1
                    self._in_flight.discard(key)

    def _log_error(self, exc: Exception) -> None:
        kind = type(exc).__name__
        now = time.monotonic()
        with self._lock:
            if now - self._last_logged.get(kind, -1e9) < 60.0:
                return
            self._last_logged[kind] = now
        log.warning("predis: prefetch loader failed (%s: %s); counted, not raised", kind, exc)

    def stats(self) -> ExecutorStats:
        """A snapshot of the counters."""
        with self._lock:
            return ExecutorStats(in_flight=len(self._in_flight), **self._counts)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait up to ``timeout`` seconds until nothing is queued or loading; True if so."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._in_flight:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting work, drop queued loads (counted in ``dropped_full``), and join
        the workers for up to ``timeout`` seconds (a hung loader's worker is a daemon and is
        left behind)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            # Queued loads are dropped (and counted): after close, no new load starts, and
            # every worker's stop sentinel fits in the queue.
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    self._in_flight.discard(item[0])
                    self._counts["dropped_full"] += 1
        deadline = time.monotonic() + timeout
        for _ in self._threads:
            try:
                self._queue.put(None, timeout=max(0.0, deadline - time.monotonic()))
            except queue.Full:
                break
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

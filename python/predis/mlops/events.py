"""The MLOps loop's event log: what happened, in order, in words and in figures.

Every step of the loop (drift, retraining, validation, A/B decisions, promotion, rollback)
appends an :class:`MLOpsEvent`. The log keeps the latest ``maxlen`` in memory, calls
subscribers (a demo narrates them; an operator may forward them to a pager), and a
subscriber that raises is logged and counted, never allowed to stop the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from predis.errors import InvalidArgumentError

__all__ = ["EVENT_KINDS", "EventLog", "MLOpsEvent"]

log = logging.getLogger("predis.mlops")

#: The kinds of event the loop records.
EVENT_KINDS = (
    "drift",  # a detector confirmed drift
    "retrain-skipped",  # a trigger arrived while the loop was busy or cooling down
    "retrain-started",
    "retrain-failed",  # training raised (too little data, stopped, ...)
    "validation-failed",  # the challenger was dropped before any traffic
    "challenger-registered",  # passed validation; registered and aliased `challenger`
    "ab-started",
    "ab-stopped",  # worse, guardrail breached, or out of sample budget
    "promoted",
    "watch-passed",  # the new champion held up against the previous one
    "rollback",
    "error",
)


@dataclass(frozen=True)
class MLOpsEvent:
    """One step of the loop.

    Attributes:
        seq: position in the log (from 1).
        time: wall-clock seconds since the epoch.
        customer: whose model.
        kind: one of :data:`EVENT_KINDS`.
        message: one line in words (what happened and why).
        details: the figures behind it (statistics, versions, reports).
        position: demand requests the loop had seen when it happened.
    """

    seq: int
    time: float
    customer: str
    kind: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    position: int = 0

    def narrate(self) -> str:
        """The event as one line of a narrated log."""
        return f"[{self.customer} @ {self.position:,} requests] {self.kind}: {self.message}"


class EventLog:
    """A bounded, thread-safe log of :class:`MLOpsEvent` with subscribers."""

    def __init__(self, customer: str, maxlen: int = 10_000) -> None:
        if isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 1:
            raise InvalidArgumentError(f"maxlen must be an int >= 1, got {maxlen!r}")
        self.customer = customer
        self._events: deque[MLOpsEvent] = deque(maxlen=maxlen)
        self._subscribers: list[Callable[[MLOpsEvent], object]] = []
        self._lock = threading.Lock()
        self._seq = 0
        self.subscriber_errors = 0

    def subscribe(self, callback: Callable[[MLOpsEvent], object]) -> None:
        """Call ``callback(event)`` for every later event (from the thread that records it)."""
        if not callable(callback):
            raise InvalidArgumentError("an event subscriber must be callable(event)")
        with self._lock:
            self._subscribers.append(callback)

    def record(
        self, kind: str, message: str, details: dict[str, Any] | None = None, position: int = 0
    ) -> MLOpsEvent:
        """Append an event and hand it to the subscribers."""
        if kind not in EVENT_KINDS:
            raise InvalidArgumentError(f"unknown event kind {kind!r}; kinds are {EVENT_KINDS}")
        with self._lock:
            self._seq += 1
            event = MLOpsEvent(
                self._seq, time.time(), self.customer, kind, message, dict(details or {}), position
            )
            self._events.append(event)
            subscribers = list(self._subscribers)
        log.info("%s", event.narrate())
        for callback in subscribers:
            try:
                callback(event)
            except Exception:
                with self._lock:
                    self.subscriber_errors += 1
                log.exception("MLOps event subscriber %r failed on %s", callback, kind)
        return event

    def events(self, kind: str | None = None) -> list[MLOpsEvent]:
        """The kept events, oldest first (only those of ``kind`` when given)."""
        with self._lock:
            return [e for e in self._events if kind is None or e.kind == kind]

    def kinds(self) -> list[str]:
        """The kinds of the kept events, oldest first."""
        with self._lock:
            return [e.kind for e in self._events]

    def narrate(self) -> str:
        """Every kept event, one line each."""
        return "\n".join(e.narrate() for e in self.events())

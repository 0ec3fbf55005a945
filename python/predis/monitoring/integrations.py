"""The base every push exporter shares (``monitoring_integrations``): periodic collection,
batches, a bounded queue, retry with backoff, and counted drops.

A push exporter runs one daemon thread. Every ``interval`` seconds it collects the
monitor's samples, turns them into counter deltas where the destination wants them, lets
the subclass encode them into one or more wire batches, and queues the batches. It then
sends the queue in order. A failed send is retried with exponential backoff (with jitter,
capped at ``backoff_max``) up to ``max_retries`` times, then dropped and counted; a
destination that refuses for good (a 4xx other than 408/429) is dropped at once. When the
queue is full, the oldest batch is dropped and counted, so memory stays bounded however
long the destination is down.

Nothing here runs on the host's threads, and every error is caught, logged (rate-limited)
and counted: an exporter never blocks or crashes the host. Credentials come only from the
environment.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from predis.errors import InvalidArgumentError, PredisError
from predis.monitoring.metrics import HistogramValue, MetricDef, Sample, sample
from predis.monitoring.monitor import Monitor
from predis.monitoring.sources import CallableSource

__all__ = ["Point", "PushExporter", "PushStats", "SendError", "http_post"]

log = logging.getLogger("predis.monitoring")


class SendError(PredisError):
    """A batch could not be delivered; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Point:
    """A sample as a push exporter sees it: ``delta`` is the change since the previous
    collection for counters (a float) and histograms (a HistogramValue of bucket
    differences); None for gauges and info metrics."""

    metric: MetricDef
    labels: tuple[tuple[str, str], ...]
    value: float | HistogramValue
    delta: float | HistogramValue | None
    start_ns: int  # when this series was first seen by the exporter (cumulative start)
    time_ns: int

    @property
    def label_dict(self) -> dict[str, str]:
        """The labels as a dict."""
        return dict(self.labels)


@dataclass(frozen=True)
class PushStats:
    """A push exporter's counters."""

    collections: int
    batches_sent: int
    batches_dropped: int
    retries: int
    send_errors: int
    points_sent: int
    queued: int


def _hist_delta(now: HistogramValue, before: HistogramValue | None) -> HistogramValue:
    if (
        before is None
        or [b for b, _ in now.buckets] != [b for b, _ in before.buckets]
        or now.count < before.count
    ):
        return now
    buckets = tuple((b, n - m) for (b, n), (_, m) in zip(now.buckets, before.buckets, strict=True))
    return HistogramValue(buckets, now.sum - before.sum)


def http_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    """POST ``body``; the status code on 2xx, :class:`SendError` otherwise (retryable for
    network errors, 408, 429 and 5xx)."""
    if not url.startswith(("http://", "https://")):
        raise SendError(f"endpoint {url[:100]!r} is not an http(s) URL", retryable=False)
    req = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310
    try:
        # The scheme is checked above: http(s) only.
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310  # nosec B310
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        retryable = exc.code in (408, 429) or exc.code >= 500
        raise SendError(f"{url} answered {exc.code} {exc.reason}", retryable) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SendError(f"{url} unreachable: {reason}") from None


class PushExporter(ABC):
    """Base of the push exporters. Subclasses set ``kind`` and implement :meth:`encode`
    and :meth:`send`.

    Args:
        monitor: the sources to push. The exporter adds its own counters to it as the
            ``predis_push_*`` metrics.
        name: this exporter's label (default: ``kind``).
        interval: seconds between collections (default 10).
        max_queue: batches kept while the destination is down; the oldest go first.
        max_retries: send attempts after the first failure before a batch is dropped.
        backoff_initial, backoff_max: the retry delay starts at ``backoff_initial``
            seconds, doubles per failure and never exceeds ``backoff_max``.
        timeout: seconds one send may take.
    """

    kind = "push"

    def __init__(
        self,
        monitor: Monitor,
        *,
        name: str | None = None,
        interval: float = 10.0,
        max_queue: int = 64,
        max_retries: int = 5,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 5.0,
    ) -> None:
        if not isinstance(monitor, Monitor):
            raise InvalidArgumentError("monitor must be a predis.monitoring.Monitor")
        for what, v, lo, hi in (
            ("interval", interval, 0.01, 86400.0),
            ("backoff_initial", backoff_initial, 0.001, 3600.0),
            ("backoff_max", backoff_max, 0.001, 3600.0),
            ("timeout", timeout, 0.01, 600.0),
        ):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise InvalidArgumentError(f"{what} must be a number in [{lo}, {hi}], got {v!r}")
        for what, n, lo in (("max_queue", max_queue, 1), ("max_retries", max_retries, 0)):
            if isinstance(n, bool) or not isinstance(n, int) or not lo <= n <= 1_000_000:
                raise InvalidArgumentError(f"{what} must be an int in [{lo}, 1000000], got {n!r}")
        self.monitor = monitor
        self.name = name or self.kind
        self.interval = float(interval)
        self.max_retries = max_retries
        self.backoff_initial = float(backoff_initial)
        self.backoff_max = float(backoff_max)
        self.timeout = float(timeout)
        self._queue: deque[tuple[Any, int]] = deque()  # (batch, points in it)
        self._max_queue = max_queue
        self._attempts = 0  # failed attempts of the batch at the head of the queue
        self._retry_at = 0.0
        self._previous: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[Any, int]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._counts = dict.fromkeys(
            ("collections", "sent", "dropped", "retries", "errors", "points"), 0
        )
        self._logged_errors = 0
        monitor.add_source(CallableSource(f"push-{self.name}", self._own_samples))

    # ---- subclass interface ----

    @abstractmethod
    def encode(self, points: Sequence[Point]) -> list[tuple[Any, int]]:
        """Wire batches for these points, each within the destination's size limits, as
        (batch, number of points in it) pairs."""

    @abstractmethod
    def send(self, batch: Any) -> None:
        """Deliver one batch; raise :class:`SendError` (or any exception) on failure."""

    # ---- life cycle ----

    def start(self) -> PushExporter:
        """Start the background thread (collects at once, then every ``interval``)."""
        with self._lock:
            if self._thread is not None:
                raise InvalidArgumentError(f"exporter {self.name} is already started")
            self._thread = threading.Thread(
                target=self._run, name=f"predis-push-{self.name}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, flush: bool = True, timeout: float = 10.0) -> None:
        """Stop the thread; with ``flush``, collect once more and try each queued batch once
        (within ``timeout`` seconds) first."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        if flush:
            deadline = time.monotonic() + timeout
            self._safe_collect()
            while self._queue and time.monotonic() < deadline:
                if not self._send_head(final=True):
                    break

    def __enter__(self) -> PushExporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def flush_now(self) -> None:
        """Ask the thread to collect and send now rather than at the next interval."""
        self._wake.set()

    def stats(self) -> PushStats:
        """A copy of the counters."""
        with self._lock:
            c = dict(self._counts)
            queued = len(self._queue)
        return PushStats(
            c["collections"],
            c["sent"],
            c["dropped"],
            c["retries"],
            c["errors"],
            c["points"],
            queued,
        )

    # ---- the loop ----

    def _run(self) -> None:
        next_collect = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_collect or self._wake.is_set():
                self._wake.clear()
                self._safe_collect()
                next_collect = max(next_collect + self.interval, now)
            while self._queue and not self._stop.is_set() and time.monotonic() >= self._retry_at:
                if not self._send_head():
                    break
            wake_at = next_collect
            if self._queue:
                wake_at = min(wake_at, self._retry_at)
            self._wake.wait(max(0.0, wake_at - time.monotonic()))

    def _safe_collect(self) -> None:
        try:
            points = self._points(self.monitor.collect())
            batches = self.encode(points) if points else []
        except Exception:
            self._error("collecting or encoding")
            return
        with self._lock:
            self._counts["collections"] += 1
            for batch, n in batches:
                if len(self._queue) >= self._max_queue:
                    self._queue.popleft()
                    self._counts["dropped"] += 1
                    self._attempts = 0
                self._queue.append((batch, n))

    def _send_head(self, final: bool = False) -> bool:
        with self._lock:
            if not self._queue:
                return True
            batch, n = self._queue[0]
        try:
            self.send(batch)
        except Exception as exc:
            retryable = getattr(exc, "retryable", True)
            with self._lock:
                self._counts["errors"] += 1
                self._attempts += 1
                give_up = final or not retryable or self._attempts > self.max_retries
                if give_up:
                    if self._queue and self._queue[0][0] is batch:
                        self._queue.popleft()
                    self._counts["dropped"] += 1
                    self._attempts = 0
                    self._retry_at = 0.0
                else:
                    self._counts["retries"] += 1
                    delay = min(self.backoff_max, self.backoff_initial * 2 ** (self._attempts - 1))
                    # Backoff jitter, not security.
                    jitter = random.uniform(0.5, 1.0)  # noqa: S311  # nosec B311
                    self._retry_at = time.monotonic() + delay * jitter
            self._error(f"sending to {self.name}", exc)
            return False
        with self._lock:
            if self._queue and self._queue[0][0] is batch:
                self._queue.popleft()
            self._counts["sent"] += 1
            self._counts["points"] += n
            self._attempts = 0
            self._retry_at = 0.0
        return True

    def _error(self, what: str, exc: BaseException | None = None) -> None:
        self._logged_errors += 1
        # Log the first few and then every thousandth: a dead destination must not flood logs.
        if self._logged_errors <= 3 or self._logged_errors % 1000 == 0:
            if exc is None:
                log.exception("predis %s exporter: %s failed", self.name, what)
            else:
                log.warning("predis %s exporter: %s failed: %s", self.name, what, exc)

    def _points(self, samples: list[Sample]) -> list[Point]:
        now = time.time_ns()
        out = []
        for s in samples:
            key = (s.metric.name, s.labels)
            before = self._previous.get(key)
            start = before[1] if before is not None else now
            delta: float | HistogramValue | None = None
            if s.metric.type == "counter" and isinstance(s.value, float):
                prev = before[0] if before is not None else 0.0
                delta = s.value - prev if s.value >= prev else s.value
            elif isinstance(s.value, HistogramValue):
                delta = _hist_delta(s.value, before[0] if before is not None else None)
            self._previous[key] = (s.value, start)
            out.append(Point(s.metric, s.labels, s.value, delta, start, now))
        return out

    def _own_samples(self) -> list[Sample]:
        st = self.stats()
        e = {"exporter": self.name}
        return [
            sample("predis_push_batches_total", st.batches_sent, {**e, "outcome": "sent"}),
            sample("predis_push_batches_total", st.batches_dropped, {**e, "outcome": "dropped"}),
            sample("predis_push_retries_total", st.retries, e),
            sample("predis_push_queue_batches", st.queued, e),
        ]


def chunks(points: Sequence[Point], size: int) -> list[list[Point]]:
    """``points`` in consecutive lists of at most ``size``."""
    return [list(points[i : i + size]) for i in range(0, len(points), size)]


def finite(value: float) -> bool:
    """Whether a value can be sent (no NaN or infinity)."""
    return math.isfinite(value)

"""Automatic retraining: triggers, a worker thread, limits, and the validation gate.

A :class:`Retrainer` trains a challenger prefetch model on the recent demand keys when it is
triggered (a drift event, a schedule, or a manual call), on its own thread: a trigger only
puts a request on a queue, so its cost on the caller's thread is a few microseconds. A
trigger that arrives while a job is queued or running is skipped and recorded.

**Data.** The recent window comes from a :class:`DemandWindow` (the last N demand keys, fed
in memory from the serving path) or a :class:`SegmentWindow` (the collector's sealed,
encrypted segments). The newest ``holdout_fraction`` of it is held out; the rest trains.

**Where it trains.** In-process by default; with ``RetrainConfig.dask_scheduler`` set, on
that Dask cluster with ``xgboost.dask`` (:mod:`predis.mlops.distributed`), from the same
rows. A cluster that cannot be reached fails the job (recorded), not the worker.

**Limits.** :class:`~predis.prefetch.TrainConfig` caps the training rows (``max_rows``), the
trees (``num_trees``) and the time (``time_budget_s``); ``window`` caps the requests read.

**Validation gate, before any traffic** (:func:`validate_challenger`). The champion and the
challenger each replay the held-out slice (after the same warm-up, the slice just before
it) through a fresh cache of the serving size and policy. The challenger passes when

- its demand miss ratio is below the champion's by at least ``min_improvement``,
- its back-end fetches per request are at most ``1 + max_fetch_increase`` times the
  champion's,
- its mean inference time per batch is within ``latency_budget_s``, and
- it passes the schema check: its UBJ bytes load back (:meth:`PrefetchModel.from_bytes`),
  the loaded model scores the slice's candidate rows exactly as the original, its feature
  names are this version's, and its candidate generator is the champion's.

A challenger that passes is registered (metrics: the validation figures) and aliased
``challenger``; one that fails is recorded in the registry's history and the event log,
and dropped.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from predis.errors import InvalidArgumentError, PredisError
from predis.mlops.distributed import make_dask_fit, validate_scheduler_address
from predis.mlops.events import EventLog
from predis.mlops.registry import ModelMeta, ModelRegistry
from predis.prefetch.features import FEATURE_NAMES, candidate_rows
from predis.prefetch.learned import LearnedPrefetcher
from predis.prefetch.model import ModelFormatError, PrefetchModel, TrainConfig, train_model
from predis.prefetch.stats import LatencyHistogram
from predis.security.crypto import KeyRing

__all__ = [
    "RETRAIN_BUCKETS_S",
    "RUN_OUTCOMES",
    "DemandWindow",
    "RecentKeys",
    "RetrainConfig",
    "Retrainer",
    "RetrainingStats",
    "SegmentWindow",
    "TrainingOutcome",
    "ValidationReport",
    "validate_challenger",
]

log = logging.getLogger("predis.mlops")


class DemandWindow:
    """The last ``capacity`` demand keys, in order (a ring buffer; thread-safe).

    Example:
        >>> w = DemandWindow(4)
        >>> w.extend(np.arange(6, dtype=np.uint64))
        >>> w.latest(3).tolist(), w.total
        ([3, 4, 5], 6)
    """

    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise InvalidArgumentError(f"capacity must be an int >= 1, got {capacity!r}")
        self._buf = np.zeros(capacity, dtype=np.uint64)
        self._lock = threading.Lock()
        self.total = 0  # keys ever added

    @property
    def capacity(self) -> int:
        """Keys kept at most."""
        return len(self._buf)

    def extend(self, keys: np.ndarray) -> None:
        """Append keys (oldest first)."""
        added = np.asarray(keys, dtype=np.uint64).ravel()
        count = len(added)
        buf = self._buf
        cap = len(buf)
        kept = added if count <= cap else added[-cap:]  # only the newest `cap` can stay
        n = len(kept)
        with self._lock:
            start = (self.total + count - n) % cap
            end = start + n
            if end <= cap:  # the usual case, a chunk that does not wrap: one copy
                buf[start:end] = kept
            else:
                first = cap - start
                buf[start:] = kept[:first]
                buf[: n - first] = kept[first:]
            self.total += count

    def latest(self, n: int) -> np.ndarray:
        """A copy of the newest ``min(n, held)`` keys, oldest first."""
        with self._lock:
            held = min(self.total, len(self._buf))
            n = max(0, min(int(n), held))
            end = self.total % len(self._buf)
            idx = (np.arange(end - n, end) % len(self._buf)) if n else np.empty(0, np.int64)
            return self._buf[idx].copy()


class SegmentWindow:
    """The newest demand keys from a collector's sealed segments (read back and checked).

    A segment that fails its checks (damaged, truncated, sealed with a key no longer in the
    ring) or that retention removed meanwhile is skipped, logged and counted in
    :attr:`damaged` / :attr:`missing`: one bad file must not stop every later retraining.
    """

    def __init__(self, segments: Callable[[], Iterable[str | os.PathLike[str]]], keys: KeyRing):
        if not callable(segments):
            raise InvalidArgumentError("segments must be callable() -> segment paths, oldest first")
        self._segments = segments
        self._keys = keys
        self.damaged = 0
        self.missing = 0
        self._reported: set[Path] = set()

    def latest(self, n: int) -> np.ndarray:
        """Up to ``n`` newest demand keys, oldest first (reads only the segments needed)."""
        from predis.mlops.segments import SegmentError  # noqa: PLC0415 - imports mlops
        from predis.prefetch.data import keys_from_segments  # noqa: PLC0415 - imports mlops

        paths = [Path(p) for p in self._segments()]
        parts: list[np.ndarray] = []
        held = 0
        for path in reversed(paths):
            if held >= n:
                break
            try:
                k = keys_from_segments([path], self._keys)
            except FileNotFoundError:
                self.missing += 1
                continue
            except SegmentError as exc:
                self.damaged += 1
                if path not in self._reported:  # once per file, not once per retraining
                    self._reported.add(path)
                    log.error("training skips a damaged segment: %s", exc)
                continue
            parts.append(k)
            held += len(k)
        if not parts:
            return np.empty(0, dtype=np.uint64)
        return np.concatenate(parts[::-1])[-n:] if n > 0 else np.empty(0, dtype=np.uint64)


def _positive(name: str, value: object, lo: float, hi: float, integer: bool = False) -> None:
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (isinstance(value, int) or not integer)
        and lo <= value <= hi
    )
    if not ok:
        raise InvalidArgumentError(f"RetrainConfig.{name} must be in [{lo}, {hi}], got {value!r}")


@dataclass(frozen=True)
class RetrainConfig:
    """How challengers are trained and gated.

    Attributes:
        train: the training limits (rows, trees, time budget) and model settings; its
            ``batch_size`` must be the serving prefetcher's.
        cache_items: the serving cache's ``max_items`` (training drops rows the cache would
            hold, and validation replays through a cache this size).
        policy: the serving cache's eviction policy.
        window: the most recent demand requests a challenger learns from.
        min_window: fewer recent requests than this: no training (a drift trigger waits for
            this many requests after the drift before training).
        holdout_fraction: the newest share of the window, held out for the validation gate.
        min_improvement: the challenger's demand miss ratio must be below the champion's by
            at least this much (absolute).
        max_fetch_increase: its back-end fetches per request may exceed the champion's by
            this share at most.
        latency_budget_s: its mean inference time per batch, at most.
        every_requests: schedule: retrain after this many requests since the last training
            (None: no request schedule).
        every_s: schedule: retrain after this many seconds since the last training (None:
            no time schedule).
        dask_scheduler: the address of a Dask scheduler (``tcp://host:8786``) to train on
            with ``xgboost.dask`` (the ``distributed`` extra); None (the default) trains
            in-process. The rows, the gate and the registry are the same either way.
        dask_timeout_s: seconds to wait for the Dask scheduler to answer.
    """

    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(num_trees=60, max_rows=200_000, time_budget_s=30.0)
    )
    cache_items: int = 10_000
    policy: str = "lru"
    window: int = 100_000
    min_window: int = 10_000
    holdout_fraction: float = 0.3
    min_improvement: float = 0.0
    max_fetch_increase: float = 0.25
    latency_budget_s: float = 0.005
    every_requests: int | None = None
    every_s: float | None = None
    dask_scheduler: str | None = None
    dask_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not isinstance(self.train, TrainConfig):
            raise InvalidArgumentError("RetrainConfig.train must be a TrainConfig")
        if self.policy not in ("lru", "lfu"):
            raise InvalidArgumentError(
                f"RetrainConfig.policy must be lru or lfu, got {self.policy!r}"
            )
        _positive("cache_items", self.cache_items, 1, 10**10, integer=True)
        _positive("min_window", self.min_window, 2_000, 10**9, integer=True)
        _positive("window", self.window, self.min_window, 10**9, integer=True)
        _positive("holdout_fraction", self.holdout_fraction, 0.05, 0.5)
        _positive("min_improvement", self.min_improvement, 0.0, 1.0)
        _positive("max_fetch_increase", self.max_fetch_increase, 0.0, 100.0)
        _positive("latency_budget_s", self.latency_budget_s, 1e-6, 10.0)
        if self.every_requests is not None:
            _positive("every_requests", self.every_requests, 1_000, 10**12, integer=True)
        if self.every_s is not None:
            _positive("every_s", self.every_s, 1.0, 10**8)
        if self.dask_scheduler is not None:
            validate_scheduler_address(self.dask_scheduler)
        _positive("dask_timeout_s", self.dask_timeout_s, 0.1, 3600.0)


@dataclass(frozen=True)
class ValidationReport:
    """The validation gate's figures and verdict."""

    passed: bool
    reasons: tuple[str, ...]  # why it failed (empty when it passed)
    champion_miss_ratio: float
    challenger_miss_ratio: float
    champion_fetches_per_request: float
    challenger_fetches_per_request: float
    challenger_inference_s: float  # mean per batch
    requests: int
    schema_ok: bool

    def metrics(self) -> dict[str, float]:
        """The figures as registry metrics."""
        return {
            "val_champion_miss_ratio": self.champion_miss_ratio,
            "val_miss_ratio": self.challenger_miss_ratio,
            "val_champion_fetches_per_request": self.champion_fetches_per_request,
            "val_fetches_per_request": self.challenger_fetches_per_request,
            "val_inference_s": self.challenger_inference_s,
            "val_requests": float(self.requests),
        }


def _schema_problems(
    challenger: PrefetchModel, champion: PrefetchModel | None, sample: np.ndarray
) -> list[str]:
    problems = []
    try:
        loaded = PrefetchModel.from_bytes(challenger.to_bytes())
    except ModelFormatError as exc:
        return [f"schema: the model's bytes do not load back ({exc})"]
    if champion is not None and loaded.tracker != champion.tracker:
        problems.append("schema: the candidate generator differs from the champion's")
    if (loaded.horizon, loaded.batch_size, loaded.threshold) != (
        challenger.horizon,
        challenger.batch_size,
        challenger.threshold,
    ):
        problems.append("schema: horizon, batch size or threshold changed in the round trip")
    _, _, feat = candidate_rows(sample, loaded.tracker, loaded.batch_size)
    feat = feat[:2000]
    if len(feat) and not np.allclose(loaded.predict(feat), challenger.predict(feat), atol=1e-6):
        problems.append("schema: the loaded model scores differently from the trained one")
    if feat.shape[1] != len(FEATURE_NAMES):
        problems.append("schema: the feature rows do not match the feature names")
    return problems


def validate_challenger(
    challenger: PrefetchModel,
    champion: PrefetchModel | None,
    holdout: np.ndarray,
    warmup: np.ndarray,
    config: RetrainConfig,
) -> ValidationReport:
    """Replay ``holdout`` (after ``warmup``) with each model and apply the gate. Without a
    champion the baseline is the same cache without prefetching."""
    from predis.sim.hitrate import predis_cache  # noqa: PLC0415 - sim imports the cache
    from predis.sim.replay import replay  # noqa: PLC0415

    holdout = np.ascontiguousarray(holdout, dtype=np.uint64)
    warmup = np.ascontiguousarray(warmup, dtype=np.uint64)
    if len(holdout) < 100:
        raise InvalidArgumentError("the held-out slice needs at least 100 requests")

    def run(model: PrefetchModel | None) -> tuple[float, float, float]:
        cache = predis_cache(config.cache_items, config.policy)
        p = None if model is None else LearnedPrefetcher(model, batch_size=model.batch_size)
        r = replay([holdout], cache, prefetcher=p, warmup=warmup)
        mean_s = 0.0
        if p is not None:
            _, batches, seconds = p.latency.snapshot()
            mean_s = seconds / batches if batches else 0.0
        return r.miss_ratio, r.fetches_per_request, mean_s

    base_miss, base_fetch, _ = run(champion)
    miss, fetch, infer_s = run(challenger)
    reasons = _schema_problems(challenger, champion, holdout[: min(len(holdout), 4000)])
    schema_ok = not reasons
    if not miss <= base_miss - config.min_improvement or miss >= base_miss:
        reasons.append(
            f"demand miss ratio {miss:.4f} does not beat the champion's {base_miss:.4f}"
            + (f" by {config.min_improvement}" if config.min_improvement else "")
        )
    limit = base_fetch * (1 + config.max_fetch_increase)
    if fetch > limit:
        reasons.append(
            f"back-end fetches {fetch:.3f}/request over the limit {limit:.3f} "
            f"(champion {base_fetch:.3f})"
        )
    if infer_s > config.latency_budget_s:
        reasons.append(
            f"inference {1e6 * infer_s:.0f} us/batch over the budget "
            f"{1e6 * config.latency_budget_s:.0f} us"
        )
    return ValidationReport(
        passed=not reasons,
        reasons=tuple(reasons),
        champion_miss_ratio=base_miss,
        challenger_miss_ratio=miss,
        champion_fetches_per_request=base_fetch,
        challenger_fetches_per_request=fetch,
        challenger_inference_s=infer_s,
        requests=len(holdout),
        schema_ok=schema_ok,
    )


@dataclass(frozen=True)
class TrainingOutcome:
    """What one retraining job produced: a registered challenger, or why not."""

    trigger: str
    registered: ModelMeta | None
    model: PrefetchModel | None
    report: ValidationReport | None
    error: str | None = None


#: How many of the latest :class:`TrainingOutcome` a :class:`Retrainer` keeps in ``outcomes``.
OUTCOMES_KEPT = 16
#: Upper bounds (seconds) of the retraining-duration histogram; the last bucket is +inf.
RETRAIN_BUCKETS_S: tuple[float, ...] = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
#: How a retraining job ended: a challenger registered, dropped by the validation gate, or
#: no challenger at all (too little data, training raised, stopped).
RUN_OUTCOMES = ("registered", "rejected", "failed")


def run_outcome(outcome: TrainingOutcome) -> str:
    """The :data:`RUN_OUTCOMES` entry of one job."""
    if outcome.registered is not None:
        return "registered"
    if outcome.report is not None and not outcome.report.passed:
        return "rejected"
    return "failed"


@dataclass(frozen=True)
class RetrainingStats:
    """A snapshot of a :class:`Retrainer`'s jobs since it was created.

    Attributes:
        runs: finished jobs by :data:`RUN_OUTCOMES` entry.
        skipped: triggers dropped because a job was queued or running.
        duration_buckets: (upper bound s, cumulative count) pairs ending with (inf, jobs).
        duration_seconds_total: summed job durations.
        last_run_unix: wall-clock end of the latest job (None before the first).
        busy: whether a job is queued or running now.
    """

    runs: dict[str, int]
    skipped: int
    duration_buckets: tuple[tuple[float, int], ...]
    duration_seconds_total: float
    last_run_unix: float | None
    busy: bool


class RecentKeys(Protocol):
    """Where the recent window comes from (:class:`DemandWindow`, :class:`SegmentWindow`)."""

    def latest(self, n: int) -> np.ndarray:
        """Up to ``n`` newest demand keys, oldest first."""
        ...


class Retrainer:
    """Trains and gates challengers on a worker thread.

    Args:
        registry: the customer's model registry (challengers are registered there).
        window: a :class:`DemandWindow` or :class:`SegmentWindow` (anything with
            ``latest(n)``).
        config: limits and the gate.
        events: the event log to record in (a fresh one when None).
        champion: returns the champion's model (None: no champion, compare with no
            prefetching); read when a job starts.
        on_outcome: called with every job's :class:`TrainingOutcome` (a registered
            challenger, a dropped one, or an error), on the worker thread.
        position: returns the serving position (requests seen) for the event log.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        window: RecentKeys,
        config: RetrainConfig,
        *,
        events: EventLog | None = None,
        champion: Callable[[], PrefetchModel | None] | None = None,
        on_outcome: Callable[[TrainingOutcome], object] | None = None,
        position: Callable[[], int] | None = None,
    ) -> None:
        if not isinstance(registry, ModelRegistry):
            raise InvalidArgumentError("registry must be a ModelRegistry")
        if not callable(getattr(window, "latest", None)):
            raise InvalidArgumentError("window must have latest(n) (DemandWindow, SegmentWindow)")
        if not isinstance(config, RetrainConfig):
            raise InvalidArgumentError("config must be a RetrainConfig")
        for name, fn in (("champion", champion), ("on_outcome", on_outcome)):
            if fn is not None and not callable(fn):
                raise InvalidArgumentError(f"{name} must be callable")
        self.registry = registry
        self.window = window
        self.config = config
        self.events = events if events is not None else EventLog(registry.customer)
        self._champion = champion or (lambda: None)
        self._on_outcome = on_outcome
        self._position = position or (lambda: 0)
        self._queue: queue.Queue[tuple[str, int, dict[str, Any]] | None] = queue.Queue()
        self._busy = threading.Event()  # a job is queued or running
        self._idle = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The latest outcomes only: each holds its model, and a loop that retrains for
        # weeks must not keep every model it ever trained (the soak found this).
        self.outcomes: deque[TrainingOutcome] = deque(maxlen=OUTCOMES_KEPT)
        self.skipped = 0
        self._runs = dict.fromkeys(RUN_OUTCOMES, 0)
        self._durations = LatencyHistogram(RETRAIN_BUCKETS_S)
        self._last_run_unix: float | None = None
        self._stats_lock = threading.Lock()
        self._last_train_time = time.monotonic()
        self._last_train_position = 0

    # ---- lifecycle ----

    def start(self) -> Retrainer:
        """Start the worker thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="predis-retrain", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 30.0) -> None:
        """Stop training (after the current tree) and the worker."""
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def busy(self) -> bool:
        """Whether a job is queued or running."""
        return self._busy.is_set()

    def wait_idle(self, timeout: float = 120.0) -> bool:
        """Wait until no job is queued or running; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.05))
        return True

    # ---- triggers ----

    def trigger(self, reason: str, requests: int | None = None, **details: Any) -> bool:
        """Ask for a challenger trained on the newest ``requests`` demand keys (default: the
        configured window). Never blocks: False (and recorded as skipped) when a job is
        already queued or running."""
        if self._busy.is_set():
            self.skipped += 1
            self._queue.put(("skip", 0, {"reason": reason, **details}))
            return False
        self._busy.set()
        n = self.config.window if requests is None else min(int(requests), self.config.window)
        self._queue.put((reason, n, details))
        return True

    def due(self, position: int) -> str | None:
        """The schedule's trigger reason when a scheduled retrain is due at ``position``."""
        c = self.config
        if (
            c.every_requests is not None
            and position - self._last_train_position >= c.every_requests
        ):
            return f"schedule: {c.every_requests:,} requests since the last training"
        if c.every_s is not None and time.monotonic() - self._last_train_time >= c.every_s:
            return f"schedule: {c.every_s:g} s since the last training"
        return None

    # ---- the worker ----

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or self._stop.is_set():
                self._done()
                return
            reason, n, details = item
            if reason == "skip":
                self.events.record(
                    "retrain-skipped",
                    f"trigger ({details.get('reason')}) skipped: a retraining is in progress",
                    details,
                    self._position(),
                )
                self._done()
                continue
            started = time.monotonic()
            try:
                outcome = self.run_job(reason, n, details)
            except Exception as exc:  # the worker outlives any job
                log.exception("retraining job failed")
                self.events.record("error", f"retraining job failed: {exc!r}", {}, self._position())
                outcome = TrainingOutcome(reason, None, None, None, repr(exc))
            self._durations.observe(time.monotonic() - started)
            with self._stats_lock:
                self._runs[run_outcome(outcome)] += 1
                self._last_run_unix = time.time()
            self.outcomes.append(outcome)
            try:
                if self._on_outcome is not None:
                    self._on_outcome(outcome)
            except Exception as exc:
                log.exception("retraining outcome callback failed")
                self.events.record(
                    "error", f"outcome callback failed: {exc!r}", {}, self._position()
                )
            finally:
                self._done()

    def stats(self) -> RetrainingStats:
        """Jobs by outcome, their durations and the latest one's end (for monitoring)."""
        buckets, _, total = self._durations.snapshot()
        with self._stats_lock:
            runs, last = dict(self._runs), self._last_run_unix
        return RetrainingStats(runs, self.skipped, buckets, total, last, self.busy)

    def _done(self) -> None:
        with self._idle:
            if self._queue.empty():
                self._busy.clear()
            self._idle.notify_all()

    def run_job(self, reason: str, requests: int, details: dict[str, Any]) -> TrainingOutcome:
        """Train, gate, and register or drop one challenger (on the calling thread)."""
        c = self.config
        position = self._position()
        self._last_train_time, self._last_train_position = time.monotonic(), position
        t0 = time.time_ns()
        keys = self.window.latest(requests)
        if len(keys) < c.min_window:
            msg = f"{len(keys):,} recent requests, fewer than min_window={c.min_window:,}"
            self.events.record("retrain-failed", msg, {"trigger": reason}, position)
            return TrainingOutcome(reason, None, None, None, msg)
        n_hold = max(100, math.floor(len(keys) * c.holdout_fraction))
        train_keys, holdout = keys[:-n_hold], keys[-n_hold:]
        warmup = train_keys[-min(len(train_keys), n_hold) :]
        self.events.record(
            "retrain-started",
            f"training a challenger on {len(train_keys):,} requests ({reason})",
            {"trigger": reason, "train_requests": len(train_keys), "holdout": n_hold, **details},
            position,
        )
        champion = self._champion()
        tracker = champion.tracker if champion is not None else None
        try:
            model = train_model(
                train_keys,
                c.train,
                tracker,
                cache_items=c.cache_items,
                policy=c.policy,
                stop=self._stop,
                fit=None
                if c.dask_scheduler is None
                else make_dask_fit(c.dask_scheduler, timeout_s=c.dask_timeout_s),
            )
        except PredisError as exc:
            self.events.record(
                "retrain-failed", f"training failed: {exc}", {"trigger": reason}, position
            )
            return TrainingOutcome(reason, None, None, None, str(exc))
        if self._stop.is_set():  # closed mid-training: no half-trained challenger goes on
            msg = "stopped: the retrainer was closed during training"
            self.events.record("retrain-failed", msg, {"trigger": reason}, position)
            return TrainingOutcome(reason, None, None, None, msg)
        report = validate_challenger(model, champion, holdout, warmup, c)
        figures = {**model.metrics, **report.metrics()}
        if not report.passed:
            why = "; ".join(report.reasons)
            self.registry.record(
                "validation-failed", actor="retrainer", reason=why, details=figures
            )
            self.events.record(
                "validation-failed",
                f"challenger dropped: {why}",
                {"trigger": reason, **figures},
                self._position(),
            )
            return TrainingOutcome(reason, None, model, report)
        parent = self.registry.aliases().get("champion")
        meta = self.registry.register(
            model.to_bytes(),
            feature_schema=FEATURE_NAMES,
            training_window=(t0, time.time_ns()),
            metrics=figures,
            parent=parent,
            actor="retrainer",
        )
        self.registry.promote(
            meta.version,
            "challenger",
            actor="retrainer",
            reason=(
                f"{reason}; validation: miss ratio {report.challenger_miss_ratio:.4f} vs "
                f"{report.champion_miss_ratio:.4f}"
            ),
        )
        self.events.record(
            "challenger-registered",
            f"version {meta.version} passed validation: miss ratio "
            f"{report.challenger_miss_ratio:.4f} vs the champion's "
            f"{report.champion_miss_ratio:.4f}, "
            f"{report.challenger_fetches_per_request:.3f} fetches/request",
            {"trigger": reason, "version": meta.version, **figures},
            self._position(),
        )
        return TrainingOutcome(reason, meta, model, report)

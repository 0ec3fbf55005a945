"""The MLOps loop for one customer: drift → retraining → validation → A/B → promote or roll back.

:class:`MLOpsLoop` owns an :class:`~predis.mlops.router.ABRouter` (give it to the cache as
its prefetcher, or to :func:`predis.sim.replay`), a stream drift detector on the demand
hit/miss bits, a :class:`~predis.mlops.retraining.Retrainer`, and an actions thread that
changes the registry and the router's roles. Its states::

    serving ──drift (hit rate fell) / schedule / trigger()──▶ training
    training ──challenger registered──▶ testing ──promote──▶ watching ──pass──▶ serving
        │                                  └──stop──▶ serving         └──rollback──▶ serving
        └──validation failed / training failed──▶ serving (drift cool-down)

What runs beside serving is bookkeeping. Serving a live cache, the prefetch runtime calls
the roles' models directly (the champion, or during a test or a watch both arms), and the
router's own thread takes the cache's demand stream from a native tap every
``stream_every`` requests (or after ``max_hold_s``), counts it and hands it on; during a
test or a watch it also counts the arms at each look in between (every ``decide_every``
requests at first, then further apart as the test grows), leaving the requests in the tap
for the next chunk, and steps the test's mSPRT there itself, natively (the loop arms it
with a ``LookPlan``); it tells the loop (``_on_counts``) only when the test may decide,
reaches its horizon or budget. Driven batch by batch (a replay),
the router holds each batch and every ``listen_every`` requests (at each look during a
test or a watch) hands the chunk on.
Either way the listener here extends the recent window, feeds the chunk's hit bits to the
native ADWIN (the GIL released) and checks the schedule, or looks at the running test's
decision.
A confirmed drift or a decision only puts a request on a queue; the training, the
registry's fsynced writes and the event subscribers run on the loop's own threads.

Every step is recorded in :attr:`MLOpsLoop.events` (an :class:`~predis.mlops.events.EventLog`
with subscribers, e.g. to narrate a demo) and, for alias changes, in the registry's history.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from predis.errors import InvalidArgumentError, PredisError
from predis.mlops.decisions import ABConfig, ABTest, Decision, RollbackWatch
from predis.mlops.drift import DriftEvent, StreamDriftDetector
from predis.mlops.events import EventLog
from predis.mlops.registry import ModelRegistry
from predis.mlops.retraining import (
    DemandWindow,
    RecentKeys,
    RetrainConfig,
    Retrainer,
    TrainingOutcome,
)
from predis.mlops.router import ABRouter, LookPlan, Roles
from predis.prefetch.learned import LearnedPrefetcher
from predis.prefetch.model import PrefetchModel

__all__ = ["LoopConfig", "MLOpsLoop"]

log = logging.getLogger("predis.mlops")

STATES = ("serving", "training", "testing", "watching")

#: Once a test or a watch has run a while, it is looked at every LOOK_GROWTH-th of the
#: requests it has seen (see ``LoopConfig.decide_every``): past ``LOOK_GROWTH *
#: decide_every`` requests, a decision comes at most an eighth of its sample later than
#: with a look after every request (``decide_every`` requests before that).
LOOK_GROWTH = 8


@dataclass(frozen=True)
class LoopConfig:
    """The whole loop's settings.

    Attributes:
        retrain: training limits, the validation gate and the schedule.
        ab: the A/B test and the rollback watch.
        drift_delta: ADWIN's confidence parameter on the hit/miss stream.
        drift_block: hit/miss bits per ADWIN insertion (exact counts and variance per
            block; see :class:`~predis.mlops.drift.StreamDriftDetector`).
        drift_clock: ADWIN insertions between two tests of its window.
        listen_every: requests the router gathers between experiments before it hands
            them to the loop (the window, the detector and the schedule run once per such
            chunk; the per-batch work on the serving thread is then a few attribute
            updates). During a test or a watch the chunks end at its looks (see
            ``decide_every``).
        stream_every: the same for a live cache's router, which takes the cache's demand
            stream on its own thread (between experiments; during a test or a watch the
            chunks end at its looks; see :meth:`~predis.mlops.router.ABRouter.attach`).
        drift_warmup: requests served before drift counts (the cache fills up first).
        drift_cooldown: requests after a retraining or a role change during which drift
            does not trigger (the hit rate moves because of the change itself).
        degradation_only: trigger only on drift where the hit rate fell, by at least
            ``min_drop`` (absolute) from the detector's mean before the change.
        min_drop: see ``degradation_only``.
        decide_every: requests between the first looks at a running test or watch;
            once it has seen ``8 * decide_every`` requests, the looks come every eighth
            of its requests so far (``LOOK_GROWTH``), up to ``stream_every``. The
            sequential test stays valid however often it is looked at. Serving a live
            cache, the looks that go on are the router's own, native ones (a
            :class:`~predis.mlops.router.LookPlan`): a look between chunks holds the GIL
            for about 19,000 instructions (one native call counts the arms and steps the
            mSPRT; this loop is called only when the test may decide), and one that also
            takes a chunk for the listeners (every ``stream_every``) about 111,000
            (bench/callgrind/look_cost.py), so a test's first 32,768 requests cost about
            13 instructions a request, while a decision comes at most ``decide_every``
            requests, or an eighth of its sample (up to ``stream_every``), later than with
            a look after every request. At a cache's pace, 4,096 requests are
            milliseconds; the first look comes about when the smaller arm of a default
            test (a quarter of the keys) reaches ``min_requests``, before which no look
            can decide.
        warm_requests: recent requests a new challenger's candidate generator learns from
            before it serves (so it does not start cold against the champion).
    """

    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    ab: ABConfig = field(default_factory=ABConfig)
    drift_delta: float = 0.002
    drift_block: int = 64
    drift_clock: int = 4
    listen_every: int = 1024
    stream_every: int = 16_384
    drift_warmup: int = 5_000
    drift_cooldown: int = 10_000
    degradation_only: bool = True
    min_drop: float = 0.02
    decide_every: int = 4096
    warm_requests: int = 20_000

    def __post_init__(self) -> None:
        if not isinstance(self.retrain, RetrainConfig) or not isinstance(self.ab, ABConfig):
            raise InvalidArgumentError("LoopConfig needs a RetrainConfig and an ABConfig")
        if not 0 < self.drift_delta < 1:
            raise InvalidArgumentError(f"drift_delta must be in (0, 1), got {self.drift_delta!r}")
        for name in ("drift_warmup", "drift_cooldown", "decide_every", "warm_requests"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 10**12:
                raise InvalidArgumentError(f"LoopConfig.{name} must be an int >= 0, got {v!r}")
        if not 0 <= self.min_drop < 1:
            raise InvalidArgumentError(
                f"LoopConfig.min_drop must be in [0, 1), got {self.min_drop!r}"
            )
        if self.decide_every < 1:
            raise InvalidArgumentError("LoopConfig.decide_every must be >= 1")
        for name, hi in (
            ("drift_block", 4096),
            ("drift_clock", 4096),
            ("listen_every", 1 << 20),
            ("stream_every", 1 << 20),
            ("decide_every", 1 << 20),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
                raise InvalidArgumentError(
                    f"LoopConfig.{name} must be an int in [1, {hi}], got {v!r}"
                )


class MLOpsLoop:
    """Keeps one customer's prefetch model healthy without a human in the loop.

    Args:
        registry: the customer's registry; its ``champion`` (if any) serves first.
        config: the loop's settings.
        window: where training data comes from (default: an in-memory
            :class:`DemandWindow` of ``config.retrain.window`` keys fed by the router; give
            a :class:`~predis.mlops.retraining.SegmentWindow` to train from the collector's
            segments).
        max_per_request: the router's prefetch budget per demand request.

    Example (live)::

        loop = MLOpsLoop(ModelRegistry(root, "acme"), LoopConfig()).start()
        cache = predis.Cache(1 << 30, loader=load, prefetcher=loop.router)
        loop.events.subscribe(lambda e: print(e.narrate()))
    """

    def __init__(
        self,
        registry: ModelRegistry,
        config: LoopConfig | None = None,
        *,
        window: RecentKeys | None = None,
        max_per_request: float = 2.0,
    ) -> None:
        if not isinstance(registry, ModelRegistry):
            raise InvalidArgumentError("registry must be a ModelRegistry")
        self.config = config or LoopConfig()
        if not isinstance(self.config, LoopConfig):
            raise InvalidArgumentError("config must be a LoopConfig")
        self.registry = registry
        self.events = EventLog(registry.customer)
        batch = self.config.retrain.train.batch_size
        champion_model, unloadable = None, None
        if registry.aliases()["champion"]:
            # A champion that fails its checksum or its format must not stop the host from
            # starting: serve without prefetching and let retraining produce a new one.
            try:
                champion_model = self._load("champion")
            except PredisError as exc:
                unloadable = exc
        if champion_model is not None and champion_model.batch_size != batch:
            raise InvalidArgumentError(
                f"the champion serves batches of {champion_model.batch_size}; "
                f"RetrainConfig.train.batch_size is {batch}: make them equal"
            )
        self.router = ABRouter(
            LearnedPrefetcher(champion_model, batch_size=batch),
            max_per_request=max_per_request,
            listen_every=self.config.listen_every,
            look_every=self.config.decide_every,
            stream_every=self.config.stream_every,
            experiment_scoring=self.config.ab.experiment_scoring,
        )
        self._own_window = window is None
        self.window: RecentKeys = (
            DemandWindow(self.config.retrain.window) if window is None else window
        )
        self.retrainer = Retrainer(
            registry,
            self.window,
            self.config.retrain,
            events=self.events,
            champion=lambda: self.router.champion.model,
            on_outcome=self._on_outcome,
            position=lambda: self.router.requests,
        )
        self._lock = threading.Lock()
        self.state = "serving"
        self._quiet_until = self.config.drift_warmup
        self._pending_drift: int | None = None  # position of a drift waiting for data
        self._next_look = 0
        self._looks_from = 0  # where the running test or watch began
        self._test: ABTest | None = None
        self._watch: RollbackWatch | None = None
        self._versions: dict[str, int | None] = {"challenger": None}
        self._actions: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._actions_busy = 0
        self._actions_idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.drift_events: list[DriftEvent] = []
        self._batch_mean = 0.0  # the detector's mean before the chunk being fed
        # While a chunk is fed to the detector: (requests before it, detector bits before it).
        self._feeding: tuple[int, int] | None = None
        self._new_detector()
        self.router.subscribe(self._on_batch)
        self.router.subscribe_counts(self._on_counts)
        if unloadable is not None:
            version = registry.aliases()["champion"]
            log.error("champion version %s cannot be loaded: %s", version, unloadable)
            self.events.record(
                "error",
                f"champion version {version} cannot be loaded ({unloadable}); serving without "
                "prefetching until a retrained challenger is promoted, or an operator rolls back",
                {"version": version, "error": str(unloadable)},
                0,
            )

    # ---- lifecycle ----

    def start(self) -> MLOpsLoop:
        """Start the retraining worker and the actions thread."""
        self._closed = False
        self.retrainer.start()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run_actions, name="predis-mlops", daemon=True
            )
            self._thread.start()
        return self

    def close(self, timeout: float = 30.0) -> None:
        """Stop both threads (training stops after its current tree). The router keeps
        serving the champion (and any arm in place) without the loop acting on it."""
        self._closed = True
        self.router.arm_looks(None)
        self.retrainer.close(timeout)
        self._actions.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> MLOpsLoop:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def experiment(self) -> ABTest | RollbackWatch | None:
        """The A/B test or rollback watch under way, or None while serving or training."""
        return self._test if self._test is not None else self._watch

    def wait_idle(self, timeout: float = 300.0) -> bool:
        """Wait until no training job and no action is queued or running (for replays and
        tests that step the stream in chunks); False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.retrainer.wait_idle(max(0.0, deadline - time.monotonic())):
                return False
            with self._actions_idle:
                while self._actions_busy:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._actions_idle.wait(min(left, 0.05))
            if not self.retrainer.busy:
                return True

    # ---- triggers ----

    def trigger(self, reason: str = "manual") -> bool:
        """Retrain now on the recent window (False if a job is already running)."""
        with self._lock:
            if self.state != "serving":
                self._queue("skip", {"reason": reason, "state": self.state})
                return False
            return self._start_training(reason, None)

    def force_promote(self, version: int, reason: str) -> None:
        """Make ``version`` the champion now, without an A/B test (an operator's call), and
        watch it against the current champion like any promotion. Runs on the actions
        thread; :meth:`wait_idle` waits for it."""
        self._queue("force", {"version": version, "reason": reason})

    # ---- the serving-thread path ----

    def _new_detector(self) -> None:
        c = self.config
        self.detector = StreamDriftDetector(
            "demand-hit", delta=c.drift_delta, block=c.drift_block, clock=c.drift_clock
        )
        self.detector.subscribe(self.on_drift)

    def _on_batch(self, router: ABRouter, keys: np.ndarray, hits: np.ndarray) -> None:
        if self._closed:
            return
        if self._own_window:
            self.window.extend(keys)  # type: ignore[attr-defined]
        position = router.released  # this chunk's end
        state = self.state
        if state == "serving":
            self._batch_mean = self.detector.mean
            # A drift the detector finds in this chunk is placed at its own request, not at
            # the chunk's end (on_drift reads this while update_many runs).
            self._feeding = (position - len(keys), self.detector.position)
            try:
                self.detector.update_many(hits)
            finally:
                self._feeding = None
            self._check_schedule(position)
        elif state in ("testing", "watching") and position >= self._next_look:
            self._look_at(router, state, position)

    def _on_counts(self, router: ABRouter, position: int) -> None:
        """The router counted the arms up to ``position`` between two chunks (serving a live
        cache during a test or a watch): a look, if one is due."""
        state = self.state
        if not self._closed and state in ("testing", "watching") and position >= self._next_look:
            self._look_at(router, state, position)

    def _look_at(self, router: ABRouter, state: str, position: int) -> None:
        with self._lock:  # the actions thread may have started another test or watch
            if self.state != state or position < self._next_look:
                return
            self._plan_next_look(position)
        self._look(router.roles, state)

    def on_drift(self, event: DriftEvent) -> None:
        """Take a confirmed drift: from the loop's own hit/miss detector, or from any other
        detector subscribed here (``FeatureDriftDetector``, ``PopularityDriftDetector``).
        Retraining starts once ``min_window`` requests have come after it. Ignored while
        the loop is busy, cooling down, or (performance drift) when the hit rate rose."""
        position = self.router.requests
        feeding = self._feeding
        if feeding is not None and event.source == self.detector.source:
            chunk_start, bits_before = feeding
            position = chunk_start + (event.position - bits_before)
        fell = True
        if event.kind == "performance" and self.config.degradation_only:
            fell = event.statistics.get("mean", 0.0) <= self._batch_mean - self.config.min_drop
        if (
            self.state != "serving"
            or position < self._quiet_until
            or self._pending_drift is not None
            or not fell
        ):
            return
        self.drift_events.append(event)
        self._pending_drift = position
        self._queue("drift", {"event": event, "position": position, "before": self._batch_mean})

    def _check_schedule(self, position: int) -> None:
        pending = self._pending_drift
        if pending is not None:
            since = position - pending
            if since >= self.config.retrain.min_window:
                with self._lock:
                    self._pending_drift = None
                    self._start_training(f"drift at request {pending:,}", since)
            return
        reason = self.retrainer.due(position)
        if reason is not None:
            with self._lock:
                self._start_training(reason, None)

    def _start_training(self, reason: str, requests: int | None) -> bool:
        if not self.retrainer.trigger(reason, requests):
            return False
        self.state = "training"
        return True

    def _plan_first_look(self, position: int) -> None:
        """A test or a watch starts at ``position``: its first look comes ``decide_every``
        requests on (the router's chunks follow the looks)."""
        every = self.config.decide_every
        self._looks_from = position
        self._next_look = position + every
        self.router.look_every = every

    def _plan_next_look(self, position: int) -> None:
        """The look after the one at ``position`` (called holding the loop's lock):
        ``decide_every`` requests on, or once the test has run longer, a
        ``LOOK_GROWTH``-th of its requests so far, up to ``stream_every``. The mSPRT
        stays valid whenever it is looked at; a decision comes at most that share of
        its sample late, and the looks' cost per request falls as the test grows (see
        ``decide_every``)."""
        c = self.config
        grown = min((position - self._looks_from) // LOOK_GROWTH, c.stream_every)
        every = max(c.decide_every, grown)
        self._next_look = position + every
        self.router.look_every = every

    def _look(self, roles: Roles, state: str) -> None:
        # verdict(): most looks continue, and a decision to continue needs no statistics.
        if state == "testing" and self._test is not None:
            decision = self._test.verdict(roles.champion_stats, roles.other_stats)
        elif state == "watching" and self._watch is not None:
            decision = self._watch.verdict(roles.other_stats, roles.champion_stats)
        else:
            return
        if decision is not None:
            self.router.arm_looks(None)  # no native look goes on with a decision pending
            self.state = f"{state}:deciding"  # no second decision while this one is applied
            self._queue(state, {"decision": decision, "roles": roles})

    def _arm_looks(self, roles: Roles, running: ABTest | RollbackWatch) -> None:
        """Let the router's thread do the looks at ``running`` that go on (most of them)
        natively, while ``roles`` are served: this loop is told only of the looks that may
        decide, and looks at those itself, on the same counts."""
        m = running._msprt
        ab = self.config.ab
        test = isinstance(running, ABTest)
        self.router.arm_looks(
            LookPlan(
                roles,
                null_difference=m.null_difference,
                tau2=m.tau2,
                alpha=m.alpha,
                min_requests=m.min_requests,
                base_is_champion=test,  # a watch's base is the previous champion
                horizon=ab.max_requests if test else 0,
                budget=0 if test else ab.watch_requests,
                decide_every=self.config.decide_every,
                growth=LOOK_GROWTH,
                stream_every=self.config.stream_every,
                state=lambda: (m.p_value, self._looks_from, self._next_look),
                absorb=lambda p, next_look: self._absorb_looks(running, p, next_look),
            )
        )

    def _absorb_looks(self, running: ABTest | RollbackWatch, p: float, next_look: int) -> None:
        """The router's native looks at ``running``: their running p-value, and while it is
        the test or watch under way, their schedule."""
        running._msprt.take_p_value(p)
        with self._lock:  # the actions thread may be starting another test or watch
            if running is self._test or running is self._watch:
                self._next_look = next_look

    def _queue(self, kind: str, data: dict[str, Any]) -> None:
        if self._closed:
            return
        with self._actions_idle:
            self._actions_busy += 1
        self._actions.put((kind, data))

    # ---- the retrainer's callback (its thread) ----

    def _on_outcome(self, outcome: TrainingOutcome) -> None:
        position = self.router.requests
        if outcome.registered is None or outcome.model is None:
            with self._lock:
                if self.state == "training":
                    self._back_to_serving(position)
            return
        if self.state != "training":  # an operator promoted by hand meanwhile
            self.registry.retire_challenger(
                actor="retrainer", reason="the loop moved on while it trained"
            )
            self.events.record(
                "ab-stopped",
                f"version {outcome.registered.version} not tested: the loop is {self.state}",
                {"version": outcome.registered.version},
                position,
            )
            return
        challenger = LearnedPrefetcher(outcome.model, batch_size=self.router.batch_size)
        challenger.warm(self.window.latest(self.config.warm_requests))
        share = self.config.ab.challenger_share
        self._begin_test(challenger, outcome.registered.version, position)
        self.events.record(
            "ab-started",
            f"A/B test of version {outcome.registered.version} on {100 * share:g}% of the keys",
            {"version": outcome.registered.version, "share": share},
            position,
        )

    def _begin_test(self, challenger: LearnedPrefetcher, version: int, position: int) -> None:
        """The router serves ``challenger`` on its share of the keys, and the loop looks at
        the test every ``decide_every`` requests from ``position`` on."""
        with self._lock:
            self._test = ABTest(self.config.ab)
            self._versions["challenger"] = version
            self._plan_first_look(position)
            roles = self.router.start_test(challenger, self.config.ab.challenger_share)
            self._arm_looks(roles, self._test)
            self.state = "testing"

    # ---- the actions thread ----

    def _run_actions(self) -> None:
        while True:
            item = self._actions.get()
            if item is None:
                return
            kind, data = item
            try:
                self._act(kind, data)
            except Exception as exc:  # the loop outlives a failed action
                log.exception("MLOps action %s failed", kind)
                self.events.record("error", f"{kind} failed: {exc!r}", {}, self.router.requests)
                with self._lock:
                    if self.state.endswith(":deciding"):
                        self.state = self.state.split(":")[0]
                        running = self._test if self.state == "testing" else self._watch
                        if running is not None:  # its looks go on, natively again
                            self._arm_looks(self.router.roles, running)
            finally:
                with self._actions_idle:
                    self._actions_busy -= 1
                    self._actions_idle.notify_all()

    def _act(self, kind: str, data: dict[str, Any]) -> None:
        position = self.router.requests
        if kind == "drift":
            event: DriftEvent = data["event"]
            if event.kind == "performance":
                what = (
                    f"hit rate fell from {data['before']:.3f} to "
                    f"{event.statistics.get('mean', 0.0):.3f} (ADWIN on {event.source})"
                )
            else:
                what = f"{event.kind} drift on {event.source}"
            self.events.record(
                "drift",
                f"{what}; retraining once {self.config.retrain.min_window:,} new requests are in",
                {
                    "kind": event.kind,
                    **event.statistics,
                    "mean_before": data["before"],
                    "detected_at": data["position"],
                },
                position,
            )
        elif kind == "skip":
            self.events.record(
                "retrain-skipped",
                f"trigger ({data['reason']}) skipped: the loop is {data['state']}",
                {},
                position,
            )
        elif kind == "testing":
            self._finish_test(data["decision"], data["roles"], position)
        elif kind == "watching":
            self._finish_watch(data["decision"], data["roles"], position)
        elif kind == "force":
            self._force(int(data["version"]), str(data["reason"]), position)

    def _load(self, ref: int | str) -> PrefetchModel:
        from predis.prefetch.features import FEATURE_NAMES  # noqa: PLC0415

        _, raw = self.registry.get(ref, expected_schema=FEATURE_NAMES)
        return PrefetchModel.from_bytes(raw)

    def _finish_test(self, decision: Decision, roles: Roles, position: int) -> None:
        if roles is not self.router.roles:
            return
        version = self._versions["challenger"]
        if decision.action == "promote" and version is not None:
            self.registry.promote(version, actor="abtest", reason=decision.reason)
            with self._lock:
                self.router.promote(self.config.ab.holdback_share)
                self._start_watch(position)
            self.events.record(
                "promoted",
                f"version {version} is the champion: {decision.reason}; watching it against "
                f"the previous champion on {100 * self.config.ab.holdback_share:g}% of the keys",
                {"version": version, **decision.statistics},
                position,
            )
            return
        self.registry.retire_challenger(actor="abtest", reason=decision.reason)
        with self._lock:
            self.router.end_experiment()
            self._back_to_serving(position)
        self.events.record(
            "ab-stopped",
            f"version {version} stopped: {decision.reason}",
            {"version": version or 0, **decision.statistics},
            position,
        )

    def _start_watch(self, position: int) -> None:
        self._test = None
        self._watch = RollbackWatch(self.config.ab)
        self._plan_first_look(position)
        self._arm_looks(self.router.roles, self._watch)
        self.state = "watching"

    def _back_to_serving(self, position: int) -> None:
        self.router.arm_looks(None)
        self._test = self._watch = None
        self._versions["challenger"] = None
        self.state = "serving"
        self._quiet_until = max(self._quiet_until, position + self.config.drift_cooldown)
        self._new_detector()

    def _finish_watch(self, decision: Decision, roles: Roles, position: int) -> None:
        if roles is not self.router.roles:
            return
        if decision.action == "pass":
            with self._lock:
                self.router.end_experiment()
                self._back_to_serving(position)
            champion = self.registry.aliases()["champion"]
            self.events.record(
                "watch-passed",
                f"version {champion} holds up: {decision.reason}",
                {"version": champion or 0, **decision.statistics},
                position,
            )
            return
        before = self.registry.aliases()
        note = ""
        if before["previous"] is not None:
            self.registry.rollback(actor="rollback-watch", reason=decision.reason)
        else:
            note = " (the registry has no previous version: serving without a model)"
        with self._lock:
            self.router.rollback()
            self._back_to_serving(position)
        self.events.record(
            "rollback",
            f"version {before['champion']} rolled back to {before['previous']}: "
            f"{decision.reason}{note}",
            {
                "from_version": before["champion"] or 0,
                "to_version": before["previous"] or 0,
                **decision.statistics,
            },
            position,
        )

    def _force(self, version: int, reason: str, position: int) -> None:
        model = self._load(version)
        if model.batch_size != self.router.batch_size:
            raise InvalidArgumentError(
                f"version {version} serves batches of {model.batch_size}, "
                f"the router {self.router.batch_size}"
            )
        new = LearnedPrefetcher(model, batch_size=self.router.batch_size)
        new.warm(self.window.latest(self.config.warm_requests))
        self.registry.promote(version, actor="operator", reason=reason)
        with self._lock:
            if self.state != "serving":
                self.router.end_experiment()
                if self._versions["challenger"] is not None:
                    self.registry.retire_challenger(actor="operator", reason=reason)
            self.router.install(new, self.config.ab.holdback_share)
            self._start_watch(position)
        self.events.record(
            "promoted",
            f"version {version} made champion by hand ({reason}); watching it against the "
            f"previous champion on {100 * self.config.ab.holdback_share:g}% of the keys",
            {"version": version},
            position,
        )

"""The A/B router: a :class:`~predis.prefetch.Prefetcher` that serves two models side by side.

Outside an experiment it is the champion's :class:`~predis.prefetch.LearnedPrefetcher`.
During an A/B test (a challenger) or a rollback watch (the previous champion, on a small
holdback share) a second prefetcher serves the keys that a :class:`TrafficSplit` puts in
its arm, and per-arm counts feed the statistics.

**Each arm sees every request but proposes only keys of its arm.** The split is by key,
and the patterns a prefetcher learns run across keys: in a session A, B, C with A in one
arm and B in the other, a tracker fed only its own arm's keys would never see A followed
by B and could not learn the sequence at all; it would be judged on a stream that no
deployment would ever give it. So both trackers observe the whole demand stream, and each
arm's candidate list is cut to its own keys *before* scoring (the router sets each arm's
:attr:`~predis.prefetch.LearnedPrefetcher.serves` to its side of the split). A demand
outcome of key k then depends on k's arm's prefetches only. The one shared resource left
is cache capacity: one arm's prefetches can evict the other's entries; prefetched entries
enter at a rank set by their confidence, so weak guesses go first, and each arm's prefetch
budget is scaled to its share of the keys, so neither arm can crowd the other out by
proposing more.

**What it costs the host.** Serving a live cache (:meth:`ABRouter.attach`, called by the
cache's prefetch runtime), the router is not on the batch path at all: the runtime calls
the roles' models directly (the champion, or during an experiment both arms, merging their
lists, or with alternate scoring the arm whose turn it is; with no counting), the cache's
drains copy each demand get's key and hit bit into a native tap (a few instructions a
request, the GIL released), and the router's own thread takes the tap in chunks of
``stream_every`` requests, counts them for the roles that served them (per arm and split
bucket during an experiment: one native tally of the chunk, each key's bucket remembered by
the split) and hands them to the listeners (the loop's drift detector, training window and
test). During an experiment it also counts the arms every ``look_every`` requests in
between, with one native call that tallies the requests the tap keeps (they stay there for
the chunk), and tells the count listeners (the loop's look at its test); with a
:class:`LookPlan` armed (the loop arms one for each test and watch), that call also steps
the test's mSPRT, and the listeners hear only the looks that may decide. Only the first
batch after a change of roles comes here. Driven batch by batch instead (a replay, or a
prefetcher that wraps the router), a batch between experiments costs the champion's own
call plus a few attribute updates: the batch's keys and hit bits are held, and every
``listen_every`` requests the held chunk is counted (one numpy call) and handed to the
listeners in one piece. During an experiment the chunks are ``look_every`` requests, and
each is counted per arm and split bucket when it is released (the same tally), so the
per-arm counts trail ``requests`` by at most a chunk, as the champion's do between
experiments. Both arms run their models on every batch (``experiment_scoring="every"``, the
default): twice the model calls of serving while it lasts. With ``"alternate"`` the arms
take turns: on each batch one arm runs its model, on the batch it skipped and this one
together, so a test makes no more model calls than serving does; both arms are treated
alike, so the comparison stays fair, but half of each arm's proposals come a batch late,
which shrinks the effect a test can see (in tests/mlops/test_loop_scenarios.py's phase
change, +4.8 points instead of about +9.5, too little to decide within 20,000 requests per
arm).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from predis import _core
from predis.errors import InvalidArgumentError
from predis.mlops.abtest import TrafficSplit
from predis.mlops.decisions import ArmStats
from predis.prefetch.base import CachedFn, Prefetcher, ProposeFn, merge_proposals
from predis.prefetch.learned import LearnedPrefetcher
from predis.prefetch.stats import LatencyHistogram

if TYPE_CHECKING:
    from predis.prefetch.runtime import PrefetchRuntime

__all__ = ["ABRouter", "Roles"]

log = logging.getLogger("predis.mlops")

_EMPTY = (np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.float64))

_U64 = np.dtype(np.uint64)
_BOOL = np.dtype(np.bool_)
_NDARRAY = np.ndarray


def _joined(parts: list[np.ndarray], dtype: np.dtype, count: int) -> np.ndarray:
    """One read-only array of ``count`` elements of ``dtype`` from ``parts`` (already of
    that dtype). Joining their bytes costs a third of np.concatenate for many small arrays;
    a part that is not a contiguous buffer of that item size sends it to np.concatenate."""
    if len(parts) == 1:
        out = np.ascontiguousarray(parts[0], dtype=dtype).view()
        out.flags.writeable = False  # a caller's array: listeners only read it
        return out
    try:
        raw = b"".join(parts)  # type: ignore[arg-type]  # numpy arrays are buffers
    except (TypeError, BufferError):
        raw = None
    if raw is not None and len(raw) == count * dtype.itemsize:
        return np.frombuffer(raw, dtype=dtype)
    out = np.ascontiguousarray(np.concatenate(parts), dtype=dtype)
    out.flags.writeable = False
    return out


#: Demand requests a live cache's tap keeps at most while the router's thread catches up
#: (beyond it they are counted in ``requests`` but not handed to the listeners).
TAP_CAPACITY = 1 << 20

#: How the arms score during an experiment (see the module's docstring).
EXPERIMENT_SCORING = ("alternate", "every")

#: Called with (router, demand keys, their hits) for every chunk of at least ``listen_every``
#: requests, in order, on the caller's thread. The arrays are read-only.
BatchListener = Callable[["ABRouter", np.ndarray, np.ndarray], object]

#: Called with (router, position) when, serving a live cache during an experiment, the
#: router has counted the requests up to ``position`` for the arms without handing them to
#: the batch listeners yet (a look between chunks; see :meth:`ABRouter.attach`); with a
#: :class:`LookPlan` armed, only at the looks that wake its loop.
CountListener = Callable[["ABRouter", int], object]


def _count_arms(roles: Roles, keys: np.ndarray, hits: np.ndarray) -> None:
    """Count an experiment's requests (uint64 keys, bool hits), each in its key's arm and
    split bucket (the test's unit), natively."""
    split = roles.split
    if split is None:
        raise InvalidArgumentError("an experiment's roles have a split")
    other, champion = roles.other_stats, roles.champion_stats
    _add_sums(roles, split.tally_u64(keys, hits, other.bucket_counts(), champion.bucket_counts()))


def _count_arms_in_tap(roles: Roles, tap: _core.DemandTap) -> int:
    """:func:`_count_arms` of the requests the tap keeps that were not peeked at, peeked
    at (left in the tap); how many."""
    split = roles.split
    if split is None:
        raise InvalidArgumentError("an experiment's roles have a split")
    n, sums = split.tally_tap(
        tap, TAP_CAPACITY, roles.other_stats.bucket_counts(), roles.champion_stats.bucket_counts()
    )
    _add_sums(roles, sums)
    return n


def _add_sums(roles: Roles, sums: tuple[int, int, int, int]) -> None:
    """Add a tally's sums (the other arm's requests and hits, then the champion's)."""
    other, champion = roles.other_stats, roles.champion_stats
    other.requests += sums[0]
    other.hits += sums[1]
    champion.requests += sums[2]
    champion.hits += sums[3]


@dataclass
class Roles:
    """Who serves what, and their counts since these roles were set. Replaced whole (never
    edited) on a change, so a batch in flight finishes with the roles it started with."""

    champion: LearnedPrefetcher
    other: LearnedPrefetcher | None = None
    other_role: str | None = None  # "challenger" | "holdback"
    split: TrafficSplit | None = None
    champion_stats: ArmStats = field(default_factory=ArmStats)
    other_stats: ArmStats = field(default_factory=ArmStats)


@dataclass(frozen=True)
class LookPlan:
    """What lets the router's thread do a running test's looks that go on by itself,
    natively (:class:`predis._core.LiveLooks`), for the loop that runs the test: its
    sequential test's settings, its schedule, and where the loop keeps their state.

    The loop is called only when a look may decide: ``state()`` gives the loop's running
    p-value, the position its test began at and its next look's, when the native looks
    start and after each of the loop's own looks; ``absorb(p, next_look)`` hands the native
    looks' p-value and schedule back, before the loop looks itself. Both are called holding
    the router's observation lock: on its own thread, or on the thread that takes the tap
    at a change of roles (the runtime's) or at a detach."""

    roles: Roles
    null_difference: float
    tau2: float
    alpha: float
    min_requests: int
    base_is_champion: bool  # the test's base arm: the champion (a test) or the other (a watch)
    horizon: int  # look once both arms have this many requests (0: never)
    budget: int  # look once the arm that is not the base has this many (0: never)
    decide_every: int
    growth: int
    stream_every: int
    state: Callable[[], tuple[float, int, int]]
    absorb: Callable[[float, int], object]


#: An arm's stats, its prefetcher and that prefetcher's model counters (calls, seconds,
#: rows, proposals) when they were last counted.
_Mark = tuple[ArmStats, LearnedPrefetcher, int, float, int, int]


class _Arms:
    """An experiment's proposals for a batch: each arm's model on the batch (each
    proposes only its own keys: the router sets its ``serves``), the two lists merged by
    confidence. One per experiment's roles; with alternate scoring it keeps whose turn it
    is, and the batch the arm whose turn is next has not seen yet. Called by one thread at
    a time."""

    __slots__ = ("alternate", "champion", "other", "roles", "turn", "waiting")

    def __init__(self, roles: Roles, alternate: bool) -> None:
        if roles.other is None or roles.split is None:  # roles never change in place
            raise InvalidArgumentError("an experiment needs a second arm and a split")
        self.roles = roles
        self.champion, self.other = roles.champion, roles.other
        self.alternate = alternate
        self.turn = 0
        self.waiting: tuple[np.ndarray, np.ndarray] | None = None

    def propose(
        self, keys: np.ndarray, hits: np.ndarray, cached: CachedFn
    ) -> tuple[np.ndarray, np.ndarray]:
        """Both arms' proposals for a batch."""
        if not self.alternate:
            return merge_proposals(
                self.champion.propose(keys, hits, cached), self.other.propose(keys, hits, cached)
            )
        self.turn ^= 1
        waiting, self.waiting = self.waiting, (keys, hits)  # the other arm's next batch
        p = self.other if self.turn else self.champion
        if waiting is None:
            return p.propose(keys, hits, cached)
        # Its turn: the batch it skipped and this one, scored together (the latest batch's
        # worth of each, as a caller that fell behind would get).
        both_k = np.concatenate([waiting[0], keys])
        both_h = np.concatenate([waiting[1], hits])
        scored = min(len(waiting[0]), p.scoring_batch) + min(len(keys), p.scoring_batch)
        return p.propose(both_k, both_h, cached, score_last=scored)


def _u64(keys: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(keys, dtype=np.uint64)


class ABRouter(Prefetcher):
    """Routes prefetching between a champion and, during an experiment, a second model.

    Args:
        champion: the champion's prefetcher.
        max_per_request: the prefetch budget per demand request, shared between the arms in
            proportion to their shares of the keys.
        listen_every: requests per chunk handed to the listeners between experiments
            (and per count of the champion's hits): the per-batch work is then a few
            attribute updates, the rest runs once per chunk.
        look_every: requests per chunk during an experiment, where the listeners look
            at the test's decision (the loop sets it at each look: ``decide_every`` at
            first, then further apart; a smaller chunk decides sooner, a bigger one costs
            less per request). Serving a live cache, the requests between two looks are
            counted for the arms without a chunk (the count listeners are told), and
            the chunks stay ``stream_every``.
        stream_every: serving a live cache (:meth:`attach`), requests per chunk that the
            router's own thread takes from the cache's tap between experiments: the
            chunk's work is not on the serving thread, and a bigger chunk costs less per
            request (a quiet stream's chunk still comes after ``max_hold_s``).
        max_hold_s: when the stream pauses (:meth:`idle`), a chunk held this long is
            released short (so a quiet cache's loop still sees its requests).
        experiment_scoring: ``"alternate"`` (the arms take turns scoring batches) or
            ``"every"`` (both arms score every batch); see the module's docstring.

    The per-batch work is kept off the Python interpreter where it can be: the candidates'
    arms come from one native call of the split's keyed blake2b (each key's bucket
    remembered) with the GIL released, and the per-arm counts from one native tally per
    chunk. The router keeps the arrays it is
    given until their chunk is released: callers must not modify them after the call (the
    prefetch runtime and :func:`predis.sim.replay` hand over fresh arrays).
    """

    def __init__(
        self,
        champion: LearnedPrefetcher,
        *,
        max_per_request: float = 2.0,
        listen_every: int = 1024,
        look_every: int = 1024,
        stream_every: int = 16_384,
        experiment_scoring: str = "every",
        max_hold_s: float = 0.25,
    ) -> None:
        if not isinstance(champion, LearnedPrefetcher):
            raise InvalidArgumentError("champion must be a LearnedPrefetcher")
        if (
            isinstance(max_per_request, bool)
            or not isinstance(max_per_request, (int, float))
            or not 0 < max_per_request <= 64
        ):
            raise InvalidArgumentError(
                f"max_per_request must be in (0, 64], got {max_per_request!r}"
            )
        for name, value in (
            ("listen_every", listen_every),
            ("look_every", look_every),
            ("stream_every", stream_every),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidArgumentError(f"{name} must be an int, got {value!r}")
            if not 1 <= value <= 1 << 20:
                raise InvalidArgumentError(f"{name} must be in [1, 2**20], got {value}")
        if (
            isinstance(max_hold_s, bool)
            or not isinstance(max_hold_s, (int, float))
            or not 0 <= max_hold_s <= 3600
        ):
            raise InvalidArgumentError(f"max_hold_s must be in [0, 3600], got {max_hold_s!r}")
        if experiment_scoring not in EXPERIMENT_SCORING:
            raise InvalidArgumentError(
                f"experiment_scoring must be one of {EXPERIMENT_SCORING}, "
                f"got {experiment_scoring!r}"
            )
        self.batch_size = champion.batch_size
        self.max_per_request = float(max_per_request)
        self.listen_every = listen_every
        self.look_every = look_every
        self.stream_every = stream_every
        self.max_hold_s = float(max_hold_s)
        self.experiment_scoring = experiment_scoring
        champion.max_per_request = self.max_per_request
        champion.serves = None  # whatever an earlier router left: the champion serves all
        self._roles = Roles(champion)
        self._change = threading.Lock()  # serialises role changes, not batches
        self._listeners: list[BatchListener] = []
        self._count_listeners: list[CountListener] = []
        # The loop's plan for its test's looks, and the native looks made from it (with the
        # plan they were made from): used by the tap's consumer, under _observe_lock.
        self._look_plan: LookPlan | None = None
        self._live_looks: tuple[LookPlan, _core.LiveLooks] | None = None
        self._failed_plan: LookPlan | None = None  # one whose state() raised: not made again
        # Every arm's model times go here as well as to the arm's own histogram.
        self.latency = LatencyHistogram()
        champion.latency_sink = self.latency
        self.inference_rows = 0
        self.model_version = 1
        self._released = 0  # requests in chunks already released
        self._count_lock = threading.Lock()  # one consistent sum for `requests` readers
        self.listener_errors = 0
        # Batches not yet handed to the listeners (and, between experiments, not yet
        # counted in `_held_stats`): touched only by the thread that calls propose().
        self._held_keys: list[np.ndarray] = []
        self._held_hits: list[np.ndarray] = []
        self._held = 0
        self._held_since = 0.0  # monotonic time of the oldest held batch
        self._held_stats: ArmStats | None = None
        # The experiment's roles the held batches were served under (counted per chunk).
        self._held_roles: Roles | None = None
        # Per arm: its stats, its prefetcher and that prefetcher's model counters when the
        # held chunk started (model calls, time, rows and proposals counted per chunk).
        self._marks: list[_Mark] | None = None
        # The current experiment's proposer (it keeps alternate scoring's turns).
        self._arms: _Arms | None = None
        # Serving a live cache (attach): the runtime, the cache's demand tap and the thread
        # that takes it in chunks, the requests counted before it, and, while the runtime
        # calls the roles' models directly, those roles and their arms' model counters when
        # they were last counted.
        self._runtime: weakref.ref[PrefetchRuntime] | None = None
        self._tap: _core.DemandTap | None = None
        self._tap_thread: threading.Thread | None = None
        self._tap_base = 0
        self._observe_lock = threading.Lock()  # takes from the tap, in order, and counts
        self._served: tuple[Roles, list[_Mark]] | None = None

    # ---- roles ----

    @property
    def roles(self) -> Roles:
        """The current roles and their counts (read-only by convention)."""
        return self._roles

    @property
    def requests(self) -> int:
        """Demand requests seen so far: in chunks released or held, or, serving a live
        cache, the demand gets of int keys its drains have handed out."""
        tap = self._tap
        if tap is not None:
            return self._tap_base + tap.seen
        with self._count_lock:  # a release moves the held count into _released
            return self._released + self._held

    @property
    def released(self) -> int:
        """Demand requests handed to the listeners so far: while a listener runs, the
        position of the end of its chunk."""
        return self._released

    @property
    def champion(self) -> LearnedPrefetcher:
        """The champion's prefetcher."""
        return self._roles.champion

    def subscribe(self, listener: BatchListener) -> None:
        """Call ``listener(router, keys, hits)`` after every batch (on the batch's thread)."""
        if not callable(listener):
            raise InvalidArgumentError("a batch listener must be callable(router, keys, hits)")
        self._listeners.append(listener)

    def subscribe_counts(self, listener: CountListener) -> None:
        """Call ``listener(router, position)`` when, serving a live cache during an
        experiment, the arms' counts reach ``position`` between two chunks (on the router's
        own thread); the chunk's requests reach the batch listeners later, in order. While
        a :class:`LookPlan` is armed (:meth:`arm_looks`), only at the looks that wake its
        loop: the others are native, and their counts reach the arms' stats at the next
        waking look or chunk."""
        if not callable(listener):
            raise InvalidArgumentError("a count listener must be callable(router, position)")
        self._count_listeners.append(listener)

    def arm_looks(self, plan: LookPlan | None) -> None:
        """Do the looks at ``plan``'s test that go on natively, while ``plan.roles`` are
        the ones served (None: stop). The count listeners then hear only the looks that may
        decide; what the native looks counted reaches the arms' stats at those looks and at
        every chunk. No lock is taken here: the tap's consumer reads the plan, under its
        own, at its next look."""
        if plan is not None and not isinstance(plan, LookPlan):
            raise InvalidArgumentError("arm_looks takes a LookPlan or None")
        self._look_plan = plan

    def _check_peer(self, p: LearnedPrefetcher) -> None:
        if not isinstance(p, LearnedPrefetcher):
            raise InvalidArgumentError("the second arm must be a LearnedPrefetcher")
        if p.batch_size != self.batch_size:
            raise InvalidArgumentError(
                f"the second arm's batch size {p.batch_size} is not the router's {self.batch_size}"
            )
        if p is self._roles.champion:
            raise InvalidArgumentError("the second arm must be another prefetcher")

    def _set(self, roles: Roles) -> Roles:
        share = roles.split.challenger_share if roles.split is not None else 0.0
        roles.champion.max_per_request = self.max_per_request * (1.0 - share)
        if roles.other is not None:
            roles.other.max_per_request = self.max_per_request * share
        if roles.champion is not self._roles.champion:
            self.model_version += 1
        arms = {id(p) for p in (roles.champion, roles.other) if p is not None}
        for p in (self._roles.champion, self._roles.other):
            if p is not None and id(p) not in arms:
                p.latency_sink = p.serves = None
        roles.champion.latency_sink = self.latency
        # Each arm proposes only its own keys: its candidates are cut to them before
        # scoring (a batch of the old roles still in flight may be cut by the new split:
        # at most one batch's proposals, at the change).
        split = roles.split
        roles.champion.serves = split.is_champion_u64 if split is not None else None
        if roles.other is not None and split is not None:
            roles.other.latency_sink = self.latency
            roles.other.serves = split.is_challenger_u64
        self._roles = roles
        runtime = self._runtime() if self._runtime is not None else None
        if runtime is not None:
            # Batches come here again; the first one under the new roles settles the old
            # ones' counts and, between experiments, hands the champion back to the runtime.
            runtime.route(None)
        tap = self._tap
        if tap is not None:
            tap.nudge()  # its thread waits again, for the new roles' chunk or look
        return roles

    def start_test(self, challenger: LearnedPrefetcher, share: float) -> Roles:
        """Serve ``share`` of the keys (by a fresh secret split) with ``challenger``."""
        with self._change:
            self._check_peer(challenger)
            split = TrafficSplit(secrets.token_bytes(32), share)
            return self._set(Roles(self._roles.champion, challenger, "challenger", split))

    def promote(self, holdback_share: float) -> Roles:
        """The challenger becomes the champion; the old champion keeps ``holdback_share``
        of the keys (a fresh split) for the rollback watch."""
        with self._change:
            r = self._roles
            if r.other is None or r.other_role != "challenger":
                raise InvalidArgumentError("no challenger is being tested")
            split = TrafficSplit(secrets.token_bytes(32), holdback_share)
            return self._set(Roles(r.other, r.champion, "holdback", split))

    def install(self, champion: LearnedPrefetcher, holdback_share: float) -> Roles:
        """Make ``champion`` the champion now (a promotion without a test); the current one
        keeps ``holdback_share`` of the keys for the rollback watch."""
        with self._change:
            self._check_peer(champion)
            split = TrafficSplit(secrets.token_bytes(32), holdback_share)
            return self._set(Roles(champion, self._roles.champion, "holdback", split))

    def end_experiment(self) -> Roles:
        """Back to the champion alone (a test stopped, or a watch passed)."""
        with self._change:
            return self._set(Roles(self._roles.champion))

    def rollback(self) -> Roles:
        """The holdback (previous champion) becomes the champion again, alone."""
        with self._change:
            r = self._roles
            if r.other is None or r.other_role != "holdback":
                raise InvalidArgumentError("no previous champion is being held back")
            return self._set(Roles(r.other))

    # ---- serving ----

    @staticmethod
    def _mark(stats: ArmStats, p: LearnedPrefetcher) -> _Mark:
        return (stats, p, p.inference_calls, p.inference_seconds, p.inference_rows, p.proposals)

    def propose(
        self, keys: np.ndarray, hits: np.ndarray, cached: CachedFn
    ) -> tuple[np.ndarray, np.ndarray]:
        roles = self._roles
        if (
            roles.other is None
            and self._held_stats is roles.champion_stats
            and type(keys) is _NDARRAY
            and type(hits) is _NDARRAY
            and keys.dtype is _U64
            and hits.dtype is _BOOL
        ):
            # Between experiments, inside a chunk, the runtime's arrays (the common case,
            # kept short): the champion's call and the batch held. Requests, hits,
            # proposals and model time are counted per chunk, in _release, from the
            # champion's own counters.
            out, conf = roles.champion.propose(keys, hits, cached)
            self._held_keys.append(keys)
            self._held_hits.append(hits)
            self._held += len(keys)
            if self._held >= self.listen_every:
                self._release()
            return (out, conf) if len(out) else _EMPTY
        return self._propose_at_change(roles, keys, hits, cached)

    def _propose_at_change(
        self, roles: Roles, keys: np.ndarray, hits: np.ndarray, cached: CachedFn
    ) -> tuple[np.ndarray, np.ndarray]:
        """A batch that starts a chunk between experiments, or any batch of an experiment."""
        if self._tap is not None:
            return self._propose_live(roles, keys, hits, cached)
        if roles.other is None or roles.split is None:
            s = roles.champion_stats
            starts = self._held_stats is not s
            if starts:
                self._release()  # held batches were counted for other roles
                marks = [self._mark(s, roles.champion)]
                self._arms = None  # an experiment's leftovers
            # Anything but the runtime's arrays is converted (and copied, so the router
            # never holds a caller's list).
            if type(keys) is not _NDARRAY or keys.dtype is not _U64:
                keys = np.array(keys, dtype=np.uint64)
            if type(hits) is not _NDARRAY or hits.dtype is not _BOOL:
                hits = np.array(hits, dtype=bool)
            out, conf = roles.champion.propose(keys, hits, cached)
            if starts:  # only once the call succeeded: a failed one begins no chunk
                self._held_stats, self._marks = s, marks
        else:
            keys = np.ascontiguousarray(keys, dtype=np.uint64)
            hits = np.asarray(hits, dtype=bool)
            out, conf = self._experiment(roles, keys, hits, cached)
        self._hold(keys, hits, self.listen_every if roles.other is None else self.look_every)
        return (out, conf) if len(out) else _EMPTY

    def _hold(self, keys: np.ndarray, hits: np.ndarray, every: int) -> None:
        """Hold a served batch until its chunk of ``every`` requests is released. Only once
        the models have run: a model that raises leaves the batch unheld, so uncounted."""
        if not self._held:
            self._held_since = time.monotonic()
        self._held_keys.append(keys)
        self._held_hits.append(hits)
        self._held += len(keys)
        if self._held >= every:
            self._release()

    def _experiment(
        self, roles: Roles, keys: np.ndarray, hits: np.ndarray, cached: CachedFn
    ) -> tuple[np.ndarray, np.ndarray]:
        if self._held_stats is not None or (
            self._held_roles is not None and self._held_roles is not roles
        ):
            self._release()  # batches held under other roles are counted with those
        arms = self._arms_for(roles)
        champion, other = arms.champion, arms.other
        if self._held_roles is None:  # a chunk starts: the arms' counters as they are
            self._marks = [
                self._mark(roles.champion_stats, champion),
                self._mark(roles.other_stats, other),
            ]
        # The arms' counters at this batch's start (plain reads: this runs every batch).
        at = (
            champion.inference_calls,
            champion.inference_seconds,
            champion.inference_rows,
            champion.proposals,
            other.inference_calls,
            other.inference_seconds,
            other.inference_rows,
            other.proposals,
        )
        try:
            proposed = arms.propose(keys, hits, cached)
        except BaseException:
            self._leave_out(champion, other, at)
            raise
        # Held once the arms have run: a model that raises leaves the batch unheld, so
        # uncounted. Requests, hits, proposals and model time are counted per chunk, in
        # _release (the arms' model times reach self.latency through their sinks).
        self._held_roles = roles
        return proposed

    def _arms_for(self, roles: Roles) -> _Arms:
        """The experiment's proposer (a new experiment starts with nothing carried over)."""
        arms = self._arms
        alternate = self.experiment_scoring == "alternate"
        if arms is None or arms.roles is not roles or arms.alternate != alternate:
            arms = self._arms = _Arms(roles, alternate)
        return arms

    def _leave_out(
        self,
        champion: LearnedPrefetcher,
        other: LearnedPrefetcher,
        at: tuple[int, float, int, int, int, float, int, int],
    ) -> None:
        """A batch failed and is not held: what the arms did in it before one raised stays
        out of the chunk's counts too (the chunk's starting marks move on by it)."""
        start = {id(champion): at[:4], id(other): at[4:]}
        self._marks = [
            (
                stats,
                p,
                c + p.inference_calls - start[id(p)][0],
                t + p.inference_seconds - start[id(p)][1],
                r + p.inference_rows - start[id(p)][2],
                n + p.proposals - start[id(p)][3],
            )
            if id(p) in start
            else (stats, p, c, t, r, n)
            for stats, p, c, t, r, n in self._marks or []
        ]

    def flush(self) -> None:
        """Count and hand to the listeners the batches held so far (serving a live cache,
        also the demand requests its drains have handed out so far). Call it from the
        thread that calls :meth:`propose` (a replay does at the end of each chunk)."""
        self._release()
        tap = self._tap
        if tap is not None:
            self._take(tap)

    def idle(self) -> None:
        """The stream paused (the prefetch runtime found the ring empty): release the held
        chunk if its oldest batch has waited ``max_hold_s``."""
        if self._held and time.monotonic() - self._held_since >= self.max_hold_s:
            self._release()

    def _release(self) -> None:
        if not self._held:
            self._held_stats = self._marks = self._held_roles = None
            return
        keys = _joined(self._held_keys, _U64, self._held)
        hits = _joined(self._held_hits, _BOOL, self._held)
        live = self._tap is not None  # the tap's chunks go to the listeners instead
        with self._count_lock:
            if not live:
                self._released += self._held
            self._held_keys, self._held_hits, self._held = [], [], 0
        roles, self._held_roles = self._held_roles, None
        # Serving a live cache, the listeners look at the arms' counts on the router's own
        # thread, holding this lock: they must never see a chunk half counted.
        with self._observe_lock:
            if roles is not None and roles.split is not None:
                # An experiment's chunk, counted with the split of the roles it was served
                # under.
                _count_arms(roles, keys, hits)
            s = self._held_stats
            if s is not None:
                s.requests += len(keys)
                s.hits += int(np.count_nonzero(hits))
                self._held_stats = None
            marks, self._marks = self._marks, None
            for stats, p, calls, seconds, rows, proposals in marks or ():
                stats.inference_batches += p.inference_calls - calls
                stats.inference_seconds += p.inference_seconds - seconds
                stats.proposals += p.proposals - proposals
                self.inference_rows += p.inference_rows - rows
        if not live:
            self._tell(keys, hits)

    def _tell(self, keys: np.ndarray, hits: np.ndarray) -> None:
        for listener in self._listeners:
            try:
                listener(self, keys, hits)
            except Exception:  # a listener must not cost the batch its prefetches
                self.listener_errors += 1
                log.exception("A/B router listener %r failed", listener)

    # ---- serving a live cache ----

    def attach(self, runtime: PrefetchRuntime) -> None:
        """A live cache's prefetch runtime will serve this router (called by it).

        From here on the router reads the demand stream from the cache's drains, through a
        native tap, instead of from its batches: its own thread takes the tap in chunks of
        ``stream_every`` requests (or sooner once the oldest has waited ``max_hold_s``),
        counts them for the roles that served them and hands them to the listeners; during
        an experiment it counts the arms every ``look_every`` requests in between too,
        leaving the requests in the tap, and tells the count listeners
        (:meth:`subscribe_counts`). The runtime calls the roles' models directly: the
        champion between experiments, so the loop adds no Python work to a batch at all,
        and during an experiment both arms, with no counting on the batch path. Only the
        first batch after a change of roles comes here, to settle the old roles' counts.
        """
        if self._tap is not None:
            raise InvalidArgumentError("this A/B router already serves a live cache")
        self._release()  # anything held from an earlier stream (not under _change: the
        # listeners may wait for a loop whose actions wait for _change)
        with self._change:
            if self._tap is not None:
                raise InvalidArgumentError("this A/B router already serves a live cache")
            tap = _core.DemandTap(TAP_CAPACITY)
            if not runtime.attach_demand_tap(tap):
                return  # the cache is gone: nothing to serve
            self._arms = None
            self._tap_base = self._released
            self._runtime = weakref.ref(runtime)
            roles = self._roles
            self._served = (roles, self._marks_of(roles))
            runtime.route(*self._server_of(roles))
            thread = threading.Thread(
                target=self._follow, args=(tap,), name="predis-ab-stream", daemon=True
            )
            try:
                thread.start()
            except BaseException:  # nothing is left half attached
                runtime.attach_demand_tap(None)
                runtime.route(None)
                self._served = self._runtime = None
                raise
            self._tap, self._tap_thread = tap, thread

    def detach(self) -> None:
        """The runtime stopped: the tap's last requests go to the listeners, and the router
        counts its batches again."""
        tap, thread = self._tap, self._tap_thread
        if tap is None:
            return
        runtime = self._runtime() if self._runtime is not None else None
        if runtime is not None:
            runtime.attach_demand_tap(None)
        tap.close()  # the thread takes what is left, then ends
        if thread is not None and thread is not threading.current_thread():
            thread.join(30.0)
        # Not under _change: a listener may be waiting on the loop, whose actions may wait
        # for _change. With a time limit: a listener stuck for minutes must not stop the
        # runtime's stop (what is left then stays untaken).
        if self._observe_lock.acquire(timeout=30.0):
            try:
                self._take_locked(tap, 0)
                self._settle_served(remark=False)
            finally:
                self._observe_lock.release()
        else:
            log.error("A/B router: the stream thread did not finish; detaching without it")
        with self._count_lock:
            self._released = max(self._released, self._tap_base + tap.seen)
        with self._change:
            self._tap = self._tap_thread = self._runtime = None
            self._arms = None

    def _follow(self, tap: _core.DemandTap) -> None:
        """The tap's thread: waits (without the GIL) for a chunk, or during an experiment
        for a look's worth of requests, then takes the chunk or counts the look."""
        while True:
            try:
                every = self.stream_every if self._roles.other is None else self.look_every
                # The settings are plain attributes: whatever they were set to, it waits.
                hold = min(max(float(self.max_hold_s), 0.0), 3600.0)
                if not tap.wait(max(1, int(every)), hold) and tap.closed:
                    return
                self._step(tap)
            except Exception:  # the thread outlives a bad chunk, as the runtime's does
                log.exception("A/B router: taking the demand stream failed; continuing")
                if tap.closed:
                    return
                time.sleep(0.1)  # not a hot loop if it keeps failing

    def _step(self, tap: _core.DemandTap) -> None:
        """What the tap's thread does once its wait is over: during an experiment, while
        fewer than ``stream_every`` requests are kept and at least ``look_every`` of them
        are new, count the new ones for the arms and tell the count listeners (a look,
        without a chunk: the batch listeners, the copies into their windows and the arrays
        they are handed come once per ``stream_every`` requests); otherwise take the chunk
        and hand it on."""
        if self._roles.other is not None and not tap.closed:
            kept = tap.pending
            if kept < self.stream_every and kept - tap.peeked >= max(1, int(self.look_every)):
                try:
                    if self._count_new(tap):
                        return
                except Exception:  # the chunk still goes on, counted the take's way
                    log.exception("A/B router: counting a look failed; taking the chunk")
        self._take(tap)

    def _count_new(self, tap: _core.DemandTap) -> bool:
        """Count the requests kept in the tap since the last take or look for the
        experiment's arms that served them, leave them there, and tell the count listeners.
        False, with nothing done, when the roles have changed and the runtime's first batch
        under the new ones has not settled the old ones yet (a take then counts these for
        the old roles, as without looks), or nothing is new."""
        with self._observe_lock:
            served = self._served
            if served is None or served[0] is not self._roles or served[0].split is None:
                return False
            held = self._live_looks
            if held is not None and held[0] is self._look_plan and held[0].roles is served[0]:
                looks: _core.LiveLooks | None = held[1]  # the common case, kept short
            else:
                looks = self._looks_for(served[0])
            if looks is not None:
                # One native call, without the GIL: counted, and looked at if a look is due.
                counted, position, wake, every = looks.look(tap, TAP_CAPACITY, self._released)
                if not counted:
                    return False
                if every:
                    # Only while these are still the armed plan's, for the roles served (the
                    # loop may have started another test or watch meanwhile); inline, as
                    # _plan_current, for the common look.
                    now = self._live_looks
                    if now is not None and now[0] is self._look_plan and served[0] is self._roles:
                        self.look_every = every
                if not wake:
                    return True
                self._absorb_looks()
            elif not _count_arms_in_tap(served[0], tap):  # one native call: peeked, tallied
                return False
            self._settle_served(remark=True)
            position = self._released + tap.peeked
            for listener in self._count_listeners:
                try:
                    listener(self, position)
                except Exception:  # as a batch listener's: logged, the stream goes on
                    self.listener_errors += 1
                    log.exception("A/B router count listener %r failed", listener)
            self._refresh_looks()
        return True

    def _look_before_take(self, tap: _core.DemandTap, n: int) -> None:
        """With native looks armed for the roles served: count the chunk's requests that no
        look has counted yet natively, looking if one is due, so that the take counts
        nothing in Python and the loop's chunk listener looks only if this look woke it."""
        held = self._live_looks
        served = self._served
        if (
            held is None
            or served is None
            or held[0] is not self._look_plan
            or held[0].roles is not served[0]
            or served[0] is not self._roles
        ):
            return
        rest = n - tap.peeked
        if rest > 0:
            try:
                every = held[1].look(tap, rest, self._released)[3]
            except Exception:  # the take counts what this did not, in Python
                log.exception("A/B router: a native look before a take failed")
                return
            if every and self._plan_current(served[0]):
                self.look_every = every

    def _plan_current(self, roles: Roles) -> bool:
        """Whether the native looks just made are still the armed plan's, for the roles
        served now: only then may their schedule set ``look_every`` (the loop may have
        started another test or watch while they ran, without the GIL)."""
        held = self._live_looks
        return held is not None and held[0] is self._look_plan and roles is self._roles

    def _looks_for(self, roles: Roles) -> _core.LiveLooks | None:
        """The native looks for ``roles``, made from the armed plan at their first use;
        None when no plan is armed for them. Native looks of another plan are absorbed and
        dropped first. Called holding _observe_lock."""
        plan = self._look_plan
        held = self._live_looks
        if held is not None and held[0] is not plan:
            self._absorb_looks()
            self._live_looks = held = None
        if plan is None or plan.roles is not roles or roles.split is None:
            return None
        if plan is self._failed_plan:
            return None  # its state could not be read: the loop looks itself
        if held is None:
            p, looks_from, next_look = plan.state()
            looks = roles.split.live_looks(
                roles.other_stats.bucket_counts(),
                roles.champion_stats.bucket_counts(),
                plan.null_difference,
                plan.tau2,
                plan.alpha,
                plan.min_requests,
                plan.base_is_champion,  # base_is_high: the champion's buckets are the high ones
                plan.horizon,
                plan.budget,
                plan.decide_every,
                plan.growth,
                plan.stream_every,
                p,
                looks_from,
                next_look,
            )
            self._live_looks = held = (plan, looks)
        return held[1]

    def _absorb_looks(self) -> None:
        """Add what the native looks counted since the last time to their roles' arm
        stats, and hand their p-value and schedule to the loop (holding _observe_lock)."""
        held = self._live_looks
        if held is None:
            return
        plan, looks = held
        _add_sums(plan.roles, looks.take_pending())
        if plan is not self._look_plan:
            self._live_looks = None  # disarmed or replaced: all it counted is in
        try:
            plan.absorb(looks.p, looks.next_look)
        except Exception:  # as a listener's: logged, the counts are in
            self.listener_errors += 1
            log.exception("A/B router: the look plan's absorb failed")

    def _refresh_looks(self) -> None:
        """After the loop may have looked itself: its p-value and schedule to the native
        looks (holding _observe_lock)."""
        held = self._live_looks
        if held is None or held[0] is not self._look_plan:
            return
        plan, looks = held
        try:
            looks.set_state(*plan.state())
        except Exception:
            self.listener_errors += 1
            log.exception("A/B router: the look plan's state failed; native looks stop")
            self._failed_plan = plan
            self._live_looks = None
            _add_sums(plan.roles, looks.take_pending())  # what they counted, kept

    def _count_served(self, roles: Roles, keys: np.ndarray, hits: np.ndarray) -> None:
        """Count requests that the runtime served with ``roles``' models directly, and the
        model work done since the last count."""
        if roles.split is None:
            stats = roles.champion_stats
            stats.requests += len(keys)
            stats.hits += int(np.count_nonzero(hits))
        else:
            _count_arms(roles, keys, hits)
        self._settle_served(remark=True)

    def _take(self, tap: _core.DemandTap) -> None:
        """Take what the tap holds and hand it on (counts, then the listeners), in order."""
        with self._observe_lock:
            self._take_locked(tap, 0)

    def _take_locked(self, tap: _core.DemandTap, leave: int) -> None:
        """The same, holding the lock, but for the tap's newest ``leave`` requests."""
        n = min(TAP_CAPACITY, tap.pending - leave)
        if n <= 0:
            return
        self._look_before_take(tap, n)
        counted = tap.peeked  # the oldest kept: counted at a look already
        keys, hits = tap.take(n)
        keys.flags.writeable = hits.flags.writeable = False  # listeners only read them
        with self._count_lock:
            # Requests the tap dropped (it was full) are passed too: positions stay those
            # of the stream, as `requests` counts them.
            self._released = self._tap_base + tap.taken + tap.dropped
        served = self._served
        self._absorb_looks()  # what looks counted natively, in the arms' stats first
        try:
            if served is not None and counted < n:
                # The models served these directly: counted for their roles. (Looks count
                # only while the roles served are the current ones, so what a change of
                # roles leaves in the tap was not counted at a look, but for a race between
                # the change and a look under way: at most a drain's worth, which stays
                # with the roles it was counted for.)
                self._count_served(served[0], keys[counted:], hits[counted:])
            elif served is not None:
                self._settle_served(remark=True)
        finally:  # taken from the tap: the listeners see it even if counting failed
            self._tell(keys, hits)
            self._refresh_looks()

    def _marks_of(self, roles: Roles) -> list[_Mark]:
        marks = [self._mark(roles.champion_stats, roles.champion)]
        if roles.other is not None:
            marks.append(self._mark(roles.other_stats, roles.other))
        return marks

    def _server_of(self, roles: Roles) -> tuple[ProposeFn, ProposeFn | None]:
        """What the runtime calls for a batch under ``roles``: the champion; during an
        experiment scored on every batch, both arms (the runtime merges their lists); with
        alternate scoring, the experiment's proposer."""
        if roles.other is None or roles.split is None:
            return roles.champion.propose, None
        if self.experiment_scoring == "every":
            return roles.champion.propose, roles.other.propose
        return self._arms_for(roles).propose, None

    def _settle_served(self, *, remark: bool) -> None:
        """Count the model work the served roles' arms did since their counters were last
        read (while the runtime called them directly); ``remark``: go on counting from
        here."""
        served = self._served
        if served is None:
            return
        roles, marks = served
        now = []
        for stats, p, calls, seconds, rows, proposals in marks:
            # One read of the counters for both the count and the next mark: the
            # runtime's thread may be adding to them meanwhile.
            mark = self._mark(stats, p)
            stats.inference_batches += mark[2] - calls
            stats.inference_seconds += mark[3] - seconds
            self.inference_rows += mark[4] - rows
            stats.proposals += mark[5] - proposals
            now.append(mark)
        self._served = (roles, now) if remark else None

    def _propose_live(
        self, roles: Roles, keys: np.ndarray, hits: np.ndarray, cached: CachedFn
    ) -> tuple[np.ndarray, np.ndarray]:
        """A batch the live runtime brought here: the first after a change of roles (or
        one that started before the runtime was routed on)."""
        tap = self._tap
        served = self._served
        if served is None or served[0] is not roles:
            self._release()  # nothing is held while live; a batch path's leftovers
            with self._observe_lock:
                if tap is not None:
                    # What was served before this batch (all of the tap but this batch, the
                    # newest) goes to the old roles, their model work too.
                    self._take_locked(tap, len(keys))
                self._settle_served(remark=False)
                self._served = (roles, self._marks_of(roles))
            if roles.other is None:
                self._arms = None  # the experiment's proposer and what it held
            serve, second = self._server_of(roles)
            runtime = self._runtime() if self._runtime is not None else None
            with self._change:
                if runtime is not None and self._roles is roles:  # else a change came first
                    runtime.route(serve, second)
        else:
            serve, second = self._server_of(roles)
        if roles.other is not None:  # the arms' candidates are split: plain arrays
            keys = _u64(keys)
            hits = np.asarray(hits, dtype=bool)
        out, conf = serve(keys, hits, cached)
        if second is not None:
            out, conf = merge_proposals((out, conf), second(keys, hits, cached))
        return (out, conf) if len(out) else _EMPTY

    def reset(self) -> None:
        roles = self._roles
        roles.champion.reset()
        if roles.other is not None:
            roles.other.reset()

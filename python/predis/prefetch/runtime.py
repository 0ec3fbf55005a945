"""The live prefetch loop of a :class:`predis.Cache`: drain the access log, learn, propose,
load, and account for what each prefetch became.

A background thread drains the cache's access-event ring every ``interval_s``. Demand
``get`` events of int keys go to the prefetcher in batches of its ``batch_size``; its
proposals go to the :class:`PrefetchExecutor`. ``PREFETCH`` events mark entries as
pending; a later demand hit on one counts as used, a demand miss (it was evicted first)
or ageing out of the pending window as wasted. Every drained event is also kept, in a
bounded buffer, for :meth:`predis.Cache.drain_events` (and so for the collector).

Without a model, the default prefetcher trains its first one in the background once it
has seen ``train_after`` requests, and swaps it in.
"""

from __future__ import annotations

import atexit
import collections
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from predis import _core
from predis.access_log import EVENT_DTYPE, GET, INT_KEY, PREFETCH
from predis.errors import InvalidArgumentError
from predis.prefetch.base import Prefetcher, ProposeFn, merge_proposals
from predis.prefetch.executor import PrefetchExecutor
from predis.prefetch.learned import LearnedPrefetcher
from predis.prefetch.model import TrainConfig, train_model
from predis.prefetch.stats import LatencyHistogram, PrefetchStats

if TYPE_CHECKING:
    from predis.cache import Cache

__all__ = ["PrefetchRuntime"]

log = logging.getLogger("predis.prefetch")

# Runtimes still running, stopped at interpreter exit: native training threads must not be
# torn down mid-call (that aborts the process).
_LIVE: weakref.WeakSet[PrefetchRuntime] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for runtime in list(_LIVE):
        runtime.close(timeout=10.0)


class PrefetchRuntime:
    """Runs a prefetcher against a live cache (created by ``Cache(prefetch=...)``).

    Args:
        cache: the cache to serve; held weakly, so the loop ends when the cache goes.
        prefetcher: what proposes keys.
        workers, queue_size, max_loads_per_s: the executor's bounds.
        interval_s: how often the access log is drained.
        pending_limit: prefetched entries tracked for used/wasted at most (default: the
            cache's ``max_items``); the oldest beyond it count as wasted.
        event_buffer: drained events kept for :meth:`take_events` at most (older ones are
            dropped and counted when nobody takes them).
        train_after: requests to collect before training the first model, for a
            :class:`LearnedPrefetcher` that has none (None: never train here).
        train_config: how that first model is trained.
        start: start the drain thread (False: the caller drives :meth:`step`, as a
            deterministic benchmark does, and :meth:`close` still finishes).
    """

    def __init__(
        self,
        cache: Cache,
        prefetcher: Prefetcher,
        *,
        workers: int = 2,
        queue_size: int = 1024,
        max_loads_per_s: float | None = None,
        interval_s: float = 0.002,
        pending_limit: int | None = None,
        event_buffer: int = 1 << 18,
        train_after: int | None = 50_000,
        train_config: TrainConfig | None = None,
        start: bool = True,
    ) -> None:
        if not isinstance(prefetcher, Prefetcher):
            raise InvalidArgumentError("prefetcher must be a predis.prefetch.Prefetcher")
        if not (isinstance(interval_s, (int, float)) and 0 < interval_s <= 10):
            raise InvalidArgumentError(f"interval_s must be in (0, 10], got {interval_s!r}")
        for name, value in (("pending_limit", pending_limit), ("event_buffer", event_buffer)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise InvalidArgumentError(f"{name} must be a positive int, got {value!r}")
        if train_after is not None and (
            isinstance(train_after, bool) or not isinstance(train_after, int) or train_after < 1000
        ):
            raise InvalidArgumentError(
                f"train_after must be an int >= 1000 or None, got {train_after!r}"
            )
        self.prefetcher = prefetcher
        self._cache_ref = weakref.ref(cache)
        self._max_items = cache.max_items
        self._policy = cache.policy
        self._pending_limit = pending_limit or self._max_items
        self._event_limit = event_buffer
        self._interval = float(interval_s)
        self._train_after = train_after
        self._train_config = train_config or TrainConfig(batch_size=prefetcher.batch_size)
        self.executor = PrefetchExecutor(
            self._load, workers=workers, queue_size=queue_size, max_loads_per_s=max_loads_per_s
        )
        self._lock = threading.Lock()
        self._step_lock = threading.Lock()
        self._scratch: np.ndarray | None = None  # step()'s drain buffer
        self._events: collections.deque[np.ndarray] = collections.deque()
        self._events_held = 0
        self.events_dropped = 0
        self._pending: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._batch_keys: list[np.ndarray] = []
        self._batch_hits: list[np.ndarray] = []
        self._batched = 0
        self._train_keys: list[np.ndarray] = []
        self._train_seen = 0
        self._training: threading.Thread | None = None
        self.training_error: BaseException | None = None
        self.issued = self.used = self.wasted = 0
        # A prefetcher that times its own inference (LearnedPrefetcher, the A/B router)
        # exposes a `latency` histogram; others get an empty one.
        latency = getattr(prefetcher, "latency", None)
        self._latency = latency if isinstance(latency, LatencyHistogram) else LatencyHistogram()
        self._stop = threading.Event()
        # What each batch is handed to: the prefetcher's propose, or one it routes to, and
        # a second one whose proposals are merged in (an A/B test's other arm). One tuple,
        # replaced whole, so a batch reads a consistent pair.
        self._route: tuple[ProposeFn, ProposeFn | None] = (prefetcher.propose, None)
        self._finished = False
        self._thread = threading.Thread(target=self._run, name="predis-prefetch-drain", daemon=True)
        try:
            prefetcher.attach(self)
        except BaseException:
            self.executor.close(1.0)
            raise
        if start:
            self._thread.start()
        _LIVE.add(self)

    # ---- for a prefetcher that routes (Prefetcher.attach) ----

    def route(self, propose: ProposeFn | None, second: ProposeFn | None = None) -> None:
        """Hand the next batches to ``propose`` instead of the prefetcher's own (None: its
        own again) and, if given, to ``second`` too, its proposals merged in by confidence
        (:func:`~predis.prefetch.base.merge_proposals`: an A/B test's two arms, each
        proposing its own keys). Any thread; a batch in flight finishes where it started."""
        if propose is None:
            if second is not None:
                raise InvalidArgumentError("a second proposer needs a first")
            self._route = (self.prefetcher.propose, None)
        else:
            self._route = (propose, second)

    def attach_demand_tap(self, tap: _core.DemandTap | None) -> bool:
        """Have the cache's drains offer their demand gets to ``tap`` (None: stop); False
        when the cache is gone."""
        cache = self._cache_ref()
        if cache is None:
            return False
        cache._core.attach_demand_tap(tap)
        return True

    # ---- the loop ----

    def _load(self, key: int, confidence: float) -> bool:
        cache = self._cache_ref()
        return cache is not None and cache._prefetch_load(key, confidence)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            cache = self._cache_ref()
            if cache is None:
                break
            try:
                while self.step(cache) > 0 and not self._stop.is_set():
                    pass
                # The ring is empty: a prefetcher that holds batches back may finish them
                # now rather than when traffic resumes.
                self.prefetcher.idle()
            except Exception:  # the loop must outlive a bad batch; the host never sees it
                log.exception("predis: prefetch loop error; continuing")
            del cache
        self._finish()

    def _finish(self) -> None:
        """The stream has ended: batches a prefetcher held back are finished now, and it is
        told that this runtime stopped."""
        if self._finished:
            return
        self._finished = True
        for hook in (self.prefetcher.flush, self.prefetcher.detach):
            try:
                hook()
            except Exception:
                log.exception("predis: prefetcher %s at close failed", hook.__name__)

    def step(self, cache: Cache) -> int:
        """Drain once and process what came; returns how many events. Any thread (one
        step at a time)."""
        with self._step_lock:
            scratch = self._scratch
            if scratch is None or len(scratch) != cache._log_capacity:
                # One buffer for every drain, not a fresh ring-sized one each time: only the
                # events that came are copied out (they are kept for the collector).
                scratch = self._scratch = np.empty(cache._log_capacity, dtype=EVENT_DTYPE)
            n = cache._core.drain_events_into(scratch)
            if n:
                events = scratch[:n].copy()
                self._keep(events)
                self.feed(events, cache.mcontains)
            return n

    def feed(self, events: np.ndarray, cached: Callable[[np.ndarray], np.ndarray]) -> None:
        """Process drained events: account, batch demand gets, propose, submit."""
        ops = events["op"]
        ints = events["key_kind"] == INT_KEY
        is_get = (ops == GET) & ints
        is_prefetch = (ops == PREFETCH) & ints
        self._settle(events[is_get | is_prefetch])
        gets = events[is_get]
        if len(gets) == 0:
            return
        keys = np.ascontiguousarray(gets["key"])
        hits = gets["hit"].astype(bool)
        self._collect_for_training(keys)
        self._batch_keys.append(keys)
        self._batch_hits.append(hits)
        self._batched += len(keys)
        if self._batched < self.prefetcher.batch_size:
            return
        # Everything gathered goes in one call: if the loop fell behind, the prefetcher
        # learns from all of it and proposes from the latest requests only.
        all_keys = np.concatenate(self._batch_keys)
        all_hits = np.concatenate(self._batch_hits)
        self._batch_keys, self._batch_hits, self._batched = [], [], 0
        propose, second = self._route
        proposed, confidence = propose(all_keys, all_hits, cached)
        if second is not None:
            more = second(all_keys, all_hits, cached)
            if len(more[0]):  # most batches of a test: one arm or neither proposes
                proposed, confidence = merge_proposals((proposed, confidence), more)
        for key, conf in zip(proposed.tolist(), confidence.tolist(), strict=True):
            self.executor.submit(key, conf)

    def _settle(self, events: np.ndarray) -> None:
        """Used/wasted accounting, in event order: a stored guess is pending until a
        demand get hits it (used) or misses it (it was evicted first: wasted); a guess
        stored again while pending, or aged out of the pending window, was wasted."""
        if len(events) == 0:
            return
        prefetch = (events["op"] == PREFETCH).tolist()
        with self._lock:
            pending = self._pending
            if not pending and not any(prefetch):
                return
            for key, is_prefetch, hit in zip(
                events["key"].tolist(), prefetch, events["hit"].tolist(), strict=True
            ):
                if is_prefetch:
                    self.issued += 1
                    if key in pending:
                        self.wasted += 1
                    pending[key] = None
                    pending.move_to_end(key)
                elif key in pending:
                    del pending[key]
                    if hit:
                        self.used += 1
                    else:
                        self.wasted += 1
            while len(pending) > self._pending_limit:
                pending.popitem(last=False)
                self.wasted += 1

    # ---- first model ----

    def _collect_for_training(self, keys: np.ndarray) -> None:
        p = self.prefetcher
        if self._train_after is None or not isinstance(p, LearnedPrefetcher) or p.model is not None:
            return
        if self._stop.is_set():
            return
        if self._training is not None:
            return
        self._train_keys.append(keys.copy())
        self._train_seen += len(keys)
        if self._train_seen >= self._train_after:
            data = np.concatenate(self._train_keys)
            self._train_keys = []
            trainer = threading.Thread(
                target=self._train, args=(p, data), name="predis-prefetch-train", daemon=True
            )
            trainer.start()  # before it is published: others may join it at once
            self._training = trainer

    def _train(self, p: LearnedPrefetcher, keys: np.ndarray) -> None:
        try:
            model = train_model(
                keys,
                self._train_config,
                p.tracker_config,
                cache_items=self._max_items,
                policy=self._policy,
                stop=self._stop,
            )
            if self._stop.is_set():
                return
            p.swap_model(model)
            log.info(
                "predis: prefetch model trained on %d requests (threshold %.2f, %d trees)",
                len(keys),
                model.threshold,
                int(model.metrics.get("trees", 0)),
            )
        except Exception as exc:  # counted in stats; the cache keeps serving without one
            self.training_error = exc
            log.warning("predis: training the first prefetch model failed: %s", exc)

    def wait_trained(self, timeout: float = 60.0) -> bool:
        """Wait up to ``timeout`` seconds for a model to be in use (the first one trains in
        the background); False on timeout, failure or when this prefetcher has none."""
        p = self.prefetcher
        if not isinstance(p, LearnedPrefetcher):
            return False
        deadline = time.monotonic() + timeout
        while p.model is None and self.training_error is None and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            t = self._training
            if t is not None:
                t.join(min(remaining, 0.05))
            else:
                time.sleep(min(remaining, 0.01))
        return p.model is not None

    # ---- events for the collector ----

    def _keep(self, events: np.ndarray) -> None:
        with self._lock:
            self._events.append(events)
            self._events_held += len(events)
            while self._events_held > self._event_limit:
                old = self._events.popleft()
                self._events_held -= len(old)
                self.events_dropped += len(old)

    def take_events(self, max_events: int) -> np.ndarray:
        """Up to ``max_events`` drained events, oldest first (for ``Cache.drain_events``)."""
        out: list[np.ndarray] = []
        n = 0
        with self._lock:
            while self._events and n < max_events:
                head = self._events.popleft()
                take = min(len(head), max_events - n)
                out.append(head[:take])
                if take < len(head):
                    self._events.appendleft(head[take:])
                n += take
            self._events_held -= n
        return np.concatenate(out) if out else np.empty(0, dtype=EVENT_DTYPE)

    # ---- visibility and shutdown ----

    def stats(self) -> PrefetchStats:
        """A snapshot for :meth:`predis.Cache.stats`."""
        ex = self.executor.stats()
        buckets, batches, seconds = self._latency.snapshot()
        p = self.prefetcher
        with self._lock:
            return PrefetchStats(
                issued=self.issued,
                used=self.used,
                wasted=self.wasted,
                errors=ex.errors,
                dropped=ex.dropped_full + ex.dropped_budget + ex.deduped,
                inference_batches=batches,
                inference_rows=getattr(p, "inference_rows", 0),
                inference_seconds_total=seconds,
                inference_latency_buckets=buckets,
                model_version=getattr(p, "model_version", 0),
            )

    def close(self, timeout: float = 5.0) -> None:
        """Stop the loop, any training (after its current tree) and the executor."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        if self._thread.ident is None:  # never started: the caller drove step()
            self._finish()
        elif self._thread is not threading.current_thread():
            self._thread.join(max(0.0, deadline - time.monotonic()))
        # Read only now: the drain thread may have started a trainer until it stopped.
        trainer = self._training
        if trainer is not None and trainer is not threading.current_thread():
            trainer.join(max(0.0, deadline - time.monotonic()))
        self.executor.close(max(0.0, deadline - time.monotonic()))
        if not self._thread.is_alive() and (trainer is None or not trainer.is_alive()):
            _LIVE.discard(self)  # else the exit hook waits for them once more

    def __repr__(self) -> str:
        return f"PrefetchRuntime(prefetcher={type(self.prefetcher).__name__}, stats={self.stats()})"

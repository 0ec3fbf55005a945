"""`LearnedPrefetcher`: candidates from the native tracker, scored by the XGBoost model,
gated by the calibrated threshold and a per-request budget."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import numpy as np

from predis.errors import InvalidArgumentError
from predis.prefetch.base import CachedFn, Prefetcher
from predis.prefetch.features import TrackerConfig
from predis.prefetch.model import PrefetchModel
from predis.prefetch.stats import LatencyHistogram

__all__ = ["LearnedPrefetcher"]

_EMPTY = (np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.float64))


class LearnedPrefetcher(Prefetcher):
    """The learned prefetcher. Without a model it only watches the stream (and proposes
    nothing); :meth:`swap_model` installs or replaces one at any time, also while a cache
    is serving.

    Args:
        model: a trained :class:`PrefetchModel` (see :func:`predis.prefetch.train_model`).
        batch_size: demand requests per inference call (default: the model's, else 8).
        idle_batch_size: the cadence while proposals have stopped coming (four scored
            batches in a row proposed nothing): the tracker still learns from every request,
            the latest ``batch_size`` are scored once per ``idle_batch_size``, and the first
            proposal brings the cadence back. It keeps inference cheap where the model holds
            back. None: always ``batch_size``.
        max_per_request: proposals per demand request at most, on average over a batch.
        threshold: overrides the model's calibrated threshold (0..1).
        tracker: candidate-generator sizes; must equal the model's (default: the model's).

    Example:
        >>> p = LearnedPrefetcher(batch_size=8)
        >>> none_cached = lambda k: np.zeros(len(k), bool)
        >>> keys, conf = p.propose(np.arange(8, dtype=np.uint64), np.zeros(8, bool), none_cached)
        >>> len(keys)  # no model yet: it learns the stream but proposes nothing
        0
    """

    def __init__(
        self,
        model: PrefetchModel | None = None,
        *,
        batch_size: int | None = None,
        idle_batch_size: int | None = 64,
        max_per_request: float = 2.0,
        threshold: float | None = None,
        tracker: TrackerConfig | None = None,
    ) -> None:
        if batch_size is None:
            batch_size = model.batch_size if model is not None else 8
        elif (
            model is not None
            and isinstance(model, PrefetchModel)
            and batch_size != model.batch_size
        ):
            raise InvalidArgumentError(
                f"batch_size {batch_size} differs from the model's ({model.batch_size}): its "
                "lag feature was learned at that cadence"
            )
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int)
            or not 1 <= batch_size <= 65536
        ):
            raise InvalidArgumentError(
                f"batch_size must be an int in [1, 65536], got {batch_size!r}"
            )
        if idle_batch_size is not None and (
            isinstance(idle_batch_size, bool)
            or not isinstance(idle_batch_size, int)
            or not batch_size <= idle_batch_size <= 65536
        ):
            raise InvalidArgumentError(
                f"idle_batch_size must be an int in [batch_size, 65536] or None, "
                f"got {idle_batch_size!r}"
            )
        if (
            isinstance(max_per_request, bool)
            or not isinstance(max_per_request, (int, float))
            or not (0 < max_per_request <= 64)
        ):
            raise InvalidArgumentError(
                f"max_per_request must be in (0, 64], got {max_per_request!r}"
            )
        if threshold is not None and (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float))
            or not 0 <= threshold <= 1
        ):
            raise InvalidArgumentError(f"threshold must be in [0, 1] or None, got {threshold!r}")
        if model is not None and not isinstance(model, PrefetchModel):
            raise InvalidArgumentError("model must be a PrefetchModel")
        self.scoring_batch = batch_size
        self.idle_batch_size = idle_batch_size
        self.batch_size = batch_size  # the current cadence (see idle_batch_size)
        self._quiet = 0
        self.max_per_request = float(max_per_request)
        self.threshold_override = threshold
        self._tracker_config = tracker or (model.tracker if model is not None else TrackerConfig())
        if model is not None and model.tracker != self._tracker_config:
            raise InvalidArgumentError("the model was trained with another tracker configuration")
        self._tracker = self._tracker_config.make()
        self._model = model
        self._lock = threading.Lock()
        self.latency = LatencyHistogram()
        self.inference_rows = 0
        # Plain running totals beside the histogram: a caller that wraps this prefetcher
        # (the A/B router) reads its per-batch model time from them without a lock.
        self.inference_calls = 0
        self.inference_seconds = 0.0
        self.proposals = 0  # keys proposed, counted where the model ran
        #: A second histogram that inference times also go to (the A/B router's, while
        #: this prefetcher serves one of its arms), or None.
        self.latency_sink: LatencyHistogram | None = None
        #: Which candidate keys this prefetcher may propose (a bool array for a uint64
        #: array), or None: any. An A/B router's arm serves only its share of the keys
        #: (predis.mlops.router), and is cut to it before scoring.
        self.serves: Callable[[np.ndarray], np.ndarray] | None = None
        self.model_version = 0 if model is None else 1

    @property
    def model(self) -> PrefetchModel | None:
        """The model in use (None before the first one)."""
        return self._model

    @property
    def tracker_config(self) -> TrackerConfig:
        """The candidate generator's configuration."""
        return self._tracker_config

    @property
    def threshold(self) -> float:
        """The confidence a candidate needs: the override, else the model's."""
        if self.threshold_override is not None:
            return float(self.threshold_override)
        return 1.0 if self._model is None else self._model.threshold

    def swap_model(self, model: PrefetchModel) -> None:
        """Serve ``model`` from the next batch on. Its tracker configuration must match."""
        if not isinstance(model, PrefetchModel):
            raise InvalidArgumentError("model must be a PrefetchModel")
        if model.batch_size != self.scoring_batch:
            raise InvalidArgumentError(
                f"the model was trained for batches of {model.batch_size}, this prefetcher "
                f"scores batches of {self.scoring_batch}"
            )
        if model.tracker != self._tracker_config:
            raise InvalidArgumentError(
                "the model was trained with another tracker configuration "
                f"({model.tracker} vs {self._tracker_config}); train it with this prefetcher's"
            )
        with self._lock:
            self._model = model
            self.model_version += 1
            self._quiet = 0
            self.batch_size = self.scoring_batch  # a new model gets its chance at once

    def reset(self) -> None:
        self._tracker.reset()

    def warm(self, keys: np.ndarray) -> None:
        """Let the candidate generator learn from a key history (oldest first) without
        scoring it: a model that starts serving mid-stream (an A/B challenger) then starts
        with the same knowledge of the stream as the one it is compared with. Call it
        before the prefetcher serves: the tracker is not shared between threads."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        if keys.ndim != 1:
            raise InvalidArgumentError(f"keys must be 1-D, got shape {keys.shape}")
        if len(keys):
            self._tracker.observe(keys, False)

    def propose(
        self,
        keys: np.ndarray,
        hits: np.ndarray,
        cached: CachedFn,
        *,
        score_last: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`Prefetcher.propose`; ``score_last`` scores the candidates of that many
        latest requests (default: one batch) instead of the latest batch only (the A/B
        router's arms, which run every other batch, score both)."""
        proposed, confidence = self._propose(keys, hits, cached, score_last)
        if len(proposed) or self.idle_batch_size is None:
            self._quiet = 0
            self.batch_size = self.scoring_batch
        elif self._model is not None:
            self._quiet += 1
            if self._quiet >= 4:
                self.batch_size = self.idle_batch_size
        return proposed, confidence

    def _propose(
        self,
        keys: np.ndarray,
        hits: np.ndarray,  # noqa: ARG002 - the tracker learns from keys; hits are for others
        cached: CachedFn,
        score_last: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        model = self._model
        # A caller that fell behind hands over more than a batch: the tracker learns from
        # all of it, but only the latest batch is scored, so proposals are never stale.
        scored = self.scoring_batch if score_last is None else max(1, int(score_last))
        if len(keys) > scored:
            self._tracker.observe(keys[:-scored], False)
            keys = keys[-scored:]
        # Without a model the tracker still learns, and emits nothing to score.
        _, cand, feat = self._tracker.observe(keys, model is not None)
        if model is None or len(cand) == 0:
            return _EMPTY
        threshold = self.threshold
        if threshold >= 1.0:  # "never" (float32 probabilities can round up to exactly 1.0)
            return _EMPTY  # so the model need not run at all
        serves = self.serves
        if serves is not None:
            mine = serves(cand)
            cand, feat = cand[mine], feat[mine]
            if len(cand) == 0:
                return _EMPTY
        fresh = ~np.asarray(cached(cand), dtype=bool)
        cand, feat = cand[fresh], feat[fresh]
        if len(cand) == 0:
            return _EMPTY
        start = time.perf_counter()
        p = model.predict(feat)
        took = time.perf_counter() - start
        self.latency.observe(took)
        sink = self.latency_sink
        if sink is not None:
            sink.observe(took)
        self.inference_calls += 1
        self.inference_seconds += took
        self.inference_rows += len(p)
        ok = p >= threshold
        if not ok.any():
            return _EMPTY
        cand, p = cand[ok], p[ok].astype(np.float64)
        # One proposal per key, at its best row's confidence, most confident first.
        order = np.lexsort((-p, cand))
        cand, p = cand[order], p[order]
        first = np.ones(len(cand), dtype=bool)
        first[1:] = cand[1:] != cand[:-1]
        cand, p = cand[first], p[first]
        budget = max(1, math.floor(len(keys) * self.max_per_request))
        top = np.argsort(-p, kind="stable")[:budget]
        self.proposals += len(top)
        return cand[top], p[top]

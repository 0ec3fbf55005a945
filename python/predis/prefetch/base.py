"""The prefetcher interface that trace replay and the live cache both drive."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from predis.prefetch.runtime import PrefetchRuntime

__all__ = ["CachedFn", "Prefetcher", "ProposeFn", "merge_proposals"]

#: Says which of an array of keys the cache holds (a bool array of the same length).
CachedFn = Callable[[np.ndarray], np.ndarray]

#: A prefetcher's ``propose``: (keys, hits, cached) -> (keys to load, confidences).
ProposeFn = Callable[[np.ndarray, np.ndarray, CachedFn], tuple[np.ndarray, np.ndarray]]


def merge_proposals(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Two prefetchers' proposals for the same batch as one list, most confident first
    (ties keep ``a``'s first). A list that is empty leaves the other as it is."""
    if not len(b[0]):
        return a
    if not len(a[0]):
        return b
    keys = np.concatenate([a[0], b[0]])
    confidence = np.concatenate([a[1], b[1]])
    order = np.argsort(-confidence, kind="stable")
    return keys[order], confidence[order]


class Prefetcher(abc.ABC):
    """Sees demand requests in batches and proposes keys to load before they are asked for.

    The caller (:func:`predis.sim.replay` or a live cache's prefetch runtime) hands over
    every ``batch_size`` demand requests, in order, and loads what comes back. A larger
    batch amortizes model inference; the proposals then come that many requests later.
    """

    #: Demand requests per :meth:`propose` call.
    batch_size: int = 1

    @abc.abstractmethod
    def propose(
        self, keys: np.ndarray, hits: np.ndarray, cached: CachedFn
    ) -> tuple[np.ndarray, np.ndarray]:
        """After the demand requests ``keys`` (uint64, oldest first) that hit or missed as
        ``hits`` says, the keys to prefetch now and the confidence of each in [0, 1], most
        confident first. ``cached(keys)`` tells which candidates the cache already holds;
        those should not be proposed."""

    def reset(self) -> None:  # noqa: B027 (optional hook, stateless prefetchers skip it)
        """Forget what was learned from the stream (not the trained model)."""

    def flush(self) -> None:  # noqa: B027 (optional hook: most prefetchers hold nothing)
        """Finish any work held back from earlier batches (for one that gathers batches
        before its bookkeeping, such as the A/B router). Called by the caller of
        :meth:`propose`, on its thread, when the stream ends (a replay's chunk)."""

    def idle(self) -> None:  # noqa: B027 (optional hook: most prefetchers hold nothing)
        """The stream paused: finish held work that has waited long enough. Called by
        the live prefetch runtime, on the thread that calls :meth:`propose`, whenever it
        finds the access ring empty."""

    def attach(self, runtime: PrefetchRuntime) -> None:  # noqa: B027 (optional hook)
        """A live cache's prefetch runtime will serve this prefetcher: called once, before
        its first batch. A prefetcher that routes batches to others (the A/B router) may
        have the runtime call another ``propose`` (:meth:`PrefetchRuntime.route`) and read
        the demand stream from the cache's drains (:meth:`PrefetchRuntime.attach_demand_tap`)."""

    def detach(self) -> None:  # noqa: B027 (optional hook)
        """That runtime has stopped (after :meth:`flush`, on its thread)."""

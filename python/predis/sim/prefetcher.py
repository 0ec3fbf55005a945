"""A sequential read-ahead baseline for the :class:`~predis.prefetch.Prefetcher` interface."""

from __future__ import annotations

import numpy as np

from predis.errors import InvalidArgumentError
from predis.prefetch.base import CachedFn, Prefetcher

__all__ = ["NextKeysPrefetcher", "Prefetcher"]


class NextKeysPrefetcher(Prefetcher):
    """On a miss for int key k, prefetch k+1 .. k+depth: classic sequential read-ahead.

    It wins on scans and loops over consecutive ids and only costs back-end fetches
    elsewhere; the learned prefetcher has to beat it where patterns are not sequential.
    Proposals have confidence 1 (they rank like a demand store).

    Example:
        >>> none_cached = lambda k: np.zeros(len(k), bool)
        >>> keys, conf = NextKeysPrefetcher(depth=2).propose(
        ...     np.array([10], dtype=np.uint64), np.array([False]), none_cached)
        >>> keys.tolist()
        [11, 12]
    """

    batch_size = 1

    def __init__(self, depth: int = 4) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise InvalidArgumentError(f"depth must be a positive int, got {depth!r}")
        self.depth = depth

    def propose(
        self, keys: np.ndarray, hits: np.ndarray, cached: CachedFn
    ) -> tuple[np.ndarray, np.ndarray]:
        missed = [int(k) for k, h in zip(keys, hits, strict=True) if not h]
        ahead = [k + i for k in missed for i in range(1, self.depth + 1) if k + i < 1 << 64]
        cand = np.array(list(dict.fromkeys(ahead)), dtype=np.uint64)
        if len(cand):
            cand = cand[~np.asarray(cached(cand), dtype=bool)]
        return cand, np.ones(len(cand), dtype=np.float64)

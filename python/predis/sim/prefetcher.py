"""The interface between trace replay and a prefetcher, and a sequential baseline."""

from __future__ import annotations

import abc

from predis.errors import InvalidArgumentError

__all__ = ["NextKeysPrefetcher", "Prefetcher"]


class Prefetcher(abc.ABC):
    """Sees each demand request and proposes keys to load before they are asked for.

    Replay calls :meth:`on_request` after serving each request; it returns the keys to
    prefetch now (already-cached keys are skipped by the replay, not by the prefetcher).
    """

    @abc.abstractmethod
    def on_request(self, key: int, hit: bool) -> list[int]:
        """Keys to prefetch after a request for ``key`` that hit or missed."""


class NextKeysPrefetcher(Prefetcher):
    """On a miss for int key k, prefetch k+1 .. k+depth: classic sequential read-ahead.

    It wins on scans and loops over consecutive ids and only costs back-end fetches
    elsewhere; the learned prefetcher has to beat it where patterns are not sequential.

    Example:
        >>> NextKeysPrefetcher(depth=2).on_request(10, hit=False)
        [11, 12]
    """

    def __init__(self, depth: int = 4) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise InvalidArgumentError(f"depth must be a positive int, got {depth!r}")
        self.depth = depth

    def on_request(self, key: int, hit: bool) -> list[int]:
        if hit:
            return []
        return [key + i for i in range(1, self.depth + 1) if key + i < 1 << 64]

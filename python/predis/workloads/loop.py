"""A cyclic scan: keys offset, offset+1, ..., offset+n-1, then again from the start."""

from __future__ import annotations

import numpy as np

from predis.workloads.stream import KeyStream, check_count

__all__ = ["LoopKeys"]


class LoopKeys(KeyStream):
    """Loops over ``n_keys`` keys in order, forever.

    A loop slightly larger than the cache is LRU's worst case: every request misses.

    Example:
        >>> LoopKeys(3, offset=10).take(7).tolist()
        [10, 11, 12, 10, 11, 12, 10]
    """

    def __init__(self, n_keys: int, offset: int = 0) -> None:
        self.n_keys = check_count("n_keys", n_keys)
        self.offset = check_count("offset", offset, 0)
        self._pos = 0

    def sample(self, n: int) -> np.ndarray:
        idx = (self._pos + np.arange(n, dtype=np.uint64)) % np.uint64(self.n_keys)
        self._pos = (self._pos + n) % self.n_keys
        return idx + np.uint64(self.offset)

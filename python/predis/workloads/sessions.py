"""Correlated sequences: sessions that request runs of related keys in order."""

from __future__ import annotations

import numpy as np

from predis.errors import InvalidArgumentError
from predis.workloads.stream import KeyStream, check_count
from predis.workloads.zipf import ZipfKeys

__all__ = ["CorrelatedSessions"]


class CorrelatedSessions(KeyStream):
    """Sessions replay one of ``n_patterns`` fixed key sequences of ``pattern_length``.

    Patterns are drawn with zipf(``alpha``) popularity, so some sequences recur often; each
    key is replaced by a uniformly random one with probability ``noise``. This is the
    pattern a successor-based prefetcher can learn: after the first keys of a session, the
    rest are predictable.

    Example:
        >>> s = CorrelatedSessions(n_keys=1000, n_patterns=4, pattern_length=5, seed=1)
        >>> first = s.take(5).tolist()
        >>> first in s.patterns.tolist()
        True
    """

    def __init__(
        self,
        n_keys: int,
        n_patterns: int,
        pattern_length: int,
        alpha: float = 1.0,
        noise: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.n_keys = check_count("n_keys", n_keys)
        n_patterns = check_count("n_patterns", n_patterns)
        length = check_count("pattern_length", pattern_length)
        if not 0.0 <= noise <= 1.0:
            raise InvalidArgumentError(f"noise must be in [0, 1], got {noise!r}")
        self.noise = float(noise)
        rng = np.random.default_rng(seed)
        self.patterns = rng.integers(0, self.n_keys, (n_patterns, length), dtype=np.uint64)
        self._choice = ZipfKeys(n_patterns, alpha, seed=seed + 1)
        # Separate generators for "replace?" and "with what", so that the stream does not
        # depend on how it is chunked.
        self._swap_rng = np.random.default_rng(seed + 2)
        self._key_rng = np.random.default_rng(seed + 3)
        self._pending = np.empty(0, dtype=np.uint64)

    def sample(self, n: int) -> np.ndarray:
        length = self.patterns.shape[1]
        need = n - len(self._pending)
        if need > 0:
            picks = self._choice.sample(-(-need // length)).astype(np.int64)
            fresh = self.patterns[picks].reshape(-1)
            self._pending = np.concatenate([self._pending, fresh])
        out, self._pending = self._pending[:n].copy(), self._pending[n:]
        if self.noise > 0:
            swap = self._swap_rng.random(n) < self.noise
            out[swap] = self._key_rng.integers(0, self.n_keys, int(swap.sum()), dtype=np.uint64)
        return out

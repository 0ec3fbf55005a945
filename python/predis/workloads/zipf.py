"""Seeded zipf(alpha) key streams over a finite key space, in numpy chunks."""

from __future__ import annotations

import numpy as np

from predis.errors import InvalidArgumentError
from predis.workloads.stream import KeyStream, check_count

__all__ = ["ZipfKeys"]


class ZipfKeys(KeyStream):
    """Keys 0..n_keys-1 where key k has probability proportional to 1 / (k + 1) ** alpha.

    Works for any alpha > 0 (numpy's own ``zipf`` needs alpha > 1 and an infinite support):
    it inverts the exact CDF of the finite distribution with a binary search.

    Example:
        >>> z = ZipfKeys(n_keys=1000, alpha=0.99, seed=7)
        >>> chunk = z.sample(5)
        >>> chunk.dtype, len(chunk), bool((chunk < 1000).all())
        (dtype('uint64'), 5, True)
    """

    def __init__(self, n_keys: int, alpha: float, seed: int = 0) -> None:
        n_keys = check_count("n_keys", n_keys)
        if isinstance(alpha, bool) or not (
            isinstance(alpha, (int, float)) and np.isfinite(alpha) and alpha > 0
        ):
            raise InvalidArgumentError(f"alpha must be a positive finite number, got {alpha!r}")
        self.n_keys = n_keys
        self.alpha = float(alpha)
        weights = np.arange(1, n_keys + 1, dtype=np.float64) ** -self.alpha
        cdf = np.cumsum(weights)
        self._cdf = cdf / cdf[-1]
        self._rng = np.random.default_rng(seed)

    def probabilities(self) -> np.ndarray:
        """P(key == k) for every k, as float64."""
        return np.diff(self._cdf, prepend=0.0)

    def sample(self, n: int) -> np.ndarray:
        """The next ``n`` keys of the stream, as uint64."""
        u = self._rng.random(n)
        idx = np.searchsorted(self._cdf, u, side="right")
        return np.minimum(idx, self.n_keys - 1).astype(np.uint64)

"""Diurnal popularity: a day population and a night population that trade places."""

from __future__ import annotations

import numpy as np

from predis.workloads.stream import KeyStream, check_count
from predis.workloads.zipf import ZipfKeys

__all__ = ["DiurnalKeys"]


class DiurnalKeys(KeyStream):
    """Two zipf(``alpha``) populations over the halves of ``n_keys`` keys.

    Request t comes from the day half (keys below n_keys // 2) with probability
    ``(1 + sin(2 pi t / period)) / 2`` and from the night half otherwise, so the hot set
    drifts from one half to the other and back every ``period`` requests.
    """

    def __init__(self, n_keys: int, alpha: float, period: int, seed: int = 0) -> None:
        self.n_keys = check_count("n_keys", n_keys, 2)
        self.period = check_count("period", period, 2)
        self.half = self.n_keys // 2
        self._day = ZipfKeys(self.half, alpha, seed=seed)
        self._night = ZipfKeys(self.n_keys - self.half, alpha, seed=seed + 1)
        self._rng = np.random.default_rng(seed + 2)
        self._t = 0

    def day_probability(self, t: np.ndarray) -> np.ndarray:
        """P(request t comes from the day half)."""
        return (1.0 + np.sin(2.0 * np.pi * t / self.period)) / 2.0

    def sample(self, n: int) -> np.ndarray:
        t = self._t + np.arange(n)
        self._t += n
        day = self._rng.random(n) < self.day_probability(t)
        out = np.empty(n, dtype=np.uint64)
        n_day = int(day.sum())
        out[day] = self._day.sample(n_day)
        out[~day] = self._night.sample(n - n_day) + np.uint64(self.half)
        return out

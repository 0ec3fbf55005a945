"""Ratio statistics: per-round ratios summarised with bootstrap confidence intervals, and
the decision whether a ratio regressed between two runs.

A pair's rounds each give one ratio r = peer time / subject time (how many times faster
the subject is). Ratios multiply, so everything is done on log r: a run's figure is the
geometric mean exp(mean(log r)), and a change between runs is exp(mean(log r_new) -
mean(log r_old)), with a percentile bootstrap interval that resamples the rounds of each
run independently. The resampling is seeded, so the same files always give the same report.

A ratio has *regressed* when both hold:

- the whole interval lies below 1 (the drop is not within-run noise), and
- the point estimate fell by more than ``threshold`` (the drop is larger than what clean
  runs on the same machine move between runs; docs/benchmarks.md shows how the default
  was measured).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from predis.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_THRESHOLD",
    "MIN_ROUNDS",
    "RatioChange",
    "RatioSummary",
    "compare_ratios",
    "summarise_ratios",
]

MIN_ROUNDS = 3
DEFAULT_CONFIDENCE = 0.95
# 1.5 times the largest drop between clean runs of the steadiest pair (mget-vs-dict: 9.7%
# on the noisy 2-core dev VM), rounded up to 5%; docs/benchmarks.md, "How the threshold
# was chosen". Noisier pairs carry their own (Pair.threshold).
DEFAULT_THRESHOLD = 0.15
_RESAMPLES = 10_000
_SEED = 20261128


@dataclass(frozen=True)
class RatioSummary:
    """One run's figure for one pair: geometric-mean ratio and its interval."""

    ratio: float
    low: float
    high: float
    rounds: int


@dataclass(frozen=True)
class RatioChange:
    """How a pair's ratio moved from an old run to a new one (new / old)."""

    old: RatioSummary
    new: RatioSummary
    change: float
    low: float
    high: float
    threshold: float
    confidence: float

    @property
    def regressed(self) -> bool:
        """The interval is wholly below 1 and the drop exceeds the threshold."""
        return self.high < 1.0 and self.change < 1.0 - self.threshold

    @property
    def improved(self) -> bool:
        """The mirror image of :attr:`regressed`: a significant rise beyond the threshold."""
        return self.low > 1.0 and self.change > 1.0 / (1.0 - self.threshold)

    @property
    def verdict(self) -> str:
        if self.regressed:
            return "REGRESSED"
        if self.improved:
            return "improved"
        return "ok"


def _logs(ratios: Sequence[float], what: str) -> np.ndarray:
    values = np.asarray(ratios, dtype=np.float64)
    if values.ndim != 1 or len(values) < MIN_ROUNDS:
        raise InvalidArgumentError(
            f"{what}: need at least {MIN_ROUNDS} per-round ratios, got {len(values)}; "
            "record the run with more rounds (predis bench run --rounds N)"
        )
    if not np.all(np.isfinite(values)) or not np.all(values > 0):
        raise InvalidArgumentError(f"{what}: ratios must be positive finite numbers")
    return np.log(values)


def _check_confidence(confidence: float) -> None:
    if not 0.5 <= confidence < 1.0:
        raise InvalidArgumentError(f"confidence must be in [0.5, 1), got {confidence!r}")


def _bootstrap_means(logs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    idx = rng.integers(0, len(logs), size=(_RESAMPLES, len(logs)))
    return logs[idx].mean(axis=1)


def _interval(samples: np.ndarray, point: float, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    # Percentile bounds can miss the point estimate by rounding when every sample is equal.
    return math.exp(min(float(low), point)), math.exp(max(float(high), point))


def summarise_ratios(
    ratios: Sequence[float], confidence: float = DEFAULT_CONFIDENCE, what: str = "ratios"
) -> RatioSummary:
    """Geometric mean of per-round ratios with a bootstrap interval."""
    _check_confidence(confidence)
    logs = _logs(ratios, what)
    point = float(logs.mean())
    low, high = _interval(_bootstrap_means(logs, np.random.default_rng(_SEED)), point, confidence)
    return RatioSummary(math.exp(point), low, high, len(logs))


def compare_ratios(
    old: Sequence[float],
    new: Sequence[float],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    confidence: float = DEFAULT_CONFIDENCE,
    what: str = "ratios",
) -> RatioChange:
    """The change new/old of a pair's geometric-mean ratio, with a bootstrap interval."""
    if not 0.0 <= threshold < 1.0:
        raise InvalidArgumentError(f"threshold must be in [0, 1), got {threshold!r}")
    _check_confidence(confidence)
    a = _logs(old, f"{what} (old run)")
    b = _logs(new, f"{what} (new run)")
    rng = np.random.default_rng(_SEED)
    diffs = _bootstrap_means(b, rng) - _bootstrap_means(a, rng)
    point = float(b.mean() - a.mean())
    low, high = _interval(diffs, point, confidence)
    return RatioChange(
        old=summarise_ratios(old, confidence, what),
        new=summarise_ratios(new, confidence, what),
        change=math.exp(point),
        low=low,
        high=high,
        threshold=threshold,
        confidence=confidence,
    )

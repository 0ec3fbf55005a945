"""Shared streams and one small trained model for the prefetch tests."""

from __future__ import annotations

import numpy as np
import pytest

from predis.prefetch import PrefetchModel, TrainConfig, train_model


def sessions_stream(n: int, seed: int = 0, n_patterns: int = 60, length: int = 12) -> np.ndarray:
    """Sessions of fixed random key runs with random gaps of unrelated keys between them, so
    that session starts fall anywhere relative to any batching."""
    rng = np.random.default_rng(seed)
    patterns = rng.integers(1_000_000, 2_000_000, (n_patterns, length), dtype=np.uint64)
    out: list[np.ndarray] = []
    total = 0
    while total < n:
        run = patterns[rng.integers(0, n_patterns)]
        gap = rng.integers(5_000_000, 6_000_000, int(rng.integers(0, 6)), dtype=np.uint64)
        out += [run, gap]
        total += len(run) + len(gap)
    return np.concatenate(out)[:n]


@pytest.fixture(scope="session")
def make_sessions():
    """:func:`sessions_stream`, for tests (test modules do not import each other)."""
    return sessions_stream


@pytest.fixture(scope="session")
def sessions_model() -> PrefetchModel:
    """A model trained on the first sessions stream (seed 0) for a 100-entry LRU cache."""
    keys = sessions_stream(40_000, seed=0)
    return train_model(keys, TrainConfig(num_trees=40, threads=1), cache_items=100)

"""Shared set-up for the benchmark suites: sizes from the environment, workload keys."""

from __future__ import annotations

import os

import numpy as np

from predis.workloads import ZipfKeys


def bench_keys() -> int:
    """Key-space size: PREDIS_BENCH_KEYS, default 1,000,000 (CI sets a small value)."""
    return int(os.environ.get("PREDIS_BENCH_KEYS", "1000000"))


def lookup_keys(n_keys: int, dist: str, n: int, seed: int = 1) -> np.ndarray:
    """``n`` lookup keys over 0..n_keys-1, uniform or zipf(0.99), as uint64."""
    if dist == "uniform":
        return np.random.default_rng(seed).integers(0, n_keys, n, dtype=np.uint64)
    if dist == "zipf":
        # Scatter the ranks over the key space so that hot keys are not neighbours.
        perm = np.random.default_rng(seed + 1).permutation(n_keys).astype(np.uint64)
        return perm[ZipfKeys(n_keys, 0.99, seed=seed).sample(n).astype(np.int64)]
    raise ValueError(dist)

"""Per-update cost of the stream drift detector (ADWIN), beside a bare running mean.

Run: pytest bench/test_drift_bench.py --benchmark-columns=median
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("river")
from predis.mlops.drift import StreamDriftDetector

BITS = (np.random.default_rng(0).random(100_000) < 0.3).tolist()


def test_adwin_updates(benchmark):
    benchmark.group = "drift: 100,000 stream updates"
    benchmark.extra_info["updates_per_round"] = len(BITS)

    def run() -> None:
        d = StreamDriftDetector("hit")
        for b in BITS:
            d.update(b)

    benchmark.pedantic(run, rounds=3, iterations=1)


def test_adwin_update_many(benchmark):
    """The same bits fed as the loop feeds them: update_many per batch of 16 requests."""
    benchmark.group = "drift: 100,000 stream updates"
    benchmark.extra_info["updates_per_round"] = len(BITS)
    arr = np.array(BITS, dtype=bool)
    chunks = [arr[i : i + 16] for i in range(0, len(arr), 16)]

    def run() -> None:
        d = StreamDriftDetector("hit")
        for c in chunks:
            d.update_many(c)

    benchmark.pedantic(run, rounds=3, iterations=1)


def test_running_mean_peer(benchmark):
    benchmark.group = "drift: 100,000 stream updates"
    benchmark.extra_info["updates_per_round"] = len(BITS)

    def run() -> float:
        n = total = 0
        for b in BITS:
            n += 1
            total += 1 if b else 0
        return total / n

    benchmark.pedantic(run, rounds=3, iterations=1)

"""Per-bit cost of the stream drift detector (the native ADWIN), bit by bit, per batch of
16, and in the MLOps loop's shape (chunks of 1,024 requests, blocks of 64 bits), beside
river's ADWIN (the implementation it replaced, when river is installed) and a bare running
mean, all on the same 100,000 bits.

Run: pytest bench/test_drift_bench.py --benchmark-columns=min,median
"""

from __future__ import annotations

import numpy as np
import pytest

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


def test_adwin_loop_shape(benchmark):
    """As the MLOps loop feeds it: chunks of 1,024 bits, blocks of 64, tested every 4."""
    benchmark.group = "drift: 100,000 stream updates"
    benchmark.extra_info["updates_per_round"] = len(BITS)
    arr = np.array(BITS, dtype=bool)
    chunks = [arr[i : i + 1024] for i in range(0, len(arr), 1024)]

    def run() -> None:
        d = StreamDriftDetector("hit", block=64, clock=4)
        for c in chunks:
            d.update_many(c)

    benchmark.pedantic(run, rounds=5, iterations=1)


def test_river_adwin_peer(benchmark):
    """river's ADWIN bit by bit: what StreamDriftDetector used before the native one."""
    river = pytest.importorskip("river.drift")
    benchmark.group = "drift: 100,000 stream updates"
    benchmark.extra_info["updates_per_round"] = len(BITS)

    def run() -> None:
        a = river.ADWIN(delta=0.002)
        for b in BITS:
            a.update(1.0 if b else 0.0)

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

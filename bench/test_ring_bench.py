"""Benchmarks of the SPSC ring: the C++ two-thread program, and the Python binding.

Run:
    python -m pytest bench/test_ring_bench.py                      # measure
    python -m pytest bench/test_ring_bench.py --benchmark-disable  # CI: run each once

Environment:
    PREDIS_BENCH_RING_ITEMS: items per run of bench/ring/ring_bench.cpp (default 20000000;
        CI sets a small count).
    PREDIS_BENCH_RING_REPEATS: runs of each variant, median reported (default: the
        program's own default, 5).

The figures that matter for the C++ benchmark are in ``extra_info`` (items/s per variant,
and the ratios against the naive ring); the time pytest-benchmark records for it is the whole
program's. Nothing here asserts on timing: only on correctness.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import build_ring_bench

DEFAULT_ITEMS = 20_000_000
ROUND_TRIP_ITEMS = 1_000_000
GROUP_THREADS = "ring: two threads, C++ (naive vs SpscRing)"
GROUP_ROUND_TRIP = "ring: 1M uint64 round trip, one Python thread"


@pytest.fixture(scope="module")
def ring_bench_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_ring_bench(tmp_path_factory.mktemp("ring_bench"))


def test_ring_two_threads(benchmark: Any, ring_bench_exe: Path) -> None:
    items = int(os.environ.get("PREDIS_BENCH_RING_ITEMS", DEFAULT_ITEMS))
    cmd = [str(ring_bench_exe), "--items", str(items)]
    repeats = os.environ.get("PREDIS_BENCH_RING_REPEATS")
    if repeats is not None:
        cmd += ["--repeats", repeats]

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)

    benchmark.group = GROUP_THREADS
    result = benchmark.pedantic(run, rounds=1, iterations=1)
    output = f"{' '.join(cmd)}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    assert result.returncode == 0, f"exit code {result.returncode}\n{output}"
    report = json.loads(result.stdout)
    assert report["ordering_ok"] is True, output
    assert report["items"] == items, output
    for variant in ("naive", "spsc", "spsc_batch"):
        assert report[variant]["ordering_ok"] is True, output

    benchmark.extra_info.update(
        {
            "items": report["items"],
            "repeats": report["repeats"],
            "capacity": report["capacity"],
            "batch": report["batch"],
            "pinned": report["pinned"],
            "cpus": report["cpus"],
            "loadavg_1m_before": report["loadavg_1m_before"],
            "naive_items_per_s": report["naive"]["items_per_s_median"],
            "spsc_items_per_s": report["spsc"]["items_per_s_median"],
            "spsc_batch_items_per_s": report["spsc_batch"]["items_per_s_median"],
            "ratio_spsc_vs_naive": report["ratio_spsc_vs_naive"],
            "ratio_batch_vs_naive": report["ratio_batch_vs_naive"],
        }
    )
    if "note" in report:
        benchmark.extra_info["note"] = report["note"]


@pytest.fixture(scope="module")
def round_trip_items() -> np.ndarray:
    return np.arange(ROUND_TRIP_ITEMS, dtype=np.uint64)


def test_u64ring_round_trip(benchmark: Any, round_trip_items: np.ndarray) -> None:
    from predis import _core

    ring = _core.U64Ring(ROUND_TRIP_ITEMS)  # rounds up to 2**20: holds the whole array
    n = len(round_trip_items)

    def round_trip() -> np.ndarray:
        pushed = ring.push_batch(round_trip_items)
        out = ring.pop_batch(n)
        assert pushed == n
        return out

    benchmark.group = GROUP_ROUND_TRIP
    benchmark.extra_info["items"] = n
    out = benchmark(round_trip)
    assert np.array_equal(out, round_trip_items)
    assert len(ring) == 0


def test_deque_round_trip(benchmark: Any, round_trip_items: np.ndarray) -> None:
    """The peer: what one Python thread would do without the ring."""
    d: collections.deque[Any] = collections.deque()
    n = len(round_trip_items)

    def round_trip() -> list[Any]:
        d.extend(round_trip_items)
        popleft = d.popleft
        return [popleft() for _ in range(n)]

    benchmark.group = GROUP_ROUND_TRIP
    benchmark.extra_info["items"] = n
    out = benchmark(round_trip)
    assert np.array_equal(np.asarray(out, dtype=np.uint64), round_trip_items)
    assert len(d) == 0

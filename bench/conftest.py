"""Shared set-up for the benchmark suites: sizes from the environment, workload keys, the
ring benchmark's build, the machine facts every results file carries, and the rule that
every benchmark names its group (``predis bench compare`` and bench/report.py key on it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import predis
from predis.workloads import ZipfKeys

REPO = Path(__file__).resolve().parents[1]


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Facts that decide whether two results files can be compared."""
    del config
    machine_info["cpu_count"] = os.cpu_count()
    machine_info["loadavg"] = list(os.getloadavg())
    machine_info["predis_build"] = {
        k: list(v) if isinstance(v, tuple) else v for k, v in predis.build_info().items()
    }
    machine_info["predis_bench_rounds"] = ratio_rounds()


@pytest.fixture(autouse=True)
def _benchmark_has_a_group(request: pytest.FixtureRequest) -> Any:
    """Fail a benchmark that sets no group: groups are the stable keys of the reports."""
    if "benchmark" not in request.fixturenames:
        yield
        return
    bench = request.getfixturevalue("benchmark")
    yield
    assert bench.group, f"{request.node.nodeid} sets no benchmark.group"


def ratio_rounds() -> int:
    """Rounds per ratio pair: PREDIS_BENCH_ROUNDS, default 30 (``predis bench run``)."""
    return int(os.environ.get("PREDIS_BENCH_ROUNDS", "30"))


def build_ring_bench(folder: Path) -> Path:
    """Compile bench/ring/ring_bench.cpp into ``folder``; skips when g++ is missing."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found on PATH: cannot build bench/ring/ring_bench.cpp")
    exe = folder / "ring_bench"
    source = REPO / "bench" / "ring" / "ring_bench.cpp"
    cmd = [gxx, "-O2", "-std=c++17", "-pthread", f"-I{REPO / 'csrc'}", str(source), "-o", str(exe)]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, f"{' '.join(cmd)} failed:\n{built.stdout}\n{built.stderr}"
    return exe


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

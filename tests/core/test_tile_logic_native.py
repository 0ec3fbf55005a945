"""Build tests/cpp/tile_logic_test.cpp (ASan + UBSan) and run it.

It replays, on the host, the decisions the CUDA kernels make with the shared bucket logic:
the 16-lane tile probe against the CPU backend's one-thread probe, the tile's eviction
reduction against the one-thread victim scan, and insert_into_pair applied in shuffled
batch order against sequential order. So the code the GPU runs is exercised on every CPU
CI run; tests/gpu/ checks the kernels themselves on a device.

Environment: PREDIS_TILE_ROUNDS (default 20000), PREDIS_TILE_SEED (default: random, printed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tests" / "cpp" / "tile_logic_test.cpp"
FLAGS = [
    "-O1",
    "-g",
    "-std=c++17",
    "-Wall",
    "-Wextra",
    "-Wpedantic",
    "-Werror",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    f"-I{REPO / 'csrc'}",
]


def test_tile_logic_matches_the_cpu_scans(tmp_path: Path) -> None:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found on PATH: cannot build tests/cpp/tile_logic_test.cpp")
    exe = tmp_path / "tile_logic_test"
    built = subprocess.run(
        [gxx, *FLAGS, str(SOURCE), "-o", str(exe)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, f"compiling {SOURCE.name} failed:\n{built.stderr}"
    args = [os.environ.get("PREDIS_TILE_ROUNDS", "20000")]
    seed = os.environ.get("PREDIS_TILE_SEED")
    if seed is not None:
        args.append(seed)
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=0", "UBSAN_OPTIONS": "halt_on_error=1"}
    result = subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=180, check=False, env=env
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "tile_logic_test: all passed" in result.stdout, result.stdout

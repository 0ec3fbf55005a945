"""The callgrind regression check: parsing, the 2% rule, baselines, and (slow) the real
check catching a deliberately slowed core."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from predis.benchtools.callgrind import (
    TOLERANCE,
    WORKLOADS,
    CallgrindError,
    build_driver,
    compare_counts,
    count_instructions,
    load_baseline,
    parse_totals,
    write_baseline,
)
from predis.errors import InvalidArgumentError

REPO = Path(__file__).resolve().parents[2]
CHECK = REPO / "bench" / "callgrind" / "check.py"

CALLGRIND_OUT = """# callgrind format
version: 1
creator: callgrind-3.19.0
cmd: ./core_workloads ring
events: Ir
fl=(1) ring.cpp
fn=(1) workload_ring
12 6412373
summary: 6412373
totals: 6412373
"""


def test_parse_totals_reads_the_total_line():
    assert parse_totals(CALLGRIND_OUT) == 6412373
    assert parse_totals("events: Ir\nsummary: 42\n") == 42
    with pytest.raises(CallgrindError, match="no 'totals:'"):
        parse_totals("events: Ir\nfn=main\n12 7\n")


def test_growth_of_two_percent_passes_and_more_fails():
    base = {"batch_get": 1_000_000, "ring": 1_000_000}
    at_limit = compare_counts(base, {"batch_get": 1_020_000, "ring": 980_000})
    assert [c.grew for c in at_limit] == [False, False]
    over = compare_counts(base, {"batch_get": 1_020_001, "ring": 1_000_000})
    assert [c.workload for c in over if c.grew] == ["batch_get"]
    assert over[0].change == pytest.approx(0.020001)
    shrunk = compare_counts(base, {"batch_get": 979_999, "ring": 1_000_000})
    assert shrunk[0].shrank
    assert not shrunk[0].grew


@given(
    st.integers(min_value=1, max_value=10**12),
    st.floats(min_value=-0.5, max_value=0.5, allow_nan=False),
)
def test_grew_means_more_than_the_tolerance_above_baseline(base, change):
    measured = int(base * (1 + change))
    c = compare_counts({"ring": base}, {"ring": measured})[0]
    assert c.grew == (measured > base * (1 + TOLERANCE))


def test_a_missing_measurement_fails_rather_than_passes():
    with pytest.raises(CallgrindError, match="no measurement"):
        compare_counts({"batch_get": 10, "ring": 10}, {"ring": 10})


def test_baseline_round_trip_and_validation(tmp_path):
    path = tmp_path / "callgrind.json"
    tools = {"compiler": "g++ 12", "valgrind": "valgrind-3.19.0", "flags": "-O3"}
    write_baseline(path, {"ring": 5, "batch_get": 7}, tools, "2026-11-28")
    b = load_baseline(path)
    assert b.counts == {"ring": 5, "batch_get": 7}
    assert b.toolchain == tools
    assert b.tolerance == TOLERANCE
    for bad, message in [
        ({"counts": {"ring": -1}, "toolchain": {}}, "positive integers"),
        ({"counts": {"nope": 3}, "toolchain": {}}, "positive integers"),
        ({"counts": {"ring": True}, "toolchain": {}}, "positive integers"),
        ({"counts": {}, "toolchain": {}}, "positive integers"),
        ({"counts": {"ring": 3}, "toolchain": {"c": 1}}, "version strings"),
        ({"counts": {"ring": 3}, "toolchain": {}, "tolerance": 2}, "tolerance"),
    ]:
        path.write_text(json.dumps(bad))
        with pytest.raises(InvalidArgumentError, match=message):
            load_baseline(path)
    path.write_text("{")
    with pytest.raises(InvalidArgumentError, match="not valid JSON"):
        load_baseline(path)
    with pytest.raises(InvalidArgumentError, match="--update"):
        load_baseline(tmp_path / "absent.json")


def test_the_committed_baseline_covers_every_workload():
    b = load_baseline(REPO / "bench" / "baselines" / "callgrind.json")
    assert set(b.counts) == set(WORKLOADS)
    assert b.tolerance == 0.02


needs_tools = pytest.mark.skipif(
    shutil.which("valgrind") is None or shutil.which("g++") is None,
    reason="needs valgrind and g++ (apt-get install valgrind g++)",
)


@pytest.mark.slow
@needs_tools
def test_counts_repeat_exactly_and_a_slowed_core_grows(tmp_path):
    clean = build_driver(REPO, tmp_path)
    slowed = build_driver(REPO, tmp_path, slowdown=64)
    first = count_instructions(clean, "batch_get")
    assert count_instructions(clean, "batch_get") == first  # deterministic
    slow = count_instructions(slowed, "batch_get")
    # 8 rounds of 32,768 lookups, each spinning 64 more iterations.
    assert slow - first >= 64 * 8 * 32_768
    assert count_instructions(slowed, "ring") == count_instructions(clean, "ring")


@pytest.mark.slow
@needs_tools
def test_check_script_fails_the_slowed_core_and_names_the_workload(tmp_path):
    env = dict(os.environ)
    # A baseline recorded here, on this toolchain, from the clean tree.
    baseline = tmp_path / "callgrind.json"
    rec = subprocess.run(
        [sys.executable, str(CHECK), "--update", "--baseline", str(baseline)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    assert rec.returncode == 0, rec.stderr
    clean = subprocess.run(
        [sys.executable, str(CHECK), "--baseline", str(baseline)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
    slowed = subprocess.run(
        [sys.executable, str(CHECK), "--baseline", str(baseline), "--slowdown", "64"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    assert slowed.returncode == 1, slowed.stdout + slowed.stderr
    assert "batch_get" in slowed.stderr
    assert "GREW" in slowed.stdout
    # A baseline from another toolchain is refused, not misread.
    data = json.loads(baseline.read_text())
    data["toolchain"]["compiler"] = "some other compiler 1.0"
    baseline.write_text(json.dumps(data))
    other = subprocess.run(
        [sys.executable, str(CHECK), "--baseline", str(baseline)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    assert other.returncode == 2
    assert "cannot be compared" in other.stderr

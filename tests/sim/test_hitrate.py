"""The hit-rate matrix: libCacheSim baselines on a hand-computed case, table output, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from predis.sim.hitrate import HitRateTable, run_matrix

pytest.importorskip("libcachesim")
from predis.sim import baselines
from predis.sim.baselines import libcachesim_miss_ratios

# Cache of 3 objects. LRU: 1 2 3 miss, 1 2 hit, 4 miss (evicts 3), 1 2 hit, 3 miss (evicts 4),
# 4 miss (evicts 1), 5 miss (evicts 2), 1 miss: 8 of 12. Belady: 1 2 3 miss, 1 2 hit, 4 miss
# (evicts 3, used farthest), 1 2 hit, 3 miss (evicts 2, never used again), 4 hit, 5 miss,
# 1 hit: 6 of 12.
HAND = np.array([1, 2, 3, 1, 2, 4, 1, 2, 3, 4, 5, 1], dtype=np.uint64)


def test_libcachesim_lru_and_belady_match_the_hand_computation():
    r = libcachesim_miss_ratios(HAND, [3], ["lru", "belady"])
    assert r["lru", 3] == pytest.approx(8 / 12)
    assert r["belady", 3] == pytest.approx(6 / 12)


def test_too_small_for_the_policy_is_reported_not_run():
    r = libcachesim_miss_ratios(HAND, [1, 3], ["s3-fifo", "w-tinylfu", "lru"])
    assert r["s3-fifo", 1].startswith("n/a")
    assert "needs >= 100 objects" in r["w-tinylfu", 3]
    assert r["lru", 3] == pytest.approx(8 / 12)


def test_an_aborting_run_is_reported_not_fatal(monkeypatch):
    # Force a configuration that libCacheSim aborts on: S3-FIFO with a 0-object small queue.
    monkeypatch.setitem(baselines.MIN_OBJECTS, "s3-fifo", 1)
    r = libcachesim_miss_ratios(HAND, [1, 3], ["s3-fifo", "lru"])
    assert isinstance(r["s3-fifo", 1], str)
    assert "aborted" in r["s3-fifo", 1]
    assert r["lru", 3] == pytest.approx(8 / 12)


def test_matrix_rows_and_predis_lru_tracks_exact_lru():
    keys = np.random.default_rng(0).zipf(1.3, 20_000).astype(np.uint64) % 3000
    table = run_matrix({"z": keys}, fractions=(0.05, 0.2), policies=("predis-lru", "lru", "belady"))
    assert [row["fraction"] for row in table.rows] == [0.05, 0.2]
    for row in table.rows:
        ratios = row["miss_ratio"]
        assert ratios["belady"] <= ratios["lru"]
        # Predis samples buckets instead of keeping a global list: close to, not exactly, LRU.
        assert ratios["predis-lru"] == pytest.approx(ratios["lru"], abs=0.02)


def test_markdown_bolds_the_best_heuristic_and_reports_the_gap():
    table = HitRateTable(policies=["lru", "arc", "belady"])
    table.rows.append(
        {
            "trace": "t",
            "requests": 10,
            "working_set": 5,
            "fraction": 0.1,
            "cache_objects": 1,
            "miss_ratio": {"lru": 0.5, "arc": 0.4, "belady": 0.25},
        }
    )
    md = table.to_markdown()
    assert "| 0.5000 | **0.4000** | 0.2500 | 15.00 pp |" in md
    assert json.loads(table.to_json())["rows"][0]["miss_ratio"]["arc"] == 0.4


def hitrate_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`predis bench hitrate --no-traces --synthetic ARGS` in a subprocess."""
    command = [sys.executable, "-m", "predis.cli", "bench", "hitrate", "--no-traces", "--synthetic"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_cli_on_the_synthetic_suite(tmp_path):
    out = tmp_path / "hr.json"
    proc = hitrate_cli(
        "--max-requests",
        "3000",
        "--fractions",
        "0.1",
        "--policies",
        "predis-lru,lru,belady",
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert {r["trace"] for r in rows} >= {"zipf-1.0", "loop", "phase-change"}
    assert all(r["requests"] == 3000 for r in rows)
    assert "| loop |" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fractions", "0"], "fractions"),
        (["--fractions", "x"], "fractions"),
        (["--max-requests", "-3"], "positive integer"),
    ],
)
def test_cli_bad_arguments(args, message):
    proc = hitrate_cli(*args, timeout=60)
    assert proc.returncode == 2
    assert message in proc.stderr

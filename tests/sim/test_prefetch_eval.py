"""The prefetcher's goals table: Belady on the second half, goal checks, the CLI."""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from predis.sim.prefetch_eval import (
    GoalRow,
    _check_goals,
    belady_misses,
    category_of,
    evaluate_prefetch,
)
from predis.workloads import LoopKeys


def optimal_misses(keys: list[int], size: int) -> int:
    """The fewest misses of any always-admit eviction choice (exhaustive search)."""

    @functools.cache
    def best(i: int, cached: frozenset[int]) -> int:
        if i == len(keys):
            return 0
        k = keys[i]
        if k in cached:
            return best(i + 1, cached)
        if len(cached) < size:
            return 1 + best(i + 1, cached | {k})
        return 1 + min(best(i + 1, (cached - {v}) | {k}) for v in cached)

    return best(0, frozenset())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=11), st.integers(1, 3))
def test_belady_is_optimal_on_small_traces(keys, size):
    assert belady_misses(np.array(keys, dtype=np.uint64), size) == optimal_misses(keys, size)


def test_belady_counts_only_from_the_split():
    keys = np.array([1, 2, 3, 1, 2, 3], dtype=np.uint64)
    assert belady_misses(keys, 2) == 4
    assert belady_misses(keys, 2, count_from=3) == 1  # 3 1 2 3 -> only one of them misses


def test_categories():
    assert category_of("cache2k_web07.trace.xz") == "floor"
    assert category_of("zipf-1.0") == "floor"
    assert category_of("zipf+scans") == "floor"
    assert category_of("lirs_multi2.trace.gz") == "target"
    assert category_of("sessions") == "target"
    assert category_of("something-new") == "floor"


def test_goal_checks():
    row = GoalRow("t", "target", 100, 10, 0.01)
    row.miss = {"predis+prefetch": 0.2, "s3-fifo": 0.5, "w-tinylfu": 0.6, "belady": 0.3}
    row.predis_fetches = 0.32  # within 1.2 x S3-FIFO's 0.5 and 1.1 x Belady's 0.3
    _check_goals(row)
    assert row.goals == {"target": True, "moonshot": True}
    row.predis_fetches = 0.55  # still within 1.2 x S3-FIFO, not within 1.1 x Belady
    _check_goals(row)
    assert row.goals == {"target": True, "moonshot": False}
    row.predis_fetches = 0.61  # above 1.2 x S3-FIFO's 0.5
    _check_goals(row)
    assert row.goals == {"target": False, "moonshot": False}
    floor = GoalRow("z", "floor", 100, 10, 0.01)
    floor.miss = {"predis+prefetch": 0.505, "s3-fifo": 0.5, "w-tinylfu": None, "belady": None}
    floor.predis_fetches = 0.505
    _check_goals(floor)
    assert floor.goals == {"floor": True, "moonshot": None}


def test_a_loop_meets_its_target():
    table = evaluate_prefetch({"loop": LoopKeys(800).take(16_000)}, fractions=(0.1,))
    (row,) = table.rows
    assert row.category == "target"
    assert row.miss["predis-lru"] == 1.0  # LRU misses every request of a loop
    assert row.miss["predis+prefetch"] < 0.1
    assert row.goals["target"] is True
    assert "| loop | target |" in table.to_markdown()
    assert json.loads(table.to_json())["rows"][0]["trace"] == "loop"


def test_cli_prefetch_goals_on_a_trace_file(tmp_path):
    trace = tmp_path / "seq.trace"
    trace.write_text("\n".join(str(k) for k in LoopKeys(500).take(8_000).tolist()) + "\n")
    out = tmp_path / "goals.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "predis.cli",
            "bench",
            "hitrate",
            "--prefetch",
            "--traces",
            str(trace),
            "--fractions",
            "0.1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert rows[0]["trace"] == "seq.trace"
    assert rows[0]["miss"]["predis+prefetch"] < rows[0]["miss"]["predis-lru"]

"""`predis demo` end to end, headless, as CI runs it: the outcomes in its JSON report.

One run of the real command (a subprocess, 70,000 requests) is shared by the tests of
this module. Nothing here asserts on time: the demo serves in lockstep with its prefetch
loop and its MLOps loop, so what it shows does not depend on the machine's speed.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from predis.mlops import read_segment
from predis.security.crypto import KeyRing

SWITCH = 30_000
REQUESTS = 110_000  # the default run: room for the A/B test's horizon and the forced model's watch


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("demo")
    work, out = root / "work", root / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "predis.cli",
            "demo",
            "--no-serve",
            "--no-progress",
            "--duration",
            f"{REQUESTS // 1000}k",
            "--workdir",
            str(work),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {
        "report": json.loads(out.read_text()),
        "stdout": proc.stdout,
        "work": work,
        "text": out.read_text(),
    }


def test_drift_is_detected_after_the_phase_change_then_a_promotion(demo):
    r = demo["report"]
    drift = r["drift_events"]
    assert drift, r["loop_events"]
    first = drift[0]
    assert SWITCH <= first["detected_at"] <= SWITCH + 2_000
    assert first["kind"] == "performance"
    assert first["mean"] < first["mean_before"]
    assert r["outcome"]["drift_after_change"] is True
    assert r["outcome"]["promoted"] is True
    kinds = [e["kind"] for e in r["loop_events"]]
    order = [
        kinds.index(k)
        for k in ("drift", "retrain-started", "challenger-registered", "ab-started", "promoted")
    ]
    assert order == sorted(order), kinds
    ab = r["hit_rate"]["ab_control_arm"]
    assert ab["challenger_hit_rate"] > ab["control_hit_rate"]


def test_the_forced_model_is_rolled_back_to_the_good_one(demo):
    r = demo["report"]
    forced = r["outcome"]["forced"]
    assert forced is not None
    good = forced["replaced"]
    assert good is not None
    assert good != forced["version"]
    assert r["outcome"]["forced_rolled_back"] is True
    actions = [(h["action"], h.get("version"), h["actor"]) for h in r["models"]["history"]]
    promoted = actions.index(("promote-champion", good, "abtest"))
    pushed = actions.index(("promote-champion", forced["version"], "operator"))
    back = actions.index(("rollback", good, "rollback-watch"))
    assert promoted < pushed < back, actions
    rollback = next(e for e in r["loop_events"] if e["kind"] == "rollback")
    assert rollback["details"]["from_version"] == forced["version"]
    assert rollback["details"]["to_version"] == good
    assert rollback["details"]["difference"] < -0.02  # beyond the rollback threshold
    assert r["models"]["aliases"]["champion"] != forced["version"]


def test_prefetching_beats_the_baseline_and_the_figures_agree(demo):
    r = demo["report"]
    h, b = r["hit_rate"], r["backend"]
    n = r["run"]["requests"]
    assert n == REQUESTS
    assert h["hits"] + h["misses"] == n
    assert h["baseline_hits"] + h["baseline_misses"] == n
    assert h["predis"] == pytest.approx(h["hits"] / n)
    assert h["baseline"] == pytest.approx(h["baseline_hits"] / n)
    assert h["predis"] >= h["baseline"]
    assert b["fetches_avoided"] == h["baseline_misses"] - h["misses"]
    assert b["fetches_avoided"] > 0
    assert b["baseline_fetches"] == h["baseline_misses"]
    # In lockstep no demand miss joins a prefetch in flight: each miss is one fetch.
    assert b["predis_demand_fetches"] == h["misses"]
    assert b["predis_fetches"] == b["predis_demand_fetches"] + b["predis_prefetch_fetches"]
    assert b["net_fetches_saved"] == b["baseline_fetches"] - b["predis_fetches"]
    assert b["latency_saved_s"] == pytest.approx(b["fetches_avoided"] * b["latency_ms"] / 1000)
    p = r["prefetch"]
    assert 0 < p["used"] <= p["issued"] <= b["predis_prefetch_fetches"]
    assert p["precision"] == pytest.approx(p["used"] / p["issued"])
    assert r["run"]["lockstep_timeouts"] == 0


def test_the_timeline_adds_up_and_matches_the_baseline_before_any_model(demo):
    r = demo["report"]
    timeline = r["timeline"]
    sizes = np.diff([0] + [t["end"] for t in timeline])
    hits = sum(round(t["hit_rate"] * s) for t, s in zip(timeline, sizes, strict=True))
    assert hits == r["hit_rate"]["hits"]
    assert timeline[-1]["end"] == r["run"]["requests"]
    # Without a model the live cache is a plain LRU cache: chunk for chunk it must hit
    # exactly as the baseline replay does.
    before = [t for t in timeline if t["champion"] is None and t["end"] <= SWITCH]
    assert before
    for t in before:
        assert t["hit_rate"] == t["baseline_hit_rate"], t


def test_roi_and_overhead_follow_their_formulas(demo):
    r = demo["report"]
    roi, prices, b, ov = r["roi"], r["roi"]["inputs"], r["backend"], r["overhead"]
    benefit = (
        b["latency_saved_s"] / 3600 * prices["wait_cost_per_hour"]
        + b["net_fetches_saved"] * prices["cost_per_fetch"]
    )
    cost = ov["predis_cpu_s"] / 3600 * prices["cpu_cost_per_hour"]
    assert roi["benefit"] == pytest.approx(benefit)
    assert roi["cost"] == pytest.approx(cost)
    assert roi["roi"] == pytest.approx(benefit / cost)
    assert ov["predis_cpu_s"] > 0
    assert ov["predis_cpu_s"] == pytest.approx(
        ov["process_cpu_s"] - ov["host_cpu_s"] - ov["demo_cpu_s"]
    )
    assert 0 < ov["predis_cpu_share"] <= 1
    assert ov["training_s"] > 0
    assert ov["inference_batches"] > 0
    assert ov["inference_mean_us_per_batch"] > 0


def test_segments_are_encrypted_and_hold_every_event(demo):
    r, work = demo["report"], demo["work"]
    c = r["collector"]
    assert c["events_written"] == c["events_drained"] > REQUESTS
    assert c["write_errors"] == c["events_dropped_after_errors"] == 0
    key_file = work / "data.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    keys = KeyRing.from_file(key_file)
    segments = sorted((work / "segments").glob("demo-*"))
    assert len(segments) == c["segment_files"] > 0
    total = 0
    for path in segments:
        raw = path.read_bytes()
        _, events = read_segment(path, keys)
        total += len(events)
        # Sealed: the keys of the first events are not in the file as plain bytes.
        assert events["key"][:8].tobytes() not in raw
    assert total == c["events_written"]


def test_the_narration_tells_the_story_in_order(demo):
    out = demo["stdout"]
    lines = [
        "phase change at request 30,000",
        "drift detected at request",
        "retraining…",
        "validated on held-out requests",
        "A/B: challenger +",
        "forcing a degraded model",
        "rollback to v",
        "hit rate with Predis",
    ]
    at = [out.find(line) for line in lines]
    assert -1 not in at, [line for line, i in zip(lines, at, strict=True) if i == -1]
    assert at == sorted(at)
    assert "pdk_" not in out  # headless: no token was made
    assert Path(demo["report"]["run"]["workdir"]) == demo["work"]

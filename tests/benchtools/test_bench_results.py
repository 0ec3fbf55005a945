"""Results files read back, `predis bench compare`, and `predis bench run`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from predis.benchtools.pairs import (
    PAIRS,
    Pair,
    PairCheckError,
    Round,
    interleaved_pair,
    measure_interleaved,
    register,
)
from predis.benchtools.results import load_run, pair_extra_info
from predis.benchtools.runner import find_bench_dir, run_bench
from predis.cli import main
from predis.errors import InvalidArgumentError

REPO = Path(__file__).resolve().parents[2]


def results_file(
    path: Path, pairs: dict[str, list[float]], *, cpu: str = "Test CPU", slowdown: int = 0
) -> Path:
    """A pytest-benchmark-shaped file whose pairs have the given per-round ratios (peer
    time 1 ms; subject time 1 ms / ratio)."""
    benchmarks = []
    for name, ratios in pairs.items():
        pair = Pair(name, "subject", "peer", "test pair", lambda _n: [])
        rounds = [Round(1e-3 / r, 1e-3) for r in ratios]
        benchmarks.append(
            {
                "group": f"ratio: {name}",
                "name": f"test_ratio[{name}]",
                "extra_info": {"pair": pair_extra_info(pair, rounds)},
            }
        )
    benchmarks.append({"group": "other", "name": "test_other", "extra_info": {}})
    data = {
        "machine_info": {"cpu": {"brand_raw": cpu}, "predis_build": {"bench_slowdown": slowdown}},
        "commit_info": {"id": "0123456789abcdef", "dirty": False},
        "datetime": "2026-11-28T20:00:00",
        "benchmarks": benchmarks,
    }
    path.write_text(json.dumps(data))
    return path


def spread(center: float, n: int = 30, seed: int = 0, sd: float = 0.05) -> list[float]:
    return list(center * np.exp(np.random.default_rng(seed).normal(0, sd, n)))


def test_load_run_reads_pairs_and_run_facts(tmp_path):
    p = results_file(tmp_path / "r.json", {"a": [2.0, 4.0, 8.0]}, slowdown=64)
    run = load_run(p)
    assert set(run.pairs) == {"a"}
    assert run.pairs["a"].ratios == pytest.approx([2.0, 4.0, 8.0])
    assert run.commit == "0123456789abcdef"
    assert run.cpu == "Test CPU"
    assert "SLOWED" in run.describe()


def _mutate(tmp_path: Path, change) -> Path:
    p = results_file(tmp_path / "r.json", {"a": [1.0, 2.0, 3.0]})
    data = json.loads(p.read_text())
    change(data)
    p.write_text(json.dumps(data))
    return p


def _pair(d):
    return d["benchmarks"][0]["extra_info"]["pair"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("benchmarks"), "no 'benchmarks' list"),
        (lambda d: _pair(d).update(subject_s=[]), "non-empty list"),
        (lambda d: _pair(d).update(subject_s=[1, -2, 3]), "not a positive time"),
        (lambda d: _pair(d).update(peer_s=[1, "x", 3]), "not a positive time"),
        (lambda d: _pair(d).update(peer_s=[1, True, 3]), "not a positive time"),
        (lambda d: _pair(d).update(peer_s=[1.0, 2.0]), "3 subject times but 2 peer times"),
        (lambda d: _pair(d).update(name="two words"), "no valid name"),
        (lambda d: _pair(d).update(subject=7), "'subject' must be a string"),
        (lambda d: d["benchmarks"].append(d["benchmarks"][0]), "appears twice"),
        (lambda d: d["benchmarks"][0]["extra_info"].update(pair=[1]), "not an object"),
    ],
)
def test_malformed_results_are_refused_with_the_reason(tmp_path, change, message):
    with pytest.raises(InvalidArgumentError, match=message):
        load_run(_mutate(tmp_path, change))


def test_not_json_and_missing_files_are_refused(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidArgumentError, match="not valid JSON"):
        load_run(bad)
    with pytest.raises(InvalidArgumentError, match="no such results file"):
        load_run(tmp_path / "absent.json")


def test_compare_passes_a_clean_pair_of_runs(tmp_path, capsys):
    old = results_file(tmp_path / "old.json", {"a": spread(10, seed=1), "b": spread(0.5, seed=2)})
    new = results_file(tmp_path / "new.json", {"a": spread(10, seed=3), "b": spread(0.5, seed=4)})
    assert main(["bench", "compare", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "| a |" in out
    assert "| b |" in out
    assert "OK: no ratio dropped" in out


def test_compare_fails_on_a_regressed_pair_and_names_it(tmp_path, capsys):
    old = results_file(tmp_path / "old.json", {"a": spread(10, seed=1), "b": spread(0.5, seed=2)})
    new = results_file(tmp_path / "new.json", {"a": spread(7, seed=3), "b": spread(0.5, seed=4)})
    assert main(["bench", "compare", str(old), str(new)]) == 1
    captured = capsys.readouterr()
    assert "REGRESSED" in captured.out
    assert "FAIL: a" in captured.err
    assert "b" not in captured.err.split("FAIL:")[1]


def test_compare_threshold_options_change_the_verdict(tmp_path):
    old = results_file(tmp_path / "old.json", {"a": spread(10, seed=1, sd=0.01)})
    new = results_file(tmp_path / "new.json", {"a": spread(9.4, seed=2, sd=0.01)})  # -6%
    assert main(["bench", "compare", str(old), str(new)]) == 0
    assert main(["bench", "compare", str(old), str(new), "--threshold", "0.03"]) == 1
    assert main(["bench", "compare", str(old), str(new), "--pair-threshold", "a=0.03"]) == 1
    assert main(["bench", "compare", str(old), str(new), "--pair-threshold", "zz=0.03"]) == 2
    assert main(["bench", "compare", str(old), str(new), "--pair-threshold", "a=2"]) == 2


def test_compare_fails_on_a_missing_pair_unless_allowed(tmp_path, capsys):
    old = results_file(tmp_path / "old.json", {"a": spread(10, seed=1), "b": spread(3, seed=2)})
    new = results_file(tmp_path / "new.json", {"a": spread(10, seed=3)})
    assert main(["bench", "compare", str(old), str(new)]) == 1
    assert "b (missing)" in capsys.readouterr().err
    assert main(["bench", "compare", str(old), str(new), "--allow-missing"]) == 0


def test_compare_refuses_runs_without_shared_pairs_or_enough_rounds(tmp_path, capsys):
    old = results_file(tmp_path / "old.json", {"a": spread(10, seed=1)})
    new = results_file(tmp_path / "new.json", {"b": spread(10, seed=3)})
    assert main(["bench", "compare", str(old), str(new), "--allow-missing"]) == 2
    one = results_file(tmp_path / "one.json", {"a": [10.0]})  # a --benchmark-disable run
    assert main(["bench", "compare", str(old), str(one)]) == 2
    assert "at least 3" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert main(["bench", "compare", str(old), str(bad)]) == 2


def test_measure_interleaved_times_both_sides_every_round():
    calls = {"s": 0, "p": 0}

    def subject():
        calls["s"] += 1

    def peer():
        calls["p"] += 1
        sum(range(2000))  # slower than the subject by construction

    rounds = measure_interleaved((subject, peer), 5)
    assert len(rounds) == 5
    assert all(r.subject_s > 0 and r.peer_s > 0 for r in rounds)
    assert calls["s"] > 5
    assert calls["p"] > 5
    with pytest.raises(InvalidArgumentError):
        measure_interleaved((subject, peer), 0)


def test_a_pair_is_a_generator_and_its_cleanup_runs():
    log = []

    @interleaved_pair("test-pair-cleanup", subject="a", peer="b", description="test")
    def _pair():
        log.append("setup")
        try:
            yield (lambda: None), (lambda: None)
        finally:
            log.append("cleanup")

    try:
        assert PAIRS["test-pair-cleanup"] is _pair
        assert len(_pair.measure(3)) == 3
        assert log == ["setup", "cleanup"]
        with pytest.raises(InvalidArgumentError, match="already registered"):
            register(Pair("test-pair-cleanup", "a", "b", "other", lambda _n: []))
        with pytest.raises(InvalidArgumentError, match="without spaces"):
            register(Pair("bad name", "a", "b", "other", lambda _n: []))
    finally:
        PAIRS.pop("test-pair-cleanup", None)


def test_a_pair_whose_sides_disagree_is_refused():
    import predis.benchtools.headline  # noqa: F401
    from predis.benchtools.pairs import check

    assert {"mget-vs-dict", "mlops-on-vs-off"} <= set(PAIRS)
    with pytest.raises(PairCheckError, match="differ"):
        check(False, "the sides differ")


def test_find_bench_dir_needs_a_checkout(tmp_path):
    assert find_bench_dir(REPO / "tests") == REPO / "bench"
    with pytest.raises(InvalidArgumentError, match="--bench-dir"):
        find_bench_dir(tmp_path)
    with pytest.raises(InvalidArgumentError, match="not a Predis bench/ folder"):
        run_bench(tmp_path / "r.json", bench_dir=tmp_path)
    with pytest.raises(InvalidArgumentError, match="--rounds"):
        run_bench(tmp_path / "r.json", bench_dir=REPO / "bench", rounds=2)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        run_bench(tmp_path / "no" / "r.json", bench_dir=REPO / "bench")


def test_bench_run_saves_pairs_machine_and_commit(tmp_path, capsys, monkeypatch):
    # One real pair, three rounds: checks the file `predis bench compare` reads, not speed.
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run.json"
    args = ["bench", "run", "--pairs-only", "--rounds", "3", "-k", "mget", "--json", str(out)]
    args += ["--bench-dir", str(REPO / "bench")]
    assert main(args) == 0
    run = load_run(out)
    assert set(run.pairs) == {"mget-vs-dict"}
    assert len(run.pairs["mget-vs-dict"].rounds) == 3
    data = json.loads(out.read_text())
    assert data["machine_info"]["predis_build"]["bench_slowdown"] == 0
    assert data["machine_info"]["cpu_count"] >= 1
    assert data["machine_info"]["predis_bench_rounds"] == 3
    assert "commit_info" in data
    assert "| mget-vs-dict |" in capsys.readouterr().out

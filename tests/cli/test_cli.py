"""The `predis` command, run as a real subprocess and in-process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from predis.cli import main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "predis.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_json_report_is_consistent():
    proc = run("demo", "--requests", "50000", "--keys", "5000", "--json", "-", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["requests"] == 50_000
    assert report["hits"] + report["misses"] == 50_000
    assert report["hit_ratio"] == pytest.approx(report["hits"] / 50_000)
    # Every miss that was not a duplicate within its batch went to the back end once.
    assert 0 < report["backend_fetches"] <= report["misses"]
    assert report["inserts"] == report["backend_fetches"]
    assert report["bytes_used"] <= report["capacity_bytes"]
    assert report["items"] == report["inserts"] - report["evictions"]
    assert report["events_logged"] + report["events_dropped"] == 50_000 + report["inserts"]
    assert report["requests_per_s"] > 0
    assert report["backend"] == "cpu"


def test_demo_skew_raises_hit_ratio():
    """A more skewed workload must hit more often in the same cache: the figures are live."""
    ratios = []
    for alpha in ("0.5", "1.2"):
        proc = run("demo", "--requests", "40000", "--keys", "5000", "--alpha", alpha, "--json", "-")
        assert proc.returncode == 0, proc.stderr
        ratios.append(json.loads(proc.stdout)["hit_ratio"])
    assert ratios[1] > ratios[0] + 0.1


def test_demo_text_report_and_json_file(tmp_path):
    out = tmp_path / "report.json"
    proc = run("demo", "--requests", "20000", "--keys", "2000", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "hit ratio" in proc.stdout
    assert "throughput" in proc.stdout
    assert json.loads(out.read_text())["requests"] == 20_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--requests", "0"], "positive integer"),
        (["demo", "--requests", "abc"], "positive integer"),
        (["demo", "--alpha", "-1"], "positive"),
        (["demo", "--alpha", "nan"], "positive"),
        (["demo", "--cache-fraction", "1.5"], "fraction"),
        (["demo", "--policy", "fifo"], "invalid choice"),
        (["nosuch"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, message):
    proc = run(*args)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_json_path_into_missing_directory_fails_cleanly(tmp_path):
    code = main(
        ["demo", "--requests", "1000", "--keys", "100", "--json", str(tmp_path / "no" / "r.json")]
    )
    assert code == 1


def test_info_reports_build():
    proc = run("info")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["build"]["backends"] == (["cpu", "cuda"] if info["build"]["cuda"] else ["cpu"])
    assert "devices" in info["cuda"]


def test_version():
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("predis ")

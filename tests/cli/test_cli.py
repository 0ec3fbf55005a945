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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--duration", "0"], "request budget"),
        (["demo", "--duration", "abc"], "invalid duration"),
        (["demo", "--port", "70000"], "port"),
        (["demo", "--latency-ms", "nan"], "number >= 0"),
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
        [
            "demo",
            "--no-serve",
            "--no-progress",
            "--duration",
            "12k",
            "--switch-at",
            "10000",
            "--workdir",
            str(tmp_path / "work"),
            "--json",
            str(tmp_path / "no" / "r.json"),
        ]
    )
    assert code == 2  # refused before the demo starts: nothing is created
    assert not (tmp_path / "no").exists()
    assert not (tmp_path / "work").exists()


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

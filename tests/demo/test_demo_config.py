"""`predis demo`'s settings, work folder, workloads, services and narration, and the CLI's
refusals of bad input (each refused before anything is created)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from predis import Cache, InvalidArgumentError
from predis.demo import Budget, DemoConfig, parse_duration, run_demo
from predis.demo.config import prepare_workdir
from predis.demo.narration import narrate
from predis.demo.pipeline import dashboard_prices
from predis.demo.services import start_services
from predis.demo.workload import TRACE_OFFSET, build_workload
from predis.mlops import Collector, MLOpsEvent, ModelRegistry
from predis.security.crypto import KeyRing, generate_key_line
from predis.security.tokens import AuthError, TokenStore


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "predis.cli", "demo", "--no-progress", "--no-serve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# ---- the duration ----


@given(st.integers(10_000, 10**9))
def test_a_plain_number_is_a_request_budget(n):
    assert parse_duration(str(n)) == Budget(requests=n)
    assert parse_duration(f"{n:_}") == Budget(requests=n)


@given(st.integers(10, 86_400))
def test_a_suffix_s_is_seconds(n):
    assert parse_duration(f"{n}s") == Budget(seconds=float(n))


@pytest.mark.parametrize(
    ("text", "budget"),
    [
        ("120k", Budget(requests=120_000)),
        ("1.5M", Budget(requests=1_500_000)),
        ("3m", Budget(seconds=180.0)),
        ("2 min", Budget(seconds=120.0)),
        ("45 sec", Budget(seconds=45.0)),
    ],
)
def test_duration_forms(text, budget):
    assert parse_duration(text) == budget


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "request budget"),
        ("9999", "request budget"),
        ("1.5k5", "invalid duration"),
        ("1.0005k", "whole number"),
        ("5s", "time budget"),
        ("2d", "invalid duration"),
        ("-10k", "invalid duration"),
        ("", "invalid duration"),
        ("9" * 60, "short string"),
    ],
)
def test_bad_durations_are_refused(text, message):
    with pytest.raises(InvalidArgumentError, match=message):
        parse_duration(text)


def test_the_budget_must_pass_the_phase_change():
    with pytest.raises(InvalidArgumentError, match="longer than the phase change"):
        DemoConfig(duration=Budget(requests=30_000), switch_at=30_000)


@pytest.mark.parametrize(
    ("field", "value"),
    [("port", -1), ("port", 65536), ("seed", -1), ("cache_items", 3), ("latency_ms", -1.0)],
)
def test_bad_settings_are_refused(field, value):
    with pytest.raises(InvalidArgumentError, match=field):
        DemoConfig(**{field: value})


# ---- the workload ----


def test_a_missing_trace_is_refused_with_the_names(tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"no such trace file.*sessions"):
        DemoConfig(workload=str(tmp_path / "nope.trace.gz"))


def test_a_folder_or_an_unknown_format_is_refused(tmp_path):
    with pytest.raises(InvalidArgumentError, match="not a regular file"):
        DemoConfig(workload=str(tmp_path))
    odd = tmp_path / "requests.bin"
    odd.write_bytes(b"\x00" * 16)
    with pytest.raises(InvalidArgumentError, match="cannot tell the trace format"):
        DemoConfig(workload=str(odd))


def test_a_trace_follows_the_zipf_phase_with_its_own_keys(tmp_path):
    trace = tmp_path / "small.trace"
    ids = np.arange(500, dtype=np.uint64) % 37
    trace.write_text("\n".join(map(str, ids.tolist())) + "\n*\n")
    cfg = DemoConfig(
        workload=str(trace), duration=Budget(requests=10_300), switch_at=10_000, serve=False
    )
    w = build_workload(cfg)
    keys = np.concatenate(list(w.chunks(4_000)))
    assert w.limit == 10_300
    assert len(keys) == 10_300  # the budget cuts the trace
    assert keys[:10_000].max() < 3_000  # the zipf phase
    assert (keys[10_000:] - np.uint64(TRACE_OFFSET)).tolist() == ids[:300].tolist()
    assert "its first 300 requests" in w.phases[1]


def test_named_workloads_change_at_the_switch():
    for name in ("sessions", "loop", "hotset"):
        w = build_workload(DemoConfig(workload=name, switch_at=10_000, seed=4))
        chunks = w.chunks(5_000)
        first = np.concatenate([next(chunks), next(chunks)])
        after = next(chunks)
        assert first.max() < 3_000
        if name == "hotset":
            assert after.max() < 3_000
            hot_before = np.bincount(first.astype(np.int64)).argmax()
            hot_after = np.bincount(after.astype(np.int64)).argmax()
            assert hot_before != hot_after
        else:
            assert after.min() >= 3_000 or name == "sessions"
            assert len(np.intersect1d(first, after)) < len(np.unique(after)) // 2


# ---- the work folder ----


def test_workdir_default_is_fresh_and_private():
    path = prepare_workdir(None)
    try:
        assert path.is_dir()
        assert (path.stat().st_mode & 0o077) == 0
        assert not any(path.iterdir())
    finally:
        path.rmdir()


def test_workdir_refuses_traversal_links_and_files_of_others(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(InvalidArgumentError, match=r"contains '\.\.'"):
        prepare_workdir(str(tmp_path / "a" / ".." / "b"))
    outside = tmp_path / "outside"
    outside.mkdir()
    link = tmp_path / "link"
    link.symlink_to(outside)
    with pytest.raises(InvalidArgumentError, match="symbolic link"):
        prepare_workdir(str(link))
    (outside / "precious.txt").write_text("keep")
    with pytest.raises(InvalidArgumentError, match="not empty"):
        prepare_workdir(str(outside))
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgumentError, match="not a folder"):
        prepare_workdir(str(tmp_path / "file"))
    assert (outside / "precious.txt").read_text() == "keep"
    made = prepare_workdir(str(tmp_path / "new" / "deeper"))
    assert made.is_dir()


# ---- the CLI refuses before anything is created ----


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "abc"], "invalid duration"),
        (["--duration", "5s"], "time budget"),
        (["--duration", "20k", "--switch-at", "20000"], "longer than the phase change"),
        (["--workload", "no/such/file.trace.gz"], "no such trace file"),
        (["--workload", "zipfian"], "not a workload name"),
        (["--port", "-3"], "port"),
    ],
)
def test_cli_refuses_bad_input_with_exit_2(args, message):
    proc = run(*args)
    assert proc.returncode == 2, proc.stdout
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_refuses_a_symlinked_or_climbing_workdir(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "w").symlink_to(outside)
    proc = run("--duration", "40k", "--workdir", str(tmp_path / "w"))
    assert proc.returncode == 2
    assert "symbolic link" in proc.stderr
    proc = run("--duration", "40k", "--workdir", str(tmp_path / "x" / ".." / ".." / "y"))
    assert proc.returncode == 2
    assert "'..'" in proc.stderr
    assert not any(outside.iterdir())
    assert not (tmp_path / "x").exists()


# ---- the services ----


def test_services_serve_metrics_on_loopback_and_make_a_valid_token(tmp_path):
    keys = KeyRing.parse(generate_key_line("k1"))
    cache = Cache(1 << 16, max_items=100)
    cache.put(1, b"x")
    assert cache.get(1) == b"x"
    collector = Collector(cache, tmp_path / "seg", "demo", keys)
    registry = ModelRegistry(tmp_path / "models", "demo")
    services = start_services(
        cache=cache,
        collector=collector,
        registry=registry,
        workdir=tmp_path,
        customer="demo",
        port=0,
        roi_prices=dashboard_prices(DemoConfig()),
    )
    try:
        url = services.metrics_url
        assert url is not None
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read().decode()
        assert 'predis_keyspace_hits_total{cache="demo"} 1.0' in body
        store = TokenStore(tmp_path / "tokens.json")
        info = store.verify(services.token, "read", customer="demo")
        assert info.id == services.token_id
        with pytest.raises(AuthError):
            store.verify(services.token, "admin", customer="demo")
        assert services.token not in (tmp_path / "tokens.json").read_text()
        assert services.token not in str(services.describe())
        assert (os.stat(tmp_path / "tokens.json").st_mode & 0o077) == 0
        check_dashboard(services.dashboard_url, services.token, lambda: cache.get(1))
    finally:
        services.close()
        collector.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(services.dashboard_url, timeout=2)


def check_dashboard(base: str | None, token: str | None, traffic) -> None:
    """The demo's dashboard asks for a login, takes the demo's token, and shows the cache's
    live figures (read in process from the same monitor as the exporter)."""
    httpx = pytest.importorskip("httpx")
    assert base is not None
    assert base.startswith("http://127.0.0.1:")
    assert token is not None
    with httpx.Client(base_url=base, timeout=10) as c:
        assert c.get("/api/overview").status_code in (302, 303, 307, 401)
        page = c.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        r = c.post(
            "/login",
            data={"token": token, "csrf": csrf.group(1)},
            headers={"Origin": base},
            follow_redirects=False,
        )
        assert r.status_code in (302, 303), r.text[:200]
        deadline = time.monotonic() + 30
        while True:
            for _ in range(50):
                traffic()  # hits between scrapes: the figures are deltas of the counters
            data = c.get("/api/overview").json()
            if data["cards"].get("hit_ratio") is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert data["customer"] == "demo"
        assert data["cards"]["hit_ratio"] == 1.0, data  # every get was a hit


# ---- the narration ----


def event(kind: str, details: dict, message: str = "m", position: int = 31_000) -> MLOpsEvent:
    return MLOpsEvent(1, 0.0, "demo", kind, message, details, position)


def test_narration_lines():
    drift = event(
        "drift",
        {"kind": "performance", "mean": 0.41, "mean_before": 0.62, "detected_at": 30_048},
    )
    assert "drift detected at request 30,048 (ADWIN, 48 requests after the phase change): " in (
        narrate(drift, 30_000)
    )
    assert "hit rate 0.620→0.410" in narrate(drift, 30_000)
    promoted = event(
        "promoted",
        {
            "version": 3,
            "difference": 0.041,
            "new_hit_rate": 0.5,
            "base_hit_rate": 0.459,
            "msprt_p": 0.0012,
        },
    )
    assert "A/B: challenger +4.1 pp" in narrate(promoted)
    assert "p=0.0012" in narrate(promoted)
    assert "v3 promoted" in narrate(promoted)
    back = event(
        "rollback",
        {
            "from_version": 4,
            "to_version": 3,
            "difference": -0.12,
            "new_hit_rate": 0.3,
            "base_hit_rate": 0.42,
            "msprt_p": 0.001,
        },
    )
    assert "rollback to v3: hit rate -12.0 pp under v4" in narrate(back)
    assert "confirmed" in narrate(back)
    other = event("retrain-failed", {}, "too few requests")
    assert narrate(other).endswith("retrain-failed: too few requests")


# ---- a time budget ----


def test_a_time_budget_stops_at_a_chunk_boundary(tmp_path):
    lines: list[str] = []
    report = run_demo(
        DemoConfig(
            duration=Budget(seconds=10),
            workload="hotset",
            workdir=str(tmp_path / "work"),
            serve=False,
            switch_at=10_000,
        ),
        say=lines.append,
    )
    run = report.run
    assert run["stopped_by"] == "time"  # the stream is endless: only the clock ends it
    assert run["requests"] > 0
    assert run["requests"] % 2_000 == 0
    assert report.timeline[-1]["end"] == run["requests"]
    assert any("serving 10 s" in line for line in lines)
    assert report.hit_rate["hits"] + report.hit_rate["misses"] == run["requests"]

"""DashboardServer (the API that `predis demo` embeds) and the `predis dashboard` command."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

import predis
import predis.monitoring
from conftest import CUSTOMERS, client
from predis.dashboard import DashboardConfig, DashboardServer, parse_customers
from predis.monitoring import Monitor


def wait_for(fn, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_server_with_an_in_process_cache(tokens, tmp_path):
    cache = predis.Cache(capacity_bytes=1 << 20)
    cfg = DashboardConfig(
        customers=parse_customers(CUSTOMERS),
        token_store=tokens.path,
        db_path=tmp_path / "history.sqlite",
        interval_s=0.2,
        refresh_s=0.2,
        port=0,
    )
    token = tokens.create("globex", "dashboard")[0]
    with DashboardServer(cfg, monitors={"app": Monitor().add_cache(cache, "gmain")}) as dash:
        assert dash.url.startswith("http://127.0.0.1:")
        assert dash.port != 0
        c = client(dash.url, token)
        wait_for(lambda: dash.scraper.rounds >= 1)  # the history starts from a fresh cache
        for k in range(100):
            cache.put(k, b"v")
            cache.get(k)
            cache.get(k + 1000)

        def filled():
            d = c.get("/api/overview").json()
            return d if d["roi"] and d["roi"]["requests"] > 0 else None

        d = wait_for(filled)
        # Every lookup after the history began is counted: half hit, half missed.
        assert d["roi"]["hit_ratio"] == pytest.approx(
            d["roi"]["fetches_avoided"] / d["roi"]["requests"]
        )
        assert d["stale"] is False
    assert (tmp_path / "history.sqlite").exists()
    cache.close()


def test_config_is_validated(tokens):
    customers = parse_customers(CUSTOMERS)
    for bad in (
        {"interval_s": 0},
        {"interval_s": float("nan")},
        {"port": 70000},
        {"addr": "0.0.0.0; rm -rf /"},
        {"scrape_urls": ["javascript:alert(1)"]},
        {"tls_certfile": "c.pem"},
        {"login_failures": 0},
        {"token_store": None},
    ):
        kw = {"customers": customers, "token_store": tokens.path, **bad}
        with pytest.raises(predis.InvalidArgumentError):
            DashboardConfig(**kw).validate()


def test_cli_serves_until_sigterm(tokens, tmp_path):
    cache = predis.Cache(capacity_bytes=1 << 20)
    exporter = predis.monitoring.serve(cache, port=0, name="main", gpu=False, auth=None)
    config = tmp_path / "customers.json"
    config.write_text(json.dumps(CUSTOMERS))
    token = tokens.create("acme", "dashboard")[0]
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "predis.cli", "dashboard", "--port", "0",
            "--scrape", exporter.url, "--interval", "0.2",
            "--db", str(tmp_path / "h.sqlite"), "--customers-config", str(config),
            "--tokens", str(tokens.path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert "predis dashboard: serving http://127.0.0.1:" in line, proc.stderr.read()
        url = line.split("serving ", 1)[1].split()[0]
        c = client(url, token)
        cache.put(1, b"x")
        cache.get(1)
        wait_for(lambda: (c.get("/api/overview").json()["roi"] or {}).get("fetches_avoided"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        exporter.close()
        cache.close()


def test_cli_errors_are_clear(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "predis.cli", "dashboard", "--customers-config", "/nonexistent"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "nothing to scrape" in proc.stderr
    bad = tmp_path / "c.json"
    bad.write_text('{"customers": {"UPPER": {}}}')
    proc = subprocess.run(
        [
            sys.executable, "-m", "predis.cli", "dashboard", "--customers-config", str(bad),
            "--scrape", "http://127.0.0.1:1/metrics", "--tokens", str(tmp_path / "t.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "invalid customer id" in proc.stderr

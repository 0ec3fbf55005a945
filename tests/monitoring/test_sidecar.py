"""The exporter sidecar as a real subprocess, reading real host processes' stats blocks:
several caches with labels, `up` 0 when a host dies or exits, discovery, CLI errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from monitoring_helpers import scrape, value

from predis.cli import main
from predis.monitoring.shm import segment_path

HOST = textwrap.dedent(
    """
    import sys
    import predis

    caches = []
    for name in sys.argv[1:]:
        c = predis.Cache(capacity_bytes=1 << 20, stats_shm=name, latency_sampling=1)
        n = len(name) % 7 + 3  # a per-cache number of puts, so the labels cannot mix
        for k in range(n):
            c.put(k, b"value")
        for k in range(2 * n):
            c.get(k)  # n hits, n misses
        caches.append(c)
    print("ready", flush=True)
    sys.stdin.read()  # run until the test closes stdin (a clean exit) or kills us
    """
)


def puts_for(name: str) -> int:
    return len(name) % 7 + 3


@contextmanager
def host(*names: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen(
        [sys.executable, "-c", HOST, *names],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


@contextmanager
def sidecar(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    with subprocess.Popen(
        [sys.executable, "-m", "predis.cli", "exporter", "--port", "0", "--no-gpu", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "serving" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
            yield line.rsplit(" ", 1)[1].strip()
            assert proc.poll() is None, "the exporter must keep serving"
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0


def wait_for(check: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Poll until ``check()`` holds; fail (saying what) if it never does."""
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.1)


def test_sidecar_serves_several_hosts_and_reports_them_gone(block_name):
    a, b = f"{block_name}-a", f"{block_name}-bb"
    with host(a) as host_a, host(b), sidecar("--cache", a, "--cache", b) as url:

        def counted() -> bool:
            s = scrape(url)
            return all(
                value(s, "predis_keyspace_hits_total", cache=n) == puts_for(n)
                and value(s, "predis_keyspace_misses_total", cache=n) == puts_for(n)
                for n in (a, b)
            )

        wait_for(counted, "both hosts' counters exported with their labels")
        s = scrape(url)
        for n in (a, b):
            assert value(s, "predis_up", cache=n) == 1
            assert value(s, "predis_keys", cache=n) == puts_for(n)
            assert value(s, "predis_commands_total", cache=n, cmd="put") == puts_for(n)
            assert value(s, "predis_hit_ratio", cache=n) == 0.5
            assert value(s, "predis_stats_block_age_seconds", cache=n) >= 0
            # Every call timed in the host (sampling 1), read through the stats block.
            assert value(s, "predis_op_duration_sampling_period", cache=n) == 1
            get_count = value(s, "predis_op_duration_seconds_count", cache=n, op="get")
            assert get_count == 2 * puts_for(n)
            put_count = value(s, "predis_op_duration_seconds_count", cache=n, op="put")
            assert put_count == puts_for(n)
        host_a.send_signal(signal.SIGKILL)  # no clean-up: the block stays, the pid is gone
        host_a.wait(timeout=30)
        wait_for(lambda: value(scrape(url), "predis_up", cache=a) == 0, "up 0 for a dead host")
        s = scrape(url)
        assert value(s, "predis_keyspace_hits_total", cache=a) is None  # no stale numbers
        assert value(s, "predis_up", cache=b) == 1
        assert value(s, "predis_keyspace_hits_total", cache=b) == puts_for(b)
        assert value(s, "predis_exporter_last_scrape_error") == 1
    for n in (a, b):
        segment_path(n).unlink(missing_ok=True)  # the killed host could not remove its block


def test_clean_host_exit_turns_up_to_zero(block_name):
    with host(block_name) as h, sidecar("--cache", block_name) as url:
        wait_for(lambda: value(scrape(url), "predis_up", cache=block_name) == 1, "up 1")
        assert h.stdin is not None
        h.stdin.close()
        assert h.wait(timeout=30) == 0
        assert not segment_path(block_name).exists()
        wait_for(lambda: value(scrape(url), "predis_up", cache=block_name) == 0, "up 0")


def test_discovery_finds_blocks_as_they_appear(tmp_path, block_name):
    env = {**os.environ, "PREDIS_SHM_DIR": str(tmp_path)}
    with sidecar("--all", env=env) as url:
        s = scrape(url)
        assert not any(name == "predis_up" for name, _ in s)
        with host(block_name, env=env) as h:
            wait_for(
                lambda: (
                    value(scrape(url), "predis_keyspace_hits_total", cache=block_name)
                    == puts_for(block_name)
                ),
                "a block that appeared after the exporter started",
            )
            h.kill()
        wait_for(lambda: value(scrape(url), "predis_up", cache=block_name) == 0, "up 0")


def test_sidecar_with_a_token_file(tmp_path, block_name):
    import secrets
    import urllib.error
    import urllib.request

    token = secrets.token_urlsafe(24)
    token_file = tmp_path / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    with host(block_name), sidecar("--cache", block_name, "--token-file", str(token_file)) as url:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url, timeout=10)
        assert err.value.code == 401
        err.value.close()
        s = scrape(url, {"Authorization": f"Bearer {token}"})
        assert value(s, "predis_up", cache=block_name) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--cache NAME"),
        (["--cache", "../etc/passwd"], "invalid stats_shm name"),
        (["--cache", "a", "--cache", "a"], "given twice"),
        (["--cache", "a", "--port", "70000"], "port"),
        (["--cache", "a", "--addr", "not a host"], "invalid host"),
        (["--cache", "a", "--token-file", "/nonexistent/token"], "secret file"),
    ],
)
def test_cli_errors(args, message, capsys):
    assert main(["exporter", "--no-gpu", *args]) == 2
    assert message in capsys.readouterr().err

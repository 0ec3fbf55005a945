"""Chaos: the process whose cache the exporter sidecar reads is killed, then restarted.

Must hold: the exporter keeps serving; while the host is gone `predis_up` is 0 and none of
its old numbers are exported (no stale figures); a restarted host under the same stats-block
name is picked up again without restarting the exporter, with its own, fresh counters.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from chaos_helpers import eventually
from monitoring_helpers import scrape, value

from predis.monitoring.shm import segment_path

HOST = textwrap.dedent(
    """
    import sys
    import predis

    cache = predis.Cache(capacity_bytes=1 << 20, stats_shm=sys.argv[1])
    hits = int(sys.argv[2])
    cache.put(1, b"v")
    for _ in range(hits):
        cache.get(1)
    print("ready", flush=True)
    sys.stdin.read()
    """
)


@pytest.fixture
def block() -> Iterator[str]:
    name = f"chaos-{os.getpid()}-{secrets.token_hex(3)}"
    yield name
    segment_path(name).unlink(missing_ok=True)


@contextmanager
def host(name: str, hits: int) -> Iterator[subprocess.Popen[str]]:
    argv = [sys.executable, "-c", HOST, name, str(hits)]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


@contextmanager
def exporter(name: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    argv = [sys.executable, "-m", "predis.cli", "exporter", "--port", "0", "--no-gpu"]
    with subprocess.Popen(
        [*argv, "--cache", name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "serving" in line, line
            yield line.rsplit(" ", 1)[1].strip(), proc
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def test_host_killed_then_restarted(block):
    with exporter(block) as (url, sidecar):
        with host(block, hits=7) as first:
            eventually(
                lambda: value(scrape(url), "predis_keyspace_hits_total", cache=block) == 7,
                "the first host's hits",
            )
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        eventually(lambda: value(scrape(url), "predis_up", cache=block) == 0, "up 0")
        s = scrape(url)
        assert value(s, "predis_keyspace_hits_total", cache=block) is None
        assert sidecar.poll() is None  # still serving

        with host(block, hits=3):
            eventually(
                lambda: value(scrape(url), "predis_keyspace_hits_total", cache=block) == 3,
                "the restarted host's own hits",
            )
            assert value(scrape(url), "predis_up", cache=block) == 1
        assert sidecar.poll() is None

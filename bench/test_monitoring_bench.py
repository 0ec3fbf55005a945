"""Cache throughput with monitoring off, then on, side by side.

"On" is everything the host process pays for monitoring at once: the stats-block publisher
(``stats_shm``, once a second), the in-process ``/metrics`` endpoint scraped once a second
by a Prometheus stand-in in another process, and all four push exporters (DogStatsD, New
Relic, CloudWatch EMF over TCP, OTLP) flushing once a second to loopback receivers in that
other process. Each round is long enough (about a quarter of a second) that the periodic
work lands inside rounds, so the mean, not the median, is the figure: the ratio of the two
means is the overhead.

Run: pytest bench/test_monitoring_bench.py --benchmark-columns=mean,rounds --benchmark-sort=name
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest

import predis
from conftest import bench_keys, lookup_keys

MODES = ("off", "on")
BATCH = 100_000
SINGLES = 20_000


def rounds() -> int:
    """Rounds per benchmark: PREDIS_BENCH_ROUNDS, default 40 (about 10 s per mode)."""
    return int(os.environ.get("PREDIS_BENCH_ROUNDS", "40"))


class World:
    def __init__(self) -> None:
        n = bench_keys()
        self.cache = predis.Cache(capacity_bytes=n * 64 + (1 << 22), max_items=n, sample_rate=0.0)
        self.cache.mput(np.arange(n, dtype=np.uint64), np.zeros((n, 8), dtype=np.uint8))
        self.lookups = lookup_keys(n, "zipf", BATCH)
        self.out = np.empty((BATCH, 8), dtype=np.uint8)
        self.singles = [int(k) for k in self.lookups[:SINGLES]]


@pytest.fixture(scope="module")
def world() -> World:
    return World()


class Monitoring:
    """Everything "on" means, started against ``cache``; stop() returns what ran."""

    def __init__(self, cache: predis.Cache) -> None:
        from predis.monitoring import Monitor, StatsPublisher, serve
        from predis.monitoring.cloudwatch import CloudWatchEMFExporter
        from predis.monitoring.dogstatsd import DogStatsDExporter
        from predis.monitoring.newrelic import NewRelicExporter
        from predis.monitoring.otlp import OTLPExporter

        sink = Path(__file__).with_name("monitoring_sink.py")
        self.sink = subprocess.Popen(
            [sys.executable, str(sink)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.sink.stdout is not None
        assert self.sink.stdin is not None
        ports = json.loads(self.sink.stdout.readline())
        self.stack = ExitStack()
        self.publisher = StatsPublisher(cache, f"bench-{secrets.token_hex(4)}")
        self.stack.callback(self.publisher.close)
        self.server = self.stack.enter_context(serve(cache, port=0, name="bench", gpu=False))
        os.environ.setdefault("NEW_RELIC_API_KEY", secrets.token_hex(20))
        monitor = Monitor().add_cache(cache, "bench")
        http = f"http://127.0.0.1:{ports['http']}"
        self.exporters = [
            DogStatsDExporter(monitor, "127.0.0.1", ports["udp"], interval=1.0),
            NewRelicExporter(monitor, f"{http}/metric/v1", interval=1.0),
            CloudWatchEMFExporter(monitor, f"tcp://127.0.0.1:{ports['tcp']}", interval=1.0),
            OTLPExporter(monitor, f"{http}/v1/metrics", interval=1.0),
        ]
        for e in self.exporters:
            self.stack.enter_context(e)
        self.sink.stdin.write(self.server.url + "\n")
        self.sink.stdin.flush()

    def stop(self) -> dict[str, int]:
        assert self.sink.stdin is not None
        assert self.sink.stdout is not None
        self.sink.stdin.close()
        seen = json.loads(self.sink.stdout.readline())
        self.sink.wait(timeout=30)
        self.sink.stdout.close()
        self.stack.close()
        seen["batches_sent"] = sum(e.stats().batches_sent for e in self.exporters)
        seen["batches_dropped"] = sum(e.stats().batches_dropped for e in self.exporters)
        return seen


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, world: World) -> Iterator[tuple[str, dict[str, int]]]:
    activity: dict[str, int] = {}
    if request.param == "off":
        yield "off", activity
        return
    m = Monitoring(world.cache)
    try:
        yield "on", activity
    finally:
        activity.update(m.stop())


def _record(benchmark, mode: tuple[str, dict[str, int]], group: str, keys: int) -> None:
    benchmark.group = group
    benchmark.extra_info["keys_per_call"] = keys
    benchmark.extra_info["monitoring"] = mode[0]
    # The activity dict is filled when the fixture stops monitoring; pytest-benchmark reads
    # extra_info at the end of the session, so it sees the counts.
    benchmark.extra_info["activity"] = mode[1]


def test_get_into_batches(benchmark, world, mode):
    """50 calls of get_into on 100,000 zipf keys per round."""
    _record(benchmark, mode, "monitoring-get_into", 50 * BATCH)

    def work() -> None:
        for _ in range(50):
            world.cache.get_into(world.lookups, world.out)

    benchmark.pedantic(work, rounds=rounds(), iterations=1, warmup_rounds=1)


def test_single_gets(benchmark, world, mode):
    """10 x 20,000 single-key gets per round (the per-call Python path)."""
    _record(benchmark, mode, "monitoring-get", 10 * SINGLES)
    get = world.cache.get

    def work() -> None:
        for _ in range(10):
            for k in world.singles:
                get(k)

    benchmark.pedantic(work, rounds=rounds(), iterations=1, warmup_rounds=1)

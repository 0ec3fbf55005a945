"""What monitoring costs the host: cache throughput with monitoring off and on, side by
side, and the cost of each periodic task.

"On" is everything the host process pays for at once: the stats-block publisher
(``stats_shm``, once a second), the in-process ``/metrics`` endpoint scraped once a second
by a Prometheus stand-in in another process, and all four push exporters (DogStatsD, New
Relic, CloudWatch EMF over TCP, OTLP) flushing once a second to loopback receivers in that
other process.

Three measurements, because a shared 2-core VM is far noisier than the effect:

- ``monitoring-get_into`` / ``monitoring-get``: throughput off and on (rounds of about a
  quarter of a second, so the periodic work lands inside rounds: compare means).
- ``test_paired_overhead``: off and on blocks interleaved ABBA, the same work in each; the
  median of the paired ratios is recorded in ``extra_info``.
- ``monitoring-tick``: the cost of each periodic task (one publish, one scrape, one
  collect-and-encode per exporter). Their sum over one second of wall time is the share of
  one core that monitoring takes, a figure the machine's noise does not blur.

Run: pytest bench/test_monitoring_bench.py --benchmark-columns=mean,median,rounds
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import time
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

    def __init__(self, cache: predis.Cache, scrape_s: float = 1.0, push_s: float = 1.0) -> None:
        from predis.monitoring import Monitor, StatsPublisher, serve
        from predis.monitoring.cloudwatch import CloudWatchEMFExporter
        from predis.monitoring.dogstatsd import DogStatsDExporter
        from predis.monitoring.newrelic import NewRelicExporter
        from predis.monitoring.otlp import OTLPExporter

        sink = Path(__file__).with_name("monitoring_sink.py")
        self.sink = subprocess.Popen(
            [sys.executable, str(sink), str(scrape_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.sink.stdout is not None
        assert self.sink.stdin is not None
        ports = json.loads(self.sink.stdout.readline())
        self.stack = ExitStack()
        self.publisher = StatsPublisher(cache, f"bench-{secrets.token_hex(4)}")
        self.stack.callback(self.publisher.close)
        # Closed after the sink, so its last scrape never meets a closed port.
        self.server = serve(cache, port=0, name="bench", gpu=False)
        os.environ.setdefault("NEW_RELIC_API_KEY", secrets.token_hex(20))
        monitor = Monitor().add_cache(cache, "bench")
        http = f"http://127.0.0.1:{ports['http']}"
        self.exporters = [
            DogStatsDExporter(monitor, "127.0.0.1", ports["udp"], interval=push_s),
            NewRelicExporter(monitor, f"{http}/metric/v1", interval=push_s),
            CloudWatchEMFExporter(monitor, f"tcp://127.0.0.1:{ports['tcp']}", interval=push_s),
            OTLPExporter(monitor, f"{http}/v1/metrics", interval=push_s),
        ]
        for e in self.exporters:
            self.stack.enter_context(e)
        self.sink.stdin.write(self.server.url + "\n")
        self.sink.stdin.flush()

    def stop(self) -> dict[str, int]:
        assert self.sink.stdin is not None
        assert self.sink.stdout is not None
        try:
            self.stack.close()  # the exporters' final flushes, while the sink still listens
        finally:
            self.sink.stdin.close()
            line = self.sink.stdout.readline()
            self.sink.wait(timeout=30)
            self.sink.stdout.close()
            self.server.close()
        seen = json.loads(line)
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


@pytest.mark.parametrize("workload", ["get_into", "get"])
def test_paired_overhead(benchmark, world, workload):
    """ABBA blocks, monitoring off and on, 8 pairs: 12 get_into calls of 100,000 keys, or
    200,000 single-key gets, per block."""
    pairs = int(os.environ.get("PREDIS_BENCH_PAIRS", "8"))
    seconds, settle = 2.0, 1.0
    if benchmark.disabled:  # CI's correctness-only run: one short pair
        pairs, seconds, settle = 1, 0.2, 0.1
    calls = 12

    get = world.cache.get

    def block() -> float:
        t0 = time.perf_counter()
        if workload == "get_into":
            for _ in range(calls):
                world.cache.get_into(world.lookups, world.out)
        else:
            for _ in range(10):
                for k in world.singles:
                    get(k)
        return time.perf_counter() - t0

    def run() -> dict[str, object]:
        ratios, off_total, on_total = [], 0.0, 0.0
        for i in range(pairs):
            order = ("off", "on") if i % 2 == 0 else ("on", "off")
            took = {}
            for mode in order:
                if mode == "on":
                    m = Monitoring(world.cache)
                    time.sleep(settle)  # let every periodic task start ticking
                    # Two seconds of blocks, so each block sees scrapes and flushes.
                    t, n = 0.0, 0
                    while t < seconds:
                        t += block()
                        n += 1
                    activity = m.stop()
                    took["on"] = t / n
                else:
                    t, n = 0.0, 0
                    while t < seconds:
                        t += block()
                        n += 1
                    took["off"] = t / n
            ratios.append(took["on"] / took["off"])
            off_total += took["off"]
            on_total += took["on"]
        return {
            "pairs": pairs,
            "median_on_over_off": statistics.median(ratios),
            "mean_on_over_off": on_total / off_total,
            "ratios": ratios,
            "last_activity": activity,
        }

    benchmark.group = f"monitoring-paired-{workload}"
    result = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(result)


@pytest.fixture(scope="module")
def tick_parts(world: World) -> Iterator[dict[str, object]]:
    from prometheus_client import CollectorRegistry, generate_latest

    from predis.monitoring import Monitor, PredisCollector, StatsPublisher
    from predis.monitoring.cloudwatch import CloudWatchEMFExporter
    from predis.monitoring.dogstatsd import DogStatsDExporter
    from predis.monitoring.newrelic import NewRelicExporter
    from predis.monitoring.otlp import OTLPExporter

    os.environ.setdefault("NEW_RELIC_API_KEY", secrets.token_hex(20))
    publisher = StatsPublisher(world.cache, f"bench-{secrets.token_hex(4)}", interval=3600)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PredisCollector(Monitor().add_cache(world.cache, "bench")))
    monitor = Monitor().add_cache(world.cache, "bench")
    parts: dict[str, object] = {
        "publish": publisher.publish,
        "scrape": lambda: generate_latest(registry),
    }
    # Not started: only collect-and-encode is timed here (sending is socket I/O).
    for exp in (
        DogStatsDExporter(monitor, "127.0.0.1", 9, interval=1.0),
        NewRelicExporter(monitor, "http://127.0.0.1:9/metric/v1", interval=1.0),
        CloudWatchEMFExporter(monitor, "tcp://127.0.0.1:9", interval=1.0),
        OTLPExporter(monitor, "http://127.0.0.1:9/v1/metrics", interval=1.0),
    ):
        parts[exp.kind] = lambda e=exp: e.encode(e._points(e.monitor.collect()))
    yield parts
    publisher.close()


@pytest.mark.parametrize("task", ["publish", "scrape", "datadog", "newrelic", "cloudwatch", "otlp"])
def test_tick(benchmark, tick_parts, task):
    """One run of one periodic task (each runs once a second when monitoring is on)."""
    benchmark.group = "monitoring-tick"
    benchmark(tick_parts[task])


@pytest.mark.parametrize(
    ("cadence", "scrape_s", "push_s", "window_s"),
    [("every-second", 1.0, 1.0, 20.0), ("defaults", 15.0, 10.0, 60.0)],
)
def test_idle_cpu_share(benchmark, world, cadence, scrape_s, push_s, window_s):
    """CPU time the host process spends on monitoring, per second of wall time, with no
    cache traffic: the cost itself, without the cache's noise around it. Cadences: every
    task once a second, and the defaults (Prometheus's 15 s scrape, 10 s pushes; the
    stats block is published every second in both)."""
    import resource

    seconds = 0.5 if benchmark.disabled else window_s

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def run() -> dict[str, object]:
        quiet_start = cpu()
        time.sleep(seconds)
        quiet = (cpu() - quiet_start) / seconds  # the process's own idle baseline
        m = Monitoring(world.cache, scrape_s, push_s)
        time.sleep(1.0)
        c0, t0 = cpu(), time.perf_counter()
        time.sleep(seconds)
        share = (cpu() - c0) / (time.perf_counter() - t0)
        activity = m.stop()
        return {
            "cpu_share_on": share,
            "cpu_share_idle_baseline": quiet,
            "monitoring_share": share - quiet,
            "activity": activity,
        }

    benchmark.group = f"monitoring-idle-cpu-{cadence}"
    benchmark.extra_info.update(benchmark.pedantic(run, rounds=1, iterations=1))

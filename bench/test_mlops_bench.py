"""What the MLOps loop costs the host: cache throughput with the whole loop running
(collector thread writing encrypted segments, drift detector, A/B router with a challenger
on half the keys, or between experiments) beside the same prefetching cache without it;
and the synchronous cost of a triggering event (a confirmed drift, a retraining trigger)
on the serving thread.

Each round also records the process's CPU time (all threads: the host loop, the prefetch
drain thread, the collector) in ``extra_info["cpu_s"]``: on a shared, noisy machine the
extra CPU the loop burns per request is steadier than wall-clock throughput.

Run:
    PREDIS_BENCH_MLOPS_REQUESTS=200000 python -m pytest bench/test_mlops_bench.py \\
        --benchmark-columns=min,median,rounds --benchmark-json=mlops.json
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np
import pytest

from predis import Cache
from predis.benchtools.stats import summarise_ratios
from predis.mlops import (
    ABConfig,
    Collector,
    DriftEvent,
    LoopConfig,
    MLOpsLoop,
    ModelRegistry,
    RetrainConfig,
)
from predis.prefetch import FEATURE_NAMES, LearnedPrefetcher, TrainConfig, train_model
from predis.security.crypto import KeyRing, generate_key_line
from predis.workloads import CorrelatedSessions

REQUESTS = int(os.environ.get("PREDIS_BENCH_MLOPS_REQUESTS", "200000"))
ITEMS = 2_000
BATCH = 256  # keys per mget_arrays call
TRAIN = TrainConfig(num_trees=30, threads=1, batch_size=16, time_budget_s=30.0)
KEYS = CorrelatedSessions(1_000_000, 2_000, 12, alpha=0.8, noise=0.05, seed=3).take(REQUESTS)


def load(key: int) -> bytes:
    return key.to_bytes(8, "little")


@pytest.fixture(scope="module")
def model():
    return train_model(KEYS[:30_000], TRAIN, cache_items=ITEMS)


class Setup:
    """A cache with (on) or without (off) the MLOps loop around the same champion."""

    def __init__(self, model, with_loop: bool, ab: bool = True) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.loop = self.collector = None
        if with_loop:
            reg = ModelRegistry(os.path.join(self.tmp.name, "models"), "acme")
            for _ in range(2):  # champion and the challenger under test
                reg.register(model.to_bytes(), feature_schema=FEATURE_NAMES, training_window=(0, 1))
            reg.promote(1, actor="bench", reason="champion")
            config = LoopConfig(
                retrain=RetrainConfig(train=TRAIN, cache_items=ITEMS),
                ab=ABConfig(challenger_share=0.5, max_requests=10**9),
                drift_warmup=10**9,  # the detector runs; no retraining during the measurement
            )
            self.loop = MLOpsLoop(reg, config).start()
            if ab:
                self.loop.router.start_test(LearnedPrefetcher(model), 0.5)
            prefetcher = self.loop.router
        else:
            prefetcher = LearnedPrefetcher(model)
        self.cache = Cache(1 << 20, max_items=ITEMS, loader=load, prefetcher=prefetcher)
        if with_loop:
            keys = KeyRing.parse(generate_key_line("bench"))
            self.collector = Collector(
                self.cache, os.path.join(self.tmp.name, "seg"), "acme", keys, segment_events=100_000
            ).start()

    def close(self) -> None:
        if self.collector is not None:
            self.collector.stop()
        if self.loop is not None:
            self.loop.close()
        self.cache.close()
        self.tmp.cleanup()


def serve_gets(cache: Cache, keys: list[int]) -> None:
    get = cache.get
    for k in keys:
        get(k)


def serve_batches(cache: Cache, keys: np.ndarray) -> None:
    for start in range(0, len(keys), BATCH):
        chunk = keys[start : start + BATCH]
        found = cache.mget_arrays(chunk)[2]
        missing = chunk[~found]
        if len(missing):
            cache.mput(missing, np.zeros((len(missing), 8), dtype=np.uint8))


@pytest.mark.parametrize("loop", ["off", "serving", "ab"])
@pytest.mark.parametrize("mode", ["get", "mget_arrays"])
def test_throughput_with_and_without_the_loop(benchmark, model, loop, mode):
    benchmark.group = f"mlops overhead: {REQUESTS:,} requests, {mode}"
    benchmark.extra_info["requests"] = REQUESTS
    # off: the champion's prefetcher alone. serving: the loop on (collector, drift detector,
    # router) between experiments. ab: the loop on with an A/B test running.
    setup = Setup(model, loop != "off", ab=loop == "ab")
    keys_list = KEYS.tolist()
    cpu: list[float] = []

    def measured() -> None:
        start = time.process_time()
        if mode == "get":
            serve_gets(setup.cache, keys_list)
        else:
            serve_batches(setup.cache, KEYS)
        cpu.append(time.process_time() - start)

    try:
        benchmark.pedantic(measured, rounds=7, iterations=1, warmup_rounds=1)
        benchmark.extra_info["cpu_s"] = sorted(cpu)[len(cpu) // 2]
        if setup.loop is not None:
            roles = setup.loop.router.roles
            benchmark.extra_info["ab_requests"] = (
                roles.champion_stats.requests + roles.other_stats.requests
            )
    finally:
        setup.close()


PAIRS = int(os.environ.get("PREDIS_BENCH_MLOPS_PAIRS", "20"))
BLOCK = int(os.environ.get("PREDIS_BENCH_MLOPS_BLOCK", "20000"))  # requests per timed block


@pytest.mark.parametrize("loop", ["serving", "ab"])
def test_throughput_ratio_paired(benchmark, model, loop):
    """The issue's measure: the host's throughput with the loop on over the loop off, side
    by side. Both caches (the same champion; on: collector, drift detector, router, and
    during ``ab`` a challenger on half the keys) live in one process; blocks of the same
    requests go to each in turn, ABBA, a pause between blocks letting the previous one's
    background work finish outside the host's timing on both sides alike (its CPU is
    still counted). Per pair, off time / on time is the throughput ratio; ``extra_info``
    has their geometric mean with a 95% bootstrap interval (below 1: the loop costs
    throughput) and the same for process CPU time, block and pause together."""
    benchmark.group = "mlops: host throughput ratio, loop on / off (paired blocks)"
    pairs = PAIRS if not benchmark.disabled else 3
    block = BLOCK if not benchmark.disabled else 2_000
    off, on = Setup(model, False), Setup(model, True, ab=loop == "ab")
    keys = KEYS.tolist()
    starts = [(i * block) % max(1, len(keys) - block) for i in range(2 * pairs)]

    def timed(setup: Setup, start: int) -> tuple[float, float]:
        chunk = keys[start : start + block]
        w0, c0 = time.perf_counter(), time.process_time()
        serve_gets(setup.cache, chunk)
        wall = time.perf_counter() - w0
        # The block's backlog (prefetching, the loop's chunks, the collector) finishes in
        # this pause: outside the host's wall time, inside the CPU time, so work put off
        # past the block is still charged to its side.
        time.sleep(0.3)
        return wall, time.process_time() - c0

    def run() -> dict[str, object]:
        wall: list[float] = []
        cpu: list[float] = []
        off_wall = off_cpu = 0.0
        for i in range(pairs):
            first, second = (off, on) if i % 2 == 0 else (on, off)
            # Both sides of a pair serve the same requests.
            a = timed(first, starts[2 * i])
            b = timed(second, starts[2 * i])
            t_off, t_on = (a, b) if first is off else (b, a)
            off_wall += t_off[0]
            off_cpu += t_off[1]
            wall.append(t_off[0] / t_on[0])
            cpu.append(t_off[1] / t_on[1])
        w, c = summarise_ratios(wall), summarise_ratios(cpu)
        return {
            "off_wall_us_per_request": 1e6 * off_wall / (pairs * block),
            "off_cpu_us_per_request": 1e6 * off_cpu / (pairs * block),
            "pairs": pairs,
            "requests_per_block": block,
            "throughput_ratio": w.ratio,
            "throughput_ratio_low": w.low,
            "throughput_ratio_high": w.high,
            "cpu_ratio": c.ratio,
            "cpu_ratio_low": c.low,
            "cpu_ratio_high": c.high,
        }

    try:
        serve_gets(off.cache, keys[:block])  # warm both: caches filled, threads running
        serve_gets(on.cache, keys[:block])
        result = benchmark.pedantic(run, rounds=1, iterations=1)
        benchmark.extra_info.update(result)
    finally:
        off.close()
        on.close()


@pytest.fixture(scope="module")
def idle_loop(model):
    with tempfile.TemporaryDirectory() as tmp:
        reg = ModelRegistry(os.path.join(tmp, "models"), "acme")
        reg.register(model.to_bytes(), feature_schema=FEATURE_NAMES, training_window=(0, 1))
        reg.promote(1, actor="bench", reason="champion")
        config = LoopConfig(retrain=RetrainConfig(train=TRAIN, cache_items=ITEMS), drift_warmup=0)
        loop = MLOpsLoop(reg, config).start()
        yield loop
        loop.close()


def test_sync_cost_of_a_confirmed_drift(benchmark, idle_loop):
    """The serving thread's share of a drift: checks, then a hand-off to the actions thread
    (which records the event). Reset between rounds so that every call is a trigger."""
    benchmark.group = "mlops: synchronous cost per triggering event"
    event = DriftEvent("performance", "demand-hit", {"mean": 0.1, "width": 100.0}, "drift", 1)
    idle_loop._batch_mean = 0.5

    def reset() -> None:
        idle_loop._pending_drift = None
        idle_loop.state = "serving"

    benchmark.pedantic(idle_loop.on_drift, args=(event,), setup=reset, rounds=2_000)
    assert idle_loop.wait_idle(60)
    assert idle_loop.events.events("drift")


def test_sync_cost_of_a_retraining_trigger(benchmark, idle_loop):
    """A retraining trigger on the serving thread: a flag and a queue put (the job runs on
    the worker; the flag is reset between rounds so that every call queues a job)."""
    benchmark.group = "mlops: synchronous cost per triggering event"
    r = idle_loop.retrainer
    r.close()  # no worker: the calls only queue (drained below)

    def reset() -> None:
        r._busy.clear()

    benchmark.pedantic(r.trigger, args=("bench",), setup=reset, rounds=2_000)
    while not r._queue.empty():
        r._queue.get_nowait()
    r._busy.clear()
    time.sleep(0)


# ---- the loop's own CPU per request, side by side (the steadier measurement) ----

CPU_REQUESTS = int(os.environ.get("PREDIS_BENCH_MLOPS_CPU_REQUESTS", "96000"))
CPU_BATCH = 16  # the prefetcher's batch (TRAIN.batch_size): one propose() per 16 requests
CPU_BLOCK = 250  # batches per timed block; blocks of the two peers alternate ABBA


def _demand_batches(n: int) -> tuple[Cache, list[tuple[np.ndarray, np.ndarray]]]:
    """Batches of demand keys and their hits, from the keys through a plain LRU cache."""
    cache = Cache(1 << 20, max_items=ITEMS)
    out = []
    for start in range(0, n, CPU_BATCH):
        chunk = np.ascontiguousarray(KEYS[start : start + CPU_BATCH])
        found = cache.mget_arrays(chunk)[2]
        if (~found).any():
            cache.mput(chunk[~found], np.zeros((int((~found).sum()), 8), dtype=np.uint8))
        out.append((chunk, found.copy()))
    return cache, out


class _Idle(LearnedPrefetcher):
    """A prefetcher that does nothing: inside the router, what is left is the router's and
    the loop's own work."""

    def __init__(self) -> None:
        super().__init__(None, batch_size=CPU_BATCH)

    def propose(self, keys, hits, cached, *, score_last=None):  # noqa: ARG002 - the interface's
        return _NOTHING


_NOTHING = (np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.float64))


def _idle_loop(tmp: str, ab: bool) -> MLOpsLoop:
    """The loop with idle arms (installed through the router's public role changes)."""
    loop = _loop(tmp, None, False)
    loop.router.install(_Idle(), 0.1)
    loop.router.end_experiment()
    if ab:
        loop.router.start_test(_Idle(), 0.5)
    return loop


def _loop(tmp: str, model, ab: bool) -> MLOpsLoop:
    """A loop (not started: no retraining here) whose champion is ``model`` (None: a
    registry without one, so the router serves a model-less LearnedPrefetcher)."""
    reg = ModelRegistry(os.path.join(tmp, f"models-{model is not None}"), "acme")
    if model is not None:
        reg.register(model.to_bytes(), feature_schema=FEATURE_NAMES, training_window=(0, 1))
        reg.promote(1, actor="bench", reason="champion")
    loop = MLOpsLoop(
        reg,
        LoopConfig(
            retrain=RetrainConfig(train=TRAIN, cache_items=ITEMS),
            ab=ABConfig(challenger_share=0.5, max_requests=10**9),
            drift_warmup=10**9,
        ),
    )
    if ab:
        loop.router.start_test(LearnedPrefetcher(model, batch_size=CPU_BATCH), 0.5)
    return loop


@pytest.mark.parametrize("config", ["serving", "ab"])
def test_loop_cpu_per_request(benchmark, model, config):
    """CPU time of one thread per request, peers side by side on the same batches in
    rotating blocks:

    - ``alone``: the champion's LearnedPrefetcher with its model (what the host already
      pays for prefetching: the denominator);
    - ``idle`` and ``idle_loop``: a prefetcher that does nothing, alone and as the arms
      of the loop's router with the loop's listener (drift detector, training window,
      schedule; during ``ab`` also the split and the per-arm counts). Their difference is
      the loop's own work on the serving thread, resolved where a difference of two
      model-bound figures is not;
    - ``loop``: the router with models (``ab``: the challenger's model too), whose extra
      over ``alone`` is dominated by the second model's calls during a test.

    Beside them, the host's own single-key get and the collector's cost per access event
    (its own thread in the loop). A thread's CPU time does not count the time the VM's
    other tenants take, so these are steadier than throughput ratios."""
    benchmark.group = "mlops: CPU per request, side by side"
    n = CPU_REQUESTS if not benchmark.disabled else 4 * CPU_BLOCK * CPU_BATCH
    cache, batches = _demand_batches(n)
    cached = cache.mcontains
    ab = config == "ab"
    with tempfile.TemporaryDirectory() as tmp:
        with_model, idle_loop = _loop(tmp, model, ab), _idle_loop(tmp, ab)
        peers = {
            "alone": LearnedPrefetcher(model).propose,
            "loop": with_model.router.propose,
            "idle": _Idle().propose,
            "idle_loop": idle_loop.router.propose,
        }

        def run() -> dict[str, object]:
            took = dict.fromkeys(peers, 0.0)
            names = list(peers)
            blocks = [batches[i : i + CPU_BLOCK] for i in range(0, len(batches), CPU_BLOCK)]
            for j, block in enumerate(blocks):
                order = names[j % len(names) :] + names[: j % len(names)]
                if j % 2:
                    order.reverse()
                for name in order:
                    propose = peers[name]
                    t0 = time.thread_time()
                    for keys, hits in block:
                        propose(keys, hits, cached)
                    took[name] += time.thread_time() - t0
            requests = sum(len(k) for k, _ in batches)
            # The host's own work per request: single-key gets of the same keys.
            get = cache.get
            keys_list = KEYS[:requests].tolist()
            t0 = time.thread_time()
            for k in keys_list:
                get(k)
            host_get = (time.thread_time() - t0) / requests
            # The collector's cost per event (it runs on its own thread in the loop).
            logged = Cache(1 << 20, max_items=ITEMS, access_log_capacity=1 << 17)
            keyring = KeyRing.parse(generate_key_line("bench"))
            collector = Collector(logged, os.path.join(tmp, "seg"), "acme", keyring)
            events = min(requests, 1 << 17)
            for k in keys_list[:events]:
                logged.get(k)
            t0 = time.thread_time()
            drained = 0
            while drained < events:
                got = collector.drain_once()
                if not got:
                    break
                drained += got
            collector.flush()
            collector_per_event = (time.thread_time() - t0) / max(drained, 1)
            collector.close()
            per_req = {k: v / requests for k, v in took.items()}
            own = per_req["idle_loop"] - per_req["idle"]  # the loop's serving-thread work
            host = host_get + per_req["alone"]  # the host's CPU per request with prefetching
            return {
                "requests": requests,
                **{f"{k}_us_per_request": v * 1e6 for k, v in per_req.items()},
                "loop_own_us_per_request": own * 1e6,
                "loop_with_models_extra_us_per_request": (per_req["loop"] - per_req["alone"]) * 1e6,
                "host_get_us_per_request": host_get * 1e6,
                "collector_us_per_event": collector_per_event * 1e6,
                "loop_own_share_of_host_cpu": own / host,
                "collector_share_of_host_cpu": collector_per_event / host,
            }

        result = benchmark.pedantic(run, rounds=1, iterations=1)
        benchmark.extra_info.update(result)
        with_model.close()
        idle_loop.close()


SPLIT_KEYS = 50_000  # keys per timed call of the native split
SPLIT_HASHLIB_KEYS = 5_000  # hashlib's peer is a Python loop: fewer keys, same per-key unit


def test_split_hash_per_key(benchmark):
    """The A/B split's keyed blake2b per key, side by side in one run: hashlib (what
    ``TrafficSplit.bucket`` computes), the native portable kernel and the AVX2 one on keys
    the memo has not seen (a fresh split each call, its 2 MiB memo zeroed included), and a
    memo hit. ``extra_info`` has each peer's median ns per key and its ratio to the
    portable kernel."""
    import hashlib

    from predis import _core

    benchmark.group = "mlops: the A/B split's hash per key (peers side by side)"
    secret = bytes(range(32))
    keys = np.random.default_rng(5).integers(0, 1 << 63, SPLIT_KEYS, dtype=np.uint64)
    few = keys[:SPLIT_HASHLIB_KEYS].tolist()
    warm = _core.TrafficSplitHash(secret, 10_000)
    warm.buckets(keys)

    def hashlib_loop() -> None:
        for k in few:
            hashlib.blake2b(k.to_bytes(8, "little"), key=secret, digest_size=8).digest()

    peers = {
        "hashlib": (hashlib_loop, SPLIT_HASHLIB_KEYS),
        "portable": (
            lambda: _core.TrafficSplitHash(secret, 10_000, vectorized=False).buckets(keys),
            SPLIT_KEYS,
        ),
        "avx2": (
            lambda: _core.TrafficSplitHash(secret, 10_000, vectorized=True).buckets(keys),
            SPLIT_KEYS,
        ),
        "memo_hit": (lambda: warm.buckets(keys), SPLIT_KEYS),
    }

    def run() -> dict[str, object]:
        took: dict[str, list[float]] = {name: [] for name in peers}
        for j in range(9):  # the peers alternate, in turned order, so drift hits all alike
            names = list(peers)[j % len(peers) :] + list(peers)[: j % len(peers)]
            for name in names:
                fn, n = peers[name]
                t0 = time.perf_counter()
                fn()
                took[name].append((time.perf_counter() - t0) / n * 1e9)
        median = {name: sorted(v)[len(v) // 2] for name, v in took.items()}
        return {
            "ns_per_key": median,
            "vs_portable": {name: median[name] / median["portable"] for name in median},
            "avx2_in_use": _core.TrafficSplitHash(secret, 10_000).vectorized,
        }

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(result)

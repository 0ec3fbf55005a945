"""What the sampled op-latency histograms cost: the same work with latency_sampling 0 (off),
64 (the default) and 1 (every call timed), side by side on one cache.

Blocks of each setting are interleaved in a rotating order, and each block's CPU time of
the calling thread (``time.thread_time``) is recorded, so a slow spell of the shared VM
lands on all settings alike. The medians of the per-round ratios against "off" are in
``extra_info``.

Run: pytest bench/test_op_latency_bench.py --benchmark-columns=median,rounds
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import pytest

import predis

PERIODS = (0, 64, 1)
KEYS = 100_000


@pytest.mark.parametrize("workload", ["get", "get_into"])
def test_sampling_cost(benchmark, workload):
    """Per block: 100,000 single-key gets, or 100 get_into calls of 4,096 keys."""
    cache = predis.Cache(capacity_bytes=64 << 20, max_items=KEYS, sample_rate=0.0)
    cache.mput(np.arange(KEYS, dtype=np.uint64), np.zeros((KEYS, 8), dtype=np.uint8))
    rng = np.random.default_rng(1)
    keys = rng.integers(0, KEYS, size=KEYS, dtype=np.uint64)
    singles = keys.tolist()
    batch = keys[:4096].copy()
    out = np.empty((4096, 8), dtype=np.uint8)
    rounds = int(os.environ.get("PREDIS_BENCH_ROUNDS", "15"))
    if benchmark.disabled:
        rounds = 1
        singles = singles[:1000]

    def block() -> float:
        get = cache.get
        t0 = time.thread_time()
        if workload == "get":
            for k in singles:
                get(k)
        else:
            for _ in range(100):
                cache.get_into(batch, out)
        return time.thread_time() - t0

    def run() -> dict[str, object]:
        took: dict[int, list[float]] = {p: [] for p in PERIODS}
        for r in range(rounds):
            order = PERIODS[r % 3 :] + PERIODS[: r % 3]
            for p in order:
                cache.latency_sampling = p
                took[p].append(block())
        ratios = {
            str(p): statistics.median(a / b for a, b in zip(took[p], took[0], strict=True))
            for p in PERIODS[1:]
        }
        return {
            "rounds": rounds,
            "median_block_cpu_s": {str(p): statistics.median(v) for p, v in took.items()},
            "median_ratio_vs_off": ratios,
            "timed_calls": {op: h.count for op, h in cache.stats().op_latency.items() if h.count},
        }

    benchmark.group = f"op-latency-{workload}"
    result = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(result)

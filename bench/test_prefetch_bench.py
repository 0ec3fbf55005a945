"""The learned prefetcher's cost, measured side by side with it off.

- ``prefetch: host gets``: a host thread's ``Cache.get`` loop (read-through on a miss) on
  a correlated workload, the live prefetch loop off and on. The ratio of the two is the
  goal's "throughput with the prefetcher on over throughput with it off".
- ``prefetch: replay``: trace replay without and with the learned prefetcher; the
  difference per request is the prefetcher's whole per-request cost (tracker, cache
  filter, batched inference, gating), and ``extra_info`` reports the inference share.

Run: pytest bench/test_prefetch_bench.py --benchmark-group-by=group
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import predis
from predis.prefetch import LearnedPrefetcher, PrefetchModel, TrainConfig, train_model
from predis.sim import replay
from predis.sim.hitrate import predis_cache
from predis.workloads import CorrelatedSessions

REQUESTS = int(os.environ.get("PREDIS_BENCH_PREFETCH_REQUESTS", "40000"))
CACHE_ITEMS = 400


def value_of(key: int) -> bytes:
    return int(key).to_bytes(8, "little")


@pytest.fixture(scope="module")
def workload() -> tuple[np.ndarray, PrefetchModel]:
    keys = CorrelatedSessions(40_000, n_patterns=2_000, pattern_length=15, noise=0.05, seed=4).take(
        2 * REQUESTS
    )
    model = train_model(
        keys[:REQUESTS], TrainConfig(num_trees=40, threads=1), cache_items=CACHE_ITEMS
    )
    return keys[REQUESTS:], model


def host_loop(cache: predis.Cache, keys: list[int]) -> None:
    get = cache.get
    for k in keys:
        get(k)


@pytest.mark.parametrize("prefetch", ["off", "on"])
def test_host_get_throughput(benchmark, workload, prefetch):
    keys, model = workload
    benchmark.group = "prefetch: host gets"
    benchmark.extra_info["requests"] = len(keys)
    key_list = keys.tolist()
    caches: list[predis.Cache] = []

    def setup():
        cache = predis.Cache(
            capacity_bytes=1 << 22,
            max_items=CACHE_ITEMS,
            loader=value_of,
            prefetcher=LearnedPrefetcher(model) if prefetch == "on" else None,
        )
        caches.append(cache)
        return (cache, key_list), {}

    benchmark.pedantic(host_loop, setup=setup, rounds=3, iterations=1)
    stats = caches[-1].stats()
    benchmark.extra_info["hit_ratio"] = stats.hit_ratio
    if stats.prefetch is not None:
        benchmark.extra_info["prefetch_issued"] = stats.prefetch.issued
        benchmark.extra_info["prefetch_used"] = stats.prefetch.used
    for c in caches:
        c.close()


@pytest.mark.parametrize("prefetch", ["off", "on"])
def test_replay_cost_per_request(benchmark, workload, prefetch):
    keys, model = workload
    benchmark.group = "prefetch: replay"
    benchmark.extra_info["requests"] = len(keys)
    prefetchers: list[LearnedPrefetcher] = []

    def run() -> None:
        p = LearnedPrefetcher(model) if prefetch == "on" else None
        if p is not None:
            prefetchers.append(p)
        replay([keys], predis_cache(CACHE_ITEMS, "lru"), prefetcher=p)

    benchmark.pedantic(run, rounds=3, iterations=1)
    if prefetchers:
        _, batches, seconds = prefetchers[-1].latency.snapshot()
        benchmark.extra_info["inference_us_per_request"] = 1e6 * seconds / len(keys)
        benchmark.extra_info["inference_us_per_batch"] = 1e6 * seconds / max(1, batches)


def test_model_predict_per_batch(benchmark, workload):
    """One batch's inference, side by side in one run: XGBoost's ``inplace_predict`` and
    the same library function called through its C API (what ``PrefetchModel.predict``
    uses), on the candidate rows of real batches. ``extra_info`` has each peer's median µs
    per call and the C API's ratio to ``inplace_predict``."""
    import time

    from predis.prefetch.xgb_predict import DensePredictor, InplacePredictor

    keys, model = workload
    benchmark.group = "prefetch: one batch's inference (peers side by side)"
    tracker = model.tracker.make()
    rows = []
    for start in range(0, 8_000, model.batch_size):
        _, cand, feat = tracker.observe(keys[start : start + model.batch_size], True)
        if len(cand):
            rows.append(np.ascontiguousarray(feat, dtype=np.float32))
    peers = {
        "inplace_predict": InplacePredictor(model.booster),
        "c_api": DensePredictor(model.booster),
    }

    def run() -> dict[str, object]:
        took: dict[str, list[float]] = {name: [] for name in peers}
        for j in range(10):  # the peers alternate, in turned order, so drift hits both alike
            for name in list(peers)[j % 2 :] + list(peers)[: j % 2]:
                predict = peers[name]
                t0 = time.perf_counter()
                for r in rows:
                    predict(r)
                took[name].append((time.perf_counter() - t0) / len(rows) * 1e6)
        median = {name: sorted(v)[len(v) // 2] for name, v in took.items()}
        return {
            "us_per_call": median,
            "c_api_vs_inplace_predict": median["c_api"] / median["inplace_predict"],
            "rows_per_call": sum(len(r) for r in rows) / len(rows),
        }

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(result)

"""Replay: the learned prefetcher against plain LRU on correlated and on patternless traces."""

from __future__ import annotations

import numpy as np

from predis.prefetch import LearnedPrefetcher, TrainConfig, train_model
from predis.sim import coverage, replay
from predis.sim.hitrate import predis_cache
from predis.workloads import ZipfKeys


def test_correlated_trace_misses_drop_by_a_clear_margin(sessions_model, make_sessions):
    keys = make_sessions(20_000, seed=7)
    warm, scored = keys[:5_000], keys[5_000:]
    base = replay([scored], predis_cache(100, "lru"), warmup=warm)
    ours = replay(
        [scored],
        predis_cache(100, "lru"),
        prefetcher=LearnedPrefetcher(sessions_model),
        warmup=warm,
    )
    assert coverage(ours, base) >= 0.4, (ours.miss_ratio, base.miss_ratio)
    assert ours.precision >= 0.6
    # Each prefetch that paid off replaced a demand fetch: the back end does little more.
    assert ours.fetches_per_request <= 1.25 * base.fetches_per_request


def test_on_zipf_it_holds_back():
    keys = ZipfKeys(20_000, 1.0, seed=11).take(60_000)
    model = train_model(keys[:30_000], TrainConfig(num_trees=30, threads=1), cache_items=200)
    base = replay([keys[30_000:]], predis_cache(200, "lru"), warmup=keys[:30_000])
    ours = replay(
        [keys[30_000:]],
        predis_cache(200, "lru"),
        prefetcher=LearnedPrefetcher(model),
        warmup=keys[:30_000],
    )
    assert ours.fetches_per_request <= 1.05 * base.fetches_per_request
    assert ours.miss_ratio <= 1.01 * base.miss_ratio
    assert ours.prefetches_issued <= 0.05 * ours.requests


def test_cadence_slows_while_holding_back_and_recovers(sessions_model, make_sessions):
    zipf = ZipfKeys(50_000, 0.8, seed=12).take(3_000) + np.uint64(10**7)
    sessions = make_sessions(3_000, seed=13)
    p = LearnedPrefetcher(sessions_model)
    r_zipf = replay([zipf], predis_cache(100, "lru"), prefetcher=p)
    assert p.batch_size == 64  # quiet: scoring every 64 requests
    quiet_batches = p.latency.snapshot()[1]
    assert quiet_batches < len(zipf) / 16  # under half the calls of one per 8 requests
    r_sessions = replay([sessions], predis_cache(100, "lru"), prefetcher=p)
    assert r_sessions.prefetches_issued > 0
    # Proposals brought the cadence back: many more model calls than at one per 64.
    assert p.latency.snapshot()[1] - quiet_batches > 2 * len(sessions) / 64
    assert r_zipf.prefetches_issued < r_sessions.prefetches_issued

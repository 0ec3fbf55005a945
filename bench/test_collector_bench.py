"""The collector's sustained rate: ring -> compressed, encrypted, atomically written segments.

Peer in the same group: the same events saved with ``np.save`` (no compression, no
encryption, no atomic rename). Events per second = events per round / round time.

Run: PREDIS_BENCH_EVENTS=2000000 pytest bench/test_collector_bench.py
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import predis
from predis.mlops import Collector
from predis.security.crypto import KeyRing, generate_key_line

EVENTS = int(os.environ.get("PREDIS_BENCH_EVENTS", "1000000"))
KEYS = KeyRing.parse(generate_key_line("bench"))


def fill(cache: predis.Cache) -> None:
    # Zipf-like keys so that the columns compress as real logs do, not as a counter.
    keys = (np.random.default_rng(0).zipf(1.2, EVENTS) % 1_000_000).astype(np.uint64)
    for i in range(0, EVENTS, 1 << 18):
        cache.mget_arrays(keys[i : i + (1 << 18)])


@pytest.fixture
def filled_cache():
    return predis.Cache(1 << 24, access_log_capacity=1 << 22)


def test_collector_drain_to_segments(benchmark, filled_cache, tmp_path):
    benchmark.group = "collector: events to disk"
    benchmark.extra_info["events_per_round"] = EVENTS
    rounds = iter(range(10**6))

    def setup():
        fill(filled_cache)
        col = Collector(
            filled_cache,
            tmp_path / f"r{next(rounds)}",
            "bench",
            KEYS,
            segment_events=EVENTS,
            drain_batch=1 << 20,
            min_free_bytes=0,
        )
        return (col,), {}

    def run(col: Collector) -> None:
        while col.drain_once():
            pass
        col.flush()
        assert col.stats().events_written == EVENTS

    benchmark.pedantic(run, setup=setup, rounds=3, iterations=1)


def test_numpy_save_peer(benchmark, tmp_path):
    benchmark.group = "collector: events to disk"
    benchmark.extra_info["events_per_round"] = EVENTS
    events = np.zeros(EVENTS, dtype=predis.EVENT_DTYPE)
    events["key"] = (np.random.default_rng(0).zipf(1.2, EVENTS) % 1_000_000).astype(np.uint64)
    events["timestamp_ns"] = np.arange(EVENTS, dtype=np.uint64) * 50
    benchmark.pedantic(lambda: np.save(tmp_path / "e.npy", events), rounds=3, iterations=1)

"""The collector's sustained rate: ring -> compressed, encrypted, atomically written segments.

Peer in the same group: the same events saved with ``np.save`` (no compression, no
encryption, no atomic rename). Events per second = events per round / round time.

The segment codec side by side: ``write_segment`` of the same real access events (a shared
trace replayed through a cache, get then put on a miss; a zipf workload where the traces
are absent) as format 1 (zlib) and format 2 (shuffle + delta-ts + zstd), each timed on its
own, then interleaved round by round for the ratio (``extra_info["pair"]``, which
bench/report.py summarises with its 95% interval). ``extra_info`` also holds each
format's compressed size as a fraction of the raw events.

Run: PREDIS_BENCH_EVENTS=2000000 pytest bench/test_collector_bench.py
     python -m pytest bench/test_collector_bench.py -k write_segment --benchmark-json=seg.json
     python bench/report.py seg.json
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import predis
from conftest import ratio_rounds
from predis.benchtools.pairs import Pair, measure_interleaved
from predis.benchtools.results import pair_extra_info
from predis.mlops import Collector, read_segment, write_segment
from predis.security.crypto import KeyRing, generate_key_line
from predis.sim.suite import find_trace_dir, load_trace

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


# ---- the segment codec: format 1 (zlib) against format 2 (zstd) ----

SEGMENT_GROUP = "collector: write_segment, format 1 (zlib) vs 2 (shuffle+delta-ts, zstd)"
SEGMENT_TRACE = "lirs_2_pools.trace.gz"


@pytest.fixture(scope="module")
def access_events() -> np.ndarray:
    """Real access events: a shared trace replayed through a cache (a get per request, a
    put after each miss), drained from the cache's ring."""
    traces = find_trace_dir()
    if traces is not None and (traces / SEGMENT_TRACE).is_file():
        keys = load_trace(traces / SEGMENT_TRACE)
    else:  # the traces are optional: a zipf workload stands in
        keys = (np.random.default_rng(0).zipf(1.2, 100_000) % 50_000).astype(np.uint64)
    cache = predis.Cache(1 << 22, access_log_capacity=1 << 20)
    value = b"v" * 100
    for key in keys.tolist():  # one request at a time, as a host application asks
        if cache.get(key) is None:
            cache.put(key, value)
    events = cache.drain_events()
    assert len(events) >= len(keys)
    return events


def _writer(path: Path, events: np.ndarray, segment_format: int):
    return lambda: write_segment(path, "bench", events, KEYS, segment_format=segment_format)


def _time_writes(benchmark, events: np.ndarray, path: Path, segment_format: int) -> None:
    benchmark.group = SEGMENT_GROUP
    size = benchmark.pedantic(_writer(path, events, segment_format), rounds=10)
    np.testing.assert_array_equal(read_segment(path, KEYS)[1], events)
    benchmark.extra_info["events_per_call"] = len(events)
    benchmark.extra_info["compressed_fraction"] = size / events.nbytes


def test_write_segment_format1_zlib(benchmark, access_events, tmp_path):
    _time_writes(benchmark, access_events, tmp_path / "s.pseg", 1)


def test_write_segment_format2_zstd(benchmark, access_events, tmp_path):
    _time_writes(benchmark, access_events, tmp_path / "s.pseg", 2)


def test_write_segment_format2_vs_format1_interleaved(benchmark, access_events, tmp_path):
    benchmark.group = SEGMENT_GROUP + ", interleaved"
    sides = (
        _writer(tmp_path / "v2.pseg", access_events, 2),
        _writer(tmp_path / "v1.pseg", access_events, 1),
    )
    n = 1 if benchmark.disabled else ratio_rounds()
    rounds = benchmark.pedantic(measure_interleaved, args=(sides, n), rounds=1, iterations=1)
    for name in ("v1.pseg", "v2.pseg"):
        np.testing.assert_array_equal(read_segment(tmp_path / name, KEYS)[1], access_events)
    pair = Pair(
        "segment-format2-vs-format1",
        subject="write_segment format 2 (zstd)",
        peer="write_segment format 1 (zlib)",
        description=f"{len(access_events):,} access events; ratio = format 1 time / format 2",
        measure=lambda r: measure_interleaved(sides, r),
    )
    benchmark.extra_info["pair"] = pair_extra_info(pair, rounds)

"""The headline ratio pairs that need only the installed package.

Sizes are fixed on purpose: a ratio depends on the workload's size, so two runs compare
only when they measured the same thing. They are also small enough that both sides' data
stays in the CPU caches: with 100,000 keys the mget pair's ratio moved by 35% between
clean runs on the shared dev VM (misses depend on what the neighbours do to the shared
cache and on whether the process got huge pages), and the MLOps pair's by 21%; with 10,000
keys both held within 5%. The absolute lookup rates at scale are
bench/test_cache_bench.py's job. The ring pair (SpscRing against the naive ring) needs a
C++ compiler and the sources in ``bench/ring``, so it lives in ``bench/test_ratio_bench.py``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import numpy as np

from predis.benchtools.pairs import Sides, check, interleaved_pair
from predis.cache import Cache
from predis.mlops.collector import Collector
from predis.security.crypto import KeyRing, generate_key_line

__all__ = ["LOOKUPS", "MGET_KEYS", "MLOPS_KEYS"]

MGET_KEYS = 10_000  # keys held
LOOKUPS = 100_000  # keys per measured batch
MLOPS_KEYS = 10_000
_VALUE_BYTES = 8


def _filled_cache(n: int, sample_rate: float, log_capacity: int = 1 << 16) -> Cache:
    cache = Cache(
        2 * n * (_VALUE_BYTES + 64) + (1 << 20),
        max_items=n,
        sample_rate=sample_rate,
        access_log_capacity=log_capacity,
    )
    keys = np.arange(n, dtype=np.uint64)
    cache.mput(keys, _values(keys))
    cache.drain_events()  # the fill's own events are not part of any round
    return cache


def _values(keys: np.ndarray) -> np.ndarray:
    return np.repeat(keys.astype("<u8").view(np.uint8).reshape(-1, 8), _VALUE_BYTES // 8, axis=1)


@interleaved_pair(
    "mget-vs-dict",
    subject="Cache.mget_arrays",
    peer="dict loop",
    description=f"{LOOKUPS:,} uniform lookups of present int keys (of {MGET_KEYS:,}), "
    f"{_VALUE_BYTES}-byte values: numpy batch get against a dict comprehension",
)
def _mget_vs_dict() -> Iterator[Sides]:
    cache = _filled_cache(MGET_KEYS, sample_rate=0.0)
    d = {int(k): bytes(v) for k, v in enumerate(_values(np.arange(MGET_KEYS, dtype=np.uint64)))}
    lookups = np.random.default_rng(1).integers(0, MGET_KEYS, LOOKUPS, dtype=np.uint64)
    lookup_list = [int(k) for k in lookups]
    offsets, data, found = cache.mget_arrays(lookups)
    check(found.all(), "mget-vs-dict: a present key was reported missing")
    check(
        bytes(data[offsets[-2] : offsets[-1]]) == d[lookup_list[-1]],
        "mget-vs-dict: Predis and the dict returned different values",
    )
    yield (lambda: cache.mget_arrays(lookups)), (lambda: [d.get(k) for k in lookup_list])


@interleaved_pair(
    "mlops-on-vs-off",
    subject="MLOps on",
    peer="MLOps off",
    description=f"{LOOKUPS:,} zipf(1.2) get_into lookups (of {MLOPS_KEYS:,} keys); on: every "
    "access logged and the collector draining the ring into encrypted segments after each "
    "batch (in /dev/shm); off: sample_rate=0, no collector. The ratio is the share of "
    "throughput kept",
    # Clean runs moved this ratio by up to 17.5% (docs/benchmarks.md): 1.5 times that.
    threshold=0.30,
)
def _mlops_on_vs_off() -> Iterator[Sides]:
    on = _filled_cache(MLOPS_KEYS, sample_rate=1.0, log_capacity=1 << 17)
    off = _filled_cache(MLOPS_KEYS, sample_rate=0.0)
    rng = np.random.default_rng(2)
    lookups = (rng.zipf(1.2, LOOKUPS) % MLOPS_KEYS).astype(np.uint64)
    out_on = np.empty((LOOKUPS, _VALUE_BYTES), dtype=np.uint8)
    out_off = np.empty_like(out_on)
    # Segments go to memory where it can: the pair measures the CPU cost of MLOps, and a
    # shared disk's fsync latency would swing the ratio between runs.
    # mkdtemp makes a private (0700) folder with a random name there.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108  # nosec B108
    with tempfile.TemporaryDirectory(prefix="predis-bench-", dir=shm) as folder:
        collector = Collector(
            on,
            folder,
            "bench",
            KeyRing.parse(generate_key_line("bench")),
            segment_events=LOOKUPS,  # one segment per batch: every call does the same work
            drain_batch=1 << 17,
            retention_bytes=16 << 20,
            min_free_bytes=0,
        )

        def with_mlops() -> None:
            on.get_into(lookups, out_on)
            while collector.drain_once():
                pass

        with_mlops()
        check(off.get_into(lookups, out_off).all(), "mlops-on-vs-off: a present key was missed")
        check(np.array_equal(out_on, out_off), "mlops-on-vs-off: the two caches disagree")
        check(
            collector.stats().events_drained == LOOKUPS,
            "mlops-on-vs-off: the collector did not see every access",
        )
        try:
            yield with_mlops, (lambda: off.get_into(lookups, out_off))
        finally:
            collector.close()


PREFETCH_ITEMS = 400
PREFETCH_GETS = 4_000


@interleaved_pair(
    "prefetch-on-vs-off",
    subject="prefetch on",
    peer="prefetch off",
    description=f"a host loop of {PREFETCH_GETS:,} read-through Cache.get calls over correlated "
    f"sessions (a {PREFETCH_ITEMS}-entry cache, an 8-byte loader); on: the live learned "
    "prefetcher (model trained beforehand) draining, scoring and loading beside the host; "
    "off: no prefetcher. The ratio is the share of host throughput kept",
)
def _prefetch_on_vs_off() -> Iterator[Sides]:
    from predis.prefetch import LearnedPrefetcher, TrainConfig, train_model  # noqa: PLC0415
    from predis.workloads import CorrelatedSessions  # noqa: PLC0415

    stream = CorrelatedSessions(40_000, n_patterns=2_000, pattern_length=15, noise=0.05, seed=4)
    model = train_model(
        stream.take(30_000), TrainConfig(num_trees=30, threads=1), cache_items=PREFETCH_ITEMS
    )
    keys = stream.take(PREFETCH_GETS).tolist()

    def load(key: int | bytes | str) -> bytes:
        return int(key).to_bytes(8, "little")  # type: ignore[arg-type]

    on = Cache(1 << 22, max_items=PREFETCH_ITEMS, loader=load, prefetcher=LearnedPrefetcher(model))
    off = Cache(1 << 22, max_items=PREFETCH_ITEMS, loader=load)

    def host(cache: Cache) -> None:
        get = cache.get
        for k in keys:
            get(k)

    check(on.get(keys[0]) == off.get(keys[0]) == load(keys[0]), "prefetch pair: values differ")
    try:
        yield (lambda: host(on)), (lambda: host(off))
    finally:
        on.close()

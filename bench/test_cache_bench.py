"""Cache lookups: Predis against dict, cachetools.LRUCache and Redis, in the same run.

Every group holds one workload (key distribution x value size); within a group the
entries differ only in the cache, so their ratio is the figure that matters. Peers are
filled with the same keys and values. Redis runs on loopback through redis-py with
pipelining and is skipped when redis-server is not installed.

Run: pytest bench/test_cache_bench.py --benchmark-columns=median,ops --benchmark-sort=name
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import numpy as np
import pytest

import predis
from conftest import bench_keys, lookup_keys

cachetools = pytest.importorskip("cachetools")

DISTS = ("uniform", "zipf")
SIZES = (8, 64, 512)
LOOKUPS = 100_000  # keys per measured batch
SINGLE_LOOKUPS = 20_000


def _values(n: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(size)
    return rng.integers(0, 256, (n, size), dtype=np.uint8)


class World:
    """One workload's caches, all holding the same n keys."""

    def __init__(self, n: int, size: int, dist: str) -> None:
        self.size = size
        keys = np.arange(n, dtype=np.uint64)
        values = _values(n, size)
        self.predis = predis.Cache(
            capacity_bytes=2 * n * (size + 64) + (1 << 20), max_items=n, sample_rate=0.0
        )
        self.predis.mput(keys, values)
        assert len(self.predis) == n
        value_list = [bytes(v) for v in values]
        self.dict = dict(zip(range(n), value_list, strict=True))
        self.lru = cachetools.LRUCache(maxsize=n)
        for k, v in self.dict.items():
            self.lru[k] = v
        self.lookups = lookup_keys(n, dist, LOOKUPS)
        self.lookup_list = [int(k) for k in self.lookups]
        self.single = self.lookup_list[:SINGLE_LOOKUPS]
        self.value_list = value_list
        self.out = np.empty((LOOKUPS, size), dtype=np.uint8)


_worlds: dict[tuple[int, str], World] = {}


def world(size: int, dist: str) -> World:
    key = (size, dist)
    if key not in _worlds:
        _worlds.clear()  # one workload in memory at a time
        _worlds[key] = World(bench_keys(), size, dist)
    return _worlds[key]


@pytest.fixture(scope="module")
def redis_client() -> Iterator[object]:
    redis = pytest.importorskip("redis")
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            pytest.skip("redis-server did not start")
        yield client
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dist", DISTS)
class TestBatchLookup:
    """A batch of 100,000 lookups of present keys. Group: mget-<dist>-<size>B."""

    def test_predis_mget_arrays(self, benchmark, dist, size):
        w = world(size, dist)
        benchmark.group = f"mget-{dist}-{size}B"
        benchmark.extra_info["keys_per_call"] = LOOKUPS
        _, _, found = benchmark(w.predis.mget_arrays, w.lookups)
        assert found.all()

    def test_predis_get_into(self, benchmark, dist, size):
        w = world(size, dist)
        benchmark.group = f"mget-{dist}-{size}B"
        benchmark.extra_info["keys_per_call"] = LOOKUPS
        found = benchmark(w.predis.get_into, w.lookups, w.out)
        assert found.all()

    def test_predis_mget_list(self, benchmark, dist, size):
        w = world(size, dist)
        benchmark.group = f"mget-{dist}-{size}B"
        benchmark.extra_info["keys_per_call"] = LOOKUPS
        got = benchmark(w.predis.mget, w.lookups)
        assert got[0] == w.value_list[w.lookup_list[0]]

    def test_dict_loop(self, benchmark, dist, size):
        w = world(size, dist)
        benchmark.group = f"mget-{dist}-{size}B"
        benchmark.extra_info["keys_per_call"] = LOOKUPS
        d = w.dict
        got = benchmark(lambda: [d.get(k) for k in w.lookup_list])
        assert got[0] == w.value_list[w.lookup_list[0]]

    def test_cachetools_lru_loop(self, benchmark, dist, size):
        w = world(size, dist)
        benchmark.group = f"mget-{dist}-{size}B"
        benchmark.extra_info["keys_per_call"] = LOOKUPS
        lru = w.lru
        got = benchmark(lambda: [lru[k] for k in w.lookup_list])
        assert got[0] == w.value_list[w.lookup_list[0]]

    def test_redis_pipeline(self, benchmark, dist, size, redis_client):
        w = world(size, dist)
        benchmark.group = f"mget-{dist}-{size}B"
        benchmark.extra_info["keys_per_call"] = LOOKUPS
        client = redis_client
        if (
            client.dbsize() != len(w.value_list)
            or client.get("predis:bench") != f"{dist}{size}".encode()
        ):
            client.flushall()
            pipe = client.pipeline(transaction=False)
            for k, v in enumerate(w.value_list):
                pipe.set(k, v)
                if k % 10_000 == 9_999:
                    pipe.execute()
            pipe.execute()
            client.set("predis:bench", f"{dist}{size}")
            client.delete("predis:bench")
            client.set("predis:bench", f"{dist}{size}")

        def run() -> list[bytes | None]:
            out: list[bytes | None] = []
            for i in range(0, len(w.lookup_list), 10_000):
                pipe = client.pipeline(transaction=False)
                for k in w.lookup_list[i : i + 10_000]:
                    pipe.get(k)
                out.extend(pipe.execute())
            return out

        got = benchmark.pedantic(run, rounds=3, iterations=1)
        assert got[0] == w.value_list[w.lookup_list[0]]


@pytest.mark.parametrize("dist", DISTS)
class TestSingleGet:
    """20,000 single-key lookups from a Python loop, 64-byte values. Group: get-<dist>."""

    def test_predis_get(self, benchmark, dist):
        w = world(64, dist)
        benchmark.group = f"get-{dist}-64B"
        benchmark.extra_info["keys_per_call"] = SINGLE_LOOKUPS
        get = w.predis.get
        got = benchmark(lambda: [get(k) for k in w.single])
        assert got[0] == w.value_list[w.single[0]]

    def test_cachetools_lru_getitem(self, benchmark, dist):
        w = world(64, dist)
        benchmark.group = f"get-{dist}-64B"
        benchmark.extra_info["keys_per_call"] = SINGLE_LOOKUPS
        lru = w.lru
        got = benchmark(lambda: [lru[k] for k in w.single])
        assert got[0] == w.value_list[w.single[0]]

    def test_dict_get(self, benchmark, dist):
        w = world(64, dist)
        benchmark.group = f"get-{dist}-64B"
        benchmark.extra_info["keys_per_call"] = SINGLE_LOOKUPS
        d = w.dict
        got = benchmark(lambda: [d.get(k) for k in w.single])
        assert got[0] == w.value_list[w.single[0]]


@pytest.mark.parametrize("batch", [16, 256, 4_096, 100_000])
def test_get_into_by_batch_size(benchmark, batch):
    """The same 100,000 zipf lookups of 8-byte values, in calls of ``batch`` keys each.
    Group: batch-size (how much the per-call cost weighs at each size)."""
    w = world(8, "zipf")
    benchmark.group = "batch-size-zipf-8B"
    benchmark.extra_info["keys_per_call"] = batch
    chunks = [w.lookups[i : i + batch] for i in range(0, LOOKUPS, batch)]
    outs = [w.out[: len(c)] for c in chunks]
    get_into = w.predis.get_into

    def run() -> int:
        return sum(int(get_into(c, o).sum()) for c, o in zip(chunks, outs, strict=True))

    assert benchmark(run) == LOOKUPS

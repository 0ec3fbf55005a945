"""The CUDA backend on a device: selection, the read and write paths, device-resident input
(CuPy, or pycuda), find_or_load through the loader, eviction's invariants, GPU stats."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

import predis
from predis import BackendUnavailable, ValueTooLargeError

pytestmark = pytest.mark.gpu


def cuda_cache(capacity: int = 64 << 20, **kw: object) -> predis.Cache:
    return predis.Cache(capacity, backend="cuda", **kw)  # type: ignore[arg-type]


def test_auto_picks_cuda_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="predis")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning
        cache = predis.Cache(1 << 20)
    assert cache.backend == "cuda"
    assert "backend 'auto' chose 'cuda'" in caplog.text


def test_out_of_memory_at_creation_is_backend_unavailable() -> None:
    # 2**36 items: a bucket array of several TB, far beyond any device.
    with pytest.raises(BackendUnavailable, match=r"cannot create the CUDA table: .*out of memory"):
        predis.Cache(1 << 40, max_items=2**36, backend="cuda")


def test_auto_falls_back_when_the_device_is_full() -> None:
    cp = pytest.importorskip("cupy", reason="CuPy is not installed (needed to fill the device)")
    free, _total = cp.cuda.runtime.memGetInfo()
    hog = cp.empty(free - (256 << 20), dtype=cp.uint8)  # leave 256 MiB
    try:
        # A 2.4 GB bucket array fits the host (lazily committed) but not the device now.
        args = {"capacity_bytes": 1 << 30, "max_items": 3 << 24}
        with pytest.raises(BackendUnavailable, match="out of memory"):
            predis.Cache(**args, backend="cuda")  # type: ignore[arg-type]
        with pytest.warns(predis.BackendFallbackWarning, match="out of memory"):
            cache = predis.Cache(**args)  # type: ignore[arg-type]
        assert cache.backend == "cpu"
    finally:
        del hog
        cp.get_default_memory_pool().free_all_blocks()


def test_single_keys_of_every_kind_and_size() -> None:
    cache = cuda_cache(max_value_size=5000)
    entries = {1: b"", 2: b"x" * 8, 3: b"y" * 9, b"bk": b"v" * 4000, "sk": b"s", 2**64 - 1: b"top"}
    for k, v in entries.items():
        cache.put(k, v)
    for k, v in entries.items():
        assert cache.get(k) == v
        assert k in cache
    assert cache.get(b"absent") is None
    assert len(cache) == len(entries)
    cache.put(3, b"short")  # a record replaced by an inline value
    assert cache.get(3) == b"short"
    assert cache.delete(b"bk")
    assert not cache.delete(b"bk")
    assert cache.get(b"bk") is None
    s = cache.stats()
    assert (s.items, s.inserts, s.updates, s.deletes) == (5, 6, 1, 1)


def test_get_batches_offsets_and_fixed_width_rows() -> None:
    cache = cuda_cache()
    keys = np.arange(1000, dtype=np.uint64)
    vals = [bytes([i % 251]) * (i % 37) for i in range(1000)]
    cache.mput(keys, vals)
    probe = np.concatenate([keys, np.arange(5000, 5100, dtype=np.uint64)])
    offsets, data, found = cache.mget_arrays(probe)
    assert found.tolist() == [True] * 1000 + [False] * 100
    for i in range(1000):
        assert data[offsets[i] : offsets[i + 1]].tobytes() == vals[i]
    assert offsets[-1] == sum(map(len, vals))
    out = np.full((1100, 36), 7, dtype=np.uint8)
    found = cache.get_into(probe, out)
    assert found.tolist() == [True] * 1000 + [False] * 100
    for i in range(1000):
        assert out[i, : len(vals[i])].tobytes() == vals[i]
        assert not out[i, len(vals[i]) :].any()
    assert not out[1000:].any()
    narrow = np.zeros((1000, 4), dtype=np.uint8)
    with pytest.raises(ValueTooLargeError, match="longer than the row width 4"):
        cache.get_into(keys, narrow)


def test_large_numpy_batches_cross_the_staging_chunks() -> None:
    # Several 2**20-key chunks: the pipelined path with both staging lanes in use.
    n = 3 * (1 << 20) + 12345
    cache = cuda_cache(1 << 30, max_items=n + 10)
    keys = np.random.default_rng(1).permutation(n).astype(np.uint64)
    rows = (keys[:, None] * np.arange(1, 9, dtype=np.uint64)[None, :]).astype(np.uint8)
    cache.mput(keys, rows)
    out = np.zeros((n, 8), dtype=np.uint8)
    found = cache.get_into(keys, out)
    assert found.all()
    assert np.array_equal(out, rows)
    assert cache.mcontains(keys).all()
    assert len(cache) == n


def test_find_or_load_reports_misses_to_the_loader() -> None:
    calls: list[object] = []

    def loader(key: object) -> bytes | None:
        calls.append(key)
        return None if key == 13 else b"L%d" % int(key)  # type: ignore[call-overload]

    cache = predis.Cache(1 << 20, backend="cuda", loader=loader)
    cache.mput([1, 2], [b"one", b"two"])
    got = cache.mget([1, 2, 3, 13, 4])
    assert got == [b"one", b"two", b"L3", None, b"L4"]
    assert sorted(calls) == [3, 4, 13]  # only the misses
    calls.clear()
    assert cache.mget([3, 4]) == [b"L3", b"L4"]
    assert calls == []


def test_capacity_eviction_keeps_the_invariants() -> None:
    cache = cuda_cache(1 << 20, max_items=256)
    n = 5000
    put: dict[int, bytes] = {}
    for start in range(0, n, 500):
        ks = np.arange(start, start + 500, dtype=np.uint64)
        rows = ((ks[:, None] + np.arange(8, dtype=np.uint64)) % 256).astype(np.uint8)
        cache.mput(ks, rows)
        put.update({int(k): rows[i].tobytes() for i, k in enumerate(ks)})
        assert len(cache) <= 256
    s = cache.stats()
    assert s.items == len(cache)
    assert s.items <= 256
    assert s.inserts == n
    assert s.evictions == n - s.items  # nothing else removed entries
    found = [k for k in range(n) if cache.contains(k)]
    assert len(found) == s.items
    for k in found:
        assert cache.get(k) == put[k]
    assert np.mean(found) > n / 2  # LRU: the survivors are mostly recent


def test_byte_capacity_eviction() -> None:
    cache = cuda_cache(64 << 10, max_items=10_000, max_value_size=2000)
    for i in range(400):
        cache.put(b"key%d" % i, bytes([i % 256]) * 1000)
        assert cache.stats().bytes_used <= 64 << 10
    s = cache.stats()
    assert s.evictions == 400 - s.items
    for i in range(400):
        v = cache.get(b"key%d" % i)
        assert v is None or v == bytes([i % 256]) * 1000


def test_expiry_and_clear() -> None:
    cache = cuda_cache(clock="manual")
    cache.mput([1, 2, b"b"], [b"a", b"x" * 100, b"c"], ttl=1.0)
    cache.put(3, b"forever")
    cache.advance_time(2.0)
    assert cache.mget([1, 2, b"b", 3]) == [None, None, None, b"forever"]
    s = cache.stats()
    assert (s.expirations, s.items, s.bytes_used) == (3, 1, 16)
    cache.clear()
    assert len(cache) == 0
    assert cache.get(3) is None
    assert cache.stats().bytes_used == 0


def test_gpu_stats_come_from_nvml() -> None:
    pytest.importorskip("pynvml", reason="nvidia-ml-py (the gpu extra) is not installed")
    gpu = cuda_cache().stats().gpu
    assert gpu is not None
    assert gpu["gpu_memory_total_bytes"] > 1 << 30
    assert 0 < gpu["gpu_memory_used_bytes"] <= gpu["gpu_memory_total_bytes"]
    assert 0 <= gpu["gpu_utilization_percent"] <= 100


@pytest.mark.parametrize("width", [8, 5, 24])
def test_cupy_device_arrays_are_read_in_place(width: int) -> None:
    cp = pytest.importorskip("cupy", reason="CuPy is not installed")
    cache = cuda_cache()
    n = 10_000
    keys = cp.arange(n, dtype=cp.uint64) * 7919
    values = cp.random.randint(0, 256, size=(n, width)).astype(cp.uint8)
    cache.mput(keys, values)
    assert len(cache) == n
    out = cp.zeros((n, width), dtype=cp.uint8)
    found = cache.get_into(keys, out)
    assert isinstance(found, np.ndarray)
    assert found.all()
    assert cp.array_equal(out, values)
    host_values = cp.asnumpy(values)
    for i in (0, 1, n - 1):
        assert cache.get(int(i * 7919)) == host_values[i].tobytes()
    absent = cp.arange(n, 2 * n, dtype=cp.uint64) * 7919 + 1
    assert not cache.mcontains(absent).any()
    assert cache.mcontains(keys).all()
    erased = cache.mdelete(keys[: n // 2])
    assert erased.all()
    assert len(cache) == n - n // 2
    # A non-default stream: the cache orders its work after the producer's.
    with cp.cuda.Stream(non_blocking=True):
        k2 = cp.arange(n, dtype=cp.uint64) + 10**9
        v2 = cp.full((n, width), 9, dtype=cp.uint8)
        cache.mput(k2, v2)
        out2 = cp.zeros((n, width), dtype=cp.uint8)
        assert cache.get_into(k2, out2).all()
        assert int(out2.sum()) == 9 * n * width
    with pytest.raises(predis.InvalidArgumentError, match="dtype must be uint64"):
        cache.mcontains(cp.arange(4, dtype=cp.int64))
    with pytest.raises(predis.InvalidArgumentError, match="C-contiguous"):
        cache.mcontains(cp.arange(8, dtype=cp.uint64)[::2])


def test_pycuda_device_arrays_are_read_in_place() -> None:
    pytest.importorskip("pycuda", reason="pycuda is not installed")
    import pycuda.driver as drv
    from pycuda import gpuarray

    drv.init()
    ctx = drv.Device(0).retain_primary_context()  # the runtime's context, which predis uses
    ctx.push()
    try:
        cache = cuda_cache()
        keys = gpuarray.to_gpu(np.arange(1000, dtype=np.uint64))
        vals = gpuarray.to_gpu(np.arange(8000, dtype=np.uint8).reshape(1000, 8))
        cache.mput(keys, vals)
        out = gpuarray.zeros((1000, 8), dtype=np.uint8)
        assert cache.get_into(keys, out).all()
        assert np.array_equal(out.get(), vals.get())
    finally:
        ctx.pop()


def test_concurrent_callers_from_threads() -> None:
    # Calls are serialised on the host and each thread binds the device itself: several
    # threads mixing batch writes and reads must neither deadlock nor see torn values.
    import threading

    cache = cuda_cache(max_value_size=64)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            keys = np.arange(t * 10_000, (t + 1) * 10_000, dtype=np.uint64)
            rows = np.full((len(keys), 16), t, dtype=np.uint8)
            for _ in range(20):
                cache.mput(keys, rows)
                out = np.zeros_like(rows)
                assert cache.get_into(keys, out).all()
                assert (out == t).all()
                assert cache.mcontains(keys).all()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads)
    assert errors == []
    assert len(cache) == 40_000


@pytest.mark.parametrize("policy", ["lru", "lfu"])
def test_a_single_put_never_evicts_its_own_key(policy: str) -> None:
    # Under LFU a fresh entry (use count 1) is the lowest score in a cache of entries used
    # three times: the eviction that makes room must skip it, as the CPU backend does.
    cache = cuda_cache(1 << 20, max_items=64, policy=policy)
    for i in range(64):
        cache.put(i, b"old")
        cache.get(i)
        cache.get(i)
    for k in range(1000, 1200):
        cache.put(k, b"new")
        assert cache.get(k) == b"new"
        assert len(cache) <= 64

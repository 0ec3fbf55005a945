"""Throughput of the CUDA backend through ``predis.Cache`` (issue 3's goals), on a device.

    python3 bench/gpu/cuda_cache_bench.py --out results.json [--log2-slots 26]

What it measures, each the median of ``--repeats`` timed calls after one warm-up, end to
end as a caller sees it (Python call, kernels, the copies of ``found`` back):

* ``find``: ``get_into`` of device-resident uint64 keys (CuPy) into a device (n, 8) uint8
  array, for batches 2^20 .. 2^26, on a table whose entries fill 0.9 of ``max_items``;
* ``insert_or_assign`` of present keys (updates) from device arrays, same batches;
* ``insert_or_assign`` of new keys into a full cache, each insert evicting an entry;
* numpy input: ``get_into`` and ``mput`` from host numpy arrays, against the PCIe copy
  bound measured in the same run (pinned host memory, the call's bytes each way, the two
  directions overlapped);
* the device-to-device copy bandwidth, to state each kernel's share of memory bandwidth
  from the bytes it must move per key (``BYTES_PER_KEY``, counted from the kernels).

Writes one JSON object (``--out``) and prints a summary table. Needs CuPy and a CUDA build.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import predis

# Bytes each key moves through device memory at least, from the kernels (csrc/cuda):
# find: key (8) + bucket header line (64) + one slot (32) + the lookup's per-key results
# written and read back by the copy pass (status 1, word 8, form 1, length 4, rsize 8: 22
# each way) + the row out (8) + found (1).
# insert_or_assign: key (8) + value word (8) + two bucket header lines read and written
# (2 x 64 x 2) + a slot written (32) + results (flags 1, old word 8, form 1, size 8) + the
# tally's read of them (10).
BYTES_PER_KEY = {
    "find": 8 + 64 + 32 + 22 + 22 + 8 + 1,
    "insert_or_assign": 8 + 8 + 256 + 32 + 18 + 10,
}


def median_s(fn: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> float:
    fn()  # warm-up: buffers grow to size once
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def d2d_bytes_per_s(cp: Any, repeats: int, sync: Callable[[], None]) -> float:
    """Device-to-device copy bandwidth of 1 GiB (bytes read + written per second)."""
    src = cp.empty(1 << 30, dtype=cp.uint8)
    dst = cp.empty_like(src)
    t = median_s(lambda: dst.__setitem__(slice(None), src), repeats, sync)
    return 2 * src.nbytes / t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--log2-slots", type=int, default=26)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    import cupy as cp  # the device machine has it; CI never runs this script

    sync = cp.cuda.Device().synchronize
    slots = 1 << args.log2_slots
    max_items = slots * 3 // 4  # the table is sized so that max_items fills 3/4 of the slots
    resident = max_items * 9 // 10  # load factor 0.9 of the capacity
    cache = predis.Cache(
        max_items * 64, max_items=max_items, backend="cuda", sample_rate=0.0, max_value_size=64
    )
    assert cache.backend == "cuda"
    stats0 = cache.stats()
    result: dict[str, Any] = {
        "device": predis.cuda_devices()["devices"][0],
        "build": predis.build_info(),
        "slots": slots,
        "table_bytes": stats0.table_bytes,
        "max_items": max_items,
        "resident": resident,
        "load_factor_of_max_items": resident / max_items,
        "slot_occupancy": resident / slots,
        "bytes_per_key_model": BYTES_PER_KEY,
    }

    def save() -> None:
        # After each stage, so a failure later leaves the figures measured so far.
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1, default=str)

    d2d = d2d_bytes_per_s(cp, args.repeats, sync)
    result["d2d_copy_bytes_per_s"] = d2d
    save()

    # Distinct, well-spread keys: multiplying by an odd constant is a bijection mod 2^64.
    keys = cp.arange(1, resident + 1, dtype=cp.uint64) * cp.uint64(0x9E3779B97F4A7C15)
    vals = (keys[:, None] >> (cp.arange(8, dtype=cp.uint64) * 8)[None, :]).astype(cp.uint8)
    t0 = time.perf_counter()
    for start in range(0, resident, 1 << 24):
        cache.mput(keys[start : start + (1 << 24)], vals[start : start + (1 << 24)])
    sync()
    result["fill_s"] = time.perf_counter() - t0
    print(f"filled {resident} keys in {result['fill_s']:.2f} s", flush=True)
    assert len(cache) == resident, (len(cache), resident)

    rows = []
    found_box: list[np.ndarray] = []
    for lg in range(20, 27, 2):
        n = 1 << lg
        reps = -(-n // resident)  # batches beyond the resident keys repeat them
        k = keys[:n] if n <= resident else cp.tile(keys, reps)[:n]
        v = vals[:n] if n <= resident else cp.tile(vals, (reps, 1))[:n]
        out = cp.empty((n, 8), dtype=cp.uint8)
        t_find = median_s(
            lambda k=k, out=out: found_box.append(cache.get_into(k, out)), args.repeats, sync
        )
        assert found_box[-1].all()
        assert bool(cp.array_equal(out, v))
        t_upd = median_s(lambda k=k, v=v: cache.mput(k, v), args.repeats, sync)
        row = {
            "batch": n,
            "find_keys_per_s": n / t_find,
            "find_bandwidth_fraction": n / t_find * BYTES_PER_KEY["find"] / d2d,
            "update_keys_per_s": n / t_upd,
            "update_bandwidth_fraction": n / t_upd * BYTES_PER_KEY["insert_or_assign"] / d2d,
        }
        rows.append(row)
        print(f"device-resident batch {n}: {row}", flush=True)
        del out
    result["device_resident"] = rows
    save()

    # New keys into a full cache: every insert evicts one entry.
    cache.mput(
        cp.arange(max_items - len(cache), dtype=cp.uint64) + (1 << 50),
        cp.zeros((max_items - len(cache), 8), dtype=cp.uint8),
    )
    result["items_when_full"] = len(cache)  # a few below max_items if pairs overflowed
    evict_rows = []
    fresh = [1 << 51]
    for lg in range(20, 25, 2):
        n = 1 << lg
        zeros = cp.zeros((n, 8), dtype=cp.uint8)

        def insert_new(n: int = n, zeros: Any = zeros) -> None:
            fresh[0] += n
            cache.mput(cp.arange(n, dtype=cp.uint64) + fresh[0], zeros)

        before = cache.stats().evictions
        t_new = median_s(insert_new, args.repeats, sync)
        evicted = cache.stats().evictions - before
        evict_rows.append(
            {
                "batch": n,
                "insert_new_with_eviction_keys_per_s": n / t_new,
                "evictions_per_insert": evicted / ((args.repeats + 1) * n),
                "items_after": len(cache),
            }
        )
    result["insert_with_eviction"] = evict_rows
    save()

    # numpy input against the PCIe copy bound measured now.
    n = 1 << 24
    hk = cp.asnumpy(keys[:n])
    hv = cp.asnumpy(vals[:n])
    hout = np.empty((n, 8), dtype=np.uint8)
    # The put first: the evicting inserts above removed some of these keys.
    t_np_put = median_s(lambda: cache.mput(hk, hv), args.repeats, sync)
    t_np_find = median_s(lambda: found_box.append(cache.get_into(hk, hout)), args.repeats, sync)
    assert found_box[-1].all()
    assert np.array_equal(hout, hv)
    pinned_in = cp.cuda.alloc_pinned_memory(n * 8)
    pinned_out = cp.cuda.alloc_pinned_memory(n * 9)
    dev_in = cp.empty(n * 8, dtype=cp.uint8)
    dev_out = cp.empty(n * 9, dtype=cp.uint8)
    s_in = cp.cuda.Stream(non_blocking=True)
    s_out = cp.cuda.Stream(non_blocking=True)

    rt = cp.cuda.runtime

    def copies() -> None:
        rt.memcpyAsync(dev_in.data.ptr, pinned_in.ptr, n * 8, rt.memcpyHostToDevice, s_in.ptr)
        rt.memcpyAsync(pinned_out.ptr, dev_out.data.ptr, n * 9, rt.memcpyDeviceToHost, s_out.ptr)
        s_in.synchronize()
        s_out.synchronize()

    t_pcie = median_s(copies, args.repeats, sync)
    bound = n / t_pcie
    result["numpy_input"] = {
        "batch": n,
        "pcie_bound_keys_per_s": bound,
        "pcie_bound_note": "8 B/key in and 9 B/key out (value row + found), pinned, overlapped",
        "get_into_keys_per_s": n / t_np_find,
        "get_into_fraction_of_bound": (n / t_np_find) / bound,
        "mput_keys_per_s": n / t_np_put,
        "mput_fraction_of_bound": (n / t_np_put) / bound,
    }
    result["stats"] = dataclasses.asdict(cache.stats())
    save()

    # The peer, side by side: the CPU backend on this host, the same keys from numpy.
    n_cpu = 1 << 22
    cpu = predis.Cache(
        n_cpu * 64, max_items=n_cpu * 2, backend="cpu", sample_rate=0.0, max_value_size=64
    )
    cpu.mput(hk[:n_cpu], hv[:n_cpu])
    cpu_out = np.empty((n_cpu, 8), dtype=np.uint8)
    t_cpu = median_s(lambda: cpu.get_into(hk[:n_cpu], cpu_out), args.repeats, sync)
    assert np.array_equal(cpu_out, hv[:n_cpu])
    t_gpu = median_s(lambda: cache.get_into(hk[:n_cpu], cpu_out), args.repeats, sync)
    out_dev = cp.empty((n_cpu, 8), dtype=cp.uint8)
    t_gpu_dev = median_s(lambda: cache.get_into(keys[:n_cpu], out_dev), args.repeats, sync)
    result["cpu_peer"] = {
        "batch": n_cpu,
        "cpu_get_into_numpy_keys_per_s": n_cpu / t_cpu,
        "cuda_get_into_numpy_keys_per_s": n_cpu / t_gpu,
        "cuda_get_into_device_keys_per_s": n_cpu / t_gpu_dev,
        "cuda_over_cpu_numpy": t_cpu / t_gpu,
        "cuda_device_over_cpu_numpy": t_cpu / t_gpu_dev,
    }
    save()

    print(f"device {result['device']['name']}; d2d copy {d2d / 1e9:.0f} GB/s")
    print(f"{'batch':>10} {'find G/s':>9} {'bw':>6} {'update G/s':>11} {'bw':>6}")
    for r in rows:
        print(
            f"{r['batch']:>10} {r['find_keys_per_s'] / 1e9:>9.2f}"
            f" {r['find_bandwidth_fraction']:>6.1%}"
            f" {r['update_keys_per_s'] / 1e9:>11.2f} {r['update_bandwidth_fraction']:>6.1%}"
        )
    for r in evict_rows:
        print(
            f"insert new with eviction, batch {r['batch']}: "
            f"{r['insert_new_with_eviction_keys_per_s'] / 1e9:.3f} G keys/s "
            f"({r['evictions_per_insert']:.2f} evictions per insert)"
        )
    ni = result["numpy_input"]
    print(
        f"numpy input, batch {n}: PCIe bound {bound / 1e9:.2f} G keys/s; get_into "
        f"{ni['get_into_keys_per_s'] / 1e9:.3f} ({ni['get_into_fraction_of_bound']:.0%}), "
        f"mput {ni['mput_keys_per_s'] / 1e9:.3f} ({ni['mput_fraction_of_bound']:.0%})"
    )
    peer = result["cpu_peer"]
    print(
        f"get_into of {n_cpu} keys: CPU backend"
        f" {peer['cpu_get_into_numpy_keys_per_s'] / 1e6:.1f} M/s; CUDA from numpy"
        f" {peer['cuda_get_into_numpy_keys_per_s'] / 1e6:.1f} M/s"
        f" ({peer['cuda_over_cpu_numpy']:.1f}x); CUDA from device arrays"
        f" {peer['cuda_get_into_device_keys_per_s'] / 1e6:.1f} M/s"
        f" ({peer['cuda_device_over_cpu_numpy']:.1f}x)"
    )
    verdict = goals(result)
    result["goals"] = verdict
    save()
    for line in verdict:
        print(line)
    return 0


def goals(result: dict[str, Any]) -> list[str]:
    """Issue 3's goals against this run: the slowest batch of each must clear the bar."""
    find = min(r["find_keys_per_s"] for r in result["device_resident"])
    evict = min(r["insert_new_with_eviction_keys_per_s"] for r in result["insert_with_eviction"])
    ni = result["numpy_input"]
    numpy_share = min(ni["get_into_fraction_of_bound"], ni["mput_fraction_of_bound"])
    checks = [
        ("find >= 5 G keys/s (moonshot 15 G)", find / 1e9, 5.0, "G keys/s"),
        ("insert_or_assign with eviction >= 2 G keys/s", evict / 1e9, 2.0, "G keys/s"),
        ("numpy input >= 70% of the PCIe bound", numpy_share * 100, 70.0, "%"),
    ]
    return [
        f"GOAL {'MET' if got >= bar else 'NOT MET'}: {name}: slowest {got:.2f} {unit}"
        for name, got, bar, unit in checks
    ]


if __name__ == "__main__":
    sys.exit(main())

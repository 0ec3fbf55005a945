"""Where the CUDA backend's batch calls spend their time, from a profiler timeline.

    python3 bench/gpu/profile_calls.py --out DIR

Runs each call that cuda_cache_bench.py measures once under PyTorch's profiler (CUPTI: the
kernels, the copies and the CUDA runtime and driver calls of the whole process, Predis's
included), after a warm-up, and writes a table per call (DIR/profile_<call>.txt: device
time by kernel or copy, host time by runtime call).
The device machine has PyTorch and CuPy; CI never runs this script.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import predis


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--log2-batch", type=int, default=24)
    args = ap.parse_args()
    import cupy as cp
    import torch.profiler as tp

    out = Path(args.out)
    sync = cp.cuda.Device().synchronize
    n = 1 << args.log2_batch
    max_items = 4 * n
    cache = predis.Cache(
        max_items * 64, max_items=max_items, backend="cuda", sample_rate=0.0, max_value_size=64
    )
    keys = cp.arange(1, n + 1, dtype=cp.uint64) * cp.uint64(0x9E3779B97F4A7C15)
    vals = (keys[:, None] >> (cp.arange(8, dtype=cp.uint64) * 8)[None, :]).astype(cp.uint8)
    hk, hv = cp.asnumpy(keys), cp.asnumpy(vals)
    dout = cp.empty((n, 8), dtype=cp.uint8)
    hout = np.empty((n, 8), dtype=np.uint8)
    fresh = [1 << 52]

    def insert_new() -> None:
        fresh[0] += n
        cache.mput(cp.arange(n, dtype=cp.uint64) + fresh[0], vals)

    calls = {
        "mput_device": lambda: cache.mput(keys, vals),
        "get_into_device": lambda: cache.get_into(keys, dout),
        "mput_numpy": lambda: cache.mput(hk, hv),
        "get_into_numpy": lambda: cache.get_into(hk, hout),
        "insert_new_device": insert_new,
    }
    for name, fn in calls.items():
        fn()  # warm-up: buffers grow once
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        wall = time.perf_counter() - t0
        with tp.profile(activities=[tp.ProfilerActivity.CPU, tp.ProfilerActivity.CUDA]) as prof:
            fn()
            sync()
        table = prof.key_averages().table(sort_by="self_device_time_total", row_limit=25)
        host = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
        text = f"{name}: batch {n}, wall {wall * 1e3:.2f} ms ({n / wall / 1e9:.3f} G keys/s)\n"
        (out / f"profile_{name}.txt").write_text(text + table + "\n" + host)
        print(text + table, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

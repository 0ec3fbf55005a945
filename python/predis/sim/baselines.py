"""Eviction-policy baselines from libCacheSim (the `bench` extra), Belady's optimum included.

Requests reach libCacheSim through an oracleGeneral file written by
:func:`predis.workloads.traces.write_oracle_general`, which fills in each request's next
access, the input Belady needs. Each object counts one unit of cache size.

libCacheSim aborts the whole process on some configurations (S3-FIFO and W-TinyLFU with a
cache too small for their sub-queues), so every run happens in a child process: a crash
there is reported for that policy and size, and the caller keeps going.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from predis.errors import BackendUnavailable, InvalidArgumentError
from predis.workloads.traces import REQUEST_DTYPE, write_oracle_general

__all__ = ["LIBCACHESIM_POLICIES", "MIN_OBJECTS", "libcachesim_miss_ratios"]

# Our name -> libCacheSim class name.
LIBCACHESIM_POLICIES = {
    "lru": "LRU",
    "arc": "ARC",
    "lirs": "LIRS",
    "w-tinylfu": "WTinyLFU",
    "s3-fifo": "S3FIFO",
    "sieve": "Sieve",
    "belady": "Belady",
}


# Smallest cache (objects) at which libCacheSim's policy is meaningful: below it a sub-queue
# (W-TinyLFU's 1% window, S3-FIFO's 10% small FIFO) rounds to nothing and the run either
# aborts or reports a miss ratio of 1.0 that describes the rounding, not the policy.
MIN_OBJECTS = {"w-tinylfu": 100, "s3-fifo": 20}


def _run_one(path: str, policy: str, size: int) -> float:
    import libcachesim as lcs  # noqa: PLC0415 - only in the child, and only when asked

    reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE)
    cache = getattr(lcs, LIBCACHESIM_POLICIES[policy])(cache_size=size)
    miss_ratio, _byte_miss_ratio = cache.process_trace(reader)
    return float(miss_ratio)


def libcachesim_miss_ratios(
    requests: np.ndarray, sizes: Sequence[int], policies: Sequence[str]
) -> dict[tuple[str, int], float | str]:
    """Object miss ratio of each (policy, size) on ``requests`` (REQUEST_DTYPE or keys).

    A value is a float, or a string saying why that run produced none.
    """
    try:
        import libcachesim  # noqa: F401, PLC0415
    except ImportError as exc:
        raise BackendUnavailable(
            "libcachesim is not installed; pip install 'predis[bench]'"
        ) from exc
    unknown = sorted(set(policies) - set(LIBCACHESIM_POLICIES))
    if unknown:
        raise InvalidArgumentError(
            f"unknown policies {unknown}; known: {sorted(LIBCACHESIM_POLICIES)}"
        )
    if requests.dtype.names is None:
        reqs = np.zeros(len(requests), dtype=REQUEST_DTYPE)
        reqs["key"] = requests
        reqs["time"] = np.arange(len(requests))
        reqs["size"] = 1
    else:
        reqs = requests.copy()
        reqs["size"] = 1  # object miss ratios: every object is one unit
    results: dict[tuple[str, int], float | str] = {}
    with tempfile.TemporaryDirectory(prefix="predis-lcs-") as tmp:
        path = os.fspath(Path(tmp) / "trace.oracleGeneral")
        write_oracle_general(path, reqs)
        # fork: the child needs nothing from __main__ (spawn would re-import it).
        ctx = multiprocessing.get_context("fork")
        jobs = []
        for policy in policies:
            for size in sizes:
                if size < MIN_OBJECTS.get(policy, 1):
                    results[policy, size] = (
                        f"n/a: libCacheSim's {policy} needs >= {MIN_OBJECTS[policy]} objects"
                    )
                else:
                    jobs.append((policy, size))
        # All runs share a pool; an abort breaks the pool, and the runs it took down are
        # then retried one process each, so only the offending run is lost.
        retry = []
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
            futures = {job: pool.submit(_run_one, path, *job) for job in jobs}
            for job, future in futures.items():
                try:
                    results[job] = future.result()
                except concurrent.futures.process.BrokenProcessPool:
                    retry.append(job)
        for policy, size in retry:
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
                try:
                    results[policy, size] = pool.submit(_run_one, path, policy, size).result()
                except concurrent.futures.process.BrokenProcessPool:
                    results[policy, size] = f"libCacheSim aborted ({policy}, size {size})"
    return results

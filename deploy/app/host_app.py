"""The example host application of the Predis images.

A read-through cache in front of a back end (``predis.sim.SimulatedBackend``: deterministic
values, so correctness is checkable) serves a zipf-skewed key stream at a steady rate until
SIGTERM or SIGINT, and publishes its counters into the shared-memory stats block that the
exporter sidecar (``predis exporter``) serves to Prometheus. Replace it with your own
program: ``FROM predis/runtime`` and your own ``CMD``.

Settings (environment):
    PREDIS_CACHE_NAME      stats-block name, the ``cache`` label in Prometheus (default app)
    PREDIS_CACHE_BYTES     capacity, e.g. 64MiB (default)
    PREDIS_APP_KEYS        distinct keys in the stream (default 100000)
    PREDIS_APP_RATE        requests per second (default 2000)
    PREDIS_APP_REQUESTS    stop after this many requests (default 0: run until stopped)
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from types import FrameType

import predis
from predis.errors import InvalidArgumentError, PredisError
from predis.security.validation import parse_size
from predis.sim.backend import SimulatedBackend
from predis.workloads.zipf import ZipfKeys

BATCH = 256
VALUE_BYTES = 64


def _int_env(name: str, default: int, minimum: int) -> int:
    text = os.environ.get(name, str(default)).strip()
    if not text.isdigit() or int(text) < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}, got {text[:40]!r}")
    return int(text)


def main() -> int:
    """Serve until stopped; the exit status is 0 on a clean stop."""
    name = os.environ.get("PREDIS_CACHE_NAME", "app")
    capacity = parse_size(os.environ.get("PREDIS_CACHE_BYTES", "64MiB"))
    n_keys = _int_env("PREDIS_APP_KEYS", 100_000, 1)
    rate = _int_env("PREDIS_APP_RATE", 2000, 1)
    limit = _int_env("PREDIS_APP_REQUESTS", 0, 0)

    backend = SimulatedBackend(value_size=VALUE_BYTES)

    def load(key: int | bytes | str) -> bytes:
        # The stream's keys are ints; the back end serves those only.
        if not isinstance(key, int):
            raise InvalidArgumentError(f"the example back end has int keys, not {key!r}")
        return backend.fetch(key)

    cache = predis.Cache(capacity_bytes=capacity, loader=load, stats_shm=name)
    keys = ZipfKeys(n_keys=n_keys, alpha=0.99, seed=int(time.time()))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"host app: cache {name!r}, {capacity} bytes, {n_keys} keys, {rate} req/s", flush=True)
    served = 0
    period = BATCH / rate
    next_at = time.monotonic()
    try:
        while not stop.is_set() and (limit == 0 or served < limit):
            batch = keys.sample(BATCH if limit == 0 else min(BATCH, limit - served))
            values = cache.mget(batch)
            for key, value in zip(batch.tolist(), values, strict=True):
                if value != backend.value(key):
                    print(f"host app: wrong value for key {key}", file=sys.stderr)
                    return 1
            served += len(batch)
            next_at += period
            stop.wait(max(0.0, next_at - time.monotonic()))
    finally:
        stats = cache.stats()
        cache.close()
    print(f"host app: served {served} requests, hit ratio {stats.hit_ratio:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except PredisError as exc:
        print(f"host app: error: {exc}", file=sys.stderr)
        sys.exit(2)

"""`predis demo`: replay a synthetic zipf workload through a cache and report.

A read-through pattern on batches: look up a batch, fetch the misses from a simulated
back end (values derived from the key), store them, and count what happened.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from predis.cache import Cache
from predis.errors import InvalidArgumentError
from predis.workloads.zipf import ZipfKeys

__all__ = ["DemoConfig", "DemoReport", "run_demo"]


@dataclass(frozen=True)
class DemoConfig:
    """What the demo replays. Defaults finish in seconds on one core."""

    requests: int = 2_000_000
    keys: int = 200_000
    alpha: float = 0.99
    value_size: int = 64
    cache_fraction: float = 0.1  # capacity as a fraction of the whole key space's bytes
    policy: str = "lru"
    batch: int = 4096
    seed: int = 0

    def validate(self) -> None:
        """Raise InvalidArgumentError on a setting out of range."""
        for name in ("requests", "keys", "value_size", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be a positive int, got {value!r}")
        if not 0 < self.cache_fraction <= 1:
            raise InvalidArgumentError(
                f"cache_fraction must be in (0, 1], got {self.cache_fraction}"
            )
        if not self.alpha > 0:
            raise InvalidArgumentError(f"alpha must be positive, got {self.alpha}")


@dataclass(frozen=True)
class DemoReport:
    """The demo's outcome; every figure is measured, none is configured."""

    config: DemoConfig
    backend: str
    requests: int
    hits: int
    misses: int
    hit_ratio: float
    backend_fetches: int
    inserts: int
    evictions: int
    items: int
    bytes_used: int
    capacity_bytes: int
    elapsed_s: float
    requests_per_s: float
    events_logged: int
    events_dropped: int

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return asdict(self)


def _backend_values(keys: np.ndarray, value_size: int) -> np.ndarray:
    """The simulated back end: each key's value is its 8 little-endian bytes, repeated."""
    raw = np.ascontiguousarray(keys, dtype="<u8").view(np.uint8).reshape(-1, 8)
    reps = -(-value_size // 8)
    return np.ascontiguousarray(np.tile(raw, (1, reps))[:, :value_size])


def run_demo(config: DemoConfig | None = None, progress: bool = True) -> DemoReport:
    """Run the demo and return its report."""
    cfg = config or DemoConfig()
    cfg.validate()
    probe = Cache(capacity_bytes=1 << 20)
    entry_bytes = probe.footprint(0, cfg.value_size)  # int keys
    capacity = max(1 << 16, int(cfg.keys * entry_bytes * cfg.cache_fraction))
    cache = Cache(
        capacity_bytes=capacity,
        max_items=cfg.keys,
        policy=cfg.policy,
        max_value_size=max(cfg.value_size, 8),
    )
    stream = ZipfKeys(cfg.keys, cfg.alpha, seed=cfg.seed)
    fetches = 0
    drained = 0
    start = time.perf_counter()
    with tqdm(
        total=cfg.requests, unit="req", unit_scale=True, disable=not progress, desc="predis demo"
    ) as bar:
        for keys in stream.chunks(cfg.requests, cfg.batch):
            _offsets, _data, hit = cache.mget_arrays(keys)
            missing = np.unique(keys[~hit])
            if len(missing):
                cache.mput(missing, _backend_values(missing, cfg.value_size))
                fetches += len(missing)
            drained += len(cache.drain_events())
            bar.update(len(keys))
    elapsed = time.perf_counter() - start
    s = cache.stats()
    return DemoReport(
        config=cfg,
        backend=cache.backend,
        requests=cfg.requests,
        hits=s.hits,
        misses=s.misses,
        hit_ratio=s.hit_ratio,
        backend_fetches=fetches,
        inserts=s.inserts,
        evictions=s.evictions,
        items=s.items,
        bytes_used=s.bytes_used,
        capacity_bytes=s.capacity_bytes,
        elapsed_s=elapsed,
        requests_per_s=cfg.requests / elapsed if elapsed > 0 else 0.0,
        events_logged=drained,
        events_dropped=s.events_dropped,
    )


def format_report(r: DemoReport) -> str:
    """The report as aligned text."""
    c = r.config
    rows = [
        ("workload", f"zipf(alpha={c.alpha}) over {c.keys:,} keys, {c.value_size}-byte values"),
        ("backend", r.backend),
        ("requests", f"{r.requests:,}"),
        ("hits", f"{r.hits:,}"),
        ("misses", f"{r.misses:,}"),
        ("hit ratio", f"{r.hit_ratio:.2%}"),
        ("back-end fetches", f"{r.backend_fetches:,}"),
        ("inserts", f"{r.inserts:,}"),
        ("evictions", f"{r.evictions:,}"),
        ("items", f"{r.items:,}"),
        ("bytes used", f"{r.bytes_used:,} of {r.capacity_bytes:,}"),
        ("elapsed", f"{r.elapsed_s:.2f} s"),
        ("throughput", f"{r.requests_per_s:,.0f} requests/s"),
        ("access events", f"{r.events_logged:,} logged, {r.events_dropped:,} dropped"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

"""The synthetic workload suite of the hit-rate matrix, and the shared real traces."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from predis.errors import InvalidArgumentError
from predis.workloads import (
    CorrelatedSessions,
    DiurnalKeys,
    KeyStream,
    LoopKeys,
    PhaseChange,
    ScanInjected,
    YcsbKeys,
    ZipfKeys,
)
from predis.workloads.traces import open_trace

__all__ = ["SYNTHETIC", "find_trace_dir", "load_trace", "synthetic_trace"]

# name -> (stream factory, requests). Sizes keep the whole suite to seconds per policy.
SYNTHETIC: dict[str, tuple[Callable[[], KeyStream], int]] = {
    "zipf-0.8": (lambda: ZipfKeys(20_000, 0.8, seed=1), 200_000),
    "zipf-1.0": (lambda: ZipfKeys(20_000, 1.0, seed=2), 200_000),
    "loop": (lambda: LoopKeys(20_000), 200_000),
    "zipf+scans": (
        lambda: ScanInjected(ZipfKeys(20_000, 1.0, seed=3), every=2_000, length=1_000),
        200_000,
    ),
    "sessions": (
        lambda: CorrelatedSessions(50_000, n_patterns=2_000, pattern_length=16, noise=0.05, seed=4),
        200_000,
    ),
    "diurnal": (lambda: DiurnalKeys(20_000, 1.0, period=50_000, seed=5), 200_000),
    "phase-change": (
        lambda: PhaseChange.hot_set_shift(20_000, 1.0, switch_at=100_000, seed=6),
        200_000,
    ),
    "ycsb-b": (lambda: YcsbKeys("b", 20_000, seed=7), 200_000),
    "ycsb-d": (lambda: YcsbKeys("d", 20_000, seed=8), 200_000),
    "ycsb-e": (lambda: YcsbKeys("e", 20_000, seed=9), 200_000),
}


def synthetic_trace(name: str) -> np.ndarray:
    """The keys of one synthetic workload, by name."""
    if name not in SYNTHETIC:
        raise InvalidArgumentError(
            f"unknown synthetic workload {name!r}; known: {sorted(SYNTHETIC)}"
        )
    make, n = SYNTHETIC[name]
    return make().take(n)


def find_trace_dir() -> Path | None:
    """$PREDIS_TRACE_DIR, else ../shared/traces from the current directory, if it exists."""
    env = os.environ.get("PREDIS_TRACE_DIR")
    candidates = [Path(env)] if env else [Path.cwd().parent / "shared" / "traces"]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


def load_trace(path: str | os.PathLike[str], max_requests: int | None = None) -> np.ndarray:
    """The keys of a trace file (any format :func:`open_trace` knows), in order."""
    parts: list[np.ndarray] = []
    total = 0
    for chunk in open_trace(path):
        parts.append(chunk["key"])
        total += len(chunk)
        if max_requests is not None and total >= max_requests:
            break
    keys = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
    return keys[:max_requests] if max_requests is not None else keys

"""The hit-rate matrix: traces x cache sizes x policies, Predis beside libCacheSim and Belady.

Sizes are fractions of each trace's working set (its distinct keys). Predis runs as a real
`predis.Cache` through :func:`predis.sim.replay.replay`; the others through libCacheSim.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from predis.cache import Cache
from predis.errors import InvalidArgumentError
from predis.sim.baselines import LIBCACHESIM_POLICIES, libcachesim_miss_ratios
from predis.sim.replay import replay

__all__ = ["DEFAULT_FRACTIONS", "PREDIS_POLICIES", "HitRateTable", "predis_cache", "run_matrix"]

DEFAULT_FRACTIONS = (0.001, 0.01, 0.1)
PREDIS_POLICIES = ("predis-lru", "predis-lfu")


def predis_cache(objects: int, policy: str) -> Cache:
    """A Predis cache holding at most ``objects`` unit-size entries (8-byte values), on the
    CPU backend: replays are simulations, one key at a time, and the CPU backend is the
    reference whose eviction order the CUDA backend's differential test checks against."""
    return Cache(
        capacity_bytes=max(1024, 16 * objects),
        max_items=objects,
        policy=policy,
        sample_rate=0.0,
        clock="manual",
        backend="cpu",
    )


@dataclass
class HitRateTable:
    """Miss ratios by (trace, fraction) row and policy column."""

    policies: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        """The table as JSON (a list of rows)."""
        return json.dumps({"policies": self.policies, "rows": self.rows}, indent=2)

    def to_markdown(self) -> str:
        """Miss ratios as a Markdown table; the best heuristic per row in bold, and its gap
        to Belady (percentage points of miss ratio) in the last column."""
        heuristics = [p for p in self.policies if p != "belady"]
        head = ["trace", "requests", "working set", "cache", *self.policies, "best - Belady"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 3 + "---:|" * (len(head) - 3)]
        for row in self.rows:
            ratios = row["miss_ratio"]
            numeric = {p: v for p, v in ratios.items() if isinstance(v, float)}
            best = min(
                (p for p in heuristics if p in numeric), key=numeric.__getitem__, default=None
            )
            cells = []
            for p in self.policies:
                v = ratios.get(p)
                text = f"{v:.4f}" if isinstance(v, float) else "n/a"
                cells.append(f"**{text}**" if p == best else text)
            gap = ""
            if best is not None and "belady" in numeric:
                gap = f"{100 * (numeric[best] - numeric['belady']):.2f} pp"
            size = f"{row['cache_objects']:,} ({100 * row['fraction']:g}%)"
            lines.append(
                f"| {row['trace']} | {row['requests']:,} | {row['working_set']:,} | {size} | "
                + " | ".join(cells)
                + f" | {gap} |"
            )
        return "\n".join(lines)


def run_matrix(
    traces: dict[str, np.ndarray],
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    policies: Sequence[str] = (*PREDIS_POLICIES, *LIBCACHESIM_POLICIES),
    progress: bool = False,
) -> HitRateTable:
    """Miss ratios of every policy at every size on every trace (uint64 key arrays)."""
    known = {*PREDIS_POLICIES, *LIBCACHESIM_POLICIES}
    unknown = [p for p in policies if p not in known]
    if unknown:
        raise InvalidArgumentError(f"unknown policies {unknown}; known: {sorted(known)}")
    if not all(0 < f <= 1 for f in fractions):
        raise InvalidArgumentError(f"fractions must be in (0, 1], got {list(fractions)}")
    table = HitRateTable(policies=list(policies))
    lcs_policies = [p for p in policies if p in LIBCACHESIM_POLICIES]
    for name, trace in traces.items():
        keys = np.ascontiguousarray(trace, dtype=np.uint64)
        working_set = len(np.unique(keys))
        by_size: dict[int, float] = {}  # a tiny trace can map two fractions to one size
        for f in sorted(fractions):
            by_size.setdefault(max(1, round(f * working_set)), f)
        sizes = sorted(by_size)
        lcs = libcachesim_miss_ratios(keys, sizes, lcs_policies) if lcs_policies else {}
        for size in sizes:
            ratios: dict[str, float | str] = {}
            for policy in policies:
                if policy in PREDIS_POLICIES:
                    cache = predis_cache(size, policy.removeprefix("predis-"))
                    result = replay([keys], cache, total=len(keys), progress=progress)
                    ratios[policy] = result.miss_ratio
                else:
                    ratios[policy] = lcs[policy, size]
            table.rows.append(
                {
                    "trace": name,
                    "requests": len(keys),
                    "working_set": working_set,
                    "fraction": by_size[size],
                    "cache_objects": size,
                    "miss_ratio": ratios,
                }
            )
    return table

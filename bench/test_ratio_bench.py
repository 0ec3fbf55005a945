"""The headline ratio pairs: each measures a Predis configuration and its peer interleaved,
round by round, and stores every round in ``extra_info["pair"]`` for
``predis bench compare`` (python/predis/benchtools/). Groups: ``ratio: <pair>``.

Run (or let ``predis bench run`` do it):
    PREDIS_BENCH_ROUNDS=30 python -m pytest bench/test_ratio_bench.py --benchmark-json=r.json
    python -m pytest bench/test_ratio_bench.py --benchmark-disable   # CI: one round each

To add a pair, see python/predis/benchtools/pairs.py; import the module that registers it
here.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

import predis.benchtools.headline  # noqa: F401  (registers the package's pairs)
from conftest import build_ring_bench, ratio_rounds
from predis.benchtools.pairs import PAIRS, Pair, Round, register
from predis.benchtools.results import pair_extra_info

RING_ITEMS = 2_000_000  # per repeat; fixed so that runs compare
_ring_exe: list[Path] = []


def _ring_rounds(rounds: int, items: int = RING_ITEMS) -> list[Round]:
    """Per-repeat rates of bench/ring/ring_bench.cpp, which runs the variants interleaved."""
    if not _ring_exe:
        _ring_exe.append(build_ring_bench(Path(tempfile.mkdtemp(prefix="predis-ring-"))))
    cmd = [str(_ring_exe[0]), "--items", str(items), "--repeats", str(rounds)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    assert run.returncode == 0, f"{' '.join(cmd)}: exit {run.returncode}\n{run.stderr}"
    report = json.loads(run.stdout)
    assert report["ordering_ok"] is True, run.stdout
    naive, spsc = report["naive"]["all"], report["spsc"]["all"]
    return [Round(1.0 / s, 1.0 / n) for s, n in zip(spsc, naive, strict=True)]


register(
    Pair(
        "ring-spsc-vs-naive",
        subject="SpscRing one at a time",
        peer="naive ring",
        description=f"{RING_ITEMS:,} uint64 through a 4096-slot ring, producer and consumer "
        "pinned to two CPUs (bench/ring/ring_bench.cpp); ratio = items/s against the naive ring",
        measure=_ring_rounds,
        # Two threads on two shared vCPUs: clean runs moved this ratio by a factor of two
        # (a 52% drop; docs/benchmarks.md), so only a collapse is caught here; the callgrind
        # `ring` workload is the ring's precise guard.
        threshold=0.8,
    )
)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_ratio(benchmark: Any, name: str) -> None:
    pair = PAIRS[name]
    benchmark.group = f"ratio: {name}"
    if benchmark.disabled:
        # CI's correctness pass: one round, the ring with CI's small item count.
        small = int(os.environ.get("PREDIS_BENCH_RING_ITEMS", "200000"))
        measure = (lambda r: _ring_rounds(r, small)) if pair.measure is _ring_rounds else None
        rounds = benchmark.pedantic(measure or pair.measure, args=(1,), rounds=1, iterations=1)
        assert len(rounds) == 1
        return
    n = ratio_rounds()
    rounds = benchmark.pedantic(pair.measure, args=(n,), rounds=1, iterations=1)
    assert len(rounds) == n
    assert all(r.subject_s > 0 and r.peer_s > 0 for r in rounds)
    benchmark.extra_info["pair"] = pair_extra_info(pair, rounds)

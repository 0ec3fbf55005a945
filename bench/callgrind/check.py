"""The callgrind regression check on the C++ core (docs/benchmarks.md).

    python bench/callgrind/check.py                 # compare with bench/baselines/callgrind.json
    python bench/callgrind/check.py --update        # re-record the baseline (say why in the commit)
    python bench/callgrind/check.py --slowdown 64   # the deliberately slowed core: must fail

Exit status: 0 no workload grew beyond the tolerance; 1 one did; 2 the check could not run
(missing tool, failed build, wrong results, or a toolchain other than the baseline's).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from predis.benchtools.callgrind import (
    WORKLOADS,
    build_driver,
    compare_counts,
    count_instructions,
    load_baseline,
    toolchain,
    write_baseline,
)
from predis.errors import PredisError

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / "bench" / "baselines" / "callgrind.json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--baseline", type=Path, default=BASELINE)
    p.add_argument("--update", action="store_true", help="write the measured counts as baseline")
    p.add_argument("--slowdown", type=int, default=0, help="build with PREDIS_BENCH_SLOWDOWN=N")
    p.add_argument("--cxx", default="g++")
    args = p.parse_args(argv)
    if args.update and args.slowdown:
        p.error("--update with --slowdown would record a deliberately slowed core")
    try:
        tools = toolchain(args.cxx)
        baseline = None if args.update else load_baseline(args.baseline)
        if baseline is not None and baseline.toolchain != tools:
            print(
                f"callgrind check: the baseline was recorded with {baseline.toolchain}, this "
                f"machine has {tools}; counts differ between toolchains, so they cannot be "
                "compared. Re-record on this toolchain with --update.",
                file=sys.stderr,
            )
            return 2
        with tempfile.TemporaryDirectory(prefix="predis-callgrind-") as tmp:
            exe = build_driver(REPO, Path(tmp), slowdown=args.slowdown, cxx=args.cxx)
            counts = {w: count_instructions(exe, w) for w in WORKLOADS}
    except PredisError as exc:
        print(f"callgrind check: {exc}", file=sys.stderr)
        return 2
    if args.update:
        date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        write_baseline(args.baseline, counts, tools, date)
        for w, n in counts.items():
            print(f"{w:14} {n:>14,}")
        print(f"baseline written to {args.baseline}; commit it with the reason")
        return 0
    assert baseline is not None
    changes = compare_counts(baseline.counts, counts, baseline.tolerance)
    print(f"{'workload':14} {'baseline':>14} {'measured':>14} {'change':>8}")
    for c in changes:
        flag = "  GREW" if c.grew else ("  shrank: update the baseline" if c.shrank else "")
        print(f"{c.workload:14} {c.baseline:>14,} {c.measured:>14,} {c.change:>+8.2%}{flag}")
    grew = [c.workload for c in changes if c.grew]
    if grew:
        print(
            f"FAIL: instructions grew more than {baseline.tolerance:.0%} in: {', '.join(grew)}",
            file=sys.stderr,
        )
        return 1
    print(f"OK: no workload grew more than {baseline.tolerance:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What each look at a running A/B test costs, look by look, in instructions under
callgrind: all of them, and those run with the GIL held (what a Python host waits for).

    python bench/callgrind/look_cost.py [--batches 4096] [--chunk 16384] [--json out.json]

A live cache serves the loop's router with idle arms (as in loop_overhead.py's ``ab``
peer), a test starts after the set-up, and at each of its looks (every ``decide_every``
requests at first, then further apart) this thread does what the router's own thread does
there: it counts the arms (and every ``--chunk`` requests, the live router's
``stream_every``, also takes the chunk for the listeners). Each look is bracketed by
``os.getpgrp()`` calls (which nothing else here makes: the count of dumps is checked) and
callgrind dumps its counts before each one, so every look is
counted on its own, in the same process: no difference of two runs, so none of their
noise. The GIL-free share is the inclusive cost of predis's ``without_gil`` calls (the
split's hashing and tally, the tap's copies), as in loop_overhead.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess  # nosec B404 - argument lists only: valgrind and this script
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BATCH = 16


def _worker(batches: int, chunk: int) -> None:
    """Serve ``batches`` batches with a test running, bracketing each look by getpgrp()."""
    import gc

    sys.path.insert(0, str(HERE.parent))
    from loop_overhead import begin_test_unnudged

    from predis.prefetch.runtime import PrefetchRuntime
    from test_mlops_bench import _demand_batches, _Idle, _idle_loop

    gc.disable()
    tmp = tempfile.mkdtemp(prefix="predis-look-cg-")
    cache, made = _demand_batches(batches * BATCH)
    loop = _idle_loop(tmp, False)
    router = loop.router
    # The router's thread waits for more requests than the run has (no time limit either),
    # so this thread does all of its work, at the same points.
    router.max_hold_s = 3600.0
    router.stream_every = 1 << 20
    runtime = PrefetchRuntime(cache, router, start=False, train_after=None)
    get, step = cache.get, runtime.step
    cache._drain_native()
    router.flush()
    begin_test_unnudged(loop, _Idle(), router.released)
    router.stream_every = chunk
    tap = router._tap
    since = looks = 0
    for keys, _ in made:
        for k in keys.tolist():
            get(k)
        step(cache)
        since += BATCH
        if since >= router.look_every:
            took = tap.pending >= chunk
            os.getpgrp()
            router._step(tap)
            os.getpgrp()
            print(f"look {looks} {router.requests} {int(took)}", file=sys.stderr)
            since = 0
            looks += 1
    shutil.rmtree(tmp, ignore_errors=True)
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batches", type=int, default=4096, help="batches of 16 requests")
    p.add_argument("--chunk", type=int, default=16_384, help="the live router's stream_every")
    p.add_argument("--json", type=Path, help="write the looks' figures here")
    p.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(*args.worker)
        return 0
    if args.batches < 1 or args.chunk < 1:
        p.error("--batches and --chunk must be positive")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not on PATH")
    # The harness's environment and GIL-free share: one definition of each.
    from loop_overhead import _without_gil, callgrind_env

    with tempfile.TemporaryDirectory(prefix="predis-look-cg-") as tmp:
        out = Path(tmp) / "cg.out"
        cmd = [
            "valgrind",
            "--tool=callgrind",
            "--separate-threads=yes",
            "--dump-before=getpgrp",
            f"--callgrind-out-file={out}",
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            str(args.batches),
            str(args.chunk),
        ]
        env = callgrind_env()  # as loop_overhead.py runs its workers
        run = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)  # nosec B603
        if run.returncode != 0:
            raise SystemExit(f"exit {run.returncode}\n{run.stderr[-3000:]}")
        marks = [line.split() for line in run.stderr.splitlines() if line.startswith("look ")]
        # The main thread's dumps: each getpgrp() dumps what ran since the one before, so
        # look k is the dump made at its closing call, the (2k + 2)-th (what ran after the
        # last one is dumped at the exit, unnumbered).
        dumps = {
            int(m[1]): f
            for f in Path(tmp).glob("cg.out.*-01")
            if (m := re.match(r"cg\.out\.(\d+)-01$", f.name))
        }
        if not marks:
            raise SystemExit("no looks were counted: more --batches")
        if sorted(dumps) != list(range(1, 2 * len(marks) + 1)):
            raise SystemExit(
                f"{len(dumps)} dumps for {len(marks)} looks: something else called getpgrp()"
            )
        looks = []
        for k, (_, _, position, took) in enumerate(marks):
            part = dumps[2 * k + 2]
            totals = [
                int(line.split()[1])
                for line in part.read_text().splitlines()
                if line.startswith(("summary:", "totals:"))
            ]
            total = totals[0]
            held = total - _without_gil(part)
            looks.append(
                {
                    "look": k,
                    "position": int(position),
                    "took_chunk": took == "1",
                    "all": total,
                    "held": held,
                }
            )
    for look in looks:
        kind = "counts and a chunk" if look["took_chunk"] else "counts only"
        print(
            f"look {look['look']:3d} at {look['position']:>9,}: {look['all']:>10,} instructions; "
            f"held {look['held']:>8,} ({kind})"
        )
    for took, kind in ((False, "counts only"), (True, "counts and a chunk")):
        held = [x["held"] for x in looks[1:] if x["took_chunk"] == took]  # the first: warm-up
        if held:
            print(f"{kind}: held {sum(held) / len(held):,.0f} on average over {len(held)} looks")
    if args.json:
        args.json.write_text(json.dumps({"looks": looks}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

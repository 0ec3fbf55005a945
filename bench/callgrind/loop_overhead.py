"""The MLOps loop's own work, in instructions per request, under callgrind: a count that
does not move with the machine's load, so it resolves shares of a tenth of a percent that
no timing on a shared VM can (docs/benchmarks.md). Each figure comes twice: all the
instructions, and those run with the GIL held, which are what a Python host waits for
when the loop's threads have a core of their own.

    python bench/callgrind/loop_overhead.py [--batches 1024] [--chunk 16384] [--events 65536]
        [--test-age 0 | --test-start]
        [--max-serving N --max-ab N --max-ab-routing N --max-collector N]
        [--max-serving-held N ...]

Each peer runs in its own process under ``valgrind --tool=callgrind --separate-threads=yes``,
twice: with N and with 3N batches of 16 requests. The difference of the counts of all its
threads, over 2N batches, is the peer's cost per batch, with start-up, imports and set-up
cancelled (the worker leaves through ``os._exit``, so no interpreter teardown is counted
either). The peers:

- ``runtime``: the host's gets of a batch, then one step of a live cache's prefetch runtime
  (drain the access log, account, hand the batch to the prefetcher) with a prefetcher that
  does nothing;
- ``serving`` / ``ab``: the same runtime serving the loop's router (arms that do nothing,
  the loop's listener: drift detector, training window, schedule), between experiments /
  during an A/B test. The router reads the demand stream from the cache's native tap; the
  work its own thread does is done here on the calling thread, at the same points (a
  chunk every ``--chunk`` requests, the default ``stream_every``; during a test, the arms'
  counts at each of its looks: every ``decide_every``, 4,096, at first, then every eighth
  of the test's requests so far, up to ``stream_every``). The test starts as the loop starts one:
  after the set-up, so the split's memo starts cold; with ``--test-age R`` the loop takes
  it to have begun R requests earlier (only the spacing of its looks sees that: a test
  past 131,072 requests is looked at every 16,384); with ``--test-start`` the counted
  stream is the test's first 2N batches instead (started after N, the memo cold). The loop's
  own work is this less ``runtime``;
- ``pair``: ``runtime`` with a second idle prefetcher routed beside the first, as the
  runtime calls an A/B test's two arms (``PrefetchRuntime.route``), without the router:
  ``pair`` less ``runtime`` is what calling the second arm costs, ``ab`` less ``pair`` the
  test's own routing (the split's counts, the looks, the chunks);
- ``champion``: the LearnedPrefetcher with a trained model, scoring every batch (what the
  host already pays for prefetching), called directly;
- ``get``: the host's single-key gets of the same requests.

The host's work per request is ``get`` plus ``champion``: the runtime's own machinery is
left out of it, so the loop's share is not diluted by it.

The collector is counted the same way per access event: a run that fills the access log
and drains and writes it, less a run that only fills it. Its thread releases the GIL for
the drain, the filter, zstd and the file writes.

Run with the GIL released: the inclusive cost of predis's ``without_gil`` calls (the
drain and the demand tap, ADWIN, the split hash, the segment filter) and of zstd's
compression. Everything else counts as held, numpy's GIL-free copies included.

With ``--max-serving``, ``--max-ab``, ``--max-ab-routing`` (instructions per request of the
loop's own work; ``ab-routing``: ``ab`` less ``pair``) and
``--max-collector`` (per event), and their ``-held`` twins for the GIL-held counts, it is a
regression check: CI runs it small so, with room above the figures in docs/benchmarks.md,
and a count above its limit exits 1.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import subprocess  # nosec B404 - argument lists only: valgrind and this script
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BATCH = 16
PEERS = ("runtime", "pair", "serving", "ab", "champion", "get")


def begin_test_unnudged(loop: Any, challenger: Any, position: int) -> None:
    """Start a test as the loop does (``challenger`` from ``position``) without nudging the
    router's thread: it goes on waiting for the 2**20 requests it was waiting for, and the
    caller does its work at the same points, so that what is counted does not depend on
    how valgrind schedules threads."""
    router = loop.router
    tap, router._tap = router._tap, None  # a change of roles nudges the tap's waiter
    try:
        loop._begin_test(challenger, 2, position)
    finally:
        router._tap = tap


def _worker(
    peer: str, n: int, total: int, model_path: str, events: int, chunk: int, age: int
) -> None:
    """Run ``n`` batches (of ``total`` made, whatever n) of ``peer`` on this thread, then
    leave without teardown."""
    import gc

    sys.path.insert(0, str(HERE.parent))
    from predis import Cache
    from predis.mlops import Collector
    from predis.prefetch import LearnedPrefetcher, Prefetcher, PrefetchModel
    from predis.prefetch.runtime import PrefetchRuntime
    from predis.security.crypto import KeyRing, generate_key_line
    from test_mlops_bench import _demand_batches, _Idle, _idle_loop

    gc.disable()  # a collection's timing would depend on n
    tmp = tempfile.mkdtemp(prefix="predis-loop-cg-")

    def leave() -> None:
        shutil.rmtree(tmp, ignore_errors=True)  # os._exit skips every cleanup but this
        os._exit(0)

    if peer in ("fill", "collector"):
        cache = Cache(1 << 20, max_items=2_000, access_log_capacity=events)
        keyring = KeyRing.parse(generate_key_line("bench"))
        collector = Collector(cache, os.path.join(tmp, "seg"), "acme", keyring)
        for k in range(events):
            cache.get(k % 5_000)
        if peer == "collector":
            while collector.drain_once():
                pass
            collector.flush()
        leave()
    cache, made = _demand_batches(total * BATCH)
    # The first n, iterated in place: a slice would free the rest, at a cost that
    # shrinks as n grows.
    batches = itertools.islice(made, n)
    cached = cache.mcontains
    if peer == "get":
        get = cache.get
        for keys, _ in batches:
            for k in keys.tolist():
                get(k)
        leave()
    if peer == "champion":
        model = PrefetchModel.from_bytes(Path(model_path).read_bytes())
        propose = LearnedPrefetcher(model).propose
        for keys, hits in batches:
            propose(keys, hits, cached)
        leave()
    # Every runtime peer builds the same loop, so the heaps they count on start alike.
    loop = _idle_loop(tmp, False)
    router = loop.router
    prefetcher: Prefetcher = _Idle() if peer in ("runtime", "pair") else router
    # The router's thread takes the tap every stream_every requests (and during a test
    # counts the arms at each look). Here it never wakes (a chunk bigger than the run, no
    # time limit; it is waiting for that before the test starts): this thread does its
    # work at the same points instead (every `chunk` requests, and at the test's looks),
    # so that what is counted does not depend on how valgrind schedules threads.
    router.max_hold_s = 3600.0
    router.stream_every = 1 << 20
    runtime = PrefetchRuntime(cache, prefetcher, start=False, train_after=None)
    if peer == "pair":
        runtime.route(prefetcher.propose, _Idle().propose)
    get, step, flush = cache.get, runtime.step, prefetcher.flush
    cache._drain_native()  # what the set-up logged
    flush()  # ... taken now, so the chunks start with the counted requests
    # With age < 0 (--test-start) the test starts after total // 3 batches, so the run of
    # 3N counts its first 2N batches; the run of N starts it at its end, so the start call
    # itself cancels, while what the test sets up at its first chunks (the arms' bucket
    # arrays, the memo's first keys) is counted, as the test's first requests pay it.
    start_at = None  # the batch the test starts at (the ab peer only)
    if peer == "ab":
        start_at = total // 3 if age < 0 else 0

    tap = router._tap

    def begin() -> None:
        flush()  # what came before the test is the roles' before it (empty at batch 0)
        # During the test the router takes a chunk for the listeners every `chunk`
        # requests, as a live router does every stream_every; at its other looks it only
        # counts (router._step, called here at the looks). Its thread goes on waiting for
        # the 2**20 requests it began waiting for before the test.
        router.stream_every = chunk
        # Started only now: the split's memo of key buckets has seen none of the set-up's
        # requests (the same keys), so it is as warm as the stream before it makes it. As
        # the loop starts a test, `age` requests ago: the loop spaces its looks by that.
        begin_test_unnudged(loop, _Idle(), router.released - max(age, 0))

    since = 0
    for i, (keys, _) in enumerate(batches):
        if i == start_at:
            begin()
            since = 0
        for k in keys.tolist():
            get(k)
        step(cache)
        since += BATCH
        # During a test the looks, which the loop spaces out as it grows, count the arms,
        # and every `chunk` requests one also takes the chunk.
        if start_at is not None and i >= start_at:
            if since >= router.look_every:
                router._step(tap)
                since = 0
        elif since >= chunk:
            flush()
            since = 0
    if start_at is not None and start_at >= n:
        begin()  # as the longer run does there
    leave()


def callgrind_env() -> dict[str, str]:
    """The environment a profiled worker runs in, so that its counts repeat."""
    # No BLAS thread pool: its idle threads wake with the wall clock, which valgrind
    # stretches differently in every run. And no `rep movsb` copies or `rep stosb`
    # fills: callgrind counts one instruction per byte of those, so a 32 KiB memcpy
    # would weigh as much as 32,000 instructions (and clearing a test's four 80 KB
    # bucket arrays 320,000); glibc's vector loops do the same in about a thirtieth,
    # which is closer to what either costs on the CPU.
    # No bytecode written either: a run that compiled a module (its .pyc stale after
    # an install) while its peer run loaded it would differ by millions of
    # instructions; this way both runs of a peer find the same .pyc files.
    return {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "GLIBC_TUNABLES": (
            "glibc.cpu.x86_rep_movsb_threshold=4294967295:"
            "glibc.cpu.x86_rep_stosb_threshold=4294967295"
        ),
    }


def _count(
    peer: str, n: int, total: int, model_path: str, events: int, chunk: int, age: int
) -> tuple[int, int]:
    """The instructions of all the threads of one worker run, and how many of them ran
    with the GIL released."""
    with tempfile.TemporaryDirectory(prefix="predis-loop-cg-") as tmp:
        out = Path(tmp) / "cg.out"
        cmd = [
            "valgrind",
            "--tool=callgrind",
            "--separate-threads=yes",
            f"--callgrind-out-file={out}",
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            peer,
            str(n),
            str(total),
            model_path,
            str(events),
            str(chunk),
            str(age),
        ]
        env = callgrind_env()
        run = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)  # nosec B603
        if run.returncode != 0:
            raise SystemExit(f"{peer} x{n}: exit {run.returncode}\n{run.stderr[-3000:]}")
        threads = sorted(Path(tmp).glob("cg.out*-[0-9][0-9]"))
        if not threads:
            raise SystemExit(f"{peer} x{n}: no callgrind output")
        total = free = 0
        for part in threads:
            totals = [
                int(line.split()[1])
                for line in part.read_text().splitlines()
                if line.startswith(("summary:", "totals:"))
            ]
            if not totals:
                raise SystemExit(f"{peer} x{n}: no totals in {part.name}")
            total += totals[0]
            free += _without_gil(part)
        return total, free


# One function line of `callgrind_annotate --inclusive=yes`: cost, share, file:function.
_ANNOTATED = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$")


def _without_gil(part: Path) -> int:
    """The instructions of one thread's profile run with the GIL released: the inclusive
    cost of predis's ``without_gil`` calls (bindings/without_gil.hpp) and of zstd's
    compression, which python-zstandard runs without the GIL. Everything else counts as
    held, numpy's and the interpreter's own GIL-free stretches included."""
    annotate = shutil.which("callgrind_annotate")
    if annotate is None:
        raise SystemExit("callgrind_annotate (valgrind's) is not on PATH")
    out = subprocess.run(  # nosec B603 - an argument list: valgrind's script and a file
        [annotate, "--inclusive=yes", "--threshold=100", str(part)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ours = zstd = 0
    for line in out.splitlines():
        m = _ANNOTATED.match(line)
        if m is None:
            continue
        cost, name = int(m[1].replace(",", "")), m[2].split(" [")[0]
        if re.search(r"'\d+$", name):  # a recursive call's cycle entry: counted in its caller
            continue
        function = name.rsplit(":", 1)[-1]
        if "predis::bindings::without_gil<" in name:
            ours += cost
        elif function.startswith("ZSTD_compress"):
            zstd = max(zstd, cost)  # nested entry points: the outermost holds the rest
    return ours + zstd


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--batches",
        type=int,
        default=1024,
        help="N (a multiple of --chunk / 16): runs of N and 3N batches",
    )
    p.add_argument(
        "--chunk",
        type=int,
        default=16_384,
        help="requests per chunk the live router takes (its stream_every); smaller chunks "
        "give an upper bound in fewer batches",
    )
    p.add_argument("--events", type=int, default=1 << 16, help="events for the collector")
    p.add_argument("--jobs", type=int, default=2, help="valgrind runs at once")
    p.add_argument("--json", type=Path, help="also write the figures here")
    for name, unit in (
        ("serving", "request"),
        ("ab", "request"),
        ("ab-routing", "request"),
        ("collector", "event"),
    ):
        p.add_argument(
            f"--max-{name}",
            type=float,
            help=f"exit 1 if the {name} instructions per {unit} are above this",
        )
        p.add_argument(
            f"--max-{name}-held",
            type=float,
            help=f"exit 1 if the {name} instructions per {unit} with the GIL held are above this",
        )
    p.add_argument(
        "--test-age",
        type=int,
        default=0,
        help="requests the A/B test is taken to have run before the counted stream (the "
        "spacing of its looks)",
    )
    p.add_argument(
        "--test-start",
        action="store_true",
        help="count the test's first requests instead: it starts after N batches (its "
        "densest looks, with the split's memo cold)",
    )
    p.add_argument("--worker", nargs=7, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        peer, n, total, model_path, events, chunk, age = args.worker
        _worker(peer, int(n), int(total), model_path, int(events), int(chunk), int(age))
        return 0
    if args.chunk < BATCH or args.chunk % BATCH:
        p.error(f"--chunk must be a multiple of {BATCH}")
    if args.batches < 10 or args.batches % (args.chunk // BATCH) or args.events < 1024:
        p.error("--batches must be a multiple of --chunk / 16, and --events >= 1024")
    if args.test_age < 0:
        p.error("--test-age must be >= 0")
    if args.test_start and args.test_age:
        p.error("--test-start and --test-age exclude each other")
    age = -1 if args.test_start else args.test_age
    sys.path.insert(0, str(HERE.parent))
    from predis.prefetch import train_model
    from test_mlops_bench import ITEMS, KEYS, TRAIN  # the benchmark's own workload

    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, "model.bin")
        Path(model_path).write_bytes(
            train_model(KEYS[:30_000], TRAIN, cache_items=ITEMS).to_bytes()
        )
        n = args.batches
        runs = [(peer, k) for peer in PEERS for k in (n, 3 * n)]
        runs += [("fill", 0), ("collector", 0)]
        with ThreadPoolExecutor(args.jobs) as pool:
            counts = dict(
                zip(
                    runs,
                    pool.map(
                        lambda r: _count(
                            r[0], r[1], 3 * n, model_path, args.events, args.chunk, age
                        ),
                        runs,
                    ),
                    strict=True,
                )
            )

    def per(a: tuple[str, int], b: tuple[str, int], units: int, held: bool) -> float:
        (total_a, free_a), (total_b, free_b) = counts[a], counts[b]
        return ((total_b - free_b) - (total_a - free_a) if held else total_b - total_a) / units

    figures: dict[str, object] = {}
    for kind, held in (("", False), ("held_", True)):
        per_request = {peer: per((peer, n), (peer, 3 * n), 2 * n * BATCH, held) for peer in PEERS}
        figures[f"{kind}instructions_per_request"] = per_request
        figures[f"collector_{kind}instructions_per_event"] = per(
            ("fill", 0), ("collector", 0), args.events, held
        )
        figures[f"loop_serving_own_{kind}per_request"] = (
            per_request["serving"] - per_request["runtime"]
        )
        figures[f"loop_ab_own_{kind}per_request"] = per_request["ab"] - per_request["runtime"]
        figures[f"loop_ab_second_arm_{kind}per_request"] = (
            per_request["pair"] - per_request["runtime"]
        )
        figures[f"loop_ab_routing_{kind}per_request"] = per_request["ab"] - per_request["pair"]
    totals = figures["instructions_per_request"]
    assert isinstance(totals, dict)
    host = totals["get"] + totals["champion"]
    figures["host_instructions_per_request"] = host
    for key in list(figures):
        if key.startswith(("loop_", "collector_")):
            figures[
                key.replace("per_request", "share").replace("instructions_per_event", "share")
            ] = (
                float(figures[key]) / host  # type: ignore[arg-type]
            )
    for peer, v in totals.items():
        print(f"{peer:10} {v:12,.0f} instructions per request")
    print(f"host (get + champion) {host:,.0f} instructions per request")
    print("the loop's own work (all threads; with the GIL held):")
    for label, key, unit in (
        ("between experiments", "loop_serving_own_{}per_request", "request"),
        ("during an A/B test", "loop_ab_own_{}per_request", "request"),
        ("  its second arm's call", "loop_ab_second_arm_{}per_request", "request"),
        ("  its routing", "loop_ab_routing_{}per_request", "request"),
        ("collector", "collector_{}instructions_per_event", "event"),
    ):
        every, held = figures[key.format("")], figures[key.format("held_")]
        print(
            f"  {label:24} {every:8,.0f} per {unit} ({float(every) / host:.3%}); "  # type: ignore[arg-type]
            f"held {held:8,.0f} ({float(held) / host:.3%})"  # type: ignore[arg-type]
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    # Absolute counts, not shares: the host's count (the denominator) moves with how many
    # batches are run, the loop's own per-request count hardly does.
    over = [
        f"{name} {figures[key]:,.0f} > {limit:,.0f}"
        for name, key, limit in (
            ("serving", "loop_serving_own_per_request", args.max_serving),
            ("A/B", "loop_ab_own_per_request", args.max_ab),
            ("collector", "collector_instructions_per_event", args.max_collector),
            ("serving (GIL held)", "loop_serving_own_held_per_request", args.max_serving_held),
            ("A/B (GIL held)", "loop_ab_own_held_per_request", args.max_ab_held),
            ("A/B routing", "loop_ab_routing_per_request", args.max_ab_routing),
            (
                "A/B routing (GIL held)",
                "loop_ab_routing_held_per_request",
                args.max_ab_routing_held,
            ),
            (
                "collector (GIL held)",
                "collector_held_instructions_per_event",
                args.max_collector_held,
            ),
        )
        if limit is not None and float(figures[key]) > limit  # type: ignore[arg-type]
    ]
    if over:
        print(f"FAIL: the loop's instructions grew: {'; '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

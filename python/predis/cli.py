"""The `predis` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from predis.errors import InvalidArgumentError, PredisError

__all__ = ["main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _duration(text: str) -> object:
    from predis.demo.config import parse_duration

    try:
        return parse_duration(text)
    except InvalidArgumentError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port in 0..65535, got {text!r}")
    return value


def _fraction(text: str) -> float:
    value = _positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    from predis import __version__

    p = argparse.ArgumentParser(prog="predis", description="Predis: a learning key-value cache.")
    p.add_argument("--version", action="version", version=f"predis {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="the whole of Predis on a workload with a phase change, narrated, with a report",
        description=(
            "Serve a workload through a cache with the learned prefetcher in front of a "
            "simulated back end, with the collector, the exporter and the MLOps loop running: "
            "drift at the phase change, retraining, validation, an A/B test and a promotion; "
            "then a degraded model promoted by hand and the automatic rollback. Ends with a "
            "report of measured figures (see docs/demo.md)."
        ),
    )
    demo.add_argument(
        "--duration",
        type=_duration,
        default="110k",
        help="a request budget (110000, 110k, 1.5M) or a time budget (90s, 3m); "
        "default 110k requests: under a minute on 2 cores",
    )
    demo.add_argument(
        "--workload",
        default="sessions",
        metavar="NAME|TRACE",
        help="sessions (default), loop or hotset, or the path of a trace file "
        "(e.g. ../shared/traces/lirs_sprite.trace.gz); the phase change goes from zipf to it",
    )
    demo.add_argument(
        "--no-serve", action="store_true", help="headless: no exporter, no dashboard token"
    )
    demo.add_argument(
        "--port", type=_port, default=0, help="the exporter's port on 127.0.0.1 (0: any free)"
    )
    demo.add_argument(
        "--workdir",
        help="a new or empty folder for keys, tokens, models and segments "
        "(default: a fresh temporary folder)",
    )
    demo.add_argument("--seed", type=_non_negative_int, default=0, help="workload seed")
    demo.add_argument(
        "--cache-items",
        type=_positive_int,
        default=150,
        help="cache capacity in entries (default 150)",
    )
    demo.add_argument(
        "--switch-at",
        type=_positive_int,
        default=30_000,
        help="the request where the phase changes (default 30000)",
    )
    demo.add_argument(
        "--latency-ms",
        type=_non_negative_float,
        default=2.0,
        help="simulated back-end latency per fetch (accounted, not slept; default 2)",
    )
    demo.add_argument(
        "--cost-per-fetch",
        type=_non_negative_float,
        default=4e-7,
        help="ROI input: money per back-end fetch (default 4e-7)",
    )
    demo.add_argument(
        "--wait-cost-per-hour",
        type=_non_negative_float,
        default=0.04,
        help="ROI input: money per hour of request time spent waiting (default 0.04)",
    )
    demo.add_argument(
        "--cpu-cost-per-hour",
        type=_non_negative_float,
        default=0.04,
        help="ROI input: money per CPU-hour used by Predis (default 0.04)",
    )
    demo.add_argument(
        "--json", metavar="PATH", help="also write the report as JSON to PATH ('-' for stdout)"
    )
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    sub.add_parser("info", help="print build information and visible CUDA devices as JSON")

    token = sub.add_parser("token", help="create, list and revoke API tokens")
    token_sub = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    tc = token_sub.add_parser("create", help="create a token (shown once)")
    tc.add_argument("--customer", required=True)
    tc.add_argument(
        "--scopes",
        required=True,
        help="comma-separated: read, export, admin, dashboard (log in to `predis dashboard`)",
    )
    tc.add_argument("--ttl-days", type=_positive_float, default=None, help="expire after N days")
    tl = token_sub.add_parser("list", help="list tokens (never their secrets)")
    tl.add_argument("--customer", default=None)
    tr = token_sub.add_parser("revoke", help="revoke a token by id")
    tr.add_argument("token_id")
    for p_ in (tc, tl, tr):
        p_.add_argument("--file", default=None, help="token store (default: $PREDIS_TOKEN_FILE)")

    kg = sub.add_parser("keygen", help="print a new data-encryption key line (<id>:<base64>)")
    kg.add_argument("--id", default="k1", help="key id (default k1)")

    ex = sub.add_parser(
        "exporter", help="serve the stats blocks of Cache(stats_shm=...) hosts at /metrics"
    )
    ex.add_argument(
        "--port", type=int, default=9090, help="port (default 9090; Prometheus's own default)"
    )
    ex.add_argument("--addr", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ex.add_argument("--cache", action="append", default=[], metavar="NAME", help="a stats_shm name")
    ex.add_argument("--all", action="store_true", help="also serve every block found")
    ex.add_argument("--no-gpu", action="store_true", help="no NVML GPU metrics")
    ex.add_argument("--token-file", default=None, help="bearer token file (mode 0600)")

    dash = sub.add_parser(
        "dashboard", help="serve the customer ROI dashboard (scrapes exporters into SQLite)"
    )
    dash.add_argument("--port", type=_port_or_zero, default=8050, help="port (default 8050)")
    dash.add_argument("--addr", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    dash.add_argument(
        "--scrape",
        type=_urls,
        action="append",
        default=[],
        metavar="URL[,URL]",
        help="exporter /metrics URLs to scrape (repeatable)",
    )
    dash.add_argument(
        "--prometheus", default=None, metavar="URL", help="also read a Prometheus server's API"
    )
    dash.add_argument(
        "--scrape-token-file", default=None, help="bearer token (mode 0600) for the scrapes"
    )
    dash.add_argument(
        "--interval", type=_positive_float, default=5.0, help="seconds between scrapes (5)"
    )
    dash.add_argument(
        "--refresh", type=_positive_float, default=None, help="seconds between page updates"
    )
    dash.add_argument("--db", default="predis-dashboard.sqlite", help="SQLite history file")
    dash.add_argument(
        "--retention-days", type=_positive_float, default=30.0, help="history kept (30 days)"
    )
    dash.add_argument(
        "--window", type=_positive_float, default=3600.0, help="seconds the ROI covers (3600)"
    )
    dash.add_argument("--customers-config", required=True, help="customers and ROI inputs (JSON)")
    dash.add_argument(
        "--tokens", default=None, help="token store (default: $PREDIS_TOKEN_FILE or ~/.config)"
    )
    dash.add_argument("--registry", default=None, help="model registry root for the model page")
    dash.add_argument("--tls-cert", default=None, help="serve HTTPS with this certificate")
    dash.add_argument("--tls-key", default=None, help="... and this private key")

    bench = sub.add_parser("bench", help="evaluation suites")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, metavar="SUITE")
    hr = bench_sub.add_parser(
        "hitrate",
        help="miss ratios: traces x cache sizes x policies, beside libCacheSim and Belady",
    )
    hr.add_argument(
        "--traces",
        nargs="*",
        metavar="PATH",
        help="trace files or folders (default: $PREDIS_TRACE_DIR or ../shared/traces)",
    )
    hr.add_argument("--no-traces", action="store_true", help="skip real traces")
    hr.add_argument("--synthetic", action="store_true", help="add the synthetic suite")
    hr.add_argument(
        "--fractions",
        type=_fractions,
        default=None,
        help="cache sizes as fractions of the working set (default 0.001,0.01,0.1)",
    )
    hr.add_argument("--policies", type=_names, default=None, help="comma-separated policy names")
    hr.add_argument("--max-requests", type=_positive_int, default=None, help="cut each trace")
    hr.add_argument("--json", metavar="PATH", help="write the table as JSON")
    hr.add_argument("--markdown", metavar="PATH", help="write the table as Markdown")
    hr.add_argument("--no-progress", action="store_true", help="hide progress bars")
    hr.add_argument(
        "--prefetch",
        action="store_true",
        help="the learned prefetcher's goals table instead: train on each trace's first half, "
        "score the second, beside S3-FIFO, W-TinyLFU and Belady (default sizes 1%%,10%%)",
    )
    hr.add_argument(
        "--policy", choices=("lru", "lfu"), default="lru", help="Predis's eviction (--prefetch)"
    )

    run = bench_sub.add_parser(
        "run", help="run the bench/ suites under pytest-benchmark and save the results as JSON"
    )
    run.add_argument("--json", metavar="PATH", help="results file (default bench-<UTC time>.json)")
    run.add_argument("--bench-dir", metavar="DIR", help="the checkout's bench/ (default: found)")
    run.add_argument("--rounds", type=_positive_int, default=30, help="rounds per ratio pair")
    run.add_argument("--pairs-only", action="store_true", help="run only the ratio pairs")
    run.add_argument("--quick", action="store_true", help="small sizes for the other suites")
    run.add_argument("-k", dest="keyword", metavar="EXPR", help="pytest -k selection")

    cmp = bench_sub.add_parser(
        "compare", help="compare two results files' ratio pairs; exit 1 on a regression"
    )
    cmp.add_argument("old", help="the baseline results file")
    cmp.add_argument("new", help="the results file under test")
    cmp.add_argument(
        "--threshold",
        type=_fraction_below_one,
        default=None,
        help="largest tolerated drop of every ratio, as a fraction (default: each pair's "
        "own, else 0.15; see docs/benchmarks.md)",
    )
    cmp.add_argument(
        "--pair-threshold",
        action="append",
        default=[],
        metavar="PAIR=FRACTION",
        help="a threshold for one pair (repeatable)",
    )
    cmp.add_argument(
        "--confidence", type=_fraction_below_one, default=0.95, help="interval level (0.95)"
    )
    cmp.add_argument(
        "--allow-missing", action="store_true", help="do not fail on a pair the new run lacks"
    )
    return p


def _fraction_below_one(text: str) -> float:
    value = _positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {text!r}")
    return value


def _fractions(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated fractions, got {text!r}"
        ) from None
    if not values or not all(0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"fractions must be in (0, 1], got {text!r}")
    return values


def _port_or_zero(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is in 0..65535 (0: any free), got {text!r}")
    return value


def _urls(text: str) -> tuple[str, ...]:
    urls = tuple(x.strip() for x in text.split(",") if x.strip())
    if not urls:
        raise argparse.ArgumentTypeError("expected at least one URL")
    return urls


def _names(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected at least one name")
    return names


def _bench_hitrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from predis.fileio import atomic_write_text
    from predis.sim.baselines import LIBCACHESIM_POLICIES
    from predis.sim.hitrate import DEFAULT_FRACTIONS, PREDIS_POLICIES, run_matrix
    from predis.sim.suite import SYNTHETIC, find_trace_dir, load_trace, synthetic_trace

    traces = {}
    if not args.no_traces:
        if args.traces:
            roots = [Path(t) for t in args.traces]
        else:
            found = find_trace_dir()
            roots = [found] if found is not None else []
            if not roots and not args.synthetic:
                print(
                    "predis: error: no trace folder found; pass --traces, set "
                    "PREDIS_TRACE_DIR, or use --synthetic",
                    file=sys.stderr,
                )
                return 2
        for root in roots:
            files = (
                sorted(f for f in root.iterdir() if f.is_file() and f.suffix != ".md")
                if root.is_dir()
                else [root]
            )
            for f in files:
                traces[f.name] = load_trace(f, args.max_requests)
    if args.synthetic:
        for name in SYNTHETIC:
            keys = synthetic_trace(name)
            traces[name] = keys[: args.max_requests] if args.max_requests else keys
    if not traces:
        print("predis: error: nothing to evaluate", file=sys.stderr)
        return 2
    if args.prefetch:
        from predis.sim.prefetch_eval import evaluate_prefetch

        goals = evaluate_prefetch(
            traces,
            fractions=args.fractions or (0.01, 0.1),
            policy=args.policy,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
        print(goals.to_markdown())
        if args.json:
            atomic_write_text(args.json, goals.to_json() + "\n")
        if args.markdown:
            atomic_write_text(args.markdown, goals.to_markdown() + "\n")
        return 0
    table = run_matrix(
        traces,
        fractions=args.fractions or DEFAULT_FRACTIONS,
        policies=args.policies or (*PREDIS_POLICIES, *LIBCACHESIM_POLICIES),
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    print(table.to_markdown())
    if args.json:
        atomic_write_text(args.json, table.to_json() + "\n")
    if args.markdown:
        atomic_write_text(args.markdown, table.to_markdown() + "\n")
    return 0


def _bench_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from predis.benchtools.compare import format_run
    from predis.benchtools.results import load_run
    from predis.benchtools.runner import default_json_path, run_bench

    out = Path(args.json) if args.json else default_json_path()
    status = run_bench(
        out,
        bench_dir=Path(args.bench_dir) if args.bench_dir else None,
        rounds=args.rounds,
        pairs_only=args.pairs_only,
        quick=args.quick,
        keyword=args.keyword,
    )
    if status != 0:
        print(f"predis: error: the benchmark run failed (pytest exit {status})", file=sys.stderr)
        return 1
    print(format_run(load_run(out), 0.95))
    print(f"results written to {out}")
    return 0


def _bench_compare(args: argparse.Namespace) -> int:
    from predis.benchtools.compare import compare_runs, format_comparison
    from predis.benchtools.results import load_run

    per_pair = {}
    for item in args.pair_threshold:
        name, sep, value = item.partition("=")
        try:
            per_pair[name] = _fraction_below_one(value)
        except argparse.ArgumentTypeError as exc:
            raise InvalidArgumentError(f"--pair-threshold {item!r}: {exc}") from None
        if not sep or not name:
            raise InvalidArgumentError(f"--pair-threshold wants PAIR=FRACTION, got {item!r}")
    comparison = compare_runs(
        load_run(args.old),
        load_run(args.new),
        threshold=args.threshold,
        confidence=args.confidence,
        thresholds=per_pair,
    )
    print(format_comparison(comparison))
    if not comparison.changes:
        print("predis: error: the two runs share no ratio pair", file=sys.stderr)
        return 2
    failed = list(comparison.regressed)
    if comparison.only_old and not args.allow_missing:
        failed += [f"{name} (missing)" for name in comparison.only_old]
    if failed:
        print(f"\nFAIL: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("\nOK: no ratio dropped beyond its threshold")
    return 0


def _demo(args: argparse.Namespace) -> int:
    import threading

    from tqdm import tqdm

    from predis.demo import DemoConfig, RoiInputs, format_report, run_demo
    from predis.fileio import atomic_write_text

    cfg = DemoConfig(
        duration=args.duration,
        workload=args.workload,
        workdir=args.workdir,
        serve=not args.no_serve,
        port=args.port,
        seed=args.seed,
        cache_items=args.cache_items,
        switch_at=args.switch_at,
        latency_ms=args.latency_ms,
        roi=RoiInputs(args.cost_per_fetch, args.wait_cost_per_hour, args.cpu_cost_per_hour),
    )
    to_stdout = args.json == "-"
    if args.json and not to_stdout:
        folder = Path(args.json).expanduser().absolute().parent
        if not folder.is_dir():
            raise InvalidArgumentError(
                f"--json {args.json!r}: folder {folder} does not exist; create it first"
            )
    lock = threading.Lock()

    def say(line: str) -> None:
        # Narration goes to stderr when the JSON report takes stdout; tqdm.write keeps it
        # above the progress bar. Events come from the loop's threads: one line at a time.
        with lock:
            tqdm.write(line, file=sys.stderr if to_stdout else sys.stdout)

    progress = not args.no_progress and sys.stderr.isatty()
    report = run_demo(cfg, say=say, progress=progress)
    data = json.dumps(report.to_dict(), indent=2, default=str) + "\n"
    if to_stdout:
        sys.stdout.write(data)
        return 0
    print()
    print(format_report(report))
    if args.json:
        atomic_write_text(args.json, data)
        print(f"report written to {args.json}")
    return 0


def _token(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from predis.security.tokens import TokenStore

    store = TokenStore(args.file)
    if args.action == "create":
        ttl = None if args.ttl_days is None else args.ttl_days * 86400
        token, info = store.create(args.customer, args.scopes, ttl)
        print(token)
        print(
            f"token {info.id} for {info.customer} ({','.join(info.scopes)}); store it now: "
            "it is not kept and cannot be shown again",
            file=sys.stderr,
        )
        return 0
    if args.action == "revoke":
        info = store.revoke(args.token_id)
        print(f"revoked {info.id} ({info.customer})")
        return 0

    def when(t: float | None) -> str:
        if t is None:
            return "never"
        return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    for i in store.list_tokens(args.customer):
        state = "revoked" if i.revoked else "active"
        scopes = ",".join(i.scopes)
        print(f"{i.id}  {i.customer:<20} {scopes:<18} {state:<8} expires {when(i.expires)}")
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    import signal
    import threading

    from predis.dashboard import DashboardConfig, DashboardServer, load_customers
    from predis.security.tokens import default_token_file

    urls = [u for group in args.scrape for u in group]
    if not urls and args.prometheus is None:
        raise InvalidArgumentError("nothing to scrape: pass --scrape URL or --prometheus URL")
    config = DashboardConfig(
        customers=load_customers(args.customers_config),
        token_store=args.tokens or default_token_file(),
        scrape_urls=urls,
        prometheus_url=args.prometheus,
        scrape_token_file=args.scrape_token_file,
        db_path=args.db,
        interval_s=args.interval,
        refresh_s=args.refresh if args.refresh is not None else args.interval,
        retention_s=args.retention_days * 86400,
        window_s=args.window,
        registry_dir=args.registry,
        addr=args.addr,
        port=args.port,
        tls_certfile=args.tls_cert,
        tls_keyfile=args.tls_key,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with DashboardServer(config) as server:
        print(f"predis dashboard: serving {server.url} (log in with a dashboard token)", flush=True)
        stop.wait()
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from predis.security.crypto import generate_key_line

    print(generate_key_line(args.id))
    return 0


def _info() -> int:
    import predis

    json.dump({"build": predis.build_info(), "cuda": predis.cuda_devices()}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `predis` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "bench":
            if args.bench_command == "run":
                return _bench_run(args)
            if args.bench_command == "compare":
                return _bench_compare(args)
            return _bench_hitrate(args)
        if args.command == "token":
            return _token(args)
        if args.command == "dashboard":
            return _dashboard(args)
        if args.command == "keygen":
            return _keygen(args)
        if args.command == "exporter":
            from predis.monitoring.sidecar import run_exporter

            return run_exporter(
                args.port, args.addr, args.cache, args.all, not args.no_gpu, args.token_file
            )
        return _info()
    except PredisError as exc:
        print(f"predis: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"predis: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The `predis` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from predis.errors import PredisError

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
        "demo", help="replay a synthetic zipf workload through a cache and report"
    )
    demo.add_argument(
        "--requests",
        type=_positive_int,
        default=2_000_000,
        help="requests to replay (default 2,000,000)",
    )
    demo.add_argument(
        "--keys", type=_positive_int, default=200_000, help="distinct keys (default 200,000)"
    )
    demo.add_argument(
        "--alpha", type=_positive_float, default=0.99, help="zipf skew (default 0.99)"
    )
    demo.add_argument(
        "--value-size", type=_positive_int, default=64, help="value bytes (default 64)"
    )
    demo.add_argument(
        "--cache-fraction",
        type=_fraction,
        default=0.1,
        help="cache capacity as a fraction of all keys' bytes (default 0.1)",
    )
    demo.add_argument("--policy", choices=("lru", "lfu"), default="lru")
    demo.add_argument(
        "--batch", type=_positive_int, default=4096, help="keys per batch (default 4096)"
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--json", metavar="PATH", help="also write the report as JSON to PATH ('-' for stdout)"
    )
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    sub.add_parser("info", help="print build information and visible CUDA devices as JSON")
    return p


def _demo(args: argparse.Namespace) -> int:
    from predis.demo import DemoConfig, format_report, run_demo

    cfg = DemoConfig(
        requests=args.requests,
        keys=args.keys,
        alpha=args.alpha,
        value_size=args.value_size,
        cache_fraction=args.cache_fraction,
        policy=args.policy,
        batch=args.batch,
        seed=args.seed,
    )
    report = run_demo(cfg, progress=not args.no_progress and sys.stderr.isatty())
    if args.json == "-":
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(format_report(report))
    if args.json:
        from predis.fileio import atomic_write_text

        atomic_write_text(args.json, json.dumps(report.to_dict(), indent=2) + "\n")
        print(f"report written to {args.json}")
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
        return _info()
    except PredisError as exc:
        print(f"predis: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"predis: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Soak: run the demo's whole pipeline for a long time and watch its memory.

    python bench/soak/soak.py --duration 12m --json soak.json

It starts ``predis demo --duration D --workload W`` (the cache with the learned prefetcher,
the collector writing encrypted segments, the exporter, the MLOps loop retraining and
A/B-testing) as a child process, scrapes the exporter's ``/metrics`` every second as a
Prometheus server would, and samples the child's resident set size (``VmRSS``) every
``--every`` seconds. The verdict compares the RSS after warm-up (the median of the
samples between 20% and 30% of the run) with the RSS at the end (the median of the last
10%): growth beyond ``--tolerance`` (the larger of 5% and 32 MiB by default) fails, with
exit status 1. It also prints the least-squares slope after warm-up, in MiB per hour.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

MIB = 1 << 20


def rss_bytes(pid: int) -> int | None:
    """The process's resident set size, or None once it has exited."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


def slope_mib_per_hour(points: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS over time."""
    ts = [t for t, _ in points]
    ys = [r / MIB for _, r in points]
    t_mean, y_mean = statistics.fmean(ts), statistics.fmean(ys)
    var = sum((t - t_mean) ** 2 for t in ts)
    if var == 0:
        return 0.0
    cov = sum((t - t_mean) * (y - y_mean) for t, y in zip(ts, ys, strict=True))
    return cov / var * 3600


def verdict(samples: list[tuple[float, int]], tolerance_mib: float, tolerance_share: float) -> dict:
    """Warm RSS against final RSS; the growth allowed is the larger of the two tolerances."""
    n = len(samples)
    if n < 20:
        raise SystemExit(f"only {n} RSS samples: run longer or sample more often")
    warm = [r for _, r in samples[n * 2 // 10 : n * 3 // 10]]
    last = [r for _, r in samples[n * 9 // 10 :]]
    warm_rss, end_rss = statistics.median(warm), statistics.median(last)
    allowed = max(tolerance_mib * MIB, tolerance_share * warm_rss)
    return {
        "warm_rss_mib": warm_rss / MIB,
        "end_rss_mib": end_rss / MIB,
        "peak_rss_mib": max(r for _, r in samples) / MIB,
        "growth_mib": (end_rss - warm_rss) / MIB,
        "allowed_growth_mib": allowed / MIB,
        "slope_after_warmup_mib_per_hour": slope_mib_per_hour(samples[n * 2 // 10 :]),
        "passed": end_rss - warm_rss <= allowed,
    }


def sparkline(values: list[float], width: int = 60) -> str:
    """RSS over time in one line of block characters."""
    blocks = " ▁▂▃▄▅▆▇█"
    step = max(1, len(values) // width)
    picked = values[::step]
    lo, hi = min(picked), max(picked)
    span = (hi - lo) or 1.0
    return "".join(blocks[round((v - lo) / span * (len(blocks) - 1))] for v in picked)


def scraper(url: str, stop: threading.Event, counts: dict[str, int]) -> None:
    """Scrape like a Prometheus server, once a second, counting successes and failures."""
    while not stop.wait(1.0):
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310  # nosec B310
                resp.read()
            counts["scrapes"] += 1
        except OSError:
            counts["scrape_errors"] += 1


def main(argv: list[str] | None = None) -> int:
    """Run the soak; exit 1 when memory grew beyond the tolerance after warm-up."""
    ap = argparse.ArgumentParser(description="soak the demo pipeline and watch its RSS")
    ap.add_argument("--duration", default="12m", help="the demo's --duration (default 12m)")
    ap.add_argument("--workload", default="sessions", help="the demo's --workload")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between RSS samples")
    ap.add_argument("--tolerance-mib", type=float, default=32.0)
    ap.add_argument("--tolerance-share", type=float, default=0.05)
    ap.add_argument("--json", type=Path, help="write samples and verdict here")
    args = ap.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="predis-soak-")) / "demo"
    cmd = [
        sys.executable, "-m", "predis.cli", "demo", "--duration", args.duration,
        "--workload", args.workload, "--no-progress", "--workdir", str(workdir),
        "--json", str(workdir.parent / "report.json"),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    url: list[str] = []

    def reader() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line.rstrip())
            m = re.search(r"exporter: (http://\S+)", line)
            if m and not url:
                url.append(m.group(1))

    threading.Thread(target=reader, daemon=True).start()
    stop = threading.Event()
    counts = {"scrapes": 0, "scrape_errors": 0}
    started = time.monotonic()
    samples: list[tuple[float, int]] = []
    scraping = False
    while proc.poll() is None:
        rss = rss_bytes(proc.pid)
        if rss is not None:
            samples.append((time.monotonic() - started, rss))
        if url and not scraping:
            threading.Thread(target=scraper, args=(url[0], stop, counts), daemon=True).start()
            scraping = True
        time.sleep(args.every)
    stop.set()
    if proc.returncode != 0:
        print("\n".join(lines[-40:]))
        print(f"the demo exited with status {proc.returncode}", file=sys.stderr)
        return 2
    # The demo's last phase (its no-prefetch baseline replay and the report) runs after
    # serving; the samples cover both.
    result = verdict(samples, args.tolerance_mib, args.tolerance_share)
    report = json.loads((workdir.parent / "report.json").read_text())
    result.update(
        duration_s=samples[-1][0],
        samples=len(samples),
        requests=report["run"]["requests"],
        requests_per_s=report["run"]["requests_per_s"],
        retrainings=sum(1 for e in report["loop_events"] if e.get("kind") == "retrain-started"),
        segments_written=report["collector"]["segments_written"],
        scrapes=counts["scrapes"],
        scrape_errors=counts["scrape_errors"],
    )
    print(f"RSS (MiB) over {result['duration_s']:.0f} s: "
          f"{sparkline([r / MIB for _, r in samples])}")  # fmt: skip
    for k, v in result.items():
        print(f"  {k}: {v:.1f}" if isinstance(v, float) else f"  {k}: {v}")
    if args.json is not None:
        args.json.write_text(
            json.dumps({**result, "rss_samples": [[t, r] for t, r in samples]}, indent=1)
        )
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

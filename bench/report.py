"""Summarise a pytest-benchmark JSON file as Markdown tables: per group, each entry's median,
keys per second (where the benchmark records keys_per_call) and its speed relative to the
fastest entry of its group; then the ratio pairs (bench/test_ratio_bench.py), each as its
geometric-mean ratio with a 95% bootstrap interval.

Usage: python bench/report.py RESULTS.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from predis.benchtools.compare import format_run
from predis.benchtools.results import load_run


def summarise(path: Path) -> str:
    """The Markdown summary of one pytest-benchmark JSON file."""
    data = json.loads(path.read_text())
    groups: dict[str, list[dict]] = defaultdict(list)
    for bench in data["benchmarks"]:
        if "pair" not in bench.get("extra_info", {}):  # a pair's time is its whole run
            groups[bench["group"] or bench["name"]].append(bench)
    cpu = data["machine_info"].get("cpu", {}).get("brand_raw", "unknown CPU")
    lines = [
        f"{data['datetime']} on {cpu}, commit {data.get('commit_info', {}).get('id', '?')[:10]}"
    ]
    for group in sorted(groups):
        entries = sorted(groups[group], key=lambda b: b["stats"]["median"])
        fastest = entries[0]["stats"]["median"]
        lines += ["", f"**{group}**", "", "| benchmark | median | keys/s | time vs fastest |"]
        lines.append("| --- | ---: | ---: | ---: |")
        for b in entries:
            median = b["stats"]["median"]
            per_call = b["extra_info"].get("keys_per_call")
            rate = f"{per_call / median / 1e6:.2f} M" if per_call else ""
            name = b["name"].split("[")[0].removeprefix("test_")
            lines.append(f"| {name} | {median * 1e3:.3f} ms | {rate} | {median / fastest:.2f}x |")
    run = load_run(path)
    if run.pairs:
        lines += ["", "**ratio pairs** (peer time / subject time)", ""]
        lines += format_run(run, 0.95).splitlines()[2:]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(summarise(Path(sys.argv[1])))

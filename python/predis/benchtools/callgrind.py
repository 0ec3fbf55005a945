"""Instruction counts of the C++ core under ``valgrind --tool=callgrind``.

Wall-clock time on a shared machine moves with its neighbours; the number of instructions
a fixed, single-threaded workload executes does not. ``bench/callgrind/core_workloads.cpp``
holds the workloads (batch get, batch put, ring push/pop, eviction-heavy insert); this
module compiles it against ``csrc/`` with the release build's flags, counts each
workload's instructions (only inside its ``workload_<name>`` function, never the set-up),
and compares the counts with a committed baseline. A workload whose count grew by more
than :data:`TOLERANCE` fails the check.

The counts depend on the compiler and on valgrind, so the baseline records both and a
comparison on another toolchain is refused rather than misread.
"""

from __future__ import annotations

import json
import re
import shutil

# Argument lists, never a shell: the programs run are g++, valgrind and pytest.
import subprocess  # nosec B404
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from predis.errors import InvalidArgumentError, PredisError
from predis.fileio import atomic_write_text

__all__ = [
    "FLAGS",
    "TOLERANCE",
    "WORKLOADS",
    "Baseline",
    "CallgrindError",
    "CountChange",
    "build_driver",
    "compare_counts",
    "count_instructions",
    "load_baseline",
    "parse_totals",
    "toolchain",
    "write_baseline",
]

WORKLOADS = ("batch_get", "batch_put", "ring", "evict_insert")
TOLERANCE = 0.02
# The flags of the extension's CMake Release build, so the counts describe shipped code.
FLAGS = ("-O3", "-DNDEBUG", "-std=c++17")
SOURCES = ("csrc/cpu/cpu_table.cpp", "csrc/cpu/slab_arena.cpp", "csrc/factory.cpp")
DRIVER = "bench/callgrind/core_workloads.cpp"
_TOTALS = re.compile(r"^(?:totals|summary):\s+(\d+)\s*$", re.MULTILINE)


class CallgrindError(PredisError):
    """The check could not run: a tool is missing, a build failed, or a workload was wrong."""


@dataclass(frozen=True)
class CountChange:
    """One workload's count against its baseline."""

    workload: str
    baseline: int
    measured: int
    tolerance: float

    @property
    def change(self) -> float:
        return self.measured / self.baseline - 1.0

    @property
    def grew(self) -> bool:
        return self.measured > self.baseline * (1.0 + self.tolerance)

    @property
    def shrank(self) -> bool:
        return self.measured < self.baseline * (1.0 - self.tolerance)


@dataclass(frozen=True)
class Baseline:
    """A committed baseline: counts per workload and the toolchain that produced them."""

    counts: dict[str, int]
    toolchain: dict[str, str]
    tolerance: float


def _run(cmd: list[str], timeout: int, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check)  # noqa: S603  # nosec B603


def _first_line(cmd: list[str]) -> str:
    try:
        out = _run(cmd, 60, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CallgrindError(f"cannot run {cmd[0]}: {exc}") from None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise CallgrindError(f"{name} is not on PATH; install it (apt-get install {name})")
    return path


def toolchain(cxx: str = "g++") -> dict[str, str]:
    """The compiler's and valgrind's version lines, and the driver's compile flags."""
    return {
        "compiler": _first_line([_tool(cxx), "--version"]),
        "valgrind": _first_line([_tool("valgrind"), "--version"]),
        "flags": " ".join(FLAGS),
    }


def build_driver(repo: Path, out_dir: Path, *, slowdown: int = 0, cxx: str = "g++") -> Path:
    """Compile the workload driver; ``slowdown`` > 0 builds the deliberately slowed core."""
    if slowdown < 0:
        raise InvalidArgumentError(f"slowdown must be >= 0, got {slowdown}")
    exe = out_dir / ("core_workloads" if slowdown == 0 else f"core_workloads_slow{slowdown}")
    cmd = [
        _tool(cxx),
        *FLAGS,
        f"-DPREDIS_BENCH_SLOWDOWN={slowdown}",
        f"-I{repo / 'csrc'}",
        str(repo / DRIVER),
        *(str(repo / s) for s in SOURCES),
        "-o",
        str(exe),
    ]
    built = _run(cmd, 600)
    if built.returncode != 0:
        raise CallgrindError(f"{' '.join(cmd)} failed:\n{built.stderr[-4000:]}")
    return exe


def parse_totals(text: str) -> int:
    """The event total of a callgrind output file (its ``totals:`` or ``summary:`` line)."""
    found = _TOTALS.findall(text)
    if not found:
        raise CallgrindError("no 'totals:' or 'summary:' line in the callgrind output")
    return int(found[-1])


def count_instructions(exe: Path, workload: str) -> int:
    """Instructions executed inside ``workload_<workload>`` of one driver run."""
    if workload not in WORKLOADS:
        raise InvalidArgumentError(f"unknown workload {workload!r}; one of {', '.join(WORKLOADS)}")
    with tempfile.TemporaryDirectory(prefix="predis-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = [
            _tool("valgrind"),
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            f"--toggle-collect=workload_{workload}",
            "--dump-instr=no",
            str(exe),
            workload,
        ]
        run = _run(cmd, 600)
        if run.returncode != 0:
            raise CallgrindError(
                f"{workload}: exit {run.returncode}\n{run.stdout}{run.stderr[-2000:]}"
            )
        report = json.loads(run.stdout)
        if report.get("ok") is not True:
            raise CallgrindError(f"{workload}: the driver saw wrong results: {run.stdout.strip()}")
        count = parse_totals(out.read_text())
    if count == 0:
        raise CallgrindError(f"{workload}: callgrind counted nothing inside workload_{workload}")
    return count


def compare_counts(
    baseline: dict[str, int], measured: dict[str, int], tolerance: float = TOLERANCE
) -> list[CountChange]:
    """Each baseline workload against its measured count. A workload with no measurement
    is an error: the check must not pass by measuring less."""
    missing = sorted(set(baseline) - set(measured))
    if missing:
        raise CallgrindError(f"no measurement for baseline workloads: {', '.join(missing)}")
    return [CountChange(w, baseline[w], measured[w], tolerance) for w in sorted(baseline)]


def load_baseline(path: Path) -> Baseline:
    """Read and validate a committed baseline file."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidArgumentError(
            f"{path}: no baseline; record one with bench/callgrind/check.py --update"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgumentError(f"{path}: not valid JSON ({exc})") from None
    counts = data.get("counts") if isinstance(data, dict) else None
    tools = data.get("toolchain") if isinstance(data, dict) else None
    tolerance = data.get("tolerance", TOLERANCE) if isinstance(data, dict) else None
    if (
        not isinstance(counts, dict)
        or not counts
        or not all(
            k in WORKLOADS and isinstance(v, int) and not isinstance(v, bool) and v > 0
            for k, v in counts.items()
        )
    ):
        raise InvalidArgumentError(
            f"{path}: 'counts' must map workloads ({', '.join(WORKLOADS)}) to positive integers"
        )
    if not isinstance(tools, dict) or not all(isinstance(v, str) for v in tools.values()):
        raise InvalidArgumentError(f"{path}: 'toolchain' must map tool names to version strings")
    if not isinstance(tolerance, (int, float)) or not 0 < tolerance < 1:
        raise InvalidArgumentError(f"{path}: 'tolerance' must be a fraction in (0, 1)")
    return Baseline(dict(counts), dict(tools), float(tolerance))


def write_baseline(path: Path, counts: dict[str, int], tools: dict[str, str], date: str) -> None:
    """Write a baseline atomically (the reason belongs in the commit message)."""
    data = {
        "about": "instructions per workload under callgrind; bench/callgrind/check.py "
        "compares against these and fails on growth above 'tolerance'. Update deliberately "
        "(check.py --update) and give the reason in the commit message.",
        "recorded": date,
        "tolerance": TOLERANCE,
        "toolchain": tools,
        "counts": dict(sorted(counts.items())),
    }
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")

"""``predis bench run``: every suite in a source checkout's ``bench/`` folder under
pytest-benchmark, in a child pytest, saved as one JSON file.

pytest-benchmark writes the machine (CPU, Python, platform) and the git commit into the
file; ``bench/conftest.py`` adds the load average, the CPU count and the extension's
``build_info()``, so a slowed or sanitised build can never pass for a real one.
"""

from __future__ import annotations

import importlib.util
import os

# Argument lists, never a shell: the programs run are g++, valgrind and pytest.
import subprocess  # nosec B404
import sys
from datetime import datetime, timezone
from pathlib import Path

from predis.errors import InvalidArgumentError

__all__ = ["DEFAULT_ROUNDS", "QUICK_ENV", "default_json_path", "find_bench_dir", "run_bench"]

DEFAULT_ROUNDS = 30
RATIO_SUITE = "test_ratio_bench.py"
# Sizes for a quick pass over the non-pair suites (the values .ci/run uses). Pair sizes are
# fixed in the pairs themselves, so a quick run's ratios still compare with a full run's.
QUICK_ENV = {
    "PREDIS_BENCH_KEYS": "20000",
    "PREDIS_BENCH_RING_ITEMS": "200000",
    "PREDIS_BENCH_EVENTS": "100000",
}


def find_bench_dir(start: Path | None = None) -> Path:
    """The ``bench/`` folder of the checkout that holds ``start`` (default: the cwd)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "bench"
        if (candidate / RATIO_SUITE).is_file():
            return candidate
    raise InvalidArgumentError(
        f"no Predis bench/ folder (with {RATIO_SUITE}) in {here} or above: the suites ship "
        "with the source, not the wheel; run from a checkout or pass --bench-dir"
    )


def _checked_bench_dir(path: Path) -> Path:
    resolved = path.resolve()
    if not (resolved / RATIO_SUITE).is_file() or not (resolved / "conftest.py").is_file():
        raise InvalidArgumentError(
            f"{path} is not a Predis bench/ folder (it needs conftest.py and {RATIO_SUITE})"
        )
    return resolved


def default_json_path(now: datetime | None = None) -> Path:
    """``bench-<UTC time>.json`` in the current folder."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return Path(f"bench-{stamp}.json")


def run_bench(
    json_path: Path,
    *,
    bench_dir: Path | None = None,
    rounds: int = DEFAULT_ROUNDS,
    pairs_only: bool = False,
    quick: bool = False,
    keyword: str | None = None,
) -> int:
    """Run the suites; returns pytest's exit status. The JSON goes to ``json_path``."""
    if importlib.util.find_spec("pytest_benchmark") is None:
        raise InvalidArgumentError(
            "predis bench run needs pytest-benchmark: pip install 'predis[bench]'"
        )
    if rounds < 3:
        raise InvalidArgumentError(f"--rounds must be >= 3 for a confidence interval, got {rounds}")
    folder = _checked_bench_dir(bench_dir) if bench_dir is not None else find_bench_dir()
    out = json_path.resolve()
    if out.is_dir():
        raise InvalidArgumentError(f"{json_path} is a folder; give a file name for the results")
    if not out.parent.is_dir():
        raise InvalidArgumentError(f"{out.parent} does not exist; create it or choose another path")
    target = folder / RATIO_SUITE if pairs_only else folder
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(target),
        f"--benchmark-json={out}",
        "-p",
        "no:cacheprovider",
        "-q",
    ]
    if keyword:
        cmd += ["-k", keyword]
    env = dict(os.environ, PREDIS_BENCH_ROUNDS=str(rounds))
    if quick:
        env.update(QUICK_ENV)
    # From the checkout's root, so pytest reads its settings and pytest-benchmark its commit.
    run = subprocess.run(cmd, cwd=folder.parent, env=env, check=False)  # noqa: S603  # nosec B603
    return run.returncode

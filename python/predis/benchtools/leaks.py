"""Read LeakSanitizer reports and keep the leaks that are Predis's own.

The core tests run on an ASan build inside CPython, which (like numpy and OpenSSL) does not
free everything at exit, so the raw report is never empty. A leak counts as ours when any
frame of its allocation stack is in the compiled module (``_core.cpython-*.so``), in
``predis::`` code, or in a file under ``csrc/``; the module is built with frame pointers,
so its frames appear even where the interpreter's do not.

    python -m predis.benchtools.leaks LOG_DIR     # exit 1 on a leak of ours, or on any
                                                  # ASan error or LSan failure in the logs
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Leak", "LeakReport", "parse_report", "scan"]

_HEAD = re.compile(r"^(Direct|Indirect) leak of (\d+) byte\(s\) in (\d+) object\(s\)")
_OURS = re.compile(r"_core\.cpython|predis::|/csrc/")
_ERRORS = (
    "ERROR: AddressSanitizer",
    "runtime error:",  # UBSan
    "LeakSanitizer has encountered a fatal error",  # the check itself did not run
)


@dataclass(frozen=True)
class Leak:
    """One leak record: its kind, size, object count and allocation stack."""

    kind: str
    nbytes: int
    objects: int
    frames: tuple[str, ...]

    @property
    def ours(self) -> bool:
        """Whether any frame of the allocation is in Predis's native code."""
        return any(_OURS.search(f) for f in self.frames)


@dataclass(frozen=True)
class LeakReport:
    """What one sanitizer log file holds."""

    path: Path
    leaks: tuple[Leak, ...]
    errors: tuple[str, ...]  # ASan errors other than leaks, and LSan's own failures


def parse_report(path: Path, text: str) -> LeakReport:
    """Split a sanitizer log into leak records and other errors."""
    leaks: list[Leak] = []
    errors: list[str] = []
    current: tuple[str, int, int] | None = None
    frames: list[str] = []

    def close() -> None:
        if current is not None:
            leaks.append(Leak(current[0], current[1], current[2], tuple(frames)))

    for line in text.splitlines():
        head = _HEAD.match(line)
        if head:
            close()
            current = (head.group(1).lower(), int(head.group(2)), int(head.group(3)))
            frames = []
        elif current is not None and line.lstrip().startswith("#"):
            frames.append(line.strip())
        elif any(marker in line for marker in _ERRORS):
            errors.append(line.strip())
    close()
    return LeakReport(path, tuple(leaks), tuple(errors))


def scan(log_dir: Path) -> list[LeakReport]:
    """Every sanitizer log file (``log_path`` prefix ``asan``) under ``log_dir``."""
    return [parse_report(p, p.read_text(errors="replace")) for p in sorted(log_dir.glob("asan.*"))]


def main(argv: list[str] | None = None) -> int:
    """Print what the logs hold; 1 when a leak is ours or a log holds another error."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python -m predis.benchtools.leaks LOG_DIR", file=sys.stderr)
        return 2
    reports = scan(Path(args[0]))
    ours = [(r.path, leak) for r in reports for leak in r.leaks if leak.ours]
    others = sum(len(r.leaks) for r in reports) - len(ours)
    errors = [(r.path, e) for r in reports for e in r.errors]
    for path, leak in ours:
        print(f"{path.name}: {leak.kind} leak of {leak.nbytes} bytes in {leak.objects} objects")
        for frame in leak.frames:
            print(f"    {frame}")
    for path, error in errors:
        print(f"{path.name}: {error}")
    print(
        f"{len(reports)} sanitizer logs: {len(ours)} leaks in Predis's code, {others} elsewhere "
        f"(the interpreter, numpy, OpenSSL, compilers run by tests), {len(errors)} other errors"
    )
    return 1 if ours or errors else 0


if __name__ == "__main__":
    sys.exit(main())

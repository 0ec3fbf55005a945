"""Reading ``predis bench run`` results back: pytest-benchmark JSON files, validated.

A ratio pair's benchmark entry carries its rounds in ``extra_info["pair"]``::

    {"name": "mget-vs-dict", "subject": "...", "peer": "...", "description": "...",
     "subject_s": [...], "peer_s": [...]}

(seconds per call of each side, one entry per round). Everything read from the file is
checked, and a file that does not hold what it should is refused with a message that says
what was wrong.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from predis.benchtools.pairs import Pair, Round
from predis.errors import InvalidArgumentError

__all__ = ["PairRecord", "RunInfo", "load_run", "pair_extra_info"]

_MAX_BYTES = 256 << 20


@dataclass(frozen=True)
class PairRecord:
    """One pair's rounds as stored in a results file."""

    name: str
    subject: str
    peer: str
    description: str
    rounds: tuple[Round, ...]
    threshold: float | None = None  # the pair's own tolerated drop, if it sets one

    @property
    def ratios(self) -> list[float]:
        return [r.ratio for r in self.rounds]


@dataclass(frozen=True)
class RunInfo:
    """What a results file says about the run, and its pairs by name."""

    path: Path
    datetime: str
    commit: str
    dirty: bool
    cpu: str
    build: dict[str, Any]
    pairs: dict[str, PairRecord]

    def describe(self) -> str:
        """One line naming the commit, the machine and the build the run measured."""
        dirty = " (dirty tree)" if self.dirty else ""
        slow = self.build.get("bench_slowdown")
        slowed = f", SLOWED build ({slow} spins a lookup)" if slow else ""
        when = f"{self.datetime}, commit {self.commit[:10]}{dirty}"
        return f"{self.path.name}: {when}, {self.cpu}{slowed}"


def pair_extra_info(pair: Pair, rounds: list[Round]) -> dict[str, Any]:
    """The ``extra_info["pair"]`` entry that :func:`load_run` reads back."""
    info: dict[str, Any] = {
        "name": pair.name,
        "subject": pair.subject,
        "peer": pair.peer,
        "description": pair.description,
        "subject_s": [r.subject_s for r in rounds],
        "peer_s": [r.peer_s for r in rounds],
    }
    if pair.threshold is not None:
        info["threshold"] = pair.threshold
    return info


def _bad(path: Path, what: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{path}: {what}; expected a results file written by 'predis bench run' "
        "(pytest-benchmark JSON)"
    )


def _times(path: Path, name: str, value: object, side: str) -> list[float]:
    if not isinstance(value, list) or not value:
        raise _bad(path, f"pair {name!r}: {side} must be a non-empty list of seconds")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise _bad(path, f"pair {name!r}: {side} holds {v!r}, not a positive time")
        out.append(float(v))
    return out


def _pair(path: Path, raw: object) -> PairRecord:
    if not isinstance(raw, dict):
        raise _bad(path, "an extra_info 'pair' entry is not an object")
    name = raw.get("name")
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise _bad(path, f"a pair has no valid name ({name!r})")
    labels = []
    for field in ("subject", "peer", "description"):
        text = raw.get(field)
        if not isinstance(text, str):
            raise _bad(path, f"pair {name!r}: {field!r} must be a string")
        labels.append(text)
    subject = _times(path, name, raw.get("subject_s"), "subject_s")
    peer = _times(path, name, raw.get("peer_s"), "peer_s")
    if len(subject) != len(peer):
        raise _bad(path, f"pair {name!r}: {len(subject)} subject times but {len(peer)} peer times")
    rounds = tuple(Round(s, p) for s, p in zip(subject, peer, strict=True))
    threshold = raw.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not 0.0 < threshold < 1.0
    ):
        raise _bad(path, f"pair {name!r}: threshold {threshold!r} is not a fraction in (0, 1)")
    return PairRecord(name, labels[0], labels[1], labels[2], rounds, threshold)


def _object(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (optional facts about a run)."""
    return value if isinstance(value, dict) else {}


def load_run(path: str | Path) -> RunInfo:
    """Read and validate one results file."""
    p = Path(path)
    if not p.is_file():
        raise InvalidArgumentError(f"{p}: no such results file")
    if p.stat().st_size > _MAX_BYTES:
        raise _bad(p, f"larger than {_MAX_BYTES >> 20} MiB")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(p, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise _bad(p, "no 'benchmarks' list")
    pairs: dict[str, PairRecord] = {}
    for bench in data["benchmarks"]:
        extra = bench.get("extra_info") if isinstance(bench, dict) else None
        if isinstance(extra, dict) and "pair" in extra:
            record = _pair(p, extra["pair"])
            if record.name in pairs:
                raise _bad(p, f"pair {record.name!r} appears twice")
            pairs[record.name] = record
    machine = _object(data.get("machine_info"))
    commit = _object(data.get("commit_info"))
    cpu = _object(machine.get("cpu")).get("brand_raw")
    build = machine.get("predis_build")
    return RunInfo(
        path=p,
        datetime=str(data.get("datetime", "unknown time")),
        commit=str(commit.get("id") or "unknown commit"),
        dirty=bool(commit.get("dirty", False)),
        cpu=str(cpu or machine.get("processor") or "unknown CPU"),
        build=build if isinstance(build, dict) else {},
        pairs=pairs,
    )

"""What `predis demo` runs: its settings, the duration budget, the work folder.

Every setting is checked here, once, with a message that says what was wrong and what to
do; the CLI and the Python API both come through :class:`DemoConfig`.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from predis.errors import InvalidArgumentError

__all__ = ["WORKLOADS", "Budget", "DemoConfig", "RoiInputs", "parse_duration", "prepare_workdir"]

#: The named synthetic workloads. Each starts with the same zipf phase (nothing a prefetcher
#: can learn) and changes at ``switch_at`` to the phase that names it.
WORKLOADS = {
    "sessions": "zipf, then correlated sessions (runs of related keys in order)",
    "loop": "zipf, then a loop over keys slightly larger than the cache (LRU's worst case)",
    "hotset": "zipf, then zipf over a moved hot set (nothing to learn: prefetching cannot help)",
}

_REQUESTS = re.compile(r"(\d+(?:\.\d+)?)\s*([kKmM]?)")
_SECONDS = re.compile(r"(\d+(?:\.\d+)?)\s*(s|sec|m|min)")
MIN_REQUESTS = 10_000
MAX_REQUESTS = 1_000_000_000
MIN_SECONDS = 10.0
MAX_SECONDS = 86_400.0


@dataclass(frozen=True)
class Budget:
    """How long the demo serves: a number of requests, or seconds of wall-clock time.

    Exactly one of ``requests`` and ``seconds`` is set. A time budget stops serving at the
    first chunk boundary past it; a request budget serves exactly that many requests (a
    trace workload stops earlier when the trace ends).
    """

    requests: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if (self.requests is None) == (self.seconds is None):
            raise InvalidArgumentError("a duration is a number of requests or of seconds")
        if self.requests is not None and (
            isinstance(self.requests, bool)
            or not isinstance(self.requests, int)
            or not MIN_REQUESTS <= self.requests <= MAX_REQUESTS
        ):
            raise InvalidArgumentError(
                f"a request budget must be an int in [{MIN_REQUESTS:,}, {MAX_REQUESTS:,}], "
                f"got {self.requests!r}"
            )
        if self.seconds is not None and not (
            isinstance(self.seconds, (int, float))
            and not isinstance(self.seconds, bool)
            and MIN_SECONDS <= self.seconds <= MAX_SECONDS
        ):
            raise InvalidArgumentError(
                f"a time budget must be in [{MIN_SECONDS:g}, {MAX_SECONDS:g}] seconds, "
                f"got {self.seconds!r}"
            )

    def describe(self) -> str:
        """The budget in words."""
        if self.requests is not None:
            return f"{self.requests:,} requests"
        return f"{self.seconds:g} s"


def parse_duration(text: str) -> Budget:
    """A :class:`Budget` from ``--duration``: requests as ``120000``, ``120k`` or ``1.5M``;
    seconds as ``90s`` or ``3m`` (also ``sec``/``min``).

    Example:
        >>> parse_duration("120k"), parse_duration("90s").seconds
        (Budget(requests=120000, seconds=None), 90.0)
    """
    if not isinstance(text, str) or len(text) > 40:
        raise InvalidArgumentError("duration must be a short string such as 120k or 90s")
    t = text.strip().replace("_", "").replace(",", "")
    m = _SECONDS.fullmatch(t)
    if m:
        seconds = float(m.group(1)) * (60.0 if m.group(2).startswith("m") else 1.0)
        return Budget(seconds=seconds)
    m = _REQUESTS.fullmatch(t)
    if m:
        scale = {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2).lower()]
        value = float(m.group(1)) * scale
        if not value.is_integer():
            raise InvalidArgumentError(f"duration {text!r} is not a whole number of requests")
        return Budget(requests=int(value))
    raise InvalidArgumentError(
        f"invalid duration {text[:40]!r}: give requests (120000, 120k, 1.5M) or seconds (90s, 3m)"
    )


@dataclass(frozen=True)
class RoiInputs:
    """The ROI formula's prices: inputs chosen by the user, never measured.

    ``benefit = latency_saved_h * wait_cost_per_hour + net_fetches_saved * cost_per_fetch``
    and ``cost = predis_cpu_h * cpu_cost_per_hour``; ROI is ``benefit / cost``.

    Attributes:
        cost_per_fetch: money per back-end fetch (a request fee; 4e-7 is $0.40 a million).
        wait_cost_per_hour: money per hour of request time spent waiting on the back end
            (e.g. what an hour of a serving worker costs).
        cpu_cost_per_hour: money per CPU-hour that Predis's own threads use.
    """

    cost_per_fetch: float = 4e-7
    wait_cost_per_hour: float = 0.04
    cpu_cost_per_hour: float = 0.04

    def __post_init__(self) -> None:
        for name in ("cost_per_fetch", "wait_cost_per_hour", "cpu_cost_per_hour"):
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                or not (math.isfinite(v) and v >= 0)
            ):
                raise InvalidArgumentError(f"{name} must be a finite number >= 0, got {v!r}")


@dataclass(frozen=True)
class DemoConfig:
    """The demo's settings.

    Attributes:
        duration: how long to serve (see :class:`Budget`).
        workload: a name in :data:`WORKLOADS`, or the path of a real trace file (any
            format :func:`predis.workloads.open_trace` reads); a trace replaces the second
            phase, and its keys are served once.
        workdir: where keys, tokens, models and segments go; None: a fresh temporary
            folder. It must not exist yet or be empty, and must not be a symbolic link.
        serve: start the exporter (``/metrics`` on loopback) and print a dashboard token.
        port: the exporter's port (0: any free port).
        seed: the workloads' seed.
        cache_items: the cache's capacity in entries (small, so that prefetching matters).
        switch_at: the request at which the workload's phase changes.
        latency_ms: the simulated back end's latency per fetch, in milliseconds (added to
            the simulated clock, not slept).
        roi: the ROI formula's prices.
    """

    duration: Budget = field(default_factory=lambda: Budget(requests=110_000))
    workload: str = "sessions"
    workdir: str | None = None
    serve: bool = True
    port: int = 0
    seed: int = 0
    cache_items: int = 150
    switch_at: int = 30_000
    latency_ms: float = 2.0
    roi: RoiInputs = field(default_factory=RoiInputs)

    def __post_init__(self) -> None:
        if not isinstance(self.duration, Budget):
            raise InvalidArgumentError("duration must be a Budget (see parse_duration)")
        if not isinstance(self.roi, RoiInputs):
            raise InvalidArgumentError("roi must be a RoiInputs")
        if not isinstance(self.workload, str) or not self.workload:
            raise InvalidArgumentError("workload must be a workload name or a trace path")
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise InvalidArgumentError(f"port must be an int, got {type(self.port).__name__}")
        if not 0 <= self.port <= 65535:
            raise InvalidArgumentError(f"port must be in 0..65535 (0: any free), got {self.port}")
        for name, lo, hi in (
            ("seed", 0, 2**32 - 1),
            ("cache_items", 16, 1_000_000),
            ("switch_at", 10_000, MAX_REQUESTS),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise InvalidArgumentError(f"{name} must be an int in [{lo:,}, {hi:,}], got {v!r}")
        if isinstance(self.latency_ms, bool) or not isinstance(self.latency_ms, (int, float)):
            raise InvalidArgumentError("latency_ms must be a number of milliseconds")
        if not (math.isfinite(self.latency_ms) and 0 <= self.latency_ms <= 60_000):
            raise InvalidArgumentError(f"latency_ms must be in [0, 60000], got {self.latency_ms!r}")
        requests = self.duration.requests
        if requests is not None and requests <= self.switch_at:
            raise InvalidArgumentError(
                f"the duration ({requests:,} requests) must be longer than the phase change "
                f"at request {self.switch_at:,}: raise --duration or lower --switch-at"
            )
        if self.workload not in WORKLOADS:
            trace_path(self.workload)  # a clear error now, not after the services started

    @property
    def is_trace(self) -> bool:
        """Whether the workload is a trace file rather than a named workload."""
        return self.workload not in WORKLOADS


def trace_path(text: str) -> Path:
    """A trace file's path, checked: it exists, is a regular file, can be read, and has a
    name whose format :func:`predis.workloads.open_trace` knows."""
    from predis.workloads.traces import open_trace  # noqa: PLC0415 - only for traces

    if "\x00" in text:
        raise InvalidArgumentError("the trace path contains a NUL byte")
    path = Path(text).expanduser()
    try:
        st = path.stat()
    except FileNotFoundError:
        names = ", ".join(WORKLOADS)
        raise InvalidArgumentError(
            f"--workload {text[:200]!r}: no such trace file, and not a workload name ({names})"
        ) from None
    except OSError as exc:
        raise InvalidArgumentError(
            f"--workload {text[:200]!r} cannot be examined: {exc.strerror}"
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise InvalidArgumentError(f"--workload {text[:200]!r} is not a regular file")
    if not os.access(path, os.R_OK):
        raise InvalidArgumentError(f"--workload {text[:200]!r} cannot be read (permissions)")
    open_trace(path)  # raises InvalidArgumentError, listing the formats, for an unknown name
    return path.resolve()


def prepare_workdir(workdir: str | None) -> Path:
    """The demo's work folder, created 0700: a fresh temporary one when ``workdir`` is None.

    A given folder must not be a symbolic link, must not contain ``..``, and must be new
    or empty (the demo never mixes its files with others, nor overwrites them); every file
    the demo writes inside it is then checked with
    :func:`predis.security.validation.safe_path`, so a link inside it that leads out is
    refused too.
    """
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="predis-demo-"))
    if not isinstance(workdir, str) or not workdir or "\x00" in workdir:
        raise InvalidArgumentError("--workdir must be a non-empty path")
    given = Path(workdir).expanduser()
    if ".." in given.parts:
        raise InvalidArgumentError(
            f"--workdir {workdir[:200]!r} contains '..': give the folder's own path"
        )
    path = Path(os.path.abspath(given))
    if path.is_symlink():
        raise InvalidArgumentError(
            f"--workdir {workdir[:200]!r} is a symbolic link: give the real folder"
        )
    if path.exists():
        if not path.is_dir():
            raise InvalidArgumentError(f"--workdir {workdir[:200]!r} exists and is not a folder")
        if any(path.iterdir()):
            raise InvalidArgumentError(
                f"--workdir {workdir[:200]!r} is not empty: give a new or empty folder "
                "(the demo does not mix its files with others)"
            )
        return path
    try:
        path.mkdir(mode=0o700, parents=True)
    except OSError as exc:
        raise InvalidArgumentError(
            f"--workdir {workdir[:200]!r} cannot be created: {exc.strerror}"
        ) from None
    return path

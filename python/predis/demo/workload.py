"""The demo's request stream: a zipf phase, then the workload's own phase.

The first phase is the same for every workload: zipf(1.1) over 3,000 keys, where there is
no sequence for a prefetcher to learn. At ``switch_at`` the stream changes to the phase
that names the workload, or to a real trace's requests; the hit rate moves, and the
MLOps loop has to notice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from predis.demo.config import WORKLOADS, DemoConfig, trace_path
from predis.errors import InvalidArgumentError
from predis.workloads import CorrelatedSessions, LoopKeys, PermutedKeys, PhaseChange, ZipfKeys
from predis.workloads.stream import KeyStream

__all__ = ["DemoWorkload", "build_workload"]

ZIPF_KEYS = 3_000
ZIPF_ALPHA = 1.1
#: Trace keys are moved above the zipf phase's, so the two phases share no key.
TRACE_OFFSET = 1 << 40


@dataclass
class DemoWorkload:
    """The stream and what it is, for the report.

    Attributes:
        name: the workload's name, or the trace file's name.
        phases: each phase in words.
        switch_at: the request where the second phase starts.
        limit: requests the stream can give at most (a trace ends; None: endless).
    """

    name: str
    phases: list[str]
    switch_at: int
    limit: int | None
    _first: KeyStream
    _second: KeyStream | None = None
    _trace: np.ndarray | None = None

    def chunks(self, chunk: int) -> Iterator[np.ndarray]:
        """The stream in arrays of ``chunk`` keys (the last may be shorter for a trace)."""
        if self._second is not None:
            stream = PhaseChange([(self._first, self.switch_at), (self._second, None)])
            while True:
                yield stream.take(chunk)
        if self._trace is None:
            return
        keys = np.concatenate([self._first.take(self.switch_at), self._trace])
        for start in range(0, len(keys), chunk):
            yield keys[start : start + chunk]


def _second_phase(name: str, config: DemoConfig) -> tuple[KeyStream, str]:
    seed = config.seed
    if name == "sessions":
        stream: KeyStream = CorrelatedSessions(
            1_000_000, 300, 12, alpha=0.8, noise=0.05, seed=seed + 3
        )
        return stream, "correlated sessions: 300 patterns of 12 keys over 1M keys, 5% noise"
    if name == "loop":
        n = max(2, config.cache_items * 4 // 3)
        return LoopKeys(n, offset=ZIPF_KEYS), f"a loop over {n:,} keys in order"
    base = ZipfKeys(ZIPF_KEYS, ZIPF_ALPHA, seed=seed + 1)
    moved = PermutedKeys(base, ZIPF_KEYS, seed=seed + 2)
    return moved, f"zipf({ZIPF_ALPHA}) over the same {ZIPF_KEYS:,} keys, hot set moved"


def build_workload(config: DemoConfig) -> DemoWorkload:
    """The configured workload's stream (a trace is read whole, once, here)."""
    first = ZipfKeys(ZIPF_KEYS, ZIPF_ALPHA, seed=config.seed)
    first_words = f"zipf({ZIPF_ALPHA}) over {ZIPF_KEYS:,} keys"
    if config.workload in WORKLOADS:
        second, words = _second_phase(config.workload, config)
        return DemoWorkload(
            config.workload, [first_words, words], config.switch_at, None, first, second
        )
    from predis.workloads.traces import open_trace  # noqa: PLC0415 - only for traces

    path = trace_path(config.workload)
    # A request budget needs only the trace's first (budget - switch_at) requests.
    need = None if config.duration.requests is None else config.duration.requests - config.switch_at
    parts: list[np.ndarray] = []
    held = 0
    cut = False
    for chunk in open_trace(path):
        parts.append(np.ascontiguousarray(chunk["key"], dtype=np.uint64))
        held += len(chunk)
        if need is not None and held >= need:
            cut = True
            break
    trace = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
    if len(trace) == 0:
        raise InvalidArgumentError(f"trace {path} holds no requests")
    if need is not None:
        trace = trace[:need]
    # Moved above the zipf keys (wrapping is harmless: only identity matters to a cache).
    trace = trace + np.uint64(TRACE_OFFSET)
    what = "its first" if cut else "all"
    words = f"trace {path.name} ({what} {len(trace):,} requests, replayed once)"
    return DemoWorkload(
        path.name,
        [first_words, words],
        config.switch_at,
        config.switch_at + len(trace),
        first,
        None,
        trace,
    )

"""Ratio pairs: a Predis configuration (the subject) and its peer, measured interleaved.

On a shared machine an absolute time says little, but two things timed in alternation in
the same process see the same noise, so their ratio holds still. A pair yields one
:class:`Round` per round: the subject's and the peer's time for the same work, taken back
to back, the order alternating between rounds so that neither always runs second. The
ratio of a round is ``peer_s / subject_s``: how many times faster the subject is, so a
drop is a regression.

Adding a pair takes a generator that sets both sides up, checks they agree, and yields two
zero-argument callables; whatever follows the ``yield`` is the clean-up::

    @interleaved_pair("prefetch-on-vs-off", subject="prefetch on", peer="prefetch off",
                      description="replay of a zipf trace, prefetcher on against off")
    def _prefetch() -> Iterator[tuple[Callable[[], object], Callable[[], object]]]:
        on, off = make_cache(prefetch=True), make_cache(prefetch=False)
        yield (lambda: replay(on)), (lambda: replay(off))

Put it in a module that ``bench/test_ratio_bench.py`` imports (the package's own pairs are
in :mod:`predis.benchtools.headline`); ``predis bench run`` then measures it and
``predis bench compare`` checks it. A pair whose rounds come from elsewhere (a C++
program, say) registers a :class:`Pair` with its own ``measure`` function instead.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from predis.errors import InvalidArgumentError, PredisError

__all__ = [
    "PAIRS",
    "Pair",
    "PairCheckError",
    "Round",
    "check",
    "interleaved_pair",
    "measure_interleaved",
    "register",
]

# Each side's timed stretch lasts at least this long, so the clock's resolution and a
# single scheduler tick do not dominate one round.
MIN_ROUND_SECONDS = 0.1


class PairCheckError(PredisError, AssertionError):
    """The two sides of a pair disagreed on a result, so timing them would mean nothing."""


def check(condition: object, message: str) -> None:
    """Raise :class:`PairCheckError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise PairCheckError(message)


@dataclass(frozen=True)
class Round:
    """One round: seconds per call of the subject and of the peer."""

    subject_s: float
    peer_s: float

    @property
    def ratio(self) -> float:
        return self.peer_s / self.subject_s


@dataclass(frozen=True)
class Pair:
    """A named pair; ``measure(rounds)`` returns that many :class:`Round` objects.

    ``threshold``: the drop of this pair's ratio that ``predis bench compare`` tolerates,
    where the pair is noisier between runs than the default allows for (None: the
    default, :data:`predis.benchtools.stats.DEFAULT_THRESHOLD`). Justify it with measured
    clean-against-clean runs (docs/benchmarks.md).
    """

    name: str
    subject: str
    peer: str
    description: str
    measure: Callable[[int], list[Round]]
    threshold: float | None = None


PAIRS: dict[str, Pair] = {}

Sides = tuple[Callable[[], object], Callable[[], object]]


def register(pair: Pair) -> Pair:
    """Add ``pair`` to :data:`PAIRS`. Names are the key ``predis bench compare`` matches
    runs by, so they must be unique and stable."""
    if not pair.name or any(c.isspace() for c in pair.name):
        raise InvalidArgumentError(f"pair name must be non-empty without spaces: {pair.name!r}")
    if pair.threshold is not None and not 0.0 < pair.threshold < 1.0:
        raise InvalidArgumentError(f"pair {pair.name!r}: threshold must be in (0, 1)")
    if pair.name in PAIRS and PAIRS[pair.name] is not pair:
        raise InvalidArgumentError(f"a pair named {pair.name!r} is already registered")
    PAIRS[pair.name] = pair
    return pair


def _time_calls(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - start


def _calls_for(fn: Callable[[], object]) -> int:
    """Calls per timed stretch: enough for MIN_ROUND_SECONDS (one call measured after
    a warm-up call)."""
    fn()
    once = max(_time_calls(fn, 1), 1e-7)
    return max(1, int(MIN_ROUND_SECONDS / once + 0.999))


def measure_interleaved(sides: Sides, rounds: int) -> list[Round]:
    """Time ``subject`` and ``peer`` alternately for ``rounds`` rounds."""
    if rounds < 1:
        raise InvalidArgumentError(f"rounds must be >= 1, got {rounds}")
    subject, peer = sides
    n_subject = _calls_for(subject)
    n_peer = _calls_for(peer)
    out = []
    # As timeit does: a collection landing in one side's stretch would be charged to it.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            if r % 2 == 0:
                s = _time_calls(subject, n_subject)
                p = _time_calls(peer, n_peer)
            else:
                p = _time_calls(peer, n_peer)
                s = _time_calls(subject, n_subject)
            out.append(Round(s / n_subject, p / n_peer))
            gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()
    return out


def interleaved_pair(
    name: str, *, subject: str, peer: str, description: str, threshold: float | None = None
) -> Callable[[Callable[[], Iterator[Sides]]], Pair]:
    """Decorator: register a set-up generator (see the module docstring) as a pair."""

    def wrap(setup: Callable[[], Iterator[Sides]]) -> Pair:
        managed = contextlib.contextmanager(setup)

        def measure(rounds: int) -> list[Round]:
            with managed() as sides:
                return measure_interleaved(sides, rounds)

        return register(Pair(name, subject, peer, description, measure, threshold))

    return wrap

"""``predis bench compare OLD NEW``: every ratio pair's change, and the verdict."""

from __future__ import annotations

from dataclasses import dataclass

from predis.benchtools.results import RunInfo
from predis.benchtools.stats import (
    DEFAULT_THRESHOLD,
    RatioChange,
    compare_ratios,
    summarise_ratios,
)
from predis.errors import InvalidArgumentError

__all__ = ["Comparison", "compare_runs", "format_comparison", "format_run"]


@dataclass(frozen=True)
class Comparison:
    """Pairs present in both runs with their changes, and pairs only one run has."""

    old: RunInfo
    new: RunInfo
    changes: dict[str, RatioChange]
    only_old: tuple[str, ...]
    only_new: tuple[str, ...]

    @property
    def regressed(self) -> tuple[str, ...]:
        return tuple(name for name, c in self.changes.items() if c.regressed)


def compare_runs(
    old: RunInfo,
    new: RunInfo,
    *,
    threshold: float | None,
    confidence: float,
    thresholds: dict[str, float] | None = None,
) -> Comparison:
    """Compare every pair both runs measured. A pair's threshold is, first found:
    ``thresholds[name]``, ``threshold``, the one the new run recorded for the pair, and
    :data:`~predis.benchtools.stats.DEFAULT_THRESHOLD`."""
    per_pair = thresholds or {}
    unknown = sorted(set(per_pair) - set(old.pairs) - set(new.pairs))
    if unknown:
        raise InvalidArgumentError(
            f"--pair-threshold names pairs neither run has: {', '.join(unknown)}"
        )
    changes = {
        name: compare_ratios(
            old.pairs[name].ratios,
            new.pairs[name].ratios,
            threshold=_threshold_for(name, new, threshold, per_pair),
            confidence=confidence,
            what=f"pair {name!r}",
        )
        for name in sorted(set(old.pairs) & set(new.pairs))
    }
    return Comparison(
        old=old,
        new=new,
        changes=changes,
        only_old=tuple(sorted(set(old.pairs) - set(new.pairs))),
        only_new=tuple(sorted(set(new.pairs) - set(old.pairs))),
    )


def _threshold_for(
    name: str, new: RunInfo, threshold: float | None, per_pair: dict[str, float]
) -> float:
    if name in per_pair:
        return per_pair[name]
    if threshold is not None:
        return threshold
    recorded = new.pairs[name].threshold
    return DEFAULT_THRESHOLD if recorded is None else recorded


def _fmt(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def format_comparison(c: Comparison) -> str:
    """A Markdown table of the comparison, with a header naming both runs."""
    conf = next(iter(c.changes.values())).confidence if c.changes else 0.95
    lines = [
        f"old: {c.old.describe()}",
        f"new: {c.new.describe()}",
        "",
        "ratio = peer time / subject time (higher: the subject is faster); "
        f"[{conf:.0%} bootstrap interval]",
        "",
        "| pair | subject / peer | old ratio | new ratio | change | drop allowed | verdict |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, ch in c.changes.items():
        rec = c.new.pairs[name]
        lines.append(
            f"| {name} | {rec.subject} / {rec.peer} "
            f"| {_fmt(ch.old.ratio)} [{_fmt(ch.old.low)}, {_fmt(ch.old.high)}] "
            f"| {_fmt(ch.new.ratio)} [{_fmt(ch.new.low)}, {_fmt(ch.new.high)}] "
            f"| {ch.change - 1:+.1%} [{ch.low - 1:+.1%}, {ch.high - 1:+.1%}] "
            f"| {ch.threshold:.0%} | {ch.verdict} |"
        )
    for name in c.only_old:
        lines.append(f"| {name} | | (old run only) | missing | | | MISSING |")
    for name in c.only_new:
        lines.append(f"| {name} | | new | (new run only) | | | new |")
    if c.old.cpu != c.new.cpu:
        lines += ["", f"warning: the runs were on different CPUs ({c.old.cpu} / {c.new.cpu})"]
    return "\n".join(lines)


def format_run(run: RunInfo, confidence: float) -> str:
    """One run's pairs: geometric-mean ratio with its interval."""
    lines = [
        run.describe(),
        "",
        "| pair | subject / peer | ratio | rounds |",
        "| --- | --- | ---: | ---: |",
    ]
    for name, rec in sorted(run.pairs.items()):
        s = summarise_ratios(rec.ratios, confidence, f"pair {name!r}")
        lines.append(
            f"| {name} | {rec.subject} / {rec.peer} "
            f"| {_fmt(s.ratio)} [{_fmt(s.low)}, {_fmt(s.high)}] | {s.rounds} |"
        )
    return "\n".join(lines)

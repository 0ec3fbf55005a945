"""The demo's narration: each MLOps event as one line, in words, with its figures."""

from __future__ import annotations

from predis.mlops.events import MLOpsEvent

__all__ = ["narrate"]


def _pp(x: object) -> str:
    return f"{100 * float(x):+.1f} pp" if isinstance(x, (int, float)) else "?"


def _rate(x: object) -> str:
    return f"{float(x):.3f}" if isinstance(x, (int, float)) else "?"


def _p(d: dict[str, object]) -> str:
    p = d.get("msprt_p")
    return f"mSPRT p={float(p):.2g}" if isinstance(p, (int, float)) else "mSPRT"


def narrate(event: MLOpsEvent, switch_at: int | None = None) -> str:
    """``event`` as a narrated line, e.g. ``drift detected at request 31,488 (ADWIN, hit
    rate 0.468→0.083)``; kinds without a special form keep the loop's own message."""
    d = event.details
    at = f"[request {event.position:,}] "
    kind = event.kind
    if kind == "drift":
        where = d.get("detected_at", event.position)
        after = ""
        if switch_at is not None and isinstance(where, int) and where >= switch_at:
            after = f", {where - switch_at:,} requests after the phase change"
        if d.get("kind") == "performance" and "mean_before" in d:
            return (
                f"{at}drift detected at request {where:,} (ADWIN{after}): hit rate "
                f"{_rate(d['mean_before'])}→{_rate(d.get('mean'))}; retraining once enough "
                "new requests are in"
            )
        return f"{at}drift detected at request {where:,}{after}: {event.message}"
    if kind == "retrain-started":
        return f"{at}retraining… {event.message}"
    if kind == "challenger-registered":
        return (
            f"{at}challenger v{d.get('version')} validated on held-out requests: miss ratio "
            f"{_rate(d.get('val_miss_ratio'))} vs the champion's "
            f"{_rate(d.get('val_champion_miss_ratio'))} "
            f"({d.get('trees', 0):.0f} trees, trained in {d.get('train_seconds', 0):.1f} s)"
        )
    if kind == "ab-started":
        share = d.get("share", 0.0)
        return f"{at}A/B test: challenger v{d.get('version')} serves {100 * share:g}% of the keys"
    if kind == "promoted" and "difference" in d:
        return (
            f"{at}A/B: challenger {_pp(d['difference'])} (hit rate "
            f"{_rate(d.get('new_hit_rate'))} vs {_rate(d.get('base_hit_rate'))}, {_p(d)}): "
            f"v{d.get('version')} promoted; watching it against the previous champion"
        )
    if kind == "promoted":
        return f"{at}v{d.get('version')} is the champion now, promoted by hand; watching it"
    if kind == "watch-passed":
        return f"{at}watch passed: {event.message}"
    if kind == "rollback":
        drop = d.get("difference")
        to = d.get("to_version")
        target = f"v{to}" if to else "no model (there was no previous champion)"
        return (
            f"{at}rollback to {target}: hit rate {_pp(drop)} under "
            f"v{d.get('from_version')} ({_rate(d.get('new_hit_rate'))} vs "
            f"{_rate(d.get('base_hit_rate'))}, {_p(d)}; confirmed)"
        )
    return f"{at}{kind}: {event.message}"

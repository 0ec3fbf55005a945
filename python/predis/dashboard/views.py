"""What the pages show, computed from the history: cards, chart traces, ROI, model status.

Rates come from consecutive samples of one series. Two samples further apart than
``gap_factor`` scrape intervals are not joined: the chart gets a null point there (a gap),
never an interpolated value. Counter increases over a window follow Prometheus's
``increase``: a value lower than the one before is a restart, counted from zero.
"""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

from predis.dashboard.config import CustomerConfig
from predis.dashboard.history import History, Point
from predis.dashboard.roi import FORMULAS, Measured, compute_roi

__all__ = ["Views", "counter_increase", "iso", "wilson_interval"]

Z95 = 1.959963984540054


def iso(ts: float | None) -> str | None:
    """A UTC ISO-8601 time (seconds), or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def counter_increase(values: Sequence[float]) -> float:
    """The increase of a counter over its samples, oldest first; a drop is a restart.

    Example:
        >>> counter_increase([10, 15, 3, 7])
        12.0
    """
    total = 0.0
    for prev, cur in pairwise(values):
        total += cur - prev if cur >= prev else cur
    return total


def wilson_interval(hits: float, n: float, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95% by default); None when n is 0."""
    if n <= 0:
        return None
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _group(points: list[Point], keys: Sequence[str]) -> dict[tuple[str, ...], list[Point]]:
    out: dict[tuple[str, ...], list[Point]] = defaultdict(list)
    for p in points:
        key = (p.target, *[p.labels.get(k, "") for k in keys])
        out[key].append(p)
    return out


@dataclass
class _Trace:
    name: str
    x: list[str | None]
    y: list[float | None]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "x": self.x, "y": self.y}


class Views:
    """The page data for each customer, read from a :class:`History`."""

    def __init__(
        self,
        history: History,
        customers: dict[str, CustomerConfig],
        interval_s: float,
        window_s: float,
        stale_after_s: float,
        registry_dir: str | os.PathLike[str] | None = None,
        gap_factor: float = 2.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.history = history
        self.customers = customers
        self.interval_s = interval_s
        self.window_s = window_s
        self.stale_after_s = stale_after_s
        self.registry_dir = None if registry_dir is None else Path(registry_dir)
        self.max_gap_s = gap_factor * interval_s
        self._clock = clock

    # ---- helpers ----

    def _cache_points(
        self, metric: str, c: CustomerConfig, since: float, until: float
    ) -> list[Point]:
        return self.history.points(metric, since, until, "cache", c.caches)

    def _rate_traces(
        self,
        num: dict[tuple[str, ...], list[Point]],
        den: dict[tuple[str, ...], list[Point]] | None,
        scale: float,
        label: Callable[[tuple[str, ...]], str],
    ) -> list[_Trace]:
        """Per series: scale * Δnum / Δden between consecutive samples (Δden: the elapsed
        seconds when ``den`` is None), with a null where samples are too far apart."""
        traces = []
        for key in sorted(num):
            pts = num[key]
            by_ts = {p.ts: p.value for p in den.get(key, [])} if den is not None else None
            tr = _Trace(label(key), [], [])
            for a, b in pairwise(pts):
                dt = b.ts - a.ts
                if dt <= 0:
                    continue
                dn = b.value - a.value if b.value >= a.value else b.value
                value: float | None
                if dt > self.max_gap_s:
                    value = None  # a gap: scrapes failed or the target was down
                elif by_ts is None:
                    value = scale * dn / dt
                else:
                    da0, db0 = by_ts.get(a.ts), by_ts.get(b.ts)
                    if da0 is None or db0 is None:
                        value = None
                    else:
                        dd = db0 - da0 if db0 >= da0 else db0
                        value = scale * dn / dd if dd > 0 else None
                tr.x.append(iso(b.ts))
                tr.y.append(value)
            traces.append(tr)
        return traces

    @staticmethod
    def _sum_by_ts(
        groups: dict[tuple[str, ...], list[Point]], key_len: int
    ) -> dict[tuple[str, ...], list[Point]]:
        """Sum series that share the first ``key_len`` key parts, per timestamp."""
        acc: dict[tuple[str, ...], dict[float, float]] = defaultdict(lambda: defaultdict(float))
        for key, pts in groups.items():
            for p in pts:
                acc[key[:key_len]][p.ts] += p.value
        return {
            k: [Point(ts, v, {}, k[0]) for ts, v in sorted(series.items())]
            for k, series in acc.items()
        }

    def _increase(
        self,
        metric: str,
        label: str,
        values: Sequence[str],
        since: float,
        until: float,
        extra: dict[str, str] | None = None,
    ) -> tuple[float, float | None, float | None]:
        """Sum of per-series increases of ``metric`` over [since, until], and the first and
        last sample times seen."""
        pts = self.history.points(metric, since, until, label, values)
        if extra:
            pts = [p for p in pts if all(p.labels.get(k) == v for k, v in extra.items())]
        total = 0.0
        first: float | None = None
        last: float | None = None
        for series in _group(pts, sorted({k for p in pts for k in p.labels})).values():
            total += counter_increase([p.value for p in series])
            first = series[0].ts if first is None else min(first, series[0].ts)
            last = series[-1].ts if last is None else max(last, series[-1].ts)
        return total, first, last

    def last_data(self, c: CustomerConfig) -> float | None:
        """When the customer's caches last delivered a sample (None: never, in the history)."""
        return self.history.last_time("predis_keyspace_hits_total", "cache", c.caches)

    # ---- the overview ----

    def measured(
        self, c: CustomerConfig, since: float, until: float
    ) -> tuple[Measured, float | None]:
        """Counter increases over the window and the time data was last seen in it."""
        hits, f1, l1 = self._increase("predis_keyspace_hits_total", "cache", c.caches, since, until)
        misses, f2, l2 = self._increase(
            "predis_keyspace_misses_total", "cache", c.caches, since, until
        )
        firsts = [f for f in (f1, f2) if f is not None]
        lasts = [x for x in (l1, l2) if x is not None]
        span = max(lasts) - min(firsts) if firsts and lasts else 0.0
        base, source = (
            None,
            "no baseline known: no A/B control-arm data and no no-prefetch baseline configured",
        )
        if c.abtests:
            req, _, _ = self._increase(
                "predis_abtest_requests_total", "test", c.abtests, since, until, {"arm": "champion"}
            )
            ahits, _, _ = self._increase(
                "predis_abtest_hits_total", "test", c.abtests, since, until, {"arm": "champion"}
            )
            if req > 0:
                base, source = ahits / req, f"A/B control arm ({', '.join(c.abtests)})"
        if base is None and c.no_prefetch_hit_ratio is not None:
            base, source = c.no_prefetch_hit_ratio, "no-prefetch baseline (configured)"
        m = Measured(
            window_s=span, hits=hits, misses=misses, baseline_hit_ratio=base, baseline_source=source
        )
        return m, max(lasts) if lasts else None

    def overview(self, c: CustomerConfig, range_s: float | None = None) -> dict[str, Any]:
        """Cards, ROI (with formulas), chart traces and staleness for customer ``c``."""
        now = self._clock()
        range_s = self.window_s if range_s is None else range_s
        since = now - range_s
        last = self.last_data(c)
        stale = last is None or now - last > self.stale_after_s
        m, _ = self.measured(c, now - self.window_s, now)
        roi = compute_roi(m, c.roi) if m.window_s > 0 else None
        cards: dict[str, Any] = {}
        charts = self._charts(c, since, now)
        if roi is not None and not stale:
            ops = [t.y[-1] for t in charts["ops"] if t.y and t.y[-1] is not None]
            gpu_util = [t.y[-1] for t in charts["gpu_util"] if t.y and t.y[-1] is not None]
            gpu_mem = [t.y[-1] for t in charts["gpu_memory"] if t.y and t.y[-1] is not None]
            cards = {
                "hit_ratio": roi.hit_ratio,
                "baseline_hit_ratio": roi.baseline_hit_ratio,
                "ops_per_s": sum(ops) if ops else None,
                "fetches_avoided": roi.fetches_avoided,
                "latency_saved_per_request_s": roi.latency_saved_per_request_s,
                "net_saved_per_day": roi.net_saved_per_day,
                "roi_percent": roi.roi_percent,
                "gpu_utilization": sum(gpu_util) / len(gpu_util) if gpu_util else None,
                "gpu_memory_gib": sum(gpu_mem) if gpu_mem else None,
            }
        return {
            "customer": c.id,
            "now": iso(now),
            "window_s": self.window_s,
            "measured_window_s": m.window_s,
            "stale": stale,
            "last_data": iso(last),
            "no_data_message": (
                ("no data yet" if last is None else f"no data since {iso(last)}") if stale else None
            ),
            "cards": cards,
            "roi": None if roi is None else roi.as_dict(),
            "inputs": {k: getattr(c.roi, k) for k in c.roi.__dataclass_fields__},
            "formulas": FORMULAS,
            "charts": {k: [t.as_dict() for t in v] for k, v in charts.items()},
        }

    def _charts(self, c: CustomerConfig, since: float, until: float) -> dict[str, list[_Trace]]:
        cache_label = lambda k: f"{k[1]}"  # noqa: E731
        hits = _group(self._cache_points("predis_keyspace_hits_total", c, since, until), ["cache"])
        misses = _group(
            self._cache_points("predis_keyspace_misses_total", c, since, until), ["cache"]
        )
        lookups = {}
        for k, pts in hits.items():
            miss_at = {m.ts: m.value for m in misses.get(k, [])}
            lookups[k] = [
                Point(p.ts, p.value + miss_at[p.ts], {}, p.target) for p in pts if p.ts in miss_at
            ]
        ops = self._sum_by_ts(
            _group(self._cache_points("predis_commands_total", c, since, until), ["cache", "cmd"]),
            2,
        )
        cost = (
            c.roi.backend_cost_per_fetch + c.roi.backend_cost_per_gb * c.roi.mean_fetch_bytes / 1e9
        )
        hit_rate = self._rate_traces(hits, lookups, 1.0, cache_label)
        latency = [
            _Trace(
                f"{t.name}: saved per request (hit ratio * backend latency)",
                t.x,
                [None if y is None else y * c.roi.backend_latency_s * 1e3 for y in t.y],
            )
            for t in hit_rate
        ]
        inf_sum = _group(
            self._cache_points("predis_ml_inference_duration_seconds_sum", c, since, until),
            ["cache"],
        )
        inf_cnt = _group(
            self._cache_points("predis_ml_inference_duration_seconds_count", c, since, until),
            ["cache"],
        )
        latency += self._rate_traces(
            inf_sum, inf_cnt, 1e3, lambda k: f"{k[1]}: prefetch inference per batch"
        )
        targets = sorted({p.target for pts in hits.values() for p in pts})
        gpu_util = _group(
            [
                p
                for p in self.history.points("predis_gpu_utilization_ratio", since, until)
                if p.target in targets
            ],
            ["gpu", "name"],
        )
        gpu_mem = _group(
            [
                p
                for p in self.history.points("predis_gpu_memory_used_bytes", since, until)
                if p.target in targets
            ],
            ["gpu", "name"],
        )
        return {
            "hit_rate": hit_rate,
            "ops": self._rate_traces(ops, None, 1.0, cache_label),
            "latency": latency,
            "fetches_avoided": self._rate_traces(hits, None, 1.0, cache_label),
            "cost_saved": self._rate_traces(hits, None, 3600.0 * cost, cache_label),
            "gpu_util": self._gauge_traces(gpu_util, 100.0),
            "gpu_memory": self._gauge_traces(gpu_mem, 1 / 2**30),
        }

    def _gauge_traces(
        self, groups: dict[tuple[str, ...], list[Point]], scale: float
    ) -> list[_Trace]:
        traces = []
        for key in sorted(groups):
            tr = _Trace(f"GPU {key[1]} {key[2]}", [], [])
            prev: float | None = None
            for p in groups[key]:
                if prev is not None and p.ts - prev > self.max_gap_s:
                    tr.x.append(iso((p.ts + prev) / 2))
                    tr.y.append(None)
                tr.x.append(iso(p.ts))
                tr.y.append(p.value * scale)
                prev = p.ts
            traces.append(tr)
        return traces

    # ---- the model page ----

    def model(self, c: CustomerConfig) -> dict[str, Any]:
        """Champion/challenger versions, A/B status with confidence, and the timeline."""
        now = self._clock()
        since = now - self.window_s
        registry = self._registry(c)
        versions: dict[str, int | None] | None = registry["aliases"] if registry else None
        source = "model registry" if registry else None
        if versions is None:
            info = self.history.points("predis_model_version_info", since, now, "customer", [c.id])
            if info:
                latest = max(p.ts for p in info)
                versions = {
                    p.labels["alias"]: int(p.labels["version"])
                    for p in info
                    if p.ts == latest and p.labels.get("version", "").isdigit()
                }
                source = "metrics (predis_model_version_info)"
        abtests = [self._abtest(name, since, now) for name in c.abtests]
        events: list[dict[str, Any]] = []
        drift = self.history.points(
            "predis_drift_events_total", since, now, "detector", c.drift_detectors
        )
        for key, pts in _group(drift, ["detector", "kind"]).items():
            for a, b in pairwise(pts):
                n = b.value - a.value if b.value >= a.value else b.value
                if n > 0:
                    events.append(
                        {
                            "time": iso(b.ts),
                            "ts": b.ts,
                            "kind": "drift",
                            "text": f"{int(n)} drift event(s) from {key[1]} ({key[2]})",
                        }
                    )
        for rec in (registry or {}).get("history", []):
            ts = rec.get("time")
            if not isinstance(ts, (int, float)) or ts < since:
                continue
            action = str(rec.get("action", ""))
            kind = (
                "rollback"
                if action == "rollback"
                else ("promotion" if action.startswith("promote-") else action)
            )
            version = rec.get("version")
            text = f"{action} v{version}" if version is not None else action
            if rec.get("reason"):
                text += f": {str(rec['reason'])[:200]}"
            events.append({"time": iso(ts), "ts": ts, "kind": kind, "text": text})
        events.sort(key=lambda e: e["ts"])
        return {
            "customer": c.id,
            "now": iso(now),
            "versions": versions,
            "versions_source": source,
            "abtests": abtests,
            "events": events,
        }

    def _registry(self, c: CustomerConfig) -> dict[str, Any] | None:
        if self.registry_dir is None:
            return None
        from predis.mlops.registry import ModelRegistry  # noqa: PLC0415
        from predis.security.validation import safe_path  # noqa: PLC0415

        if not self.registry_dir.is_dir():
            return None
        folder = safe_path(self.registry_dir, c.id)
        if not (folder / "versions").is_dir():
            return None  # opening would create it: a read-only view must not
        reg = ModelRegistry(self.registry_dir, c.id)
        return {"aliases": reg.aliases(), "history": reg.history()}

    def _abtest(self, name: str, since: float, until: float) -> dict[str, Any]:
        arms: dict[str, Any] = {}
        for arm in ("champion", "challenger"):
            req = [
                p
                for p in self.history.points(
                    "predis_abtest_requests_total", since, until, "test", [name]
                )
                if p.labels.get("arm") == arm
            ]
            hit = [
                p
                for p in self.history.points(
                    "predis_abtest_hits_total", since, until, "test", [name]
                )
                if p.labels.get("arm") == arm
            ]
            if not req or not hit:
                arms[arm] = None
                continue
            n, h = req[-1].value, hit[-1].value
            ci = wilson_interval(h, n)
            arms[arm] = {
                "requests": n,
                "hits": h,
                "hit_ratio": h / n if n else None,
                "ci95": None if ci is None else list(ci),
            }
        pv = self.history.points("predis_abtest_p_value", since, until, "test", [name])
        dec = self.history.points("predis_abtest_decision", since, until, "test", [name])
        state = None
        if dec:
            latest = max(p.ts for p in dec)
            on = [p.labels.get("state") for p in dec if p.ts == latest and p.value == 1]
            state = on[0] if on else None
        p_value = pv[-1].value if pv else None
        return {
            "test": name,
            "arms": arms,
            "p_value": p_value,
            "confidence": None if p_value is None else 1.0 - p_value,
            "state": state,
            "updated": iso(pv[-1].ts) if pv else None,
        }

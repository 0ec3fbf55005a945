"""The ROI model: what a customer's cache saves, from measured counters and configured prices.

Every output is a pure function of two things: figures measured over a window of the
history (:class:`Measured`) and the customer's inputs (:class:`ROIInputs`, from the
customers config). :data:`FORMULAS` holds each output's formula in words; the dashboard shows
it beside the value and ``docs/dashboard.md`` explains it. An output whose inputs are missing
is None (shown as "no data"), never zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

from predis.errors import InvalidArgumentError

__all__ = ["FORMULAS", "ROI", "Measured", "ROIInputs", "compute_roi"]

DAY_S = 86_400.0
MONTH_DAYS = 365.0 / 12.0  # an average month
YEAR_DAYS = 365.0

#: The formula of every output, as shown on the overview page.
FORMULAS: dict[str, str] = {
    "requests": "Δ(hits) + Δ(misses) over the window (counter resets handled)",
    "hit_ratio": "Δhits / (Δhits + Δmisses)",
    "baseline_hit_ratio": "the A/B control arm's Δhits / Δrequests, else the configured "
    "no-prefetch hit ratio",
    "hit_ratio_gain": "hit_ratio - baseline_hit_ratio",
    "fetches_avoided": "Δhits (each hit is a request the back end did not serve)",
    "fetches_avoided_vs_baseline": "(hit_ratio - baseline_hit_ratio) * requests",
    "latency_saved_per_request_s": "hit_ratio * backend_latency_s",
    "latency_saved_total_s": "fetches_avoided * backend_latency_s",
    "cost_per_fetch": "backend_cost_per_fetch + backend_cost_per_gb * mean_fetch_bytes / 1e9",
    "gross_saved_per_day": "fetches_avoided / window_s * 86400 * cost_per_fetch",
    "cost_per_day": "gpu_cost_per_hour * 24 + predis_price_per_year / 365",
    "net_saved_per_day": "gross_saved_per_day - cost_per_day",
    "net_saved_per_month": "net_saved_per_day * 365 / 12",
    "net_saved_per_year": "net_saved_per_day * 365",
    "roi_percent": "net_saved_per_year / (cost_per_day * 365) * 100",
    "payback_days": "predis_price_per_year / (gross_saved_per_day - gpu_cost_per_hour * 24)",
}


@dataclass(frozen=True)
class ROIInputs:
    """One customer's prices and back-end figures (the ``roi`` object of the customers
    config). Money is in ``currency`` units; every number must be finite and >= 0."""

    backend_cost_per_fetch: float
    backend_cost_per_gb: float
    mean_fetch_bytes: float
    backend_latency_s: float
    gpu_cost_per_hour: float
    predis_price_per_year: float
    currency: str = "USD"

    @classmethod
    def from_mapping(cls, data: object, where: str) -> ROIInputs:
        """Validated inputs from a parsed JSON object; ``where`` names it in errors."""
        if not isinstance(data, Mapping):
            raise InvalidArgumentError(f"{where} must be an object of ROI inputs")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidArgumentError(
                f"{where}: unknown ROI inputs {unknown}; known: {sorted(names)}"
            )
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "currency":
                cur = data.get("currency", "USD")
                if not isinstance(cur, str) or not (1 <= len(cur) <= 8) or not cur.isalpha():
                    raise InvalidArgumentError(f"{where}.currency must be 1-8 letters, got {cur!r}")
                values["currency"] = cur
                continue
            if f.name not in data:
                raise InvalidArgumentError(f"{where}: the ROI input {f.name!r} is missing")
            v = data[f.name]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InvalidArgumentError(f"{where}.{f.name} must be a finite number, got {v!r}")
            if v < 0:
                raise InvalidArgumentError(f"{where}.{f.name} must be >= 0, got {v}")
            values[f.name] = float(v)
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Measured:
    """Counter increases over one window of the history.

    ``baseline_hit_ratio`` is None when no baseline is known; ``baseline_source`` says which
    one was used ("A/B control arm", "no-prefetch baseline") or why there is none.
    """

    window_s: float
    hits: float
    misses: float
    baseline_hit_ratio: float | None = None
    baseline_source: str = "no baseline known"


@dataclass(frozen=True)
class ROI:
    """Every output of the model; None where it cannot be computed (no requests, no
    baseline, no payback at this rate)."""

    requests: float
    hit_ratio: float | None
    baseline_hit_ratio: float | None
    baseline_source: str
    hit_ratio_gain: float | None
    fetches_avoided: float
    fetches_avoided_vs_baseline: float | None
    latency_saved_per_request_s: float | None
    latency_saved_total_s: float
    cost_per_fetch: float
    gross_saved_per_day: float | None
    cost_per_day: float
    net_saved_per_day: float | None
    net_saved_per_month: float | None
    net_saved_per_year: float | None
    roi_percent: float | None
    payback_days: float | None
    currency: str

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def compute_roi(m: Measured, inp: ROIInputs) -> ROI:
    """The outputs of the model for ``m`` under ``inp`` (see :data:`FORMULAS`).

    Example:
        >>> inp = ROIInputs(0.001, 0.0, 0.0, 0.01, 1.0, 365.0)
        >>> r = compute_roi(Measured(window_s=86_400, hits=90_000, misses=10_000), inp)
        >>> r.hit_ratio, r.gross_saved_per_day, r.cost_per_day, r.net_saved_per_day
        (0.9, 90.0, 25.0, 65.0)
    """
    if not (m.window_s >= 0 and m.hits >= 0 and m.misses >= 0):
        raise InvalidArgumentError("window and counter increases must be >= 0")
    requests = m.hits + m.misses
    hit_ratio = m.hits / requests if requests > 0 else None
    base = m.baseline_hit_ratio
    gain = hit_ratio - base if hit_ratio is not None and base is not None else None
    cost_per_fetch = (
        inp.backend_cost_per_fetch + inp.backend_cost_per_gb * inp.mean_fetch_bytes / 1e9
    )
    gpu_per_day = inp.gpu_cost_per_hour * 24.0
    cost_per_day = gpu_per_day + inp.predis_price_per_year / YEAR_DAYS
    gross = m.hits / m.window_s * DAY_S * cost_per_fetch if m.window_s > 0 else None
    net = gross - cost_per_day if gross is not None else None
    roi = None
    if net is not None and cost_per_day > 0:
        roi = net * YEAR_DAYS / (cost_per_day * YEAR_DAYS) * 100.0
    payback = None
    if gross is not None:
        margin = gross - gpu_per_day
        if inp.predis_price_per_year == 0 and margin >= 0:
            payback = 0.0
        elif margin > 0 and math.isfinite(inp.predis_price_per_year / margin):
            payback = inp.predis_price_per_year / margin
    return ROI(
        requests=requests,
        hit_ratio=hit_ratio,
        baseline_hit_ratio=base,
        baseline_source=m.baseline_source,
        hit_ratio_gain=gain,
        fetches_avoided=m.hits,
        fetches_avoided_vs_baseline=gain * requests if gain is not None else None,
        latency_saved_per_request_s=(
            hit_ratio * inp.backend_latency_s if hit_ratio is not None else None
        ),
        latency_saved_total_s=m.hits * inp.backend_latency_s,
        cost_per_fetch=cost_per_fetch,
        gross_saved_per_day=gross,
        cost_per_day=cost_per_day,
        net_saved_per_day=net,
        net_saved_per_month=net * MONTH_DAYS if net is not None else None,
        net_saved_per_year=net * YEAR_DAYS if net is not None else None,
        roi_percent=roi,
        payback_days=payback,
        currency=inp.currency,
    )

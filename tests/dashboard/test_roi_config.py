"""The ROI model against a plain reference, and the customers config's validation."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import CUSTOMERS, ROI
from predis import InvalidArgumentError
from predis.dashboard import Measured, ROIInputs, compute_roi, load_customers, parse_customers
from predis.dashboard.roi import FORMULAS
from predis.dashboard.views import counter_increase, wilson_interval

# Prices are never subnormal: 5e-324 a year underflows to 0 a day, a case of no interest.
money = st.floats(min_value=0, max_value=1e4, allow_nan=False, allow_subnormal=False)


@given(
    hits=st.integers(0, 10**9),
    misses=st.integers(0, 10**9),
    window=st.floats(min_value=1, max_value=1e7),
    fetch=money,
    gb=money,
    size=st.floats(min_value=0, max_value=1e9),
    latency=st.floats(min_value=0, max_value=10),
    gpu=money,
    price=st.floats(min_value=0, max_value=1e7, allow_subnormal=False),
    base=st.none() | st.floats(min_value=0, max_value=1),
)
def test_roi_matches_a_plain_reference(
    hits, misses, window, fetch, gb, size, latency, gpu, price, base
):
    inp = ROIInputs(fetch, gb, size, latency, gpu, price)
    r = compute_roi(Measured(window, hits, misses, base, "x"), inp)
    # The reference: the same money, counted per year instead of per day.
    per_fetch = fetch + gb * size / 1e9
    yearly_saving = hits * (365 * 86400 / window) * per_fetch
    yearly_cost = gpu * 24 * 365 + price
    assert r.net_saved_per_year == pytest.approx(yearly_saving - yearly_cost, rel=1e-9, abs=1e-6)
    assert r.net_saved_per_month * 12 == pytest.approx(r.net_saved_per_year, rel=1e-9, abs=1e-6)
    if hits + misses:
        assert r.hit_ratio == pytest.approx(hits / (hits + misses))
        assert r.latency_saved_per_request_s == pytest.approx(r.hit_ratio * latency)
    else:
        assert r.hit_ratio is None
    if yearly_cost > 0:
        assert r.roi_percent == pytest.approx(
            (yearly_saving - yearly_cost) / yearly_cost * 100, rel=1e-9, abs=1e-6
        )
    else:
        assert r.roi_percent is None
    margin = yearly_saving / 365 - gpu * 24
    if r.payback_days is not None:
        assert r.payback_days >= 0
        # After payback_days the cumulative margin covers the year's licence.
        assert margin * r.payback_days == pytest.approx(price, rel=1e-6, abs=1e-6)
    else:  # never pays back: no margin, or one so small that the period overflows
        assert margin <= 0 or price / margin == float("inf")
    assert (
        (r.baseline_hit_ratio is None)
        == (base is None)
        == (r.hit_ratio_gain is None or hits + misses == 0)
    )


def test_every_output_has_a_formula():
    r = compute_roi(Measured(10, 1, 1), ROIInputs(1, 1, 1, 1, 1, 1))
    assert set(r.as_dict()) - {"currency", "baseline_source"} <= set(FORMULAS)


def test_counter_increase_handles_restarts():
    assert counter_increase([]) == 0
    assert counter_increase([5]) == 0
    assert counter_increase([0, 10, 10, 3, 8]) == 18


@given(st.lists(st.integers(0, 1000), max_size=30))
def test_counter_increase_reference(values):
    expected = 0
    for i in range(1, len(values)):
        expected += values[i] - values[i - 1] if values[i] >= values[i - 1] else values[i]
    assert counter_increase([float(v) for v in values]) == expected


def test_wilson_interval_known_value():
    # 30 of 100 at 95%: the textbook Wilson interval is [0.2189, 0.3958].
    lo, hi = wilson_interval(30, 100)
    assert lo == pytest.approx(0.2189, abs=1e-4)
    assert hi == pytest.approx(0.3958, abs=1e-4)
    assert wilson_interval(0, 0) is None


def test_customers_config_loads(tmp_path):
    path = tmp_path / "customers.json"
    path.write_text(json.dumps(CUSTOMERS))
    customers = load_customers(path)
    assert sorted(customers) == ["acme", "globex", "initech"]
    assert customers["acme"].caches == ("main", "aux")
    assert customers["acme"].roi.currency == "EUR"
    assert customers["acme"].no_prefetch_hit_ratio == 0.25


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(extra=1), 'one key, "customers"'),
        (
            lambda d: d["customers"].update({"Bad Id": d["customers"]["acme"]}),
            "invalid customer id",
        ),
        (lambda d: d["customers"]["acme"].update(colour="red"), "unknown keys"),
        (lambda d: d["customers"]["acme"].pop("roi"), "needs 'caches' and 'roi'"),
        (lambda d: d["customers"]["acme"].update(caches=[]), "at least one cache"),
        (lambda d: d["customers"]["acme"].update(caches=["../x"]), "invalid stats_shm name"),
        (lambda d: d["customers"]["globex"].update(caches=["main"]), "already belongs to acme"),
        (lambda d: d["customers"]["acme"].update(no_prefetch_hit_ratio=1.5), "in [0, 1]"),
        (lambda d: d["customers"]["acme"]["roi"].update(gpu_cost_per_hour=-1), ">= 0"),
        (lambda d: d["customers"]["acme"]["roi"].update(gpu_cost_per_hour="3"), "finite number"),
        (lambda d: d["customers"]["acme"]["roi"].update(backend_latency_s=float("nan")), "finite"),
        (lambda d: d["customers"]["acme"]["roi"].pop("mean_fetch_bytes"), "is missing"),
        (lambda d: d["customers"]["acme"]["roi"].update(discount=0.1), "unknown ROI inputs"),
        (lambda d: d["customers"]["acme"]["roi"].update(currency="<b>"), "1-8 letters"),
    ],
)
def test_customers_config_errors(mutate, message):
    data = json.loads(json.dumps(CUSTOMERS))
    mutate(data)
    with pytest.raises(InvalidArgumentError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_customers(data)


def test_customers_config_file_errors(tmp_path):
    with pytest.raises(InvalidArgumentError, match="cannot be read"):
        load_customers(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidArgumentError, match="not valid JSON"):
        load_customers(bad)
    assert ROI["currency"] == "EUR"


@pytest.mark.parametrize("module", ["predis.dashboard.roi", "predis.dashboard.views"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0

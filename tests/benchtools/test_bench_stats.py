"""Ratio statistics: bootstrap intervals and the regression decision."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predis.benchtools.stats import (
    DEFAULT_THRESHOLD,
    compare_ratios,
    summarise_ratios,
)
from predis.errors import InvalidArgumentError, PredisError

ratios = st.lists(
    st.floats(min_value=0.01, max_value=1000.0, allow_nan=False, allow_infinity=False),
    min_size=3,
    max_size=40,
)


def noisy(center: float, n: int, spread: float, seed: int) -> list[float]:
    """n ratios around center, log-normal with the given relative spread."""
    rng = np.random.default_rng(seed)
    return list(center * np.exp(rng.normal(0.0, spread, n)))


@settings(max_examples=60, deadline=None)
@given(ratios)
def test_a_run_against_itself_has_no_change_and_never_regresses(xs):
    c = compare_ratios(xs, xs)
    assert c.change == pytest.approx(1.0)
    assert c.low <= 1.0 + 1e-12
    assert c.high >= 1.0 - 1e-12
    assert not c.regressed
    assert not c.improved


@settings(max_examples=60, deadline=None)
@given(ratios, ratios)
def test_interval_holds_the_point_estimate(old, new):
    c = compare_ratios(old, new)
    assert c.low <= c.change <= c.high
    s = summarise_ratios(new)
    assert s.low <= s.ratio <= s.high
    # The point estimate is the ratio of geometric means.
    gm = lambda v: math.exp(sum(math.log(x) for x in v) / len(v))  # noqa: E731
    assert c.change == pytest.approx(gm(new) / gm(old), rel=1e-9)
    assert s.ratio == pytest.approx(gm(new), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(ratios, st.floats(min_value=0.1, max_value=10.0))
def test_scaling_the_new_run_scales_the_change(xs, factor):
    c = compare_ratios(xs, [x * factor for x in xs])
    assert c.change == pytest.approx(factor, rel=1e-9)


def test_constant_rounds_give_a_point_interval():
    s = summarise_ratios([4.0, 4.0, 4.0, 4.0])
    assert s.ratio == pytest.approx(4.0)
    assert s.low == pytest.approx(4.0)
    assert s.high == pytest.approx(4.0)


def test_a_clear_drop_beyond_the_threshold_regresses():
    old = noisy(10.0, 30, 0.05, seed=1)
    new = noisy(7.0, 30, 0.05, seed=2)  # 30% slower relative to the peer
    c = compare_ratios(old, new)
    assert c.change == pytest.approx(0.7, rel=0.05)
    assert c.high < 1.0
    assert c.regressed
    assert c.verdict == "REGRESSED"


def test_a_drop_hidden_in_noise_does_not_regress():
    old = noisy(10.0, 10, 1.0, seed=3)  # rounds spread over a factor of e either way
    new = [x * 0.75 for x in noisy(10.0, 10, 1.0, seed=4)]
    c = compare_ratios(old, new)
    assert c.high > 1.0  # not significant
    assert not c.regressed


def test_a_significant_drop_below_the_threshold_passes_until_the_threshold_tightens():
    old = noisy(10.0, 40, 0.01, seed=5)
    new = [x * 0.95 for x in noisy(10.0, 40, 0.01, seed=6)]
    assert compare_ratios(old, new, threshold=0.10).high < 1.0  # significant...
    assert not compare_ratios(old, new, threshold=0.10).regressed  # ...but within 10%
    assert compare_ratios(old, new, threshold=0.02).regressed


def test_a_rise_is_an_improvement_not_a_regression():
    c = compare_ratios(noisy(5.0, 30, 0.05, seed=7), noisy(8.0, 30, 0.05, seed=8))
    assert c.improved
    assert not c.regressed
    assert c.verdict == "improved"


def test_interval_agrees_with_a_t_interval_on_normal_log_data():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(9)
    logs = rng.normal(np.log(3.0), 0.2, 200)
    s = summarise_ratios(list(np.exp(logs)))
    half = stats.t.ppf(0.975, len(logs) - 1) * logs.std(ddof=1) / math.sqrt(len(logs))
    assert math.log(s.low) == pytest.approx(logs.mean() - half, abs=0.15 * half)
    assert math.log(s.high) == pytest.approx(logs.mean() + half, abs=0.15 * half)


def test_a_a_comparisons_cover_no_change_and_never_cross_the_default_threshold():
    # 100 clean-against-clean comparisons drawn from one distribution (10% round-to-round
    # spread, 30 rounds): the 95% interval should hold 1 about 95% of the time, and none
    # may be called a regression at the default threshold.
    rng = np.random.default_rng(10)
    covered = regressed = 0
    for _ in range(100):
        old = list(6.0 * np.exp(rng.normal(0, 0.1, 30)))
        new = list(6.0 * np.exp(rng.normal(0, 0.1, 30)))
        c = compare_ratios(old, new)
        covered += c.low <= 1.0 <= c.high
        regressed += c.regressed
    assert 85 <= covered <= 100
    assert regressed == 0
    assert DEFAULT_THRESHOLD == 0.15


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.0, 2.0], "at least 3"),
        ([1.0, 0.0, 2.0], "positive finite"),
        ([1.0, -1.0, 2.0], "positive finite"),
        ([1.0, float("nan"), 2.0], "positive finite"),
        ([1.0, float("inf"), 2.0], "positive finite"),
    ],
)
def test_bad_rounds_are_refused(values, message):
    with pytest.raises(InvalidArgumentError, match=message):
        summarise_ratios(values)
    with pytest.raises(PredisError, match=message):
        compare_ratios([1.0, 1.0, 1.0], values)


@pytest.mark.parametrize("threshold", [-0.1, 1.0, 2.0])
def test_bad_threshold_is_refused(threshold):
    with pytest.raises(InvalidArgumentError, match="threshold"):
        compare_ratios([1.0] * 3, [1.0] * 3, threshold=threshold)


@pytest.mark.parametrize("confidence", [0.2, 1.0, 1.5])
def test_bad_confidence_is_refused(confidence):
    with pytest.raises(InvalidArgumentError, match="confidence"):
        compare_ratios([1.0] * 3, [1.0] * 3, confidence=confidence)

"""Retraining: the recent window, triggers, limits, the validation gate and what it records."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predis import Cache, InvalidArgumentError
from predis.mlops import (
    Collector,
    DemandWindow,
    ModelRegistry,
    RetrainConfig,
    Retrainer,
    SegmentWindow,
    validate_challenger,
)
from predis.prefetch import FEATURE_NAMES, PrefetchModel, TrackerConfig, TrainConfig, train_model
from predis.security.crypto import KeyRing, generate_key_line
from predis.workloads import CorrelatedSessions, ZipfKeys

CACHE = 150
TRAIN = TrainConfig(num_trees=25, threads=1, batch_size=16, max_rows=50_000, time_budget_s=20.0)
CONFIG = RetrainConfig(train=TRAIN, cache_items=CACHE, window=16_000, min_window=8_000)


def sessions(n: int, seed: int = 3) -> np.ndarray:
    return CorrelatedSessions(1_000_000, 300, 12, alpha=0.8, noise=0.05, seed=seed).take(n)


@pytest.fixture(scope="module")
def zipf_model() -> PrefetchModel:
    return train_model(ZipfKeys(3000, 1.1, seed=11).take(16_000), TRAIN, cache_items=CACHE)


@pytest.fixture(scope="module")
def sessions_model() -> PrefetchModel:
    return train_model(sessions(15_000), TRAIN, cache_items=CACHE)


def registry_with(tmp_path, model: PrefetchModel) -> ModelRegistry:
    reg = ModelRegistry(tmp_path / "models", "acme")
    meta = reg.register(model.to_bytes(), feature_schema=FEATURE_NAMES, training_window=(0, 1))
    reg.promote(meta.version, actor="test", reason="first champion")
    return reg


# ---- the window ----


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(1, 40),
    chunks=st.lists(st.lists(st.integers(0, 2**64 - 1), max_size=60), max_size=12),
    n=st.integers(0, 80),
)
def test_demand_window_is_the_tail_of_everything_added(capacity, chunks, n):
    w = DemandWindow(capacity)
    everything: list[int] = []
    for c in chunks:
        w.extend(np.array(c, dtype=np.uint64))
        everything += c
    assert w.total == len(everything)
    kept = everything[-capacity:] if everything else []
    want = kept[-n:] if n else []
    assert w.latest(n).tolist() == want


def test_segment_window_reads_the_collectors_segments(tmp_path):
    keys = KeyRing.parse(generate_key_line("k1"))
    cache = Cache(1 << 20, max_items=1000)
    demand = sessions(3_000, seed=4)
    with Collector(cache, tmp_path / "seg", "acme", keys, segment_events=700) as collector:
        for k in demand.tolist():
            cache.get(k)
            if k % 7 == 0:
                cache.put(k, b"x")  # puts are logged too, and are not demand
        collector.drain_once()
    window = SegmentWindow(collector.segments, keys)
    assert len(collector.segments()) > 2
    np.testing.assert_array_equal(window.latest(1_000), demand[-1_000:])
    np.testing.assert_array_equal(window.latest(10**6), demand)
    with pytest.raises(InvalidArgumentError):
        SegmentWindow("not callable", keys)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        {"policy": "fifo"},
        {"cache_items": 0},
        {"min_window": 100},
        {"window": 5_000, "min_window": 8_000},
        {"holdout_fraction": 0.9},
        {"max_fetch_increase": -1.0},
        {"latency_budget_s": 0.0},
        {"every_requests": 10},
        {"every_s": 0.1},
        {"train": "fast"},
    ],
)
def test_bad_config_is_refused(bad):
    with pytest.raises(InvalidArgumentError, match="RetrainConfig"):
        dataclasses.replace(CONFIG, **bad)


# ---- the validation gate ----


def test_gate_passes_a_better_challenger_and_fails_an_equal_one(sessions_model, zipf_model):
    keys = sessions(8_000, seed=9)
    warm, holdout = keys[:4_000], keys[4_000:]
    good = validate_challenger(sessions_model, zipf_model, holdout, warm, CONFIG)
    assert good.passed, good.reasons
    assert good.challenger_miss_ratio < good.champion_miss_ratio
    assert good.schema_ok
    assert good.requests == len(holdout)
    same = validate_challenger(sessions_model, sessions_model, holdout, warm, CONFIG)
    assert not same.passed
    assert any("does not beat" in r for r in same.reasons)
    # No champion: the baseline is the cache without prefetching.
    alone = validate_challenger(sessions_model, None, holdout, warm, CONFIG)
    assert alone.passed
    assert alone.champion_miss_ratio == pytest.approx(good.champion_miss_ratio)


def test_gate_enforces_latency_cost_and_schema(sessions_model, zipf_model):
    keys = sessions(8_000, seed=9)
    warm, holdout = keys[:4_000], keys[4_000:]
    slow = dataclasses.replace(CONFIG, latency_budget_s=1e-6)
    r = validate_challenger(sessions_model, zipf_model, holdout, warm, slow)
    assert not r.passed
    assert any("inference" in x for x in r.reasons)
    costly = dataclasses.replace(CONFIG, max_fetch_increase=0.0)
    r = validate_challenger(sessions_model, zipf_model, holdout, warm, costly)
    if r.challenger_fetches_per_request > r.champion_fetches_per_request:
        assert not r.passed
        assert any("back-end" in x for x in r.reasons)
    other = train_model(keys, TRAIN, TrackerConfig(window=8, successors=8), cache_items=CACHE)
    r = validate_challenger(other, zipf_model, holdout, warm, CONFIG)
    assert not r.schema_ok
    assert any("candidate generator" in x for x in r.reasons)
    with pytest.raises(InvalidArgumentError):
        validate_challenger(sessions_model, zipf_model, holdout[:50], warm, CONFIG)


# ---- the retrainer ----


def test_manual_trigger_registers_a_validated_challenger(tmp_path, zipf_model):
    reg = registry_with(tmp_path, zipf_model)
    window = DemandWindow(CONFIG.window)
    window.extend(sessions(16_000, seed=12))
    outcomes = []
    r = Retrainer(
        reg, window, CONFIG, champion=lambda: zipf_model, on_outcome=outcomes.append
    ).start()
    try:
        assert r.trigger("manual: test")
        assert r.wait_idle(300)
    finally:
        r.close()
    (outcome,) = outcomes
    assert outcome.registered is not None
    assert outcome.registered.version == 2
    assert outcome.report is not None
    assert outcome.report.passed
    assert reg.aliases()["challenger"] == 2
    assert reg.aliases()["champion"] == 1
    meta, raw = reg.get("challenger", expected_schema=FEATURE_NAMES)
    assert meta.parent == 1
    assert meta.metrics["val_miss_ratio"] < meta.metrics["val_champion_miss_ratio"]
    assert meta.metrics["trees"] <= TRAIN.num_trees  # the tree cap held
    assert PrefetchModel.from_bytes(raw).threshold < 1.0
    assert [h["action"] for h in reg.history()][-2:] == ["register", "promote-challenger"]
    assert r.events.kinds() == ["retrain-started", "challenger-registered"]
    st = r.stats()
    assert st.runs == {"registered": 1, "rejected": 0, "failed": 0}
    assert st.duration_buckets[-1][1] == 1
    assert st.duration_seconds_total > 0
    assert st.last_run_unix is not None
    assert not st.busy


def test_a_failing_challenger_is_recorded_and_dropped(tmp_path, zipf_model):
    reg = registry_with(tmp_path, zipf_model)
    window = DemandWindow(CONFIG.window)
    window.extend(ZipfKeys(3000, 1.1, seed=13).take(16_000))  # nothing better to learn
    r = Retrainer(reg, window, CONFIG, champion=lambda: zipf_model).start()
    try:
        r.trigger("manual: test")
        assert r.wait_idle(300)
    finally:
        r.close()
    assert reg.list_versions() == [1]
    assert reg.aliases()["challenger"] is None
    last = reg.history()[-1]
    assert last["action"] == "validation-failed"
    assert "does not beat" in last["reason"]
    assert last["details"]["val_miss_ratio"] >= last["details"]["val_champion_miss_ratio"]
    assert r.events.kinds() == ["retrain-started", "validation-failed"]
    assert r.outcomes[0].registered is None
    assert r.outcomes[0].model is not None
    assert r.stats().runs == {"registered": 0, "rejected": 1, "failed": 0}


def test_busy_and_short_windows(tmp_path, zipf_model):
    reg = registry_with(tmp_path, zipf_model)
    window = DemandWindow(CONFIG.window)
    window.extend(sessions(3_000))
    r = Retrainer(reg, window, CONFIG)
    # Not started yet: the first trigger is queued, the second finds it busy.
    assert r.trigger("first")
    assert not r.trigger("second")
    assert r.busy
    assert r.skipped == 1
    assert r.stats().last_run_unix is None
    assert r.stats().busy
    r.start()
    try:
        assert r.wait_idle(60)
    finally:
        r.close()
    st = r.stats()
    assert st.runs == {"registered": 0, "rejected": 0, "failed": 1}
    assert st.skipped == 1
    assert st.duration_buckets[-1][1] == 1
    assert st.last_run_unix is not None
    assert r.events.kinds() == ["retrain-failed", "retrain-skipped"]
    assert "min_window" in r.events.events("retrain-failed")[0].message
    assert reg.list_versions() == [1]


def test_schedule_by_requests_and_time(tmp_path, zipf_model):
    reg = registry_with(tmp_path, zipf_model)
    by_requests = Retrainer(
        reg, DemandWindow(10), dataclasses.replace(CONFIG, every_requests=5_000)
    )
    assert by_requests.due(4_999) is None
    assert "5,000 requests" in (by_requests.due(5_000) or "")
    by_time = Retrainer(reg, DemandWindow(10), dataclasses.replace(CONFIG, every_s=3600.0))
    assert by_time.due(10**9) is None  # an hour has not passed since it was created
    assert Retrainer(reg, DemandWindow(10), CONFIG).due(10**9) is None  # no schedule


def test_bad_arguments(tmp_path, zipf_model):
    reg = registry_with(tmp_path, zipf_model)
    with pytest.raises(InvalidArgumentError):
        Retrainer("registry", DemandWindow(10), CONFIG)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        Retrainer(reg, object(), CONFIG)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        Retrainer(reg, DemandWindow(10), CONFIG, on_outcome=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        DemandWindow(0)


def test_only_the_latest_outcomes_are_kept(tmp_path, zipf_model):
    """Each outcome holds its model; a loop retraining for weeks keeps a bounded number."""
    from predis.mlops.retraining import OUTCOMES_KEPT

    reg = registry_with(tmp_path, zipf_model)
    window = DemandWindow(CONFIG.window)
    window.extend(sessions(3_000))  # too few: every job fails fast, each one an outcome
    r = Retrainer(reg, window, CONFIG).start()
    try:
        for i in range(OUTCOMES_KEPT + 5):
            assert r.trigger(f"run {i}")
            assert r.wait_idle(60)
    finally:
        r.close()
    assert r.stats().runs["failed"] == OUTCOMES_KEPT + 5
    assert len(r.outcomes) == OUTCOMES_KEPT
    assert r.outcomes[-1].trigger == f"run {OUTCOMES_KEPT + 4}"

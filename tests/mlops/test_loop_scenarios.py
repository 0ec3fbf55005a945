"""The MLOps loop end to end, by trace replay: drift → retrain → validate → A/B → promote on a
phase change, and the automatic rollback of a deliberately bad model.

The stream is replayed in chunks; between chunks the test waits for the loop's threads to
finish what they started, so the outcomes (events, registry history, hit rates) do not
depend on how fast the machine trains. Nothing here asserts on time.
"""

from __future__ import annotations

import numpy as np
import pytest

from predis.mlops import ABConfig, LoopConfig, MLOpsLoop, ModelRegistry, RetrainConfig
from predis.prefetch import FEATURE_NAMES, LearnedPrefetcher, TrainConfig, train_model
from predis.sim import replay
from predis.sim.hitrate import predis_cache
from predis.workloads import CorrelatedSessions, PhaseChange, ZipfKeys

CACHE = 150  # entries: small, so that prefetching matters
SWITCH = 32_000  # where phase 1 (zipf, nothing to learn) turns into sessions
CHUNK = 4_000  # a multiple of the batch size: replay drops a partial last batch
TRAIN = TrainConfig(num_trees=30, threads=1, batch_size=16, max_rows=60_000, time_budget_s=20.0)


def sessions(seed: int) -> CorrelatedSessions:
    return CorrelatedSessions(1_000_000, 300, 12, alpha=0.8, noise=0.05, seed=seed)


def loop_config(**overrides: object) -> LoopConfig:
    defaults: dict[str, object] = {
        "retrain": RetrainConfig(train=TRAIN, cache_items=CACHE, window=30_000, min_window=12_000),
        "ab": ABConfig(
            challenger_share=0.5,
            min_requests=500,
            max_requests=20_000,
            holdback_share=0.2,
            watch_requests=10_000,
            rollback_threshold=0.02,
        ),
    }
    defaults.update(overrides)
    return LoopConfig(**defaults)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def zipf_model():
    """Trained where there is no sequence to learn: its threshold says never prefetch."""
    keys = ZipfKeys(3000, 1.1, seed=11).take(20_000)
    model = train_model(keys, TRAIN, cache_items=CACHE)
    assert model.threshold == 1.0
    return model


@pytest.fixture(scope="module")
def sessions_model():
    return train_model(sessions(3).take(15_000), TRAIN, cache_items=CACHE)


def registry_with(tmp_path, *models) -> ModelRegistry:
    reg = ModelRegistry(tmp_path / "models", "acme")
    for m in models:
        meta = reg.register(m.to_bytes(), feature_schema=FEATURE_NAMES, training_window=(0, 1))
    reg.promote(1, actor="test", reason="the first champion")
    assert meta.version == len(models)
    return reg


def run_chunks(loop: MLOpsLoop, keys: np.ndarray, cache, on_chunk=None) -> list[float]:
    """Hit ratio of each chunk, waiting for the loop's threads between chunks."""
    rates = []
    for start in range(0, len(keys), CHUNK):
        r = replay([keys[start : start + CHUNK]], cache, prefetcher=loop.router)
        rates.append(r.hit_ratio)
        assert loop.wait_idle(timeout=300)
        if on_chunk is not None:
            on_chunk(start + CHUNK)
    return rates


def first(kinds: list[str], kind: str) -> int:
    assert kind in kinds, kinds
    return kinds.index(kind)


def test_phase_change_is_detected_retrained_tested_and_promoted(tmp_path, zipf_model):
    stream = PhaseChange([(ZipfKeys(3000, 1.1, seed=1), SWITCH), (sessions(3), None)])
    trace = stream.take(SWITCH + 72_000)
    reg = registry_with(tmp_path, zipf_model)
    with MLOpsLoop(reg, loop_config()) as loop:
        rates = run_chunks(loop, trace, predis_cache(CACHE, "lru"))
        kinds = loop.events.kinds()
        events = loop.events.events()
    # 1. Drift is detected within a bounded delay after the change (none before it).
    drift = [e for e in events if e.kind == "drift"]
    assert drift, kinds
    assert SWITCH <= drift[0].details["detected_at"] <= SWITCH + 2_000
    assert drift[0].details["kind"] == "performance"
    # 2-3. Retraining ran; the challenger passed validation, was A/B-tested and promoted.
    order = [
        first(kinds, k)
        for k in ("drift", "retrain-started", "challenger-registered", "ab-started", "promoted")
    ]
    assert order == sorted(order), kinds
    registered = events[first(kinds, "challenger-registered")]
    assert registered.details["val_miss_ratio"] < registered.details["val_champion_miss_ratio"]
    promoted = events[first(kinds, "promoted")]
    assert promoted.details["version"] == 2
    assert promoted.details["new_hit_rate"] > promoted.details["base_hit_rate"]
    assert "rollback" not in kinds
    history = [(h["action"], h.get("version")) for h in reg.history()]
    assert history[:5] == [
        ("register", 1),
        ("promote-champion", 1),
        ("register", 2),
        ("promote-challenger", 2),
        ("promote-champion", 2),
    ]
    assert reg.aliases()["champion"] != 1
    # 4. The hit rate recovers: the last 24,000 requests beat the stuck champion on the same
    # requests, and the chunks right after the change, by a clear margin.
    tail = trace[-24_000:]
    stuck = replay(
        [tail],
        predis_cache(CACHE, "lru"),
        prefetcher=LearnedPrefetcher(zipf_model),
        warmup=trace[-36_000:-24_000],
    )
    recovered = float(np.mean(rates[-24_000 // CHUNK :]))
    just_after = rates[SWITCH // CHUNK]
    assert recovered >= stuck.hit_ratio + 0.1, (recovered, stuck.hit_ratio)
    assert recovered >= just_after + 0.1, (recovered, just_after)


def test_a_bad_promotion_is_rolled_back(tmp_path, sessions_model, zipf_model):
    trace = sessions(3).take(60_000)
    reg = registry_with(tmp_path, sessions_model, zipf_model)  # v1 good champion, v2 bad
    config = loop_config(drift_warmup=10**9)  # only the watch acts in this scenario
    promoted_at = 20_000

    with MLOpsLoop(reg, config) as loop:

        def operator(position: int) -> None:
            if position == promoted_at:
                loop.force_promote(2, "test: a deliberately bad model")

        rates = run_chunks(loop, trace, predis_cache(CACHE, "lru"), on_chunk=operator)
        events = loop.events.events()
        kinds = loop.events.kinds()
    assert first(kinds, "promoted") < first(kinds, "rollback"), kinds
    rollback = events[first(kinds, "rollback")]
    assert (rollback.details["from_version"], rollback.details["to_version"]) == (2, 1)
    # The breach: the bad champion's hit rate fell beyond the threshold below the previous
    # champion's, on the keys each served during the watch.
    drop = rollback.details["base_hit_rate"] - rollback.details["new_hit_rate"]
    assert drop > config.ab.rollback_threshold
    assert "hit rate" in rollback.message
    # The registry rolled back atomically and says why.
    assert reg.aliases() == {"champion": 1, "challenger": None, "previous": None}
    last = reg.history()[-1]
    assert last["action"] == "rollback"
    assert last["version"] == 1
    assert last["actor"] == "rollback-watch"
    assert "hit rate" in last["reason"]
    # Serving is back to the good model: the hit rate after the rollback is back near the
    # level before the bad promotion.
    assert loop.router.champion.model is not None
    assert loop.router.champion.model.threshold < 1.0
    before = float(np.mean(rates[1 : promoted_at // CHUNK]))
    after = float(np.mean(rates[-5:]))
    assert after >= before - 0.03, (before, after)

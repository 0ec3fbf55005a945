"""The loop's wiring: a live cache with the collector's segments as training data, manual
and scheduled triggers, the event log, and bad configuration."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from predis import Cache, InvalidArgumentError
from predis.mlops import (
    ABConfig,
    Collector,
    DriftEvent,
    EventLog,
    LoopConfig,
    MLOpsLoop,
    ModelRegistry,
    RetrainConfig,
    SegmentWindow,
)
from predis.mlops.controller import LOOK_GROWTH
from predis.monitoring import Monitor
from predis.prefetch import FEATURE_NAMES, TrainConfig, train_model
from predis.security.crypto import KeyRing, generate_key_line
from predis.sim import replay
from predis.sim.hitrate import predis_cache
from predis.workloads import CorrelatedSessions, ZipfKeys

CACHE = 150
TRAIN = TrainConfig(num_trees=25, threads=1, batch_size=16, max_rows=50_000, time_budget_s=20.0)
RETRAIN = RetrainConfig(train=TRAIN, cache_items=CACHE, window=12_000, min_window=8_000)
AB = ABConfig(challenger_share=0.5, min_requests=300, max_requests=10_000, watch_requests=2_000)


def sessions(n: int, seed: int = 3) -> np.ndarray:
    return CorrelatedSessions(1_000_000, 300, 12, alpha=0.8, noise=0.05, seed=seed).take(n)


@pytest.fixture(scope="module")
def zipf_bytes() -> bytes:
    return train_model(
        ZipfKeys(3000, 1.1, seed=11).take(16_000), TRAIN, cache_items=CACHE
    ).to_bytes()


def registry(tmp_path, model: bytes | None) -> ModelRegistry:
    reg = ModelRegistry(tmp_path / "models", "acme")
    if model is not None:
        meta = reg.register(model, feature_schema=FEATURE_NAMES, training_window=(0, 1))
        reg.promote(meta.version, actor="test", reason="first champion")
    return reg


def test_live_cache_trains_from_collector_segments_and_starts_a_test(tmp_path, zipf_bytes):
    keys = KeyRing.parse(generate_key_line("k1"))
    reg = registry(tmp_path, zipf_bytes)
    loader_calls = 0

    def load(key: int) -> bytes:
        nonlocal loader_calls
        loader_calls += 1
        return key.to_bytes(8, "little")

    collectors: list[Collector] = []  # the collector needs the cache, the cache the loop
    window = SegmentWindow(lambda: collectors[0].segments(), keys)  # noqa: PLW0108 - late
    loop = MLOpsLoop(reg, LoopConfig(retrain=RETRAIN, ab=AB, drift_warmup=10**9), window=window)
    heard: list[str] = []
    loop.events.subscribe(lambda e: heard.append(e.narrate()))
    live = Cache(1 << 16, max_items=CACHE, loader=load, prefetcher=loop.router)
    collector = Collector(live, tmp_path / "seg", "acme", keys, segment_events=4_000)
    collectors.append(collector)
    monitor = Monitor().add_retraining(loop, "acme")
    demand = sessions(14_000, seed=21)
    with loop, live:
        deadline = time.monotonic() + 120  # waits for background threads, not timing checks
        for start in range(0, len(demand), 64):
            for k in demand[start : start + 64].tolist():
                live.get(k)
            while loop.router.requests < start + 48 and time.monotonic() < deadline:
                time.sleep(0.0005)
            collector.drain_once()
        collector.flush()
        assert loop.trigger("manual: operator")
        assert loop.wait_idle(300)
        state = loop.state
        roles = loop.router.roles
        metrics = {(m.metric.name, m.labels): m.value for m in monitor.collect()}
        for k in demand[:640].tolist():  # traffic for both arms of the test
            live.get(k)
        # The arms' counts come per chunk; once the traffic pauses, the runtime's idle call
        # releases a chunk that has waited max_hold_s, so the counts show without more.
        deadline = time.monotonic() + 60
        while (
            roles.champion_stats.requests + roles.other_stats.requests < 600
            and time.monotonic() < deadline
        ):
            time.sleep(0.001)
        after = {(m.metric.name, m.labels): m.value for m in monitor.collect()}
    collector.close()
    loop_label = (("loop", "acme"),)

    def got(name: str, **labels: str) -> float | None:
        return metrics.get((name, loop_label + tuple(labels.items())))

    assert got("predis_mlops_loop_state", state="testing") == 1
    assert got("predis_mlops_loop_state", state="serving") == 0
    assert got("predis_retraining_runs_total", outcome="registered") == 1
    assert got("predis_mlops_events_total", kind="ab-started") == 1
    assert got("predis_retraining_in_progress") == 0
    drift = (("detector", "acme"), ("kind", "performance"), ("statistic", "mean"), ("feature", ""))
    assert metrics[("predis_drift_score", drift)] == pytest.approx(loop.detector.mean)
    arms = {
        dict(labels)["arm"]: v
        for (name, labels), v in after.items()
        if name == "predis_abtest_requests_total" and dict(labels)["test"] == "acme"
    }
    assert set(arms) == {"champion", "challenger"}
    test = (("test", "acme"),)
    assert 0 <= after[("predis_abtest_p_value", test)] <= 1
    states = [v for (name, labels), v in after.items() if name == "predis_abtest_decision"]
    assert sorted(states) == [0, 0, 1]
    # Read while the router still served: live counts, at most what the arms ended with.
    assert sum(arms.values()) > 0
    assert 0 < arms["champion"] <= roles.champion_stats.requests
    assert 0 < arms["challenger"] <= roles.other_stats.requests
    assert len(collector.segments()) >= 3
    kinds = loop.events.kinds()
    assert kinds[:3] == ["retrain-started", "challenger-registered", "ab-started"], kinds
    assert state == "testing"
    assert roles.other_role == "challenger"
    assert reg.aliases()["challenger"] == 2
    assert any("A/B test of version 2" in line for line in heard)
    assert loader_calls > 0


def test_loop_without_a_champion_starts_with_no_model_and_manual_triggers(tmp_path):
    reg = registry(tmp_path, None)
    config = LoopConfig(retrain=RETRAIN, ab=AB, drift_warmup=10**9)
    with MLOpsLoop(reg, config) as loop:
        assert loop.router.champion.model is None
        trace = sessions(12_800, seed=5)
        replay([trace], predis_cache(CACHE, "lru"), prefetcher=loop.router)
        assert loop.trigger("manual")
        assert not loop.trigger("manual again")  # busy: recorded, not queued
        assert loop.wait_idle(300)
        assert loop.state == "testing"
    kinds = loop.events.kinds()
    assert "retrain-skipped" in kinds
    assert reg.aliases()["challenger"] == 1


def test_schedule_triggers_retraining(tmp_path, zipf_bytes):
    reg = registry(tmp_path, zipf_bytes)
    retrain = RetrainConfig(
        train=TRAIN, cache_items=CACHE, window=12_000, min_window=8_000, every_requests=9_600
    )
    with MLOpsLoop(reg, LoopConfig(retrain=retrain, ab=AB, drift_warmup=10**9)) as loop:
        replay([sessions(9_600, seed=6)], predis_cache(CACHE, "lru"), prefetcher=loop.router)
        assert loop.wait_idle(300)
    started = loop.events.events("retrain-started")
    assert len(started) == 1
    assert "schedule" in started[0].details["trigger"]


def test_force_promote_of_an_unknown_version_is_an_error_event(tmp_path, zipf_bytes):
    reg = registry(tmp_path, zipf_bytes)
    with MLOpsLoop(reg, LoopConfig(retrain=RETRAIN, ab=AB)) as loop:
        loop.force_promote(7, "no such version")
        assert loop.wait_idle(30)
    (err,) = loop.events.events("error")
    assert "7" in err.message
    assert reg.aliases()["champion"] == 1
    assert loop.state == "serving"


def test_batch_size_mismatch_and_bad_config(tmp_path, zipf_bytes):
    reg = registry(tmp_path, zipf_bytes)
    other = RetrainConfig(train=TrainConfig(batch_size=8), cache_items=CACHE)
    with pytest.raises(InvalidArgumentError, match="batch"):
        MLOpsLoop(reg, LoopConfig(retrain=other))
    for bad in (
        {"drift_delta": 0.0},
        {"decide_every": 0},
        {"min_drop": 1.5},
        {"ab": "x"},
        {"drift_block": 0},
        {"drift_clock": True},
        {"listen_every": 1 << 21},
    ):
        with pytest.raises(InvalidArgumentError):
            LoopConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        MLOpsLoop("registry")  # type: ignore[arg-type]


def test_event_log_subscribers_and_bounds():
    log = EventLog("acme", maxlen=3)
    seen = []
    log.subscribe(seen.append)

    def broken(_event):
        raise RuntimeError("subscriber bug")

    log.subscribe(broken)
    for i in range(5):
        log.record("drift", f"drift {i}", {"i": i}, position=i)
    assert [e.seq for e in log.events()] == [3, 4, 5]
    assert len(seen) == 5
    assert log.subscriber_errors == 5
    assert log.events()[-1].narrate() == "[acme @ 4 requests] drift: drift 4"
    with pytest.raises(InvalidArgumentError):
        log.record("nonsense", "x")
    with pytest.raises(InvalidArgumentError):
        log.subscribe(1)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        EventLog("acme", maxlen=0)


def test_drift_from_another_detector_triggers_retraining_after_min_window(tmp_path, zipf_bytes):
    reg = registry(tmp_path, zipf_bytes)
    with MLOpsLoop(reg, LoopConfig(retrain=RETRAIN, ab=AB, drift_warmup=0)) as loop:
        cache = predis_cache(CACHE, "lru")
        replay([sessions(1_600, seed=7)], cache, prefetcher=loop.router)
        feature = DriftEvent("feature", "succ_share", {"psi:succ_share": 0.4}, "drift", 3)
        loop.on_drift(feature)
        loop.on_drift(feature)  # one episode: the second is absorbed while data comes in
        assert loop.wait_idle(30)
        assert loop.events.kinds() == ["drift"]
        # Not enough requests since the drift yet: nothing trains.
        replay([sessions(RETRAIN.min_window - 1_600, seed=8)], cache, prefetcher=loop.router)
        assert loop.wait_idle(30)
        assert "retrain-started" not in loop.events.kinds()
        replay([sessions(1_600, seed=9)], cache, prefetcher=loop.router)
        assert loop.wait_idle(300)
    kinds = loop.events.kinds()
    assert kinds[:2] == ["drift", "retrain-started"], kinds
    (drift,) = loop.events.events("drift")
    assert drift.details["kind"] == "feature"
    assert "feature drift on succ_share" in drift.message
    started = loop.events.events("retrain-started")[0]
    assert started.details["train_requests"] + started.details["holdout"] >= RETRAIN.min_window


def test_a_closed_loop_leaves_the_router_serving_and_acts_no_more(tmp_path, zipf_bytes):
    reg = registry(tmp_path, zipf_bytes)
    loop = MLOpsLoop(reg, LoopConfig(retrain=RETRAIN, ab=AB, drift_warmup=0)).start()
    loop.close()
    cache = predis_cache(CACHE, "lru")
    result = replay([sessions(3_200, seed=2)], cache, prefetcher=loop.router)
    loop.on_drift(DriftEvent("feature", "lag", {"psi:lag": 1.0}, "drift", 1))
    assert result.requests == 3_200
    assert loop.router.requests == 3_200
    assert loop.events.kinds() == []
    assert loop.state == "serving"


def test_a_drift_is_placed_at_its_own_request_not_at_its_chunks_end(tmp_path):
    """The router hands the loop chunks of listen_every requests; a drift the detector
    finds inside one is recorded at the request where it was found (training then starts
    from there), not where the chunk ended."""
    reg = ModelRegistry(tmp_path / "models", "acme")
    config = LoopConfig(retrain=RETRAIN, ab=AB, drift_warmup=0, listen_every=4_096)
    loop = MLOpsLoop(reg, config)  # not started: the drift is only recorded and queued
    rng = np.random.default_rng(7)
    change = 5_000
    hits = np.concatenate([rng.random(change) < 0.9, rng.random(3_192) < 0.1])
    keys = np.arange(len(hits), dtype=np.uint64)
    for start in range(0, len(hits), 16):
        # A champion without a model scores nothing: `cached` is never asked.
        loop.router.propose(keys[start : start + 16], hits[start : start + 16], np.isnan)
    assert loop.router.requests == 8_192  # two whole chunks: the second ends at 8,192
    assert len(loop.drift_events) == 1
    placed = loop._pending_drift
    assert placed is not None
    assert change < placed < change + 1_000  # ADWIN needs a few hundred requests, not 3,192
    assert placed % 64 == 0  # at a block's edge (blocks of 64 from the first request)
    loop.close()


def test_looks_at_a_watch_start_every_decide_every_then_space_out_as_it_grows(tmp_path, zipf_bytes):
    """The first looks come every decide_every requests; later ones every LOOK_GROWTH-th of
    the requests the watch has seen, up to stream_every. The router's chunks end at the
    looks."""
    reg = registry(tmp_path, zipf_bytes)
    meta = reg.register(zipf_bytes, feature_schema=FEATURE_NAMES, training_window=(0, 1))
    watch = ABConfig(min_requests=10**6, max_requests=10**7, watch_requests=10**7)
    config = LoopConfig(retrain=RETRAIN, ab=watch, decide_every=64, stream_every=1_024)
    loop = MLOpsLoop(reg, config)
    seen: list[tuple[int, int, int, str]] = []  # chunk end, its length, next chunk, state
    loop.router.subscribe(
        lambda r, k, _h: seen.append((r.released, len(k), r.look_every, loop.state))
    )
    rng = np.random.default_rng(5)
    with loop:
        loop.force_promote(meta.version, "a test of the looks")
        assert loop.wait_idle(60)
        assert loop.state == "watching"
        start = loop.router.requests
        keys = rng.integers(0, 1 << 40, size=40_000, dtype=np.uint64)
        hits = rng.random(len(keys)) < 0.5
        for i in range(0, len(keys), 16):
            loop.router.propose(keys[i : i + 16], hits[i : i + 16], np.isnan)
        assert loop.state == "watching"  # no decision: min_requests is out of reach
    looks = [(end, n, nxt) for end, n, nxt, state in seen if state == "watching"]
    assert len(looks) > 40
    for (end, _, nxt), (_, n_after, _) in itertools.pairwise(looks):
        assert nxt == max(64, min((end - start) // LOOK_GROWTH, 1_024))
        # The next chunk ends at the next look (its first whole batch of 16 past it).
        assert n_after == -(-nxt // 16) * 16
    spacing = [nxt for _, _, nxt in looks]
    assert spacing[:LOOK_GROWTH] == [64] * LOOK_GROWTH
    assert spacing[LOOK_GROWTH] > 64
    assert spacing[-1] == 1_024
    assert spacing == sorted(spacing)


def test_on_a_live_cache_a_watch_is_looked_at_and_decided_between_chunks(tmp_path, zipf_bytes):
    """Serving a live cache, the router counts the arms at the loop's looks without taking
    a chunk (its chunks here would be 2**20 requests, never reached): the looks come on
    the loop's schedule, their counts cover the watch's requests up to them, and the
    watch ends on a decision made at one of them."""
    reg = registry(tmp_path, zipf_bytes)
    meta = reg.register(zipf_bytes, feature_schema=FEATURE_NAMES, training_window=(0, 1))
    ab = ABConfig(min_requests=100, max_requests=10**6, watch_requests=1_500)
    config = LoopConfig(retrain=RETRAIN, ab=ab, decide_every=256, stream_every=1 << 20)
    loop = MLOpsLoop(reg, config)
    loop.router.max_hold_s = 3600.0
    chunks: list[str] = []  # the loop's state at each chunk handed to the listeners
    loop.router.subscribe(lambda _r, _k, _h: chunks.append(loop.state))
    looks: list[tuple[int, int, int]] = []  # position, the watch's start, its arms' requests
    look_at = loop._look_at

    def recorded(router, state, position):
        roles = router.roles
        arms = roles.champion_stats.requests + roles.other_stats.requests
        looks.append((position, loop._looks_from, arms))
        look_at(router, state, position)

    loop._look_at = recorded
    live = Cache(
        1 << 16,
        max_items=CACHE,
        loader=lambda k: k.to_bytes(8, "little"),
        prefetcher=loop.router,
    )
    demand = sessions(12_000, seed=8)
    with loop, live:
        loop.force_promote(meta.version, "a watch looked at between chunks")
        assert loop.wait_idle(60)
        assert loop.state == "watching"
        deadline = time.monotonic() + 120  # waits for background threads, not timing checks
        sent = 0
        while loop.state == "watching" and sent < len(demand):
            for k in demand[sent : sent + 64].tolist():
                live.get(k)
            sent += 64
            while loop.router.requests < sent - 48 and time.monotonic() < deadline:
                time.sleep(0.0005)
        assert loop.wait_idle(60)
        assert loop.state == "serving", f"the watch did not end: {len(looks)} looks"
    kinds = loop.events.kinds()
    assert "watch-passed" in kinds or "rollback" in kinds, kinds
    assert looks, f"no look at the watch: {chunks}"
    # The looks that went on were the router's own, native ones: the loop looked once,
    # when the watch's budget was spent or its test decided, and decided there.
    assert len(looks) == 1, looks
    # No chunk was taken while the watch ran, but the one at the change of roles: the
    # runtime's first batch under the new roles takes what the tap holds from before, and
    # it may come after the loop has moved to "watching".
    assert "watching" not in chunks[1:], chunks
    for (position, _, _), (after, _, _) in itertools.pairwise(looks):
        assert after - position >= 256  # on the loop's schedule
    for position, start, arms in looks:
        # Every request of the watch up to the look is counted: the first batch under the
        # new roles, at most a drain's worth (64 gets here) and a batch, may fall either side.
        assert abs(arms - (position - start)) <= 64 + 16

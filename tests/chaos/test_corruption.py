"""Chaos: a segment and a model file are damaged on disk.

Must hold: damage is detected (authentication tag, checksum), never read as data; training
skips the damaged segments, counts them and trains on the rest; a champion whose file fails
its checksum does not stop the host from starting: the loop serves without prefetching,
records an error event, and an operator's promotion (or a retrained challenger) recovers.
"""

from __future__ import annotations

import numpy as np
import pytest

import predis
from predis.mlops import (
    Collector,
    LoopConfig,
    MLOpsLoop,
    ModelIntegrityError,
    ModelRegistry,
    RetrainConfig,
    Retrainer,
    read_segment,
)
from predis.mlops.retraining import SegmentWindow
from predis.mlops.segments import SegmentError
from predis.prefetch import FEATURE_NAMES, TrainConfig, train_model
from predis.workloads import CorrelatedSessions

CACHE = 150
TRAIN = TrainConfig(num_trees=20, threads=1, batch_size=16, max_rows=40_000, time_budget_s=20.0)


def sessions(n: int, seed: int = 3) -> np.ndarray:
    return CorrelatedSessions(1_000_000, 300, 12, alpha=0.8, noise=0.05, seed=seed).take(n)


def flip(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x5A
    path.write_bytes(bytes(data))


def test_damaged_segments_are_refused_and_training_goes_on(tmp_path, keys):
    demand = sessions(24_000)
    cache = predis.Cache(1 << 24, clock="manual", access_log_capacity=1 << 16)
    col = Collector(cache, tmp_path / "seg", "acme", keys, segment_events=3_000, min_free_bytes=0)
    for chunk in np.split(demand, 8):
        cache.mget(chunk)
        col.drain_once()
    col.flush()
    segments = col.segments()
    assert len(segments) == 8
    flip(segments[2], -100)  # inside the ciphertext: the tag fails
    segments[5].write_bytes(segments[5].read_bytes()[:-37])  # torn tail
    for bad in (segments[2], segments[5]):
        with pytest.raises(SegmentError, match=bad.name):
            read_segment(bad, keys)

    window = SegmentWindow(col.segments, keys)
    got = window.latest(10**9)
    intact = [c for i, c in enumerate(np.split(demand, 8)) if i not in (2, 5)]
    assert np.array_equal(got, np.concatenate(intact))
    assert window.damaged == 2

    # A retraining on that window runs to a verdict instead of failing on the bad files.
    reg = ModelRegistry(tmp_path / "models", "acme")
    config = RetrainConfig(train=TRAIN, cache_items=CACHE, window=18_000, min_window=8_000)
    outcome = Retrainer(reg, window, config).run_job("after damage", 18_000, {})
    assert outcome.error is None, outcome.error
    assert outcome.report is not None
    col.close()


def test_a_damaged_champion_does_not_stop_the_host(tmp_path):
    reg = ModelRegistry(tmp_path / "models", "acme")
    good = train_model(sessions(15_000), TRAIN, cache_items=CACHE)
    for _ in range(2):
        reg.register(good.to_bytes(), feature_schema=FEATURE_NAMES, training_window=(0, 1))
    reg.promote(1, actor="test", reason="first champion")
    flip(reg.dir / "versions" / "1" / "model.ubj", 1_000)
    with pytest.raises(ModelIntegrityError, match="checksum"):
        reg.get("champion")

    config = LoopConfig(retrain=RetrainConfig(train=TRAIN, cache_items=CACHE))
    loop = MLOpsLoop(reg, config)
    assert loop.router.champion.model is None  # serves, without prefetching
    errors = [e for e in loop.events.events() if e.kind == "error"]
    assert len(errors) == 1
    assert "checksum" in errors[0].message
    served = predis.Cache(1 << 20, max_items=CACHE, loader=lambda _k: b"v", prefetcher=loop.router)
    for k in range(2_000):
        assert served.get(k % 300) == b"v"
    served.close()
    assert reg.aliases()["champion"] == 1  # the registry is left for the operator to see

    # The operator's explicit recovery: promote the intact version; a new loop serves it.
    reg.promote(2, actor="operator", reason="v1's file is damaged")
    recovered = MLOpsLoop(reg, config)
    assert recovered.router.champion.model is not None
    assert not [e for e in recovered.events.events() if e.kind == "error"]

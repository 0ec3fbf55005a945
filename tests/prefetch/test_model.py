"""Training, the calibrated threshold, serialization and its hostile inputs."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from predis import InvalidArgumentError
from predis.prefetch import (
    FEATURE_NAMES,
    ModelFormatError,
    PrefetchModel,
    TrackerConfig,
    TrainConfig,
    train_model,
)


def test_model_learns_sessions_and_calibrates(sessions_model: PrefetchModel):
    m = sessions_model
    assert 0.0 < m.threshold < 1.0
    assert m.metrics["valid_precision"] >= 0.85  # the default target precision
    assert m.metrics["valid_recall"] > 0.2
    assert m.batch_size == 8
    assert m.horizon == 32


def test_a_random_stream_trains_a_model_that_never_prefetches():
    keys = np.random.default_rng(5).integers(0, 10**6, 30_000, dtype=np.uint64)
    m = train_model(keys, TrainConfig(num_trees=20, threads=1), cache_items=100)
    # Nothing reaches the target precision on held-out rows: the threshold says "never".
    assert m.threshold == 1.0


def test_bytes_round_trip_predicts_the_same(sessions_model: PrefetchModel):
    again = PrefetchModel.from_bytes(sessions_model.to_bytes())
    x = np.random.default_rng(0).random((50, len(FEATURE_NAMES)), dtype=np.float32) * 8
    np.testing.assert_allclose(sessions_model.predict(x), again.predict(x), rtol=1e-6)
    assert again.threshold == sessions_model.threshold
    assert again.tracker == sessions_model.tracker
    assert again.batch_size == sessions_model.batch_size


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00" * 64, b"{not ubj", "text", b"{}"],
)
def test_garbage_model_bytes_are_refused(data):
    with pytest.raises(ModelFormatError):
        PrefetchModel.from_bytes(data)


def test_a_plain_xgboost_model_or_forged_metadata_is_refused(sessions_model: PrefetchModel):
    import json

    booster = sessions_model.booster.copy()
    booster.set_attr(predis_prefetch=None)
    with pytest.raises(ModelFormatError, match="without Predis"):
        PrefetchModel.from_bytes(bytes(booster.save_raw(raw_format="ubj")))
    for meta in (
        [1, 2, 3],  # not an object
        {"format": 99},
        {"format": 1, "features": ["x"], "tracker": {}, "horizon": 1, "threshold": 0.5},
        {
            "format": 1,
            "features": list(FEATURE_NAMES),
            "tracker": TrackerConfig().to_dict(),
            "horizon": 8,
            "batch_size": 8,
            "threshold": 7.0,  # out of range
        },
    ):
        booster.set_attr(predis_prefetch=json.dumps(meta))
        with pytest.raises(ModelFormatError):
            PrefetchModel.from_bytes(bytes(booster.save_raw(raw_format="ubj")))


def test_predict_checks_shape(sessions_model: PrefetchModel):
    with pytest.raises(InvalidArgumentError, match="features"):
        sessions_model.predict(np.zeros((3, 2), dtype=np.float32))
    assert sessions_model.predict(np.zeros((0, len(FEATURE_NAMES)), np.float32)).shape == (0,)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"horizon": 0},
        {"batch_size": -1},
        {"target_precision": 1.5},
        {"learning_rate": 0},
        {"time_budget_s": -1},
        {"validation_fraction": 0.95},
        {"num_trees": True},
    ],
)
def test_bad_training_configuration_is_refused(kwargs):
    with pytest.raises(InvalidArgumentError):
        TrainConfig(**kwargs)


def test_too_little_data_is_refused():
    with pytest.raises(InvalidArgumentError, match="at least 1000"):
        train_model(np.arange(10, dtype=np.uint64))


def test_a_set_stop_event_ends_boosting_early(make_sessions):
    stop = threading.Event()
    stop.set()
    m = train_model(make_sessions(20_000, seed=3), TrainConfig(num_trees=50), stop=stop)
    assert m.metrics["trees"] == 1  # the first tree, then the callback stops it


def test_training_data_comes_from_the_collectors_segments(tmp_path, make_sessions):
    from predis.access_log import EVENT_DTYPE, AccessOp
    from predis.mlops.segments import SegmentError, write_segment
    from predis.prefetch.data import keys_from_segments
    from predis.security.crypto import KeyRing, generate_key_line

    ring = KeyRing.parse(generate_key_line("k1"))
    keys = make_sessions(6_000, seed=9)
    paths = []
    for part, chunk in enumerate(np.array_split(keys, 3)):
        ev = np.zeros(2 * len(chunk), dtype=EVENT_DTYPE)
        ev["key"][0::2] = chunk
        ev["op"][0::2] = AccessOp.GET
        ev["key"][1::2] = chunk + 1  # the prefetcher's own stores are not training data
        ev["op"][1::2] = AccessOp.PREFETCH
        ev["timestamp_ns"] = 1_000 * part + np.arange(len(ev))
        paths.append(tmp_path / f"{part}.pseg")
        write_segment(paths[-1], "acme", ev, ring)
    got = keys_from_segments(reversed(paths), ring)  # order comes from the headers
    assert got.tolist() == keys.tolist()
    model = train_model(got, TrainConfig(num_trees=10, threads=1), cache_items=100)
    assert model.threshold < 1.0
    with pytest.raises(SegmentError):
        keys_from_segments(paths, KeyRing.parse(generate_key_line("k1")))  # wrong key


def test_a_huge_tracker_configuration_is_refused_before_allocating():
    with pytest.raises(InvalidArgumentError, match="MiB"):
        TrackerConfig(table_bits=24, successors=64, window=12)


def test_batch_size_must_match_the_model(sessions_model):
    from predis.prefetch import LearnedPrefetcher

    with pytest.raises(InvalidArgumentError, match="batch_size"):
        LearnedPrefetcher(sessions_model, batch_size=32)
    with pytest.raises(InvalidArgumentError, match="batches of"):
        LearnedPrefetcher(batch_size=16).swap_model(sessions_model)

"""Training, the calibrated threshold, serialization and its hostile inputs."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from predis import InvalidArgumentError, PredisError
from predis.prefetch import (
    FEATURE_NAMES,
    ModelFormatError,
    PrefetchModel,
    TrackerConfig,
    TrainConfig,
    train_model,
)
from predis.prefetch.xgb_predict import DensePredictor


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


ROWS = st.integers(1, 64).flatmap(
    lambda n: hnp.arrays(
        np.float32,
        (n, len(FEATURE_NAMES)),
        elements=st.one_of(
            st.floats(-1e6, 1e6, width=32),
            st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0]),
        ),
    )
)


@settings(max_examples=150, deadline=None)
@given(rows=ROWS)
def test_the_c_api_predictor_gives_xgboosts_own_numbers(sessions_model: PrefetchModel, rows):
    predictor = DensePredictor(sessions_model.booster)
    expected = sessions_model.booster.inplace_predict(rows, validate_features=False)
    assert np.array_equal(predictor(rows), np.asarray(expected, dtype=np.float32))
    assert np.array_equal(sessions_model.predict(rows), predictor(rows))


def test_the_model_predicts_through_the_c_api_and_refuses_other_rows(
    sessions_model: PrefetchModel,
):
    sessions_model.predict(np.zeros((2, len(FEATURE_NAMES)), dtype=np.float32))
    # This XGBoost's library is reachable: the fast path is the one in use, not the
    # inplace_predict fallback.
    assert isinstance(sessions_model._predictor, DensePredictor)
    predictor = DensePredictor(sessions_model.booster)
    for bad in (
        np.zeros((2, len(FEATURE_NAMES)), dtype=np.float64),
        np.zeros((len(FEATURE_NAMES), 2), dtype=np.float32).T,
        np.zeros(len(FEATURE_NAMES), dtype=np.float32),
    ):
        with pytest.raises(PredisError, match="C-contiguous float32 matrix"):
            predictor(bad)
    with pytest.raises(PredisError, match="XGBoost prediction failed"):
        predictor(np.zeros((2, 3), dtype=np.float32))  # not the model's feature count


def test_an_early_stopped_booster_predicts_with_every_tree_as_inplace_predict_does():
    """Booster.inplace_predict uses every tree, whatever early stopping recorded (a model
    is cut at its best iteration when trained): so does the C API predictor."""
    xgb = pytest.importorskip("xgboost")
    rng = np.random.default_rng(3)
    x = rng.random((2_000, len(FEATURE_NAMES)), dtype=np.float32)
    y = (x[:, 0] + 0.3 * rng.random(2_000) > 0.8).astype(np.float32)
    train, valid = xgb.DMatrix(x[:1_500], y[:1_500]), xgb.DMatrix(x[1_500:], y[1_500:])
    booster = xgb.train(
        {"objective": "binary:logistic", "eta": 0.9, "max_depth": 6, "nthread": 1},
        train,
        num_boost_round=200,
        evals=[(valid, "valid")],
        early_stopping_rounds=3,
        verbose_eval=False,
    )
    assert booster.best_iteration + 1 < booster.num_boosted_rounds()
    rows = rng.random((300, len(FEATURE_NAMES)), dtype=np.float32)
    expected = booster.inplace_predict(rows, validate_features=False)
    assert np.array_equal(DensePredictor(booster)(rows), expected)
    best = booster[: booster.best_iteration + 1].inplace_predict(rows, validate_features=False)
    assert not np.array_equal(DensePredictor(booster)(rows), best)


def test_threads_predicting_at_once_each_get_their_own_rows(sessions_model: PrefetchModel):
    """The library's result buffer is per thread: real threads predicting different rows
    at the same time each get theirs."""
    rng = np.random.default_rng(9)
    batches = [
        rng.random((int(rng.integers(1, 50)), len(FEATURE_NAMES)), dtype=np.float32) * 20
        for _ in range(8)
    ]
    expected = [sessions_model.booster.inplace_predict(b, validate_features=False) for b in batches]
    failures: list[int] = []
    barrier = threading.Barrier(len(batches))

    def work(i: int) -> None:
        barrier.wait()
        for _ in range(300):
            if not np.array_equal(sessions_model.predict(batches[i]), expected[i]):
                failures.append(i)
                return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert failures == []
    assert all(not t.is_alive() for t in threads)


def test_a_model_that_has_predicted_still_pickles_and_copies(sessions_model: PrefetchModel):
    import copy
    import pickle

    rows = np.random.default_rng(2).random((20, len(FEATURE_NAMES)), dtype=np.float32)
    expected = sessions_model.predict(rows)  # the C API predictor is made and kept
    own_bytes = pickle.dumps(sessions_model)
    for clone in (pickle.loads(own_bytes), copy.deepcopy(sessions_model)):  # noqa: S301 - our own bytes
        assert np.array_equal(clone.predict(rows), expected)
        assert clone.threshold == sessions_model.threshold


def test_without_the_c_api_the_model_predicts_through_inplace_predict(
    sessions_model: PrefetchModel, monkeypatch
):
    from predis.prefetch import xgb_predict

    def unreachable():
        raise OSError("no library here")

    rows = np.random.default_rng(4).random((30, len(FEATURE_NAMES)), dtype=np.float32)
    expected = sessions_model.predict(rows)
    monkeypatch.setattr(xgb_predict, "_functions", unreachable)
    predictor = xgb_predict.predictor_for(sessions_model.booster)
    assert isinstance(predictor, xgb_predict.InplacePredictor)
    assert np.array_equal(predictor(rows), expected)

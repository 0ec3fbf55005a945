"""Federated learning without a framework: updates, their checks, bagging and cyclic
aggregation against a reference (margins add up), what an update may carry, and the
outcome: the federated model beats every site's purely local model on a pooled held-out
workload."""

from __future__ import annotations

import functools
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predis import InvalidArgumentError
from predis.mlops.federated import (
    FederatedSite,
    FederatedUpdateError,
    FederationSecret,
    FederationSpec,
    bag,
    check_update,
    cyclic_step,
    initial_model,
    model_digest,
)
from predis.prefetch import FEATURE_NAMES, PrefetchModel, TrackerConfig, TrainConfig, train_model
from predis.prefetch.model import log_loss, roc_auc, training_rows
from predis.workloads import CorrelatedSessions, LoopKeys, ZipfKeys

SPEC = FederationSpec(trees_per_round=4, learning_rate=0.3)
SECRET = FederationSecret(b"test-federation-secret-0123456789")
CACHE = 500


def workloads(n: int) -> dict[str, np.ndarray]:
    """Three customers with different access patterns (and key ranges)."""
    return {
        "sessions": CorrelatedSessions(20_000, 200, 10, noise=0.1, seed=1).take(n),
        "loop": LoopKeys(3_000, offset=10**6).take(n),
        "zipf": ZipfKeys(5_000, 1.1, seed=2).take(n),
    }


@functools.cache
def small_sites() -> dict[str, FederatedSite]:
    return {
        name: FederatedSite(keys, SPEC, SECRET, cache_items=CACHE)
        for name, keys in workloads(12_000).items()
    }


@functools.cache
def first_round() -> tuple[bytes, tuple[bytes, ...]]:
    base = initial_model(SPEC)
    return base, tuple(s.train_round(base) for s in small_sites().values())


@pytest.fixture
def sites() -> dict[str, FederatedSite]:
    return small_sites()


@pytest.fixture
def round_one() -> tuple[bytes, tuple[bytes, ...]]:
    return first_round()


def doc(data: bytes) -> dict:
    booster = PrefetchModel.from_bytes(data).booster
    return json.loads(bytes(booster.save_raw(raw_format="json")))


def trees(data: bytes) -> list[dict]:
    return doc(data)["learner"]["gradient_booster"]["model"]["trees"]


def margins(data: bytes, x: np.ndarray) -> np.ndarray:
    booster = PrefetchModel.from_bytes(data).booster
    return np.asarray(booster.inplace_predict(x, predict_type="margin"), dtype=np.float64)


def rows(n: int = 500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((n, len(FEATURE_NAMES))) * 20).astype(np.float32)


def rebuild(data: bytes, edit) -> bytes:
    """The update with its JSON edited by ``edit`` (a hostile site's handiwork)."""
    import xgboost as xgb

    d = doc(data)
    edit(d)
    b = xgb.Booster()
    b.load_model(bytearray(json.dumps(d).encode()))
    return bytes(b.save_raw(raw_format="ubj"))


# ---- the shared model and aggregation ----


def test_initial_model_has_no_trees_and_the_federations_base_score():
    base = initial_model(SPEC)
    model = PrefetchModel.from_bytes(base)
    assert model.booster.num_boosted_rounds() == 0
    assert np.allclose(model.predict(rows()), SPEC.base_score)
    assert model.threshold == 1.0  # never prefetches until a site calibrates it


def test_bagging_adds_the_average_of_the_sites_margins(round_one):
    base, updates = round_one
    x = rows()
    bagged = bag(base, updates, SPEC)
    assert len(trees(bagged)) == sum(len(trees(u)) for u in updates)
    # Reference: an update's margin is the sum of its trees (base score 0.5 = margin 0).
    want = margins(base, x) + np.mean([margins(u, x) for u in updates], axis=0)
    assert np.allclose(margins(bagged, x), want, atol=1e-4)
    # Round two boosts on the bagged model and appends again.
    weights = [0.5, 0.3, 0.2]
    again = bag(bagged, [rebase(u, bagged) for u in updates], SPEC, weights)
    want2 = margins(bagged, x) + sum(
        w * margins(u, x) for w, u in zip(weights, updates, strict=True)
    )
    assert np.allclose(margins(again, x), want2, atol=1e-4)


def rebase(update: bytes, base: bytes) -> bytes:
    """The same trees, claimed to be boosted from ``base`` (for aggregation arithmetic)."""

    def edit(d):
        d["learner"]["attributes"]["predis_federated"] = json.dumps({"base": model_digest(base)})

    return rebuild(update, edit)


def test_cyclic_step_appends_one_sites_trees_unscaled(sites):
    base = initial_model(SPEC)
    x = rows()
    model = base
    for site in sites.values():  # each site boosts on the previous one's result
        update = site.train_round(model)
        nxt = cyclic_step(model, update, SPEC)
        assert np.allclose(margins(nxt, x), margins(model, x) + margins(update, x), atol=1e-4)
        model = nxt
    assert len(trees(model)) == 3 * SPEC.trees_per_round


def test_one_bad_update_fails_bagging_and_is_named(round_one):
    base, updates = round_one
    with pytest.raises(FederatedUpdateError, match="update 1"):
        bag(base, [updates[0], b"garbage", updates[2]], SPEC)
    with pytest.raises(InvalidArgumentError):
        bag(base, [], SPEC)
    with pytest.raises(InvalidArgumentError):
        bag(base, updates, SPEC, weights=[1.0, 0.0, 0.5])


# ---- what an update may carry ----


def test_updates_carry_no_row_statistics_or_training_figures(round_one):
    _, updates = round_one
    for u in updates:
        for t in trees(u):
            assert set(t["sum_hessian"]) == {0.0}
            assert set(t["loss_changes"]) == {0.0}
            leaf = np.asarray(t["left_children"]) == -1
            assert np.all(np.asarray(t["base_weights"])[~leaf] == 0.0)
        model = PrefetchModel.from_bytes(u)
        assert model.metrics == {}
        attrs = doc(u)["learner"]["attributes"]
        assert set(attrs) == {"predis_prefetch", "predis_federated"}
        assert "rows" not in attrs["predis_prefetch"]
        assert "positive_rate" not in attrs["predis_prefetch"]


def test_no_key_leaves_a_site_raw_or_pseudonymized():
    # Keys far from any feature value, so a match could only be a leaked key.
    keys = CorrelatedSessions(20_000, 200, 10, noise=0.1, seed=5).take(12_000) + np.uint64(
        7_000_000_000_000
    )
    site = FederatedSite(keys, SPEC, SECRET, cache_items=CACHE)
    update = site.train_round(initial_model(SPEC))
    distinct = np.unique(keys)
    pseudonyms = np.unique(SECRET.pseudonymize(keys))
    text = json.dumps(doc(update))
    numbers = {float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", text)}
    for ks in (distinct, pseudonyms):
        assert not numbers & {float(k) for k in ks.tolist()}
        assert not numbers & {float(np.float32(k)) for k in ks.tolist()}
        sample = ks[:: max(1, len(ks) // 2000)]
        assert not any(int(k).to_bytes(8, "little") in update for k in sample.tolist())
    # Every split is on one of the 17 key-free features.
    for t in trees(update):
        assert max(t["split_indices"]) < len(FEATURE_NAMES)


# ---- hostile and malformed updates ----


def test_oversized_update_is_refused_before_parsing(round_one):
    base, updates = round_one
    small = FederationSpec(trees_per_round=4, learning_rate=0.3, max_update_bytes=2048)
    with pytest.raises(FederatedUpdateError, match="over the federation's limit of 2,048"):
        check_update(updates[0], small, base)
    with pytest.raises(FederatedUpdateError, match="over the federation's limit"):
        check_update(b"\0" * (SPEC.max_update_bytes + 1), SPEC, base)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["learner"]["attributes"].pop("predis_federated"), "not boosted from"),
        (
            lambda d: d["learner"]["attributes"].update(predis_federated='{"base": "00"}'),
            "not boosted from",
        ),
        (lambda d: leaf(d, 50.0), "leaf value beyond"),
        (lambda d: leaf(d, float("nan")), "not finite"),
        (lambda d: tree0(d).update(sum_hessian=[3.0] * len(tree0(d)["sum_hessian"])), "row stat"),
        (lambda d: d["learner"]["attributes"].pop("predis_prefetch"), "malformed"),
        (lambda d: d["learner"]["objective"].update(name="reg:squarederror"), "objective"),
    ],
)
def test_hostile_updates_are_rejected_with_the_reason(round_one, edit, message):
    base, updates = round_one
    bad = rebuild(updates[0], edit)
    with pytest.raises(FederatedUpdateError, match=message):
        check_update(bad, SPEC, base)


def tree0(d: dict) -> dict:
    return d["learner"]["gradient_booster"]["model"]["trees"][0]


def leaf(d: dict, value: float) -> None:
    t = tree0(d)
    i = t["left_children"].index(-1)
    t["split_conditions"][i] = value


def test_updates_for_another_federation_are_rejected(round_one, sites):
    base, updates = round_one
    fewer = FederationSpec(trees_per_round=2, learning_rate=0.3)
    with pytest.raises(FederatedUpdateError, match="trees; an update holds 1 to 2"):
        check_update(updates[0], fewer, base)
    other = FederationSpec(trees_per_round=4, horizon=16)
    with pytest.raises(FederatedUpdateError, match="horizon"):
        check_update(updates[0], other, base)
    tracker = FederationSpec(trees_per_round=4, tracker=TrackerConfig(table_bits=12))
    with pytest.raises(FederatedUpdateError, match="candidate generator"):
        check_update(updates[0], tracker, base)
    shallow = FederationSpec(trees_per_round=4, learning_rate=0.3, max_depth=2)
    with pytest.raises(FederatedUpdateError, match=r"deeper|max_depth"):
        check_update(updates[0], shallow, base)
    with pytest.raises(FederatedUpdateError, match="model bytes"):
        check_update("not bytes", SPEC, base)
    # A site refuses a global model for another spec too.
    with pytest.raises(FederatedUpdateError, match="another federation spec"):
        sites["zipf"].train_round(initial_model(other))


@settings(max_examples=40, deadline=None)
@given(
    which=st.integers(0, 2),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.floats(0.0, 1.0, exclude_max=True), max_size=8),
)
def test_damaged_updates_only_ever_raise_the_update_error(which, cut, flips):
    base, updates = first_round()
    raw = bytearray(updates[which])
    for f in flips:
        raw[int(f * len(raw))] ^= 0xFF
    damaged = bytes(raw[: int(cut * len(raw))])
    try:
        trees_ = check_update(damaged, SPEC, base)
    except FederatedUpdateError:
        return
    # Whatever got through passed every check: bounded, finite, the federation's shape.
    assert 1 <= len(trees_) <= SPEC.trees_per_round


# ---- the outcome ----


def test_federated_model_beats_every_local_model_on_a_pooled_held_out_workload():
    spec = FederationSpec(trees_per_round=10, learning_rate=0.3)
    data = workloads(30_000)
    config = TrainConfig(num_trees=40, learning_rate=0.3, threads=1)
    # Pooled held-out rows: an equal share of each site's newest requests (never trained on).
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for keys in data.values():
        r = training_rows(keys, config, TrackerConfig(), cache_items=CACHE)
        idx = rng.choice(np.flatnonzero(r.valid), 3000, replace=False)
        xs.append(r.features[idx])
        ys.append(r.labels[idx])
    x, y = np.concatenate(xs), np.concatenate(ys)

    local = {
        name: train_model(keys, config, cache_items=CACHE).predict(x) for name, keys in data.items()
    }
    fed_sites = [FederatedSite(k, spec, SECRET, cache_items=CACHE) for k in data.values()]
    model = initial_model(spec)
    for _ in range(4):
        model = bag(model, [s.train_round(model) for s in fed_sites], spec)
    p = PrefetchModel.from_bytes(model).predict(x)
    fed_loss, fed_auc = log_loss(p, y), roc_auc(p, y)
    for name, q in local.items():
        assert fed_loss < log_loss(q, y) - 0.02, (name, fed_loss, log_loss(q, y))
        assert fed_auc > roc_auc(q, y), (name, fed_auc, roc_auc(q, y))
    # Each site can serve it: a calibrated threshold from its own held-out rows.
    served = fed_sites[0].calibrate(model)
    assert 0.0 < served.threshold < 1.0
    assert served.metrics["valid_precision"] >= 0.85

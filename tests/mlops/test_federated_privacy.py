"""Federated privacy: key pseudonyms (a keyed hash of the block, offsets kept), the
federation secret's handling, and differential privacy: the (epsilon, delta) accounting,
the noise's scale tested statistically, and the budget."""

from __future__ import annotations

import base64
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from predis import InvalidArgumentError
from predis.mlops.federated import (
    DPConfig,
    FederatedSite,
    FederationSecret,
    FederationSpec,
    PrivacyBudgetError,
    add_leaf_noise,
    gaussian_sigma,
    initial_model,
    laplace_scale,
)
from predis.mlops.federated.updates import _to_json, _trees
from predis.prefetch import PrefetchModel, TrackerConfig
from predis.prefetch.features import candidate_rows
from predis.workloads import CorrelatedSessions, LoopKeys

SECRET = FederationSecret(b"test-federation-secret-0123456789")
u64 = st.integers(0, 2**64 - 1)


# ---- key pseudonyms ----


@settings(max_examples=80, deadline=None)
@given(keys=st.lists(u64, min_size=1, max_size=60), bits=st.integers(4, 32))
def test_pseudonyms_are_consistent_and_keep_in_block_differences(keys, bits):
    secret = FederationSecret(b"k" * 32, block_bits=bits)
    arr = np.array(keys, dtype=np.uint64)
    p = secret.pseudonymize(arr)
    mask = (1 << bits) - 1
    for i, a in enumerate(keys):
        assert int(p[i]) & mask == a & mask  # the offset in the block is kept
        for j, b in enumerate(keys):
            # Equal keys, equal pseudonyms; keys of one block keep their difference.
            assert (a == b) == (int(p[i]) == int(p[j])) or (a >> bits) != (b >> bits)
            if a >> bits == b >> bits:
                assert int(p[i]) - int(p[j]) == a - b
    assert np.array_equal(secret.pseudonymize(arr), p)  # deterministic


def test_pseudonyms_hide_the_block_and_depend_on_the_secret():
    keys = np.arange(0, 1 << 24, 4099, dtype=np.uint64)
    a = SECRET.pseudonymize(keys)
    b = FederationSecret(b"another-federation-secret-000000").pseudonymize(keys)
    assert not np.any((a >> np.uint64(16)) == (keys >> np.uint64(16)))
    assert np.mean(a == b) < 0.01
    # Distinct blocks stay distinct (no collisions among these 256 blocks).
    blocks = np.unique(keys >> np.uint64(16))
    assert len(np.unique(a >> np.uint64(16))) == len(blocks)


def test_features_are_the_same_on_pseudonyms():
    """Features only read differences within a block, so training on pseudonyms sees the
    same rows (up to the tracker's hash-table placement)."""
    keys = np.concatenate(
        [
            CorrelatedSessions(50_000, 100, 10, noise=0.05, seed=3).take(6000),
            LoopKeys(3000, offset=20_000).take(6000),
        ]
    )
    cfg = TrackerConfig()
    _, c1, f1 = candidate_rows(keys, cfg, 8)
    _, c2, f2 = candidate_rows(SECRET.pseudonymize(keys), cfg, 8)
    assert abs(len(c1) - len(c2)) <= 0.01 * len(c1)
    n = min(len(f1), len(f2))
    same = np.mean(np.all(f1[:n] == f2[:n], axis=1))
    assert same > 0.95


def test_secret_from_environment_and_owner_only_file(tmp_path, monkeypatch):
    line = "federation:" + base64.b64encode(b"s" * 32).decode()
    monkeypatch.delenv("PREDIS_FEDERATION_SECRET", raising=False)
    monkeypatch.delenv("PREDIS_FEDERATION_SECRET_FILE", raising=False)
    with pytest.raises(InvalidArgumentError, match="no federation secret"):
        FederationSecret.from_environment()
    path = tmp_path / "secret"
    path.write_text(line + "\n")
    os.chmod(path, 0o644)
    monkeypatch.setenv("PREDIS_FEDERATION_SECRET_FILE", str(path))
    with pytest.raises(InvalidArgumentError, match="chmod 600"):
        FederationSecret.from_environment()
    os.chmod(path, 0o600)
    from_file = FederationSecret.from_environment()
    monkeypatch.setenv("PREDIS_FEDERATION_SECRET", line)
    from_env = FederationSecret.from_environment()
    keys = np.arange(10, dtype=np.uint64) << np.uint64(20)
    assert np.array_equal(from_file.pseudonymize(keys), from_env.pseudonymize(keys))
    assert "ssss" not in repr(from_env)
    assert base64.b64encode(b"s" * 32).decode() not in repr(from_env)


@pytest.mark.parametrize("text", ["", "federation:", "federation:@@@", "x:" + "QUFB"])
def test_bad_secrets_are_refused(text):
    with pytest.raises(InvalidArgumentError):
        FederationSecret.parse(text)


def test_link_is_refused_as_a_secret_file(tmp_path):
    target = tmp_path / "dir"
    target.mkdir()
    with pytest.raises(InvalidArgumentError, match="not a regular file"):
        FederationSecret.from_file(target)


# ---- the accounting ----


@pytest.mark.parametrize("eps", [0.1, 1.0, 8.0])
@pytest.mark.parametrize("trees", [1, 30, 200])
def test_gaussian_sigma_meets_the_target_epsilon_exactly(eps, trees):
    delta, sens = 1e-6, 0.3
    sigma = gaussian_sigma(eps, delta, sens, trees)
    # Back through zCDP: rho per tree, composed, converted to (epsilon, delta).
    rho = trees * sens**2 / (2 * sigma**2)
    got = rho + 2 * math.sqrt(rho * math.log(1 / delta))
    assert got == pytest.approx(eps, rel=1e-9)
    # More trees or a smaller epsilon need more noise.
    assert gaussian_sigma(eps, delta, sens, trees + 1) > sigma
    assert gaussian_sigma(eps / 2, delta, sens, trees) > sigma


def test_laplace_scale_is_basic_composition():
    assert laplace_scale(1.0, 0.3, 20) == pytest.approx(6.0)
    cfg = DPConfig(epsilon=2.0, clip=0.5, max_trees=10, mechanism="laplace")
    assert cfg.sensitivity(0.2) == pytest.approx(0.2)
    assert cfg.noise_scale(0.2) == pytest.approx(0.2 * 10 / 2.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epsilon": 0},
        {"epsilon": -1},
        {"epsilon": math.inf},
        {"epsilon": 1, "delta": 0},
        {"epsilon": 1, "delta": 0.7},
        {"epsilon": 1, "clip": 0},
        {"epsilon": 1, "max_trees": 0},
        {"epsilon": 1, "mechanism": "uniform"},
        {"epsilon": True},
    ],
)
def test_dp_config_is_validated(kwargs):
    with pytest.raises(InvalidArgumentError, match="DPConfig"):
        DPConfig(**kwargs)


# ---- the noise, statistically ----


def leaves_tree(values: np.ndarray) -> dict:
    n = len(values)
    return {
        "left_children": [-1] * n,
        "split_conditions": values.astype(np.float32).tolist(),
        "base_weights": values.astype(np.float32).tolist(),
    }


@pytest.mark.parametrize("mechanism", ["gaussian", "laplace"])
def test_leaf_noise_has_the_calibrated_distribution(mechanism):
    cfg = DPConfig(epsilon=1.0, delta=1e-5, clip=1.0, max_trees=20, mechanism=mechanism)
    scale = cfg.noise_scale(0.1)
    values = np.zeros(20_000)
    tree = leaves_tree(values)
    add_leaf_noise(tree, 0.1, scale, mechanism, np.random.default_rng(7))
    noise = np.asarray(tree["split_conditions"], dtype=np.float64)
    assert np.array_equal(np.asarray(tree["base_weights"]), np.asarray(tree["split_conditions"]))
    if mechanism == "gaussian":
        assert stats.kstest(noise, "norm", args=(0, scale)).pvalue > 1e-3
        # The sample variance against a chi-square interval for sigma**2 (99.9%).
        n = len(noise)
        lo, hi = stats.chi2.ppf([0.0005, 0.9995], n - 1)
        s2 = noise.var(ddof=1)
        assert lo / (n - 1) < s2 / scale**2 < hi / (n - 1)
        # Wrong by a factor of 1.1 would fail: the test can tell.
        assert stats.kstest(noise, "norm", args=(0, 1.1 * scale)).pvalue < 1e-3
    else:
        assert stats.kstest(noise, "laplace", args=(0, scale)).pvalue > 1e-3
        assert stats.kstest(noise, "laplace", args=(0, 1.1 * scale)).pvalue < 1e-3


def test_leaves_are_clipped_before_the_noise():
    values = np.array([-5.0, -0.05, 0.0, 0.02, 7.0])
    tree = leaves_tree(values)
    add_leaf_noise(tree, 0.1, 1e-12, "gaussian", np.random.default_rng(0))
    assert np.allclose(tree["split_conditions"], [-0.1, -0.05, 0.0, 0.02, 0.1], atol=1e-6)


def test_a_dp_site_releases_noise_of_the_calibrated_scale():
    """Releases of the first tree from the same rows differ only by the noise: per leaf,
    the variance across releases estimates sigma**2 (pooled over leaves, chi-square)."""
    spec = FederationSpec(trees_per_round=1, learning_rate=0.3)
    keys = CorrelatedSessions(20_000, 200, 10, noise=0.1, seed=1).take(12_000)
    dp = DPConfig(epsilon=20.0, delta=1e-5, clip=1.0, max_trees=5)
    sigma = dp.noise_scale(spec.learning_rate)
    base = initial_model(spec)
    releases = []
    for seed in range(6):
        site = FederatedSite(
            keys, spec, SECRET, cache_items=500, dp=dp, rng=np.random.default_rng(seed)
        )
        tree = _trees(_to_json(PrefetchModel.from_bytes(site.train_round(base)).booster))[0]
        leaf = np.asarray(tree["left_children"]) == -1
        releases.append(np.asarray(tree["split_conditions"], dtype=np.float64)[leaf])
    x = np.vstack(releases)  # releases x leaves: the same structure every time
    dof = (x.shape[0] - 1) * x.shape[1]
    pooled = float(((x - x.mean(axis=0)) ** 2).sum()) / dof
    lo, hi = stats.chi2.ppf([0.0005, 0.9995], dof)
    assert lo / dof < pooled / sigma**2 < hi / dof


def test_a_dp_site_refuses_to_exceed_its_budget():
    spec = FederationSpec(trees_per_round=2, learning_rate=0.3)
    keys = LoopKeys(3000).take(8000)
    site = FederatedSite(
        keys, spec, SECRET, dp=DPConfig(epsilon=5.0, max_trees=4), rng=np.random.default_rng(0)
    )
    base = initial_model(spec)
    site.train_round(base)
    site.train_round(base)
    with pytest.raises(PrivacyBudgetError, match="covers 4 trees, 4 already sent"):
        site.train_round(base)
    assert site.released == 4

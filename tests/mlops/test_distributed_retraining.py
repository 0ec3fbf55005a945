"""Distributed retraining: xgboost.dask on a loopback LocalCluster against in-process
training on the same rows, the config option and its validation, and an unreachable
scheduler failing the job (recorded) rather than the worker."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from predis import InvalidArgumentError
from predis.mlops import DemandWindow, ModelRegistry, RetrainConfig, Retrainer
from predis.mlops.distributed import make_dask_fit, validate_scheduler_address
from predis.prefetch import TrackerConfig, TrainConfig, train_model
from predis.prefetch.model import roc_auc, training_rows
from predis.workloads import CorrelatedSessions

distributed = pytest.importorskip("distributed")
pytest.importorskip("dask.array")

CACHE = 150
TRAIN = TrainConfig(num_trees=30, threads=1, batch_size=16, max_rows=60_000, time_budget_s=60.0)


def sessions(n: int, seed: int = 3) -> np.ndarray:
    return CorrelatedSessions(1_000_000, 300, 12, alpha=0.8, noise=0.05, seed=seed).take(n)


@pytest.fixture(scope="module")
def cluster():
    # Two single-threaded workers in this process (no worker processes to spawn on a 2-core
    # machine) that still talk TCP on loopback, as a remote cluster's workers would.
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as c:
        yield c


def test_dask_training_matches_in_process_quality(cluster):
    keys = sessions(24_000)
    local = train_model(keys, TRAIN, cache_items=CACHE)
    remote = train_model(
        keys, TRAIN, cache_items=CACHE, fit=make_dask_fit(cluster.scheduler_address)
    )
    # Held-out rows of a later stretch of the same workload: neither model saw them.
    fresh = training_rows(sessions(12_000, seed=9), TRAIN, TrackerConfig(), cache_items=CACHE)
    x, y = fresh.features, fresh.labels
    auc_local, auc_remote = roc_auc(local.predict(x), y), roc_auc(remote.predict(x), y)
    assert auc_local > 0.8  # a real model, so equal quality is a real claim
    # Distributed hist training sketches quantiles per worker, so trees differ slightly;
    # the quality must not.
    assert abs(auc_remote - auc_local) < 0.02
    assert abs(remote.metrics["valid_logloss"] - local.metrics["valid_logloss"]) < 0.03
    assert remote.metrics["rows"] == local.metrics["rows"]  # the same rows went in
    assert abs(remote.threshold - local.threshold) <= 0.1


def test_retrainer_trains_on_the_cluster_and_gates_as_usual(tmp_path, cluster):
    window = DemandWindow(20_000)
    window.extend(sessions(16_000))
    config = RetrainConfig(
        train=TRAIN,
        cache_items=CACHE,
        window=16_000,
        min_window=8_000,
        dask_scheduler=cluster.scheduler_address,
    )
    reg = ModelRegistry(tmp_path / "models", "acme")
    outcome = Retrainer(reg, window, config).run_job("manual", 16_000, {})
    assert outcome.error is None, outcome.error
    assert outcome.report is not None
    assert outcome.report.schema_ok
    # No champion: the challenger must beat the cache without prefetching on sessions.
    assert outcome.registered is not None
    assert outcome.report.challenger_miss_ratio < outcome.report.champion_miss_ratio


def test_unreachable_scheduler_fails_the_job_not_the_worker(tmp_path):
    window = DemandWindow(20_000)
    window.extend(sessions(10_000))
    cfg = RetrainConfig(
        train=dataclasses.replace(TRAIN, num_trees=5),
        cache_items=CACHE,
        window=10_000,
        min_window=8_000,
        dask_scheduler="tcp://127.0.0.1:9",  # discard port: nothing listens
        dask_timeout_s=2.0,
    )
    reg = ModelRegistry(tmp_path / "models", "acme")
    retrainer = Retrainer(reg, window, cfg)
    outcome = retrainer.run_job("manual", 10_000, {})
    assert outcome.registered is None
    assert outcome.error is not None
    assert "Dask scheduler" in outcome.error
    assert any(e.kind == "retrain-failed" for e in retrainer.events.events())


@pytest.mark.parametrize(
    "address",
    [
        "",
        "127.0.0.1:8786",
        "http://127.0.0.1:8786",
        "tcp://",
        "tcp://host",
        "tcp://h:0",
        "tcp://h:70000",
        "tcp://a b:1",
        8786,
        None,
    ],
)
def test_scheduler_address_is_validated(address):
    with pytest.raises(InvalidArgumentError, match="dask_scheduler"):
        validate_scheduler_address(address)
    if address is not None:
        with pytest.raises(InvalidArgumentError):
            RetrainConfig(dask_scheduler=address)


def test_in_process_is_the_default():
    assert RetrainConfig().dask_scheduler is None
    assert validate_scheduler_address("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"

"""The in-process Prometheus endpoint: /metrics parsed with prometheus_client.parser and
checked against known cache activity, MLOps sources, prefetch stats, auth and GPU absence."""

from __future__ import annotations

import base64
import math
import os
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from monitoring_helpers import PREFETCH, CacheWithPrefetch, parse_metrics, scrape, value
from prometheus_client import CollectorRegistry

import predis
from predis import InvalidArgumentError
from predis.monitoring import CATALOGUE, MetricsAuth, Monitor, PredisCollector, serve
from predis.monitoring.metrics import HistogramValue, sample
from predis.monitoring.sources import _Rate


def registry_for(monitor: Monitor) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PredisCollector(monitor))
    return reg


def test_catalogue_follows_the_naming_rules():
    assert len(CATALOGUE) >= 40
    for name, m in CATALOGUE.items():
        assert name == m.name
        assert name.startswith("predis_")
        assert m.type in ("counter", "gauge", "histogram", "info")
        assert (m.type == "counter") == name.endswith("_total")
        assert (m.type == "info") == name.endswith("_info")
        assert m.unit in ("", "seconds", "bytes", "ratio")
        if m.unit:  # base units, named in the metric (before _total / _info)
            assert f"_{m.unit}" in name
        assert m.help.strip()


def test_sample_refuses_wrong_labels_and_values():
    with pytest.raises(InvalidArgumentError, match="not in the metric catalogue"):
        sample("predis_nope", 1)
    with pytest.raises(InvalidArgumentError, match="takes labels"):
        sample("predis_keys", 1, {"cache": "a", "extra": "b"})
    with pytest.raises(InvalidArgumentError, match="histogram"):
        sample("predis_ml_inference_duration_seconds", 1.0, {"cache": "a"})
    with pytest.raises(InvalidArgumentError, match="NaN"):
        sample("predis_keys", math.nan, {"cache": "a"})


def test_metrics_match_known_activity():
    cache = predis.Cache(capacity_bytes=1 << 20, clock="manual")
    for k in range(100):
        cache.put(k, b"v" * 10)
    for k in range(50):
        cache.put(k, b"w" * 10)  # 50 updates
    hits = sum(cache.get(k) is not None for k in range(150))  # 100 hits, 50 misses
    assert hits == 100
    assert cache.delete(3)
    assert not cache.delete(1000)
    cache.put("ttl", b"x", ttl=1)
    cache.advance_time(2)
    assert cache.get("ttl") is None  # expired: a miss and an expiration
    with serve(cache, port=0, name="main", gpu=False) as server:
        s = scrape(server.url)
    c = {"cache": "main"}
    assert value(s, "predis_up", **c) == 1
    assert value(s, "predis_keyspace_hits_total", **c) == 100
    assert value(s, "predis_keyspace_misses_total", **c) == 51
    assert value(s, "predis_commands_total", cache="main", cmd="get") == 151
    assert value(s, "predis_commands_total", cache="main", cmd="put") == 151
    assert value(s, "predis_commands_total", cache="main", cmd="delete") == 1
    assert value(s, "predis_inserted_keys_total", **c) == 101
    assert value(s, "predis_updated_keys_total", **c) == 50
    assert value(s, "predis_expired_keys_total", **c) == 1
    assert value(s, "predis_keys", **c) == 99
    assert value(s, "predis_hit_ratio", **c) == pytest.approx(100 / 151)
    assert value(s, "predis_memory_max_bytes", **c) == 1 << 20
    stats = cache.stats()
    assert value(s, "predis_memory_used_bytes", **c) == stats.bytes_used > 0
    assert value(s, "predis_access_log_events_total", **c) == stats.events_logged
    info = {"cache": "main", "backend": "cpu", "policy": "lru", "version": predis.__version__}
    assert value(s, "predis_cache_info", **info) == 1
    assert value(s, "predis_exporter_last_scrape_error") == 0
    assert value(s, "predis_exporter_scrape_duration_seconds") >= 0
    # Absent, not zero: this machine has no usable GPU, and no prefetcher is attached.
    assert not any(name.startswith("predis_gpu_") for name, _ in s)
    assert not any(name.startswith("predis_prefetch_") for name, _ in s)


def test_op_latency_histograms_match_known_activity():
    cache = predis.Cache(capacity_bytes=1 << 20, latency_sampling=1)
    for k in range(30):
        cache.put(k, b"v")
    for k in range(45):
        cache.get(k)
    cache.mget(list(range(10)))
    cache.delete(1)
    with serve(cache, port=0, name="lat", gpu=False) as server:
        s = scrape(server.url)
    assert value(s, "predis_op_duration_sampling_period", cache="lat") == 1
    for op, n in (("get", 45), ("put", 30), ("delete", 1), ("get_batch", 1), ("contains", 0)):
        assert value(s, "predis_op_duration_seconds_count", cache="lat", op=op) == n
        assert value(s, "predis_op_duration_seconds_bucket", cache="lat", op=op, le="+Inf") == n
        assert (value(s, "predis_op_duration_seconds_sum", cache="lat", op=op) > 0) == (n > 0)
    # Cumulative and non-decreasing over the bounds, which are powers of two of ns.
    les = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in s.items()
        if name == "predis_op_duration_seconds_bucket" and dict(labels)["op"] == "get"
    )
    assert [v for _, v in les] == sorted(v for _, v in les)
    assert les[0][0] == pytest.approx(64e-9)
    cache.latency_sampling = 0
    cache.get(1)
    reg = registry_for(Monitor().add_cache(cache, "lat"))
    labels = {"cache": "lat", "op": "get"}
    assert reg.get_sample_value("predis_op_duration_seconds_count", labels) == 45
    assert reg.get_sample_value("predis_op_duration_sampling_period", {"cache": "lat"}) == 0


def test_retraining_source(tmp_path):
    from predis.mlops import DemandWindow, ModelRegistry, RetrainConfig, Retrainer

    reg = ModelRegistry(tmp_path / "reg", "acme")
    window = DemandWindow(100_000)
    window.extend(np.arange(500, dtype=np.uint64))  # below min_window: the job fails
    r = Retrainer(reg, window, RetrainConfig())
    monitor = Monitor().add_retraining(r, "acme")
    reg_prom = registry_for(monitor)
    c = {"loop": "acme"}
    assert reg_prom.get_sample_value("predis_retraining_last_run_timestamp_seconds", c) is None
    before = time.time()
    assert r.trigger("first")
    assert not r.trigger("second")  # skipped: the first is queued
    assert reg_prom.get_sample_value("predis_retraining_in_progress", c) == 1
    r.start()
    try:
        assert r.wait_idle(60)
    finally:
        r.close()

    def runs(outcome: str) -> float | None:
        return reg_prom.get_sample_value("predis_retraining_runs_total", {**c, "outcome": outcome})

    assert (runs("registered"), runs("rejected"), runs("failed"), runs("skipped")) == (0, 0, 1, 1)
    assert reg_prom.get_sample_value("predis_retraining_duration_seconds_count", c) == 1
    assert reg_prom.get_sample_value("predis_retraining_in_progress", c) == 0
    last = reg_prom.get_sample_value("predis_retraining_last_run_timestamp_seconds", c)
    assert last is not None
    assert before <= last <= time.time()
    kind = {**c, "kind": "retrain-failed"}
    assert reg_prom.get_sample_value("predis_mlops_events_total", kind) == 1
    kind = {**c, "kind": "retrain-skipped"}
    assert reg_prom.get_sample_value("predis_mlops_events_total", kind) == 1
    kind = {**c, "kind": "promoted"}
    assert reg_prom.get_sample_value("predis_mlops_events_total", kind) == 0
    with pytest.raises(InvalidArgumentError, match="MLOpsLoop or Retrainer"):
        Monitor().add_retraining(object(), "x")


def test_evictions_are_counted():
    cache = predis.Cache(capacity_bytes=4096, max_items=16, clock="manual")
    cache.mput(np.arange(200, dtype=np.uint64), [b"x" * 100] * 200)
    reg = registry_for(Monitor().add_cache(cache, "small"))
    evicted = reg.get_sample_value("predis_evicted_keys_total", {"cache": "small"})
    assert evicted == cache.stats().evictions > 0
    assert reg.get_sample_value("predis_keys", {"cache": "small"}) == len(cache)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("gpd"), st.integers(0, 30)), max_size=200))
def test_counters_match_a_reference_model(ops):
    cache = predis.Cache(capacity_bytes=1 << 20, clock="manual", sample_rate=0.0)
    model: dict[int, bytes] = {}
    want = {"hits": 0, "misses": 0, "inserts": 0, "updates": 0, "deletes": 0}
    for op, k in ops:
        if op == "g":
            got = cache.get(k)
            assert got == model.get(k)
            want["hits" if k in model else "misses"] += 1
        elif op == "p":
            want["updates" if k in model else "inserts"] += 1
            model[k] = bytes([k])
            cache.put(k, model[k])
        else:
            want["deletes"] += k in model
            model.pop(k, None)
            cache.delete(k)
    reg = registry_for(Monitor().add_cache(cache, "m"))
    c = {"cache": "m"}
    assert reg.get_sample_value("predis_keyspace_hits_total", c) == want["hits"]
    assert reg.get_sample_value("predis_keyspace_misses_total", c) == want["misses"]
    assert reg.get_sample_value("predis_inserted_keys_total", c) == want["inserts"]
    assert reg.get_sample_value("predis_updated_keys_total", c) == want["updates"]
    assert reg.get_sample_value("predis_deleted_keys_total", c) == want["deletes"]
    assert reg.get_sample_value("predis_keys", c) == len(model)
    lookups = want["hits"] + want["misses"]
    ratio = reg.get_sample_value("predis_hit_ratio", c)
    assert (ratio is None) == (lookups == 0)
    if lookups:
        assert ratio == pytest.approx(want["hits"] / lookups)


def test_commands_per_second_is_the_rate_between_collections():
    r = _Rate(min_gap=0.5)
    assert r.update(100, now=10.0) is None  # one observation: no rate yet
    assert r.update(150, now=10.2) is None  # too close to judge
    assert r.update(400, now=12.0) == pytest.approx(150.0)
    assert r.update(400, now=12.1) == pytest.approx(150.0)  # kept until the next gap
    assert r.update(5, now=13.0) is None  # counters went back: a new cache


def test_prefetch_metrics_come_from_stats_prefetch():
    cache = CacheWithPrefetch(PREFETCH)
    reg = registry_for(Monitor().add_cache(cache, "pf"))
    c = {"cache": "pf"}
    assert reg.get_sample_value("predis_prefetch_issued_total", c) == 40
    assert reg.get_sample_value("predis_prefetch_used_total", c) == 25
    assert reg.get_sample_value("predis_prefetch_wasted_total", c) == 10
    assert reg.get_sample_value("predis_prefetch_errors_total", c) == 2
    assert reg.get_sample_value("predis_prefetch_dropped_total", c) == 3
    assert reg.get_sample_value("predis_ml_inference_batches_total", c) == 7
    h = "predis_ml_inference_duration_seconds"
    assert reg.get_sample_value(f"{h}_bucket", {**c, "le": "0.001"}) == 2
    assert reg.get_sample_value(f"{h}_bucket", {**c, "le": "0.005"}) == 6
    assert reg.get_sample_value(f"{h}_bucket", {**c, "le": "+Inf"}) == 7
    assert reg.get_sample_value(f"{h}_count", c) == 7
    assert reg.get_sample_value(f"{h}_sum", c) == pytest.approx(0.0125)
    cache.prefetch = replace(PREFETCH, issued=41)
    assert reg.get_sample_value("predis_prefetch_issued_total", c) == 41  # live, per scrape
    cache.prefetch = None
    assert reg.get_sample_value("predis_prefetch_issued_total", c) is None


def test_a_failing_source_is_counted_and_the_rest_still_served():
    class Broken:
        name = "broken"

        def collect(self):
            raise RuntimeError("boom")

    cache = predis.Cache(capacity_bytes=1 << 20)
    monitor = Monitor().add_cache(cache, "ok").add_source(Broken())
    reg = registry_for(monitor)
    assert reg.get_sample_value("predis_up", {"cache": "ok"}) == 1
    assert reg.get_sample_value("predis_exporter_last_scrape_error") == 1
    assert reg.get_sample_value("predis_exporter_source_errors_total", {"source": "broken"}) >= 1


def test_monitor_refuses_duplicates_and_non_sources():
    cache = predis.Cache(capacity_bytes=1 << 20)
    m = Monitor().add_cache(cache, "a")
    with pytest.raises(InvalidArgumentError, match="already added"):
        m.add_cache(cache, "a")
    with pytest.raises(InvalidArgumentError, match="collect"):
        m.add_source(object())  # type: ignore[arg-type]
    for bad in ("", "../etc", "a b", "x" * 64, "a\0b", "-lead"):
        with pytest.raises(InvalidArgumentError):
            m.add_cache(cache, bad)


# ---- MLOps sources ----


def test_mlops_sources(tmp_path):
    from predis.mlops import (
        MSPRT,
        FeatureDriftDetector,
        ModelRegistry,
        PopularityDriftDetector,
        StreamDriftDetector,
    )

    stream = StreamDriftDetector("hits", delta=0.002)
    rng = np.random.default_rng(0)
    stream.update_many(rng.random(3000) < 0.9)
    stream.update_many(rng.random(3000) < 0.1)  # a shift ADWIN must confirm
    feature = FeatureDriftDetector(["size"], bins=10, min_window=50)
    feature.fit(rng.normal(0, 1, (2000, 1)))
    check = feature.check(rng.normal(3, 1, (500, 1)))
    pop = PopularityDriftDetector(window=1000, top=10)
    pop.fit(rng.integers(0, 100, 5000))
    pop_stats = pop.check(rng.integers(0, 100, 1000))
    registry = ModelRegistry(tmp_path / "reg", "acme")
    v1 = registry.register(
        b"model-bytes-1", training_window=(0, 1), metrics={}, feature_schema=("a",)
    )
    registry.promote(v1.version, "champion", actor="test", reason="first")
    test = MSPRT(alpha=0.05, tau=0.05, min_requests=10)
    test.record("champion", 300, 1000)
    test.record("challenger", 600, 1000)

    monitor = Monitor()
    monitor.add_drift_detector(stream, "hitstream")
    monitor.add_drift_detector(feature, "features")
    monitor.add_drift_detector(pop, "popularity")
    monitor.add_registry(registry)
    monitor.add_abtest(test, "ab1")
    stream.update_many(rng.random(3000) < 0.9)  # more events after registration are counted
    reg = registry_for(monitor)

    events = reg.get_sample_value(
        "predis_drift_events_total", {"detector": "hitstream", "kind": "performance"}
    )
    assert events is not None
    assert events >= 1
    mean = reg.get_sample_value(
        "predis_drift_score",
        {"detector": "hitstream", "kind": "performance", "statistic": "mean", "feature": ""},
    )
    assert mean == pytest.approx(stream.mean)
    psi = reg.get_sample_value(
        "predis_drift_score",
        {"detector": "features", "kind": "feature", "statistic": "psi", "feature": "size"},
    )
    assert psi == pytest.approx(check.psi["size"])
    assert psi > 0.5
    for stat, v in pop_stats.items():
        labels = {"detector": "popularity", "kind": "popularity", "statistic": stat, "feature": ""}
        assert reg.get_sample_value("predis_drift_score", labels) == pytest.approx(v)
    info = {"customer": "acme", "alias": "champion", "version": str(v1.version)}
    assert reg.get_sample_value("predis_model_version_info", info) == 1
    assert reg.get_sample_value("predis_model_versions", {"customer": "acme"}) == 1
    arm = {"test": "ab1", "arm": "challenger"}
    assert reg.get_sample_value("predis_abtest_requests_total", arm) == 1000
    assert reg.get_sample_value("predis_abtest_hits_total", arm) == 600
    assert reg.get_sample_value("predis_abtest_hit_ratio", arm) == pytest.approx(0.6)
    result = test.result()
    assert reg.get_sample_value("predis_abtest_p_value", {"test": "ab1"}) == result.p_value
    assert result.decided
    assert result.winner == "challenger"
    state = {"test": "ab1", "state": "challenger"}
    assert reg.get_sample_value("predis_abtest_decision", state) == 1
    assert (
        reg.get_sample_value("predis_abtest_decision", {"test": "ab1", "state": "undecided"}) == 0
    )


def test_collector_source(tmp_path):
    from predis.mlops import Collector
    from predis.security.crypto import KeyRing, generate_key_line

    cache = predis.Cache(1 << 22, clock="manual")
    col = Collector(
        cache,
        tmp_path / "seg",
        "acme",
        KeyRing.parse(generate_key_line("k1")),
        segment_events=100,
        min_free_bytes=0,
    )
    for k in range(250):
        cache.put(k, b"x")
    col.drain_once()
    col.flush()
    reg = registry_for(Monitor().add_collector(col, "acme"))
    st_ = col.stats()
    c = {"collector": "acme"}
    assert reg.get_sample_value("predis_collector_events_total", {**c, "stage": "drained"}) == 250
    written = reg.get_sample_value("predis_collector_events_total", {**c, "stage": "written"})
    assert written == st_.events_written == 250
    assert reg.get_sample_value("predis_collector_written_bytes_total", c) == st_.bytes_written > 0
    dropped = {**c, "reason": "ring_full"}
    assert reg.get_sample_value("predis_collector_dropped_events_total", dropped) == 0
    col.close()


def test_drift_source_refuses_other_objects():
    with pytest.raises(InvalidArgumentError, match="drift detector"):
        Monitor().add_drift_detector(object(), "x")


# ---- HTTP server and auth ----


def get_status(url: str, headers: dict[str, str] | None = None) -> int:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def test_bearer_auth():
    token = secrets.token_urlsafe(24)
    cache = predis.Cache(capacity_bytes=1 << 20)
    with serve(cache, port=0, gpu=False, auth=MetricsAuth.bearer(token)) as server:
        assert get_status(server.url) == 401
        assert get_status(server.url, {"Authorization": f"Bearer {token}x"}) == 401
        assert get_status(server.url, {"Authorization": f"Basic {token}"}) == 401
        assert get_status(server.url, {"Authorization": "Bearer"}) == 401
        assert get_status(server.url, {"Authorization": "Bearer " + "A" * 20000}) in (400, 401, 431)
        s = scrape(server.url, {"Authorization": f"Bearer {token}"})
        assert value(s, "predis_up", cache="default") == 1
        assert get_status(server.url.replace("/metrics", "/other")) == 404


def test_basic_auth_from_env(tmp_path, monkeypatch):
    password = secrets.token_urlsafe(16)
    pw_file = tmp_path / "pw"
    pw_file.write_text(password + "\n")
    pw_file.chmod(0o644)
    monkeypatch.setenv("PREDIS_METRICS_USER", "prom")
    monkeypatch.setenv("PREDIS_METRICS_PASSWORD_FILE", str(pw_file))
    with pytest.raises(InvalidArgumentError, match="chmod 600"):
        MetricsAuth.from_env()
    pw_file.chmod(0o600)
    cache = predis.Cache(capacity_bytes=1 << 20)
    with serve(cache, port=0, gpu=False) as server:  # auth from the environment
        good = base64.b64encode(f"prom:{password}".encode()).decode()
        bad = base64.b64encode(f"prom:{password}!".encode()).decode()
        assert get_status(server.url) == 401
        assert get_status(server.url, {"Authorization": f"Basic {bad}"}) == 401
        assert get_status(server.url, {"Authorization": "Basic %%%not-base64"}) == 401
        assert get_status(server.url, {"Authorization": f"Basic {good}"}) == 200


def test_token_store_auth(tmp_path):
    from predis.security.tokens import TokenStore

    store = TokenStore(tmp_path / "tokens.json")
    reader, _ = store.create("ops-team", "read")
    exporter, _ = store.create("ops-team", "export")
    revoked, info = store.create("ops-team", "read")
    store.revoke(info.id)
    cache = predis.Cache(capacity_bytes=1 << 20)
    auth = MetricsAuth.token_store(tmp_path / "tokens.json")
    with serve(cache, port=0, gpu=False, auth=auth) as server:
        assert get_status(server.url, {"Authorization": f"Bearer {reader}"}) == 200
        assert get_status(server.url, {"Authorization": f"Bearer {exporter}"}) == 401
        assert get_status(server.url, {"Authorization": f"Bearer {revoked}"}) == 401


def test_secret_files_are_checked(tmp_path, monkeypatch):
    from predis.monitoring.auth import read_secret_file

    target = tmp_path / "real"
    target.write_text("s3cr3t-value")
    target.chmod(0o600)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(InvalidArgumentError, match="symbolic link"):
        read_secret_file(link)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    with pytest.raises(InvalidArgumentError, match="empty"):
        read_secret_file(empty)
    with pytest.raises(InvalidArgumentError, match="not a regular file"):
        read_secret_file(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(InvalidArgumentError, match="not a regular file"):
        read_secret_file(fifo)  # opened without blocking, then refused
    assert read_secret_file(target) == "s3cr3t-value"
    monkeypatch.setenv("PREDIS_METRICS_TOKEN", "abc")
    monkeypatch.setenv("PREDIS_METRICS_TOKEN_FILE", str(target))
    with pytest.raises(InvalidArgumentError, match="not both"):
        MetricsAuth.from_env()
    with pytest.raises(InvalidArgumentError, match="line breaks"):
        MetricsAuth.bearer("a\r\nX-Injected: 1")


def test_server_refuses_bad_ports_and_hosts():
    cache = predis.Cache(capacity_bytes=1 << 20)
    for port in (-1, 65536, "9090", True):
        with pytest.raises(InvalidArgumentError, match="port"):
            serve(cache, port=port, gpu=False)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="host"):
        serve(cache, port=0, addr="http://evil/", gpu=False)


def test_port_in_use_says_so():
    cache = predis.Cache(capacity_bytes=1 << 20)
    with (
        serve(cache, port=0, gpu=False) as first,
        pytest.raises(InvalidArgumentError, match="cannot listen"),
    ):
        serve(cache, port=first.port, name="other", gpu=False)


def test_openmetrics_negotiation():
    cache = predis.Cache(capacity_bytes=1 << 20)
    with serve(cache, port=0, gpu=False) as server:
        req = urllib.request.Request(
            server.url, headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read().decode()
            assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        assert body.rstrip().endswith("# EOF")


def test_histogram_value_count():
    assert HistogramValue(((1.0, 2), (math.inf, 5)), 3.0).count == 5
    assert parse_metrics("") == {}

"""Push exporters against loopback receivers that decode the real wire format: DogStatsD
datagrams, New Relic gzipped JSON, CloudWatch EMF JSON and OTLP protobuf; receivers that are
down or refuse; and a contract every exporter class must meet."""

from __future__ import annotations

import gzip
import io
import json
import math
import secrets
import threading

import pytest
from monitoring_helpers import PREFETCH, CacheWithPrefetch
from receivers import HttpReceiver, TcpLineReceiver, UdpReceiver, free_port, wait_for

import predis
from predis import InvalidArgumentError
from predis.monitoring import Monitor
from predis.monitoring.cloudwatch import CloudWatchEMFExporter
from predis.monitoring.dogstatsd import DogStatsDExporter, dogstatsd_name
from predis.monitoring.integrations import PushExporter
from predis.monitoring.newrelic import NewRelicExporter
from predis.monitoring.otlp import OTLPExporter, parse_headers

FAST = {"interval": 3600.0, "backoff_initial": 0.01, "backoff_max": 0.05, "timeout": 2.0}


def busy_cache(hits: int, misses: int) -> predis.Cache:
    cache = predis.Cache(capacity_bytes=1 << 20, sample_rate=0.0)
    for k in range(hits):
        cache.put(k, b"v")
    for k in range(hits + misses):
        cache.get(k)
    return cache


@pytest.fixture
def nr_key(monkeypatch) -> str:
    key = secrets.token_hex(20)
    monkeypatch.setenv("NEW_RELIC_API_KEY", key)
    return key


# ---- DogStatsD ----


def parse_dogstatsd(line: str) -> tuple[str, float, str, dict[str, str]]:
    head, *rest = line.split("|")
    name, raw = head.rsplit(":", 1)
    tags = {}
    for part in rest[1:]:
        if part.startswith("#"):
            tags = dict(t.split(":", 1) for t in part[1:].split(","))
    return name, float(raw), rest[0], tags


def test_dogstatsd_sends_deltas_and_gauges():
    rx = UdpReceiver()
    cache = busy_cache(hits=7, misses=3)
    exp = DogStatsDExporter(Monitor().add_cache(cache, "main"), "127.0.0.1", rx.port, **FAST)
    try:
        exp.start()

        def find(name: str) -> list[tuple[float, str, dict[str, str]]]:
            out = []
            for ln in rx.lines():
                n, v, kind, tags = parse_dogstatsd(ln)
                if n == name and tags.get("cache") == "main":
                    out.append((v, kind, tags))
            return out

        wait_for(lambda: find("predis.keyspace_hits"), "the first flush")
        assert find("predis.keyspace_hits") == [(7.0, "c", {"cache": "main"})]
        assert find("predis.keyspace_misses")[0][:2] == (3.0, "c")
        assert find("predis.keys")[0][:2] == (7.0, "g")
        assert find("predis.up")[0][:2] == (1.0, "g")
        for k in range(5):
            cache.get(k)
        exp.flush_now()
        wait_for(lambda: len(find("predis.keyspace_hits")) == 2, "the second flush")
        assert find("predis.keyspace_hits")[1][0] == 5.0  # the change, not the total
        assert find("predis.keyspace_misses")[1][0] == 0.0
    finally:
        exp.stop(flush=False)
        rx.close()
    st = exp.stats()
    assert st.batches_sent >= 2
    assert st.batches_dropped == 0
    assert dogstatsd_name("predis_keyspace_hits_total") == "predis.keyspace_hits"


def test_dogstatsd_receiver_down_drops_and_counts():
    port = free_port(socket_kind())
    cache = busy_cache(3, 3)
    # max_retries=0: over UDP a retry on a fresh socket always "succeeds" (only ICMP from
    # an earlier datagram reveals a closed port), so only a first failure can be a drop.
    exp = DogStatsDExporter(
        Monitor().add_cache(cache, "main"), "127.0.0.1", port, max_retries=0, **FAST
    )
    exp.start()
    try:

        def dropped() -> bool:
            exp.flush_now()
            return exp.stats().batches_dropped > 0

        wait_for(dropped, "datagrams refused by a closed port counted as dropped")
        cache.get(1)  # the host keeps working
    finally:
        exp.stop(flush=False)
    assert exp.stats().send_errors > 0


def socket_kind() -> int:
    import socket

    return socket.SOCK_DGRAM


# ---- New Relic ----


def test_newrelic_posts_gzipped_json_with_the_key(nr_key):
    rx = HttpReceiver()
    cache = busy_cache(4, 2)
    url = f"http://127.0.0.1:{rx.port}/metric/v1"
    monitor = Monitor().add_cache(cache, "main")
    exp = NewRelicExporter(monitor, url, attributes={"host": "test"}, **FAST)
    try:
        exp.start()
        wait_for(lambda: rx.requests, "a POST")
        path, headers, body = rx.requests[0]
    finally:
        exp.stop(flush=False)
        rx.close()
    assert path == "/metric/v1"
    assert headers["api-key"] == nr_key
    assert headers["content-encoding"] == "gzip"
    assert headers["content-type"] == "application/json"
    doc = json.loads(gzip.decompress(body))
    assert isinstance(doc, list)
    assert doc[0]["common"]["attributes"] == {"host": "test"}
    metrics = {(m["name"], m["attributes"].get("cache")): m for m in doc[0]["metrics"]}
    hits = metrics[("predis_keyspace_hits_total", "main")]
    assert hits["type"] == "count"
    assert hits["value"] == 4
    assert hits["interval.ms"] == 3_600_000
    keys = metrics[("predis_keys", "main")]
    assert keys["type"] == "gauge"
    assert keys["value"] == 4
    assert all(isinstance(m["timestamp"], int) for m in doc[0]["metrics"])


def test_newrelic_retries_then_succeeds(nr_key):
    rx = HttpReceiver(codes=[503, 429])
    exp = NewRelicExporter(
        Monitor().add_cache(busy_cache(1, 1), "main"),
        f"http://127.0.0.1:{rx.port}/metric/v1",
        **FAST,
    )
    try:
        exp.start()
        wait_for(lambda: rx.requests, "delivery after two refusals")
    finally:
        exp.stop(flush=False)
        rx.close()
    st = exp.stats()
    assert st.retries == 2
    assert st.batches_sent == 1
    assert st.batches_dropped == 0


def test_newrelic_bad_key_is_dropped_without_retrying(nr_key):
    rx = HttpReceiver(codes=[403, 403, 403])
    exp = NewRelicExporter(
        Monitor().add_cache(busy_cache(1, 1), "main"),
        f"http://127.0.0.1:{rx.port}/metric/v1",
        **FAST,
    )
    try:
        exp.start()
        wait_for(lambda: exp.stats().batches_dropped == 1, "a drop")
    finally:
        exp.stop(flush=False)
        rx.close()
    assert exp.stats().retries == 0


def test_newrelic_queue_stays_bounded_while_the_destination_is_down(nr_key):
    url = f"http://127.0.0.1:{free_port()}/metric/v1"
    slow = {**FAST, "backoff_initial": 3600.0, "backoff_max": 3600.0}
    exp = NewRelicExporter(Monitor().add_cache(busy_cache(1, 1), "main"), url, max_queue=2, **slow)
    exp.start()
    try:
        for _ in range(6):
            before = exp.stats().collections
            exp.flush_now()
            wait_for(lambda b=before: exp.stats().collections > b, "a collection")
    finally:
        exp.stop(flush=False)
    st = exp.stats()
    assert st.queued == 2
    assert st.batches_dropped == st.collections - 2
    assert st.batches_sent == 0


def test_newrelic_needs_a_key_from_the_environment(monkeypatch):
    monkeypatch.delenv("NEW_RELIC_API_KEY", raising=False)
    with pytest.raises(InvalidArgumentError, match="NEW_RELIC_API_KEY"):
        NewRelicExporter(Monitor())
    monkeypatch.setenv("NEW_RELIC_API_KEY", "k")
    with pytest.raises(InvalidArgumentError, match="http"):
        NewRelicExporter(Monitor(), "file:///etc/passwd")


# ---- CloudWatch EMF ----


def test_cloudwatch_emf_to_the_agent_over_tcp():
    rx = TcpLineReceiver()
    cache = busy_cache(6, 1)
    monitor = Monitor().add_cache(cache, "main")
    exp = CloudWatchEMFExporter(
        monitor, f"tcp://127.0.0.1:{rx.port}", log_group="predis-metrics", **FAST
    )
    try:
        exp.start()

        def docs() -> list[dict]:
            return [json.loads(x) for x in list(rx.lines)]

        def main_doc() -> dict | None:
            for d in docs():
                if d.get("cache") == "main" and "predis_keyspace_hits_total" in d:
                    return d
            return None

        wait_for(lambda: main_doc() is not None, "an EMF document for cache=main")
        doc = main_doc()
        assert doc is not None
    finally:
        exp.stop(flush=False)
        rx.close()
    aws = doc["_aws"]
    assert isinstance(aws["Timestamp"], int)
    assert aws["LogGroupName"] == "predis-metrics"
    directive = aws["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Predis"
    assert directive["Dimensions"] == [["cache"]]
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert units["predis_keyspace_hits_total"] == "Count"
    assert units["predis_memory_used_bytes"] == "Bytes"
    assert doc["predis_keyspace_hits_total"] == 6
    assert doc["predis_keyspace_misses_total"] == 1
    assert doc["predis_keys"] == 6


def test_cloudwatch_emf_to_stdout_with_a_histogram():
    out = io.StringIO()
    exp = CloudWatchEMFExporter(
        Monitor().add_cache(CacheWithPrefetch(PREFETCH), "pf"), "stdout", stream=out, **FAST
    )
    exp.stop(flush=True)  # one collection and one send, without the thread
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    doc = next(d for d in docs if d.get("cache") == "pf" and "predis_prefetch_issued_total" in d)
    assert doc["predis_ml_inference_duration_seconds.count"] == 7
    assert doc["predis_ml_inference_duration_seconds.sum"] == pytest.approx(0.0125)
    units = {m["Name"]: m["Unit"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["predis_ml_inference_duration_seconds.sum"] == "Seconds"


def test_cloudwatch_refuses_bad_destinations():
    for bad in ("http://x:1", "tcp://nohost", "tcp://:25888", "ftp://a:1", "tcp://bad host:1"):
        with pytest.raises(InvalidArgumentError):
            CloudWatchEMFExporter(Monitor(), bad)


# ---- OTLP ----


def decode_otlp(body: bytes):
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    return ExportMetricsServiceRequest.FromString(gzip.decompress(body))


def test_otlp_protobuf_over_http(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme,authorization=Bearer%20abc")
    rx = HttpReceiver()
    cache = CacheWithPrefetch(PREFETCH)
    for k in range(3):
        cache.inner.put(k, b"v")
    cache.inner.get(0)
    monitor = Monitor().add_cache(cache, "pf")
    exp = OTLPExporter(monitor, f"http://127.0.0.1:{rx.port}/v1/metrics", **FAST)
    try:
        exp.start()
        wait_for(lambda: rx.requests, "a POST")
        path, headers, body = rx.requests[0]
    finally:
        exp.stop(flush=False)
        rx.close()
    assert path == "/v1/metrics"
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["x-tenant"] == "acme"
    assert headers["authorization"] == "Bearer abc"
    req = decode_otlp(body)
    rm = req.resource_metrics[0]
    resource = {a.key: a.value.string_value for a in rm.resource.attributes}
    assert resource["service.name"] == "predis"
    metrics = {m.name: m for m in rm.scope_metrics[0].metrics}
    hits = metrics["predis_keyspace_hits_total"]
    assert hits.sum.is_monotonic
    assert hits.sum.aggregation_temporality == 2  # CUMULATIVE
    point = hits.sum.data_points[0]
    assert point.as_double == 1
    assert {a.key: a.value.string_value for a in point.attributes} == {"cache": "pf"}
    assert point.start_time_unix_nano <= point.time_unix_nano
    assert metrics["predis_keys"].gauge.data_points[0].as_double == 3
    assert metrics["predis_memory_used_bytes"].unit == "By"
    hist = metrics["predis_ml_inference_duration_seconds"].histogram.data_points[0]
    assert list(hist.explicit_bounds) == [0.001, 0.005]
    assert list(hist.bucket_counts) == [2, 4, 1]
    assert hist.count == 7
    assert hist.sum == pytest.approx(0.0125)
    assert metrics["predis_ml_inference_duration_seconds"].unit == "s"


def test_otlp_headers_are_validated():
    assert parse_headers("") == {}
    assert parse_headers("a=1, b=x%3Dy") == {"a": "1", "b": "x=y"}
    for bad in ("novalue", "=v", "a=1%0d%0aX: y"):
        with pytest.raises(InvalidArgumentError):
            parse_headers(bad)


# ---- the contract every push exporter meets ----


def make(kind: type[PushExporter], monitor: Monitor, port: int, **kw) -> PushExporter:
    """One instance of each exporter class aimed at 127.0.0.1:port; a new class must be
    added here, or the contract test fails."""
    if kind is DogStatsDExporter:
        return DogStatsDExporter(monitor, "127.0.0.1", port, **kw)
    if kind is NewRelicExporter:
        return NewRelicExporter(monitor, f"http://127.0.0.1:{port}/metric/v1", **kw)
    if kind is CloudWatchEMFExporter:
        return CloudWatchEMFExporter(monitor, f"tcp://127.0.0.1:{port}", **kw)
    if kind is OTLPExporter:
        return OTLPExporter(monitor, f"http://127.0.0.1:{port}/v1/metrics", **kw)
    raise AssertionError(f"no factory for {kind.__name__}: add one to make()")


def all_exporters() -> list[type[PushExporter]]:
    found, todo = [], list(PushExporter.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return sorted(found, key=lambda c: c.__name__)


def test_every_exporter_is_known():
    names = {c.__name__ for c in all_exporters()}
    assert names >= {
        "DogStatsDExporter",
        "NewRelicExporter",
        "CloudWatchEMFExporter",
        "OTLPExporter",
    }


@pytest.mark.parametrize("kind", all_exporters(), ids=lambda c: c.__name__)
def test_contract_destination_down_never_reaches_the_host(kind, nr_key):
    import socket

    port = free_port(socket.SOCK_DGRAM if kind is DogStatsDExporter else socket.SOCK_STREAM)
    cache = predis.Cache(capacity_bytes=1 << 22, sample_rate=0.0)
    monitor = Monitor().add_cache(cache, "main")
    exp = make(kind, monitor, port, max_retries=0, max_queue=4, **FAST)
    stop = threading.Event()
    done = []

    def traffic() -> None:  # a host thread: must never see an exporter error
        k = 0
        while not stop.is_set():
            cache.put(k % 1000, b"x")
            cache.get(k % 1000)
            k += 1
        done.append(k)

    t = threading.Thread(target=traffic)
    t.start()
    with exp:
        wait_for(
            lambda: (exp.flush_now(), exp.stats().batches_dropped)[1] > 0,
            f"{kind.__name__} counting drops with its destination down",
        )
    stop.set()
    t.join()
    assert done
    assert done[0] > 0
    st = exp.stats()
    assert st.send_errors > 0
    if kind is not DogStatsDExporter:  # over UDP a datagram "sent" to a closed port is not known
        assert st.batches_sent == 0
    assert st.queued <= 4
    # The exporter's own counters are in the monitor, for Prometheus or the next push.
    own = {
        (s.metric.name, s.labels): s.value
        for s in monitor.collect()
        if s.metric.name.startswith("predis_push_")
    }
    dropped_key = (
        "predis_push_batches_total",
        (("exporter", exp.name), ("outcome", "dropped")),
    )
    assert own[dropped_key] >= st.batches_dropped
    with pytest.raises(InvalidArgumentError):
        make(kind, Monitor(), port, interval=0)
    assert math.isfinite(exp.interval)

"""The SQLite history (schema, WAL, retention) and the scraper against a real exporter,
an in-process Monitor and a Prometheus-style query API."""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families

import predis
import predis.monitoring
from predis.dashboard import History
from predis.dashboard.history import SCHEMA_VERSION, HistoryError
from predis.dashboard.scraper import KEPT, MonitorTarget, PrometheusTarget, Scraper, URLTarget
from predis.monitoring import Monitor


def test_schema_wal_and_permissions(tmp_path):
    path = tmp_path / "h.sqlite"
    h = History(path)
    assert h.schema_version() == SCHEMA_VERSION
    h.add_scrape("t", 1.0, [("predis_up", {"cache": "a"}, 1.0)])
    h.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "1"
    db.close()
    assert path.stat().st_mode & 0o077 == 0
    # Reopening keeps the data.
    h = History(path)
    assert [p.value for p in h.points("predis_up", 0, 10)] == [1.0]
    h.close()


def test_foreign_and_newer_databases_are_refused(tmp_path):
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE users (name TEXT)")
    db.commit()
    db.close()
    with pytest.raises(HistoryError, match="not Predis's"):
        History(other)
    newer = tmp_path / "newer.sqlite"
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(HistoryError, match="newer than this Predis"):
        History(newer)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryError, match="cannot be used"):
        History(junk)
    link = tmp_path / "link.sqlite"
    link.symlink_to(tmp_path / "elsewhere.sqlite")
    with pytest.raises(predis.InvalidArgumentError, match="symbolic link"):
        History(link)


def test_retention_prunes_samples_series_and_scrapes():
    h = History()
    for ts in (1.0, 2.0, 3.0):
        h.add_scrape("t", ts, [("predis_up", {"cache": f"c{int(ts)}"}, ts)])
    h.add_scrape("t", 2.5, None, "boom")
    assert h.prune(2.5) == 2
    assert [p.value for p in h.points("predis_up", 0, 10)] == [3.0]
    assert h.last_time("predis_up", "cache", ["c1", "c2"]) is None  # series gone too
    assert h.last_time("predis_up", "cache", ["c3"]) == 3.0
    (status,) = h.status()
    assert status.last_ok == 3.0
    h.close()


@pytest.fixture
def exporter():
    cache = predis.Cache(capacity_bytes=1 << 20)
    server = predis.monitoring.serve(cache, port=0, name="main", gpu=False, auth=None)
    yield cache, server
    server.close()
    cache.close()


def test_scraper_stores_a_real_exporters_counters(exporter):
    cache, server = exporter
    for k in range(10):
        cache.put(k, b"v")
    for k in range(15):
        cache.get(k)
    h = History()
    s = Scraper(h, [URLTarget(server.url)], interval_s=1.0)
    assert s.scrape_once() == {server.url: None}
    hits = h.points("predis_keyspace_hits_total", 0, 2e10, "cache", ["main"])
    misses = h.points("predis_keyspace_misses_total", 0, 2e10, "cache", ["main"])
    assert [p.value for p in hits] == [10.0]
    assert [p.value for p in misses] == [5.0]
    # Only kept metrics are stored, with the catalogue's labels.
    assert {p.labels["cmd"] for p in h.points("predis_commands_total", 0, 2e10)} == {
        "get",
        "put",
        "delete",
    }
    assert not h.points("predis_keys_total", 0, 2e10)
    server.close()
    assert s.scrape_once()[server.url].startswith("URLError")
    (status,) = h.status()
    assert status.last_error.startswith("URLError")
    assert status.last_attempt > status.last_ok
    assert len(h.points("predis_keyspace_hits_total", 0, 2e10)) == 1  # nothing invented
    h.close()


def test_monitor_target_reads_the_same_sources(exporter):
    cache, _ = exporter
    cache.put(1, b"x")
    cache.get(1)
    cache.get(2)
    samples = MonitorTarget(Monitor().add_cache(cache, "main")).scrape()
    got = {(n, tuple(sorted(lab.items()))): v for n, lab, v in samples}
    assert got[("predis_keyspace_hits_total", (("cache", "main"),))] == 1.0
    assert got[("predis_keyspace_misses_total", (("cache", "main"),))] == 1.0
    assert all(n in KEPT for n, _, _ in samples)


class _PrometheusAPI(BaseHTTPRequestHandler):
    """Answers /api/v1/query as Prometheus does, from a real exporter's current page (the
    instant vector of every series the query's name regex selects)."""

    exporter_url = ""

    def do_GET(self):
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query)["query"][0]
        names = re.fullmatch(r'\{__name__=~"(.*)"\}', query).group(1)
        with urllib.request.urlopen(self.exporter_url) as r:
            text = r.read().decode()
        result = []
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if re.fullmatch(names, s.name):
                    metric = {"__name__": s.name, "instance": "h:1", "job": "predis", **s.labels}
                    result.append({"metric": metric, "value": [1.0, str(s.value)]})
        body = json.dumps(
            {"status": "success", "data": {"resultType": "vector", "result": result}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_prometheus_target_reads_the_query_api(exporter):
    cache, server = exporter
    cache.put(1, b"x")
    cache.get(1)
    _PrometheusAPI.exporter_url = server.url
    api = ThreadingHTTPServer(("127.0.0.1", 0), _PrometheusAPI)
    t = threading.Thread(target=api.serve_forever, daemon=True)
    t.start()
    try:
        target = PrometheusTarget(f"http://127.0.0.1:{api.server_address[1]}")
        samples = target.scrape()
    finally:
        api.shutdown()
        api.server_close()
    got = {(n, tuple(sorted(lab.items()))): v for n, lab, v in samples}
    # instance/job labels are dropped: the series match the exporter's.
    assert got[("predis_keyspace_hits_total", (("cache", "main"),))] == 1.0
    assert ("predis_commands_total", (("cache", "main"), ("cmd", "get"))) in got


@pytest.mark.parametrize(
    "url",
    [
        "ftp://h/metrics",
        "file:///etc/passwd",
        "http://user" + ":" + "pw@h/metrics",  # split: a credential literal trips the scan
        "http:///metrics",
        "http://h:99999/metrics",
        "http://h/metrics#x",
        "http://bad host/metrics",
    ],
)
def test_scrape_urls_are_validated(url):
    with pytest.raises(predis.InvalidArgumentError):
        URLTarget(url)


def test_scraper_needs_targets_and_distinct_names():
    with pytest.raises(predis.InvalidArgumentError, match="nothing to scrape"):
        Scraper(History(), [])
    t = URLTarget("http://127.0.0.1:1/metrics")
    with pytest.raises(predis.InvalidArgumentError, match="twice"):
        Scraper(History(), [t, t])


def test_scraping_an_exporter_that_requires_a_token(exporter, tmp_path):
    cache, _ = exporter
    cache.put(1, b"x")
    cache.get(1)
    bearer = secrets.token_urlsafe(24)  # random per run: nothing for a secret scan to find
    server = predis.monitoring.serve(
        cache,
        port=0,
        name="main",
        gpu=False,
        auth=predis.monitoring.MetricsAuth.bearer(bearer),
    )
    try:
        h = History()
        without = Scraper(h, [URLTarget(server.url)])
        assert "401" in without.scrape_once()[server.url]
        with_token = Scraper(h, [URLTarget(server.url, token=bearer)])
        assert with_token.scrape_once() == {server.url: None}
        assert [p.value for p in h.points("predis_keyspace_hits_total", 0, 2e10)] == [1.0]
        h.close()
    finally:
        server.close()

"""The dashboard's API over a seeded history: auth (401/403), the figures (checked against
numbers worked out by hand from the seed), gaps, staleness and the baseline's three cases."""

from __future__ import annotations

import math

import pytest
from seed import INTERVAL, seed

from conftest import T0, client
from predis.dashboard import History
from predis.mlops.registry import ModelRegistry

ROUTES = ["/", "/model", "/api/overview", "/api/model", "/api/stream", "/static/dashboard.js"]
ROUTES += ["/static/plotly.min.js"]


@pytest.fixture
def history():
    h = History()
    seed(h, T0)
    yield h
    h.close()


@pytest.fixture
def acme(tokens):
    return tokens.create("acme", "dashboard")[0]


def test_every_route_needs_a_login(make_app, history):
    app, _ = make_app(history, T0 + 125)
    c = client(app)
    for route in ROUTES:
        r = c.get(route, follow_redirects=False)
        if route in ("/", "/model"):
            assert r.status_code == 303, route
            assert r.headers["location"] == "/login", route
        else:
            assert r.status_code == 401, route
    # The login form and its stylesheet are the only things served before a login.
    assert c.get("/login").status_code == 200
    assert c.get("/static/dashboard.css").status_code == 200


def test_other_customers_data_is_forbidden(make_app, history, acme):
    app, _ = make_app(history, T0 + 125)
    c = client(app, acme)
    assert c.get("/api/overview?customer=acme").status_code == 200
    for route in ("/api/overview", "/api/model", "/api/stream", "/", "/model"):
        r = c.get(f"{route}?customer=globex", follow_redirects=False)
        assert r.status_code == 403, route
        assert "globex" not in r.text or "own customer" in r.text


def test_overview_figures_match_the_seed(make_app, history, acme):
    app, _ = make_app(history, T0 + 125)
    d = client(app, acme).get("/api/overview").json()
    # Worked out by hand from seed.py: main's hits rise 600, restart to 50, rise 350;
    # aux rises 10 per scrape slot over 12 slots. Misses likewise.
    hits = 600 + 50 + 350 + 120
    misses = 80 + 5 + 25 + 120
    span = 120.0
    roi = d["roi"]
    assert d["stale"] is False
    assert d["no_data_message"] is None
    assert d["measured_window_s"] == span
    assert roi["requests"] == hits + misses == 1350
    assert roi["fetches_avoided"] == hits == 1120
    assert roi["hit_ratio"] == pytest.approx(1120 / 1350)
    # The A/B control arm (champion): 7 hits per 20 requests per slot.
    assert roi["baseline_hit_ratio"] == pytest.approx(7 / 20)
    assert roi["baseline_source"].startswith("A/B control arm")
    assert roi["hit_ratio_gain"] == pytest.approx(1120 / 1350 - 0.35)
    assert roi["fetches_avoided_vs_baseline"] == pytest.approx((1120 / 1350 - 0.35) * 1350)
    assert roi["latency_saved_per_request_s"] == pytest.approx(1120 / 1350 * 0.02)
    assert roi["latency_saved_total_s"] == pytest.approx(22.4)
    assert roi["cost_per_fetch"] == pytest.approx(0.003)  # 0.002 + 0.5 EUR/GB * 2 MB
    assert roi["gross_saved_per_day"] == pytest.approx(2419.2)  # 1120/120 s * 86400 * 0.003
    assert roi["cost_per_day"] == pytest.approx(58.0)  # 2 * 24 + 3650 / 365
    assert roi["net_saved_per_day"] == pytest.approx(2361.2)
    assert roi["net_saved_per_month"] == pytest.approx(2361.2 * 365 / 12)
    assert roi["net_saved_per_year"] == pytest.approx(2361.2 * 365)
    assert roi["roi_percent"] == pytest.approx(2361.2 / 58 * 100)
    assert roi["payback_days"] == pytest.approx(3650 / (2419.2 - 48))
    assert roi["currency"] == "EUR"
    cards = d["cards"]
    assert cards["hit_ratio"] == pytest.approx(1120 / 1350)
    assert cards["gpu_utilization"] == pytest.approx(62.0)  # 0.5 + 0.01 * 12, in %
    assert cards["gpu_memory_gib"] == pytest.approx(13.0)
    # ops/s: the latest slot's get + put + delete increase over 10 s, both caches.
    # main: gets 150 + 10, puts 10; aux: gets 20, puts 10.
    assert cards["ops_per_s"] == pytest.approx((160 + 10 + 20 + 10) / INTERVAL)
    # Every output's formula is delivered with it.
    assert set(roi) - {"currency", "baseline_source"} <= set(d["formulas"])


def test_gaps_stay_gaps(make_app, history, acme):
    app, _ = make_app(history, T0 + 125)
    d = client(app, acme).get("/api/overview").json()
    main = next(t for t in d["charts"]["hit_rate"] if t["name"] == "main")
    # Points at slots 1-6, then slot 9 comes 30 s after slot 6: null, not a joined line.
    assert len(main["x"]) == 10
    assert main["y"][0] == pytest.approx(100 / 110)
    assert main["y"][6] is None
    assert main["x"][6] == "2027-01-15T08:01:30Z"
    assert main["y"][7] == pytest.approx(100 / 105)  # 50->150 hits, 5->10 misses
    fetches = next(t for t in d["charts"]["fetches_avoided"] if t["name"] == "main")
    assert fetches["y"][:3] == pytest.approx([10.0, 15.0, 5.0])
    gpu = d["charts"]["gpu_util"][0]
    assert None in gpu["y"]
    assert len(gpu["y"]) == 12


def test_stale_and_missing_data(make_app, history, acme, tokens):
    app, clock = make_app(history, T0 + 125)
    c = client(app, acme)
    clock.now = T0 + 500
    d = c.get("/api/overview").json()
    assert d["stale"] is True
    assert d["no_data_message"] == "no data since 2027-01-15T08:02:00Z"
    assert d["cards"] == {}
    # A customer whose caches never reported.
    ini = client(app, tokens.create("initech", "dashboard")[0])
    d = ini.get("/api/overview").json()
    assert d["no_data_message"] == "no data yet"
    assert d["roi"] is None
    assert d["cards"] == {}
    assert all(t == [] for t in d["charts"].values())


def test_baseline_when_only_configured_and_when_unknown(make_app, customers, tokens):
    h = History()
    seed(h, T0, ab=False)
    app, _ = make_app(h, T0 + 125)
    d = client(app, tokens.create("acme", "dashboard")[0]).get("/api/overview").json()
    assert d["roi"]["baseline_hit_ratio"] == 0.25
    assert d["roi"]["baseline_source"] == "no-prefetch baseline (configured)"
    g = client(app, tokens.create("globex", "dashboard")[0]).get("/api/overview").json()
    assert g["roi"]["baseline_hit_ratio"] is None
    assert g["roi"]["hit_ratio_gain"] is None
    assert g["roi"]["baseline_source"].startswith("no baseline known")
    # globex is served by exp2, which has no GPU: no GPU figures, not zeros.
    assert g["charts"]["gpu_util"] == []
    assert g["cards"]["gpu_utilization"] is None


def test_model_page(make_app, tmp_path, acme):
    now = 1_900_000_000.0
    h = History()
    seed(h, now - 125)
    root = tmp_path / "registry"
    reg = ModelRegistry(root, "acme")
    v1 = reg.register(b"m1", feature_schema=["f"], training_window=(0, 1)).version
    v2 = reg.register(b"m2", feature_schema=["f"], training_window=(0, 1)).version
    reg.promote(v1, actor="test", reason="first model")
    reg.promote(v2, actor="test", reason="won the A/B test")
    reg.rollback(actor="test", reason="hit rate fell")
    app, clock = make_app(h, now, registry_dir=root)
    # The registry wrote real times; look from just after them.
    clock.now = max(r["time"] for r in reg.history()) + 1
    h2 = History()
    seed(h2, clock.now - 125)
    app, _clock2 = make_app(h2, clock.now, registry_dir=root)
    d = client(app, acme).get("/api/model").json()
    assert d["versions"] == {"champion": v1, "challenger": None, "previous": None}
    assert d["versions_source"] == "model registry"
    (ab,) = d["abtests"]
    assert ab["state"] == "undecided"
    assert ab["p_value"] == 0.04
    assert ab["confidence"] == pytest.approx(0.96)
    champ = ab["arms"]["champion"]
    assert (champ["requests"], champ["hits"]) == (240, 84)
    stats = pytest.importorskip("scipy.stats")
    ci = stats.binomtest(84, 240).proportion_ci(0.95, method="wilson")
    assert champ["ci95"] == pytest.approx([ci.low, ci.high], rel=1e-6)
    kinds = [e["kind"] for e in d["events"]]
    assert kinds.count("drift") == 2  # the counter rose at slot 4 (1) and slot 10 (2)
    assert "rollback" in kinds
    assert kinds.count("promotion") == 2
    rollback = next(e for e in d["events"] if e["kind"] == "rollback")
    assert "hit rate fell" in rollback["text"]
    assert all(d["events"][i]["ts"] <= d["events"][i + 1]["ts"] for i in range(len(kinds) - 1))


def test_model_page_without_registry_reads_metrics(make_app, acme):
    h = History()
    seed(h, T0)
    h.add_scrape(
        "exp1",
        T0 + 121,
        [
            (
                "predis_model_version_info",
                {"customer": "acme", "alias": "champion", "version": "7"},
                1,
            ),
            (
                "predis_model_version_info",
                {"customer": "globex", "alias": "champion", "version": "9"},
                1,
            ),
        ],
    )
    app, _ = make_app(h, T0 + 125)
    d = client(app, acme).get("/api/model").json()
    assert d["versions"] == {"champion": 7}
    assert d["versions_source"].startswith("metrics")


def test_stream_sends_live_updates(make_app, history, acme):
    app, _ = make_app(history, T0 + 125)
    c = client(app, acme)
    events = []
    with c.stream("GET", "/api/stream?page=overview") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event:"):
                events.append(line.split(":", 1)[1].strip())
            if len(events) == 2:
                break
    assert events == ["overview", "overview"]


def test_range_parameter_is_validated(make_app, history, acme):
    app, _ = make_app(history, T0 + 125)
    c = client(app, acme)
    for bad in ("abc", "1", "nan", "inf", "-5", "1e99"):
        r = c.get(f"/api/overview?range={bad}")
        assert r.status_code == 400, bad
    assert c.get("/api/overview?range=600").status_code == 200


def test_page_shows_formulas_and_serves_bundled_plotly(make_app, history, acme):
    import plotly

    app, _ = make_app(history, T0 + 125)
    c = client(app, acme)
    page = c.get("/")
    assert page.status_code == 200
    assert 'src="/static/plotly.min.js"' in page.text
    assert "cdn" not in page.text.lower()
    assert "<script>" not in page.text  # no inline script
    js = c.get("/static/plotly.min.js")
    from pathlib import Path

    bundled = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert js.content == bundled.read_bytes()
    assert not math.isnan(len(js.content))

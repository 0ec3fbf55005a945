"""Fixtures for the dashboard tests: a token store, two customers, a seeded history."""

from __future__ import annotations

import re

import httpx
import pytest

pytest.importorskip("starlette", reason="the dashboard extra is not installed")

from predis.dashboard import History, parse_customers
from predis.dashboard.app import build_app
from predis.dashboard.server import AppServer
from predis.dashboard.views import Views
from predis.security.tokens import TokenStore

T0 = 1_800_000_000.0  # seeded history starts here (2027-01-15)
INTERVAL = 10.0

ROI = {
    "backend_cost_per_fetch": 0.002,
    "backend_cost_per_gb": 0.5,
    "mean_fetch_bytes": 2_000_000,
    "backend_latency_s": 0.02,
    "gpu_cost_per_hour": 2.0,
    "predis_price_per_year": 3650.0,
    "currency": "EUR",
}

CUSTOMERS = {
    "customers": {
        "acme": {
            "caches": ["main", "aux"],
            "abtests": ["ranker"],
            "drift_detectors": ["hit-rate"],
            "no_prefetch_hit_ratio": 0.25,
            "roi": ROI,
        },
        "globex": {"caches": ["gmain"], "roi": {**ROI, "currency": "USD"}},
        "initech": {"caches": ["ini"], "roi": ROI},
    }
}


@pytest.fixture
def customers():
    return parse_customers(CUSTOMERS)


@pytest.fixture
def tokens(tmp_path):
    return TokenStore(tmp_path / "tokens.json")


class Clock:
    """A settable clock for the views (the history's timestamps are seeded)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field in the page"
    return m.group(1)


def login(client, token: str):
    page = client.get("/login")
    return client.post(
        "/login", data={"token": token, "csrf": csrf_of(page.text)}, follow_redirects=False
    )


@pytest.fixture
def make_app(customers, tokens):
    """build_app over a History (seeded by the test) with a settable clock, served by
    uvicorn on a free loopback port; returns (base URL, clock)."""
    servers: list[AppServer] = []

    def make(history: History, now: float, **kw):
        clock = Clock(now)
        views = Views(
            history,
            customers,
            INTERVAL,
            kw.pop("window_s", 3600.0),
            kw.pop("stale_after_s", 3 * INTERVAL),
            kw.pop("registry_dir", None),
            clock=clock,
        )
        opts = {
            "session_ttl_s": 3600.0,
            "login_failures": 3,
            "login_window_s": 60.0,
            "refresh_s": 0.2,
            "tls": False,
        }
        opts.update(kw)
        server = AppServer(build_app(views, customers, tokens, **opts)).start()
        servers.append(server)
        return server.url, clock

    yield make
    for server in servers:
        server.stop()


_clients: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    while _clients:
        _clients.pop().close()


def client(url: str, token: str | None = None) -> httpx.Client:
    """An HTTP client for the dashboard at ``url``, logged in with ``token`` when given
    (closed after the test)."""
    c = httpx.Client(base_url=url, timeout=30)
    _clients.append(c)
    if token is not None:
        r = login(c, token)
        assert r.status_code == 303, r.text
    return c

"""The dashboard in a real browser: Playwright driving Debian's chromium (headless, no
sandbox). A real cache under load serves /metrics through a real exporter; the dashboard
scrapes it. The tests log in, watch the cards fill and a chart update without a reload,
then stop the exporter and see the no-data state. Screenshots go to $PREDIS_TEST_ARTIFACTS
(default: pytest's temporary folder)."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest

import predis
import predis.monitoring
from conftest import CUSTOMERS
from predis.dashboard import DashboardConfig, DashboardServer, parse_customers

CHROMIUM = os.environ.get("PREDIS_CHROMIUM", "/usr/bin/chromium")

pytestmark = [pytest.mark.browser]
if not Path(CHROMIUM).exists():
    if os.environ.get("PREDIS_REQUIRE_BROWSER") == "1":  # CI: a missing browser is a failure
        pytest.fail(f"PREDIS_REQUIRE_BROWSER=1 but there is no chromium at {CHROMIUM}")
    pytest.skip(
        f"no chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
# wait_for_function takes functions, never expression strings: Playwright evaluates a
# string with eval(), which the dashboard's CSP (rightly) blocks.


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = os.environ.get("PREDIS_TEST_ARTIFACTS")
    path = Path(root) / "dashboard" if root else tmp_path_factory.mktemp("dashboard-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    print(f"dashboard screenshots: {path}")
    return path


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


class Load:
    """Zipf lookups with read-through fills on a thread, against a real cache."""

    def __init__(self, cache: predis.Cache) -> None:
        self.cache = cache
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        rng = np.random.default_rng(7)
        while not self.stop.is_set():
            keys = (rng.zipf(1.3, 4096) % 20_000).astype(np.uint64)
            _, _, hit = self.cache.mget_arrays(keys)
            missing = np.unique(keys[~hit])
            if len(missing):
                self.cache.mput(missing, np.zeros((len(missing), 32), np.uint8))
            self.stop.wait(0.02)  # leaves CPU for chromium on a 2-core CI machine


@pytest.fixture
def live(tokens, tmp_path):
    cache = predis.Cache(capacity_bytes=4 << 20)
    exporter = predis.monitoring.serve(cache, port=0, name="main", gpu=False, auth=None)
    load = Load(cache)
    load.thread.start()
    cfg = DashboardConfig(
        customers=parse_customers(CUSTOMERS),
        token_store=tokens.path,
        scrape_urls=[exporter.url],
        db_path=tmp_path / "history.sqlite",
        interval_s=0.5,
        refresh_s=1.0,
        stale_after_s=2.0,
        port=0,
    )
    token = tokens.create("acme", "dashboard")[0]
    dash = DashboardServer(cfg).start()
    yield dash, exporter, token
    load.stop.set()
    load.thread.join()
    dash.stop()
    exporter.close()
    cache.close()


def test_login_live_cards_chart_updates_and_no_data(browser, live, artifacts):
    dash, exporter, token = live
    page = browser.new_page(viewport={"width": 1400, "height": 1700})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    # Not logged in: the overview sends us to the login form; a wrong token is refused.
    page.goto(dash.url + "/")
    assert page.url.endswith("/login")
    page.fill("#token", "pdk_00000000_" + "A" * 43)
    page.click("#login")
    assert "login failed" in page.text_content("#login-error")
    page.fill("#token", token)
    page.click("#login")
    page.wait_for_url(dash.url + "/")
    assert page.text_content("#customer-id") == "acme"

    # The cards fill with live figures.
    page.wait_for_function(
        "() => document.getElementById('card-hit_ratio').textContent.includes('%')", timeout=20_000
    )
    page.wait_for_function(
        "() => /[0-9]/.test(document.getElementById('card-ops_per_s').textContent)", timeout=20_000
    )
    hit = page.text_content("#card-hit_ratio")
    assert re.fullmatch(r"\d+\.\d\d %", hit), hit
    assert 0 < float(hit.split()[0]) <= 100
    assert "live" in page.get_attribute("#status", "class")
    # acme has no A/B data here, so the configured no-prefetch baseline is used.
    assert page.text_content("#card-baseline_hit_ratio") == "25.00 %"
    assert "no-prefetch baseline" in page.text_content("#baseline-note")
    formula = page.text_content("[data-formula='hit_ratio']")
    assert "hits" in formula
    assert page.locator("#roi-table tbody tr").count() >= 15

    # A chart updates without a reload: its point count grows while the page stays the same.
    page.evaluate("window.__sameDocument = true")
    before = int(page.get_attribute("#chart-hit_rate", "data-points") or 0)
    page.wait_for_function(
        "(n) => Number(document.getElementById('chart-hit_rate').dataset.points) > n",
        arg=before + 2,
        timeout=20_000,
    )
    assert page.evaluate("window.__sameDocument") is True
    assert page.locator("#chart-hit_rate .main-svg").count() >= 1  # plotly drew it
    page.screenshot(path=str(artifacts / "overview.png"), full_page=True)

    # The model page renders its sections (no registry here: it says so).
    page.goto(dash.url + "/model")
    page.wait_for_function("() => document.body.dataset.updates >= 1", timeout=20_000)
    assert "no data" in page.text_content("#versions-table")
    page.screenshot(path=str(artifacts / "model.png"), full_page=True)
    page.goto(dash.url + "/")

    # The exporter stops: the page says since when there is no data.
    page.wait_for_function("() => document.body.dataset.updates >= 1", timeout=20_000)
    exporter.close()
    page.wait_for_function(
        "() => document.getElementById('status').textContent.startsWith('no data since')",
        timeout=20_000,
    )
    assert page.text_content("#card-hit_ratio").startswith("no data since")
    assert "stale" in page.get_attribute("#status", "class")
    page.screenshot(path=str(artifacts / "no-data.png"), full_page=True)
    page.close()
    assert not [p for p in problems if "Content Security Policy" in p or "Error" in p], problems

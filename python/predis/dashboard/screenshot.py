"""Screenshot a running dashboard: ``python -m predis.dashboard.screenshot``.

Logs in with a ``dashboard`` token (from ``--token-file``, mode 0600, or the
``PREDIS_DASHBOARD_TOKEN`` environment variable; never the command line), waits until the
page has taken ``--updates`` live updates, and saves a full-page PNG. Needs Playwright and a
chromium binary (Debian: ``apt-get install chromium``)::

    python -m predis.dashboard.screenshot --url http://127.0.0.1:8050 \\
        --token-file ~/.config/predis/dashboard-token --out docs/img/dashboard-overview.png
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from predis.errors import InvalidArgumentError, PredisError

__all__ = ["main", "screenshot"]


def screenshot(
    url: str,
    token: str,
    out: str | os.PathLike[str],
    page_name: str = "overview",
    chromium: str = "/usr/bin/chromium",
    updates: int = 3,
    width: int = 1400,
    timeout_s: float = 60.0,
) -> Path:
    """Log in to the dashboard at ``url`` and save a screenshot of ``page_name``."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - the test extra

    from predis.dashboard.config import validate_scrape_url  # noqa: PLC0415

    base = validate_scrape_url(url).rstrip("/")
    if page_name not in ("overview", "model"):
        raise InvalidArgumentError("page must be 'overview' or 'model'")
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(base + "/login", timeout=timeout_s * 1000)
            page.fill("#token", token)
            page.click("#login")
            page.wait_for_url(base + "/", timeout=timeout_s * 1000)
            if page_name == "model":
                page.goto(base + "/model")
            # A function, not an expression string: the page's CSP forbids eval().
            page.wait_for_function(
                "(n) => Number(document.body.dataset.updates || 0) >= n",
                arg=updates,
                timeout=timeout_s * 1000,
            )
            page.screenshot(path=str(target), full_page=True)
        finally:
            browser.close()
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m predis.dashboard.screenshot", description=__doc__)
    p.add_argument("--url", required=True, help="the dashboard's base URL")
    p.add_argument("--token-file", default=None, help="file (mode 0600) holding the token")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--page", choices=("overview", "model"), default="overview")
    p.add_argument("--chromium", default="/usr/bin/chromium", help="chromium binary")
    p.add_argument("--updates", type=int, default=3, help="live updates to wait for (3)")
    args = p.parse_args(argv)
    try:
        if args.token_file:
            from predis.monitoring.auth import read_secret_file  # noqa: PLC0415

            token = read_secret_file(args.token_file)
        else:
            token = os.environ.get("PREDIS_DASHBOARD_TOKEN", "")
            if not token:
                raise InvalidArgumentError("pass --token-file or set PREDIS_DASHBOARD_TOKEN")
        path = screenshot(args.url, token, args.out, args.page, args.chromium, args.updates)
    except PredisError as exc:
        print(f"predis: error: {exc}", file=sys.stderr)
        return 2
    print(f"screenshot written to {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Helpers of the chaos suite."""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(check: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``limit`` seconds. A bound
    on waiting for a condition, not a timing assertion: a fast machine passes sooner."""
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)

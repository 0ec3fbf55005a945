"""Fixtures for the monitoring tests."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def block_name() -> str:
    """A stats-block name no other test (or process) uses."""
    return f"t-{uuid.uuid4().hex[:16]}"

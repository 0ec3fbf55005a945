"""Shared pieces of the chaos suite: a key ring, a wait helper, the monitoring receivers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The loopback receivers that decode the push exporters' wire formats live with the
# monitoring tests; the chaos suite drives the same ones.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "monitoring"))

from predis.security.crypto import KeyRing, generate_key_line


@pytest.fixture
def key_line() -> str:
    return generate_key_line("k1")


@pytest.fixture
def keys(key_line: str) -> KeyRing:
    return KeyRing.parse(key_line)

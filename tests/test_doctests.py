"""Docstring examples are run, so the documented behaviour stays true."""

from __future__ import annotations

import doctest

import pytest

import predis.cache
import predis.workloads.zipf


@pytest.mark.parametrize("module", [predis.cache, predis.workloads.zipf])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0

"""Labels against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predis import InvalidArgumentError
from predis.prefetch import label_within


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 12), min_size=1, max_size=80),
    st.lists(st.tuples(st.integers(0, 79), st.integers(0, 14)), max_size=40),
    st.integers(1, 10),
)
def test_label_within_matches_brute_force(keys, queries, horizon):
    keys_a = np.array(keys, dtype=np.uint64)
    queries = [(p % len(keys), c) for p, c in queries]
    pos = np.array([p for p, _ in queries], dtype=np.int64)
    cand = np.array([c for _, c in queries], dtype=np.uint64)
    got = label_within(keys_a, pos, cand, horizon)
    want = [int(c in keys[p + 1 : p + 1 + horizon]) for p, c in queries]
    assert got.tolist() == want


def test_label_within_checks_its_input():
    keys = np.arange(5, dtype=np.uint64)
    with pytest.raises(InvalidArgumentError, match="horizon"):
        label_within(keys, np.array([0]), np.array([1], dtype=np.uint64), 0)
    with pytest.raises(InvalidArgumentError, match="same length"):
        label_within(keys, np.array([0, 1]), np.array([1], dtype=np.uint64), 2)

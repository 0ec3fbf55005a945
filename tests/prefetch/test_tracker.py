"""The native candidate generator on crafted streams."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predis import InvalidArgumentError
from predis.prefetch import FEATURE_NAMES, TrackerConfig

F = {name: i for i, name in enumerate(FEATURE_NAMES)}


def rows_for_last(tracker, keys: np.ndarray) -> dict[int, np.ndarray]:
    """Candidate -> feature row for the last request of ``keys`` (observed one by one)."""
    if len(keys) > 1:
        tracker.observe(keys[:-1], False)
    _, cand, feat = tracker.observe(keys[-1:])
    return {int(c): f for c, f in zip(cand, feat, strict=True)}


def test_a_repeated_sequence_is_predicted_by_successors():
    rng = np.random.default_rng(1)
    pattern = np.array([11, 503, 7, 9_999, 42, 1_234_567], dtype=np.uint64)
    stream = []
    for _ in range(10):
        stream += [*pattern, *rng.integers(10**7, 10**8, 7, dtype=np.uint64)]
    rows = rows_for_last(TrackerConfig().make(), np.array([*stream, pattern[0]], dtype=np.uint64))
    for rank, succ in enumerate(pattern[1:]):
        row = rows[int(succ)]
        assert row[F["from_successor"]] == 1.0
        assert row[F["succ_count"]] >= 5  # seen after key 11 in every repetition
        assert row[F["succ_rank"]] <= len(pattern) - 2
        del rank
    assert int(pattern[0]) not in rows  # never the key itself


def test_a_stride_is_detected_and_extrapolated():
    keys = np.arange(1000, 1000 + 3 * 40, 3, dtype=np.uint64)
    rows = rows_for_last(TrackerConfig(stride_depth=5).make(), keys)
    last = int(keys[-1])
    for j in range(1, 6):
        row = rows[last + 3 * j]
        assert row[F["from_stride"]] == 1.0
        assert row[F["stride_step"]] == j
        assert row[F["stride_run"]] >= 30


def test_a_random_stream_yields_no_successor_evidence():
    keys = np.random.default_rng(2).integers(0, 2**63, 20_000, dtype=np.uint64)
    _, _, feat = TrackerConfig().make().observe(keys)
    succ = feat[:, F["from_successor"]] == 1.0
    # Each key was seen once: no successor list exists when it comes (nothing to propose),
    # and no stride is ever confirmed over 2**63-wide random keys.
    assert succ.sum() == 0
    assert (feat[:, F["from_stride"]] == 1.0).sum() == 0


def test_memory_is_bounded_whatever_the_stream():
    t = TrackerConfig(table_bits=8).make()
    before = t.memory_bytes
    t.observe(np.random.default_rng(3).integers(0, 2**40, 200_000, dtype=np.uint64), False)
    assert t.memory_bytes == before
    assert t.requests == 200_000


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 50), min_size=1, max_size=300),
    st.integers(1, 40),
    st.integers(1, 12),
)
def test_chunking_does_not_change_what_is_learned(keys, chunk, max_candidates):
    """Observing in any chunks leaves the same state: the next request's rows agree."""
    cfg = TrackerConfig(max_candidates=max_candidates, table_bits=6, sketch_bits=8)
    arr = np.array(keys, dtype=np.uint64)
    a, b = cfg.make(), cfg.make()
    a.observe(arr, False)
    for s in range(0, len(arr), chunk):
        b.observe(arr[s : s + chunk], False)
    probe = np.array([keys[-1], 7], dtype=np.uint64)
    ra, ca, fa = a.observe(probe)
    rb, cb, fb = b.observe(probe)
    assert ra.tolist() == rb.tolist()
    assert ca.tolist() == cb.tolist()
    np.testing.assert_array_equal(fa, fb)
    # Bounded output: one row per distinct candidate, at most max_candidates per request,
    # never the requested key itself.
    assert len(set(ca.tolist())) == len(ca)
    for i, k in enumerate(probe.tolist()):
        assert (ra == i).sum() <= max_candidates
        assert k not in ca[ra == i].tolist()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("table_bits", 2),
        ("window", 0),
        ("successors", 4),  # fewer than window
        ("hot_per_request", 99),
        ("max_candidates", 0),
        ("sketch_bits", True),
    ],
)
def test_bad_configuration_is_refused(field, value):
    with pytest.raises(InvalidArgumentError, match=field):
        TrackerConfig(**{field: value})


def test_observe_rejects_non_1d_input():
    with pytest.raises(InvalidArgumentError, match="1-D"):
        TrackerConfig().make().observe(np.zeros((2, 2), dtype=np.uint64))


def test_config_round_trips_and_refuses_unknown_fields():
    cfg = TrackerConfig(window=10)
    assert TrackerConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InvalidArgumentError):
        TrackerConfig.from_dict({**cfg.to_dict(), "evil": 1})

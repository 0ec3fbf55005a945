"""Synthetic key streams: exact sequences where they are defined, distributions where not."""

from __future__ import annotations

import numpy as np
import pytest

import predis.workloads as w
from predis import InvalidArgumentError
from predis.workloads.ycsb import YcsbKeys

# One example instance per KeyStream subclass; the contract tests run on all of them, and
# test_every_stream_is_covered fails when a new subclass has no entry here.
FACTORIES = {
    w.ZipfKeys: lambda seed: w.ZipfKeys(1000, 0.99, seed=seed),
    w.LoopKeys: lambda seed: w.LoopKeys(7 + seed, offset=3),
    w.ScanInjected: lambda seed: w.ScanInjected(w.ZipfKeys(100, 1.2, seed=seed), 5, 3),
    w.CorrelatedSessions: lambda seed: w.CorrelatedSessions(500, 8, 6, noise=0.1, seed=seed),
    w.DiurnalKeys: lambda seed: w.DiurnalKeys(200, 0.9, period=50, seed=seed),
    w.PermutedKeys: lambda seed: w.PermutedKeys(w.ZipfKeys(50, 1.0, seed=seed), 50, seed=seed),
    w.PhaseChange: lambda seed: w.PhaseChange.hot_set_shift(300, 1.0, switch_at=40, seed=seed),
    YcsbKeys: lambda seed: YcsbKeys("a", 1000, seed=seed),
}


def all_subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | all_subclasses(sub)
    return out


def test_every_stream_is_covered():
    public = {getattr(w, name) for name in w.__all__}
    assert all_subclasses(w.KeyStream) & public == set(FACTORIES)


@pytest.mark.parametrize("cls", list(FACTORIES), ids=lambda c: c.__name__)
class TestContract:
    def test_dtype_shape_and_empty(self, cls):
        s = FACTORIES[cls](0)
        assert s.take(0).dtype == np.uint64
        assert len(s.take(0)) == 0
        keys = s.take(100)
        assert keys.dtype == np.uint64
        assert keys.shape == (100,)

    def test_same_seed_same_stream_and_chunking_is_invisible(self, cls):
        a = FACTORIES[cls](3)
        b = FACTORIES[cls](3)
        whole = a.take(500)
        pieces = np.concatenate(list(b.chunks(500, 37)))
        np.testing.assert_array_equal(whole, pieces)

    def test_chunks_sizes(self, cls):
        sizes = [len(c) for c in FACTORIES[cls](0).chunks(10, 4)]
        assert sizes == [4, 4, 2]


def test_zipf_frequencies_follow_the_law():
    z = w.ZipfKeys(100, 1.0, seed=5)
    keys = z.take(200_000)
    counts = np.bincount(keys.astype(np.int64), minlength=100) / len(keys)
    p = z.probabilities()
    assert p.sum() == pytest.approx(1.0)
    assert p[0] / p[1] == pytest.approx(2.0)  # 1/1 vs 1/2 for alpha = 1
    # With 200,000 draws the standard error of p[0] ~ 0.19 is below 0.001.
    np.testing.assert_allclose(counts[:5], p[:5], atol=0.005)


def test_loop_is_exact_and_resumes():
    s = w.LoopKeys(4, offset=100)
    assert s.take(6).tolist() == [100, 101, 102, 103, 100, 101]
    assert s.take(3).tolist() == [102, 103, 100]


def test_scans_are_fresh_keys_at_fixed_positions():
    s = w.ScanInjected(w.LoopKeys(3), every=3, length=2, scan_start=50)
    assert s.take(10).tolist() == [0, 1, 2, 50, 51, 0, 1, 2, 52, 53]
    assert s.take(4).tolist() == [0, 1, 2, 54]


def test_sessions_without_noise_are_whole_patterns():
    s = w.CorrelatedSessions(10_000, n_patterns=5, pattern_length=4, seed=2)
    rows = s.take(400).reshape(-1, 4).tolist()
    patterns = s.patterns.tolist()
    assert all(row in patterns for row in rows)
    # Zipf over patterns: the first pattern is the most frequent.
    counts = [rows.count(p) for p in patterns]
    assert counts[0] == max(counts)


def test_session_noise_rate():
    s = w.CorrelatedSessions(1 << 40, n_patterns=1, pattern_length=10, noise=0.3, seed=4)
    keys = s.take(100_000).reshape(-1, 10)
    replaced = (keys != s.patterns[0]).mean()
    assert replaced == pytest.approx(0.3, abs=0.01)


def test_diurnal_hot_half_follows_the_clock():
    d = w.DiurnalKeys(1000, 1.0, period=40_000, seed=1)
    keys = d.take(40_000)
    day = keys < 500
    # Quarter periods centred on the day peak (t = 10,000) and the night peak (t = 30,000).
    assert day[5_000:15_000].mean() > 0.85
    assert day[25_000:35_000].mean() < 0.15
    assert d.day_probability(np.array([10_000]))[0] == pytest.approx(1.0)


def test_phase_change_switches_exactly():
    p = w.PhaseChange(
        [(w.LoopKeys(2), 3), (w.LoopKeys(2, offset=10), 2), (w.LoopKeys(1, offset=99), None)]
    )
    assert p.take(8).tolist() == [0, 1, 0, 10, 11, 99, 99, 99]
    assert p.boundaries == [3, 5]
    assert [p.phase_at(i) for i in (0, 2, 3, 4, 5, 1000)] == [0, 0, 1, 1, 2, 2]


def test_hot_set_shift_moves_the_hot_keys():
    p = w.PhaseChange.hot_set_shift(10_000, 1.2, switch_at=50_000, seed=0)
    before = p.take(50_000)
    after = p.take(50_000)
    top_before = set(np.argsort(np.bincount(before.astype(np.int64)))[-20:].tolist())
    top_after = set(np.argsort(np.bincount(after.astype(np.int64)))[-20:].tolist())
    assert len(top_before & top_after) <= 2


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: w.ZipfKeys(0, 1.0), "n_keys"),
        (lambda: w.ZipfKeys(10, 0.0), "alpha"),
        (lambda: w.ZipfKeys(10, float("nan")), "alpha"),
        (lambda: w.ZipfKeys(10, True), "alpha"),
        (lambda: w.LoopKeys(-1), "n_keys"),
        (lambda: w.ScanInjected(w.LoopKeys(2), every=0, length=1), "every"),
        (lambda: w.CorrelatedSessions(10, 2, 3, noise=1.5), "noise"),
        (lambda: w.DiurnalKeys(1, 1.0, 10), "n_keys"),
        (lambda: w.PhaseChange([]), "at least one phase"),
        (lambda: w.PhaseChange([(w.LoopKeys(2), None), (w.LoopKeys(2), 5)]), "only the last"),
        (lambda: w.PhaseChange([("nope", 5)]), "not a KeyStream"),
        (lambda: w.LoopKeys(3).take(-1), "n must be"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(InvalidArgumentError, match=match):
        make()

"""YCSB core workloads A-F: operation mixes, distributions, inserts, key expansion."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import predis.workloads.ycsb as ycsb_module
from predis import InvalidArgumentError
from predis.workloads.ycsb import YCSB_DTYPE, YCSB_OPS, YcsbKeys, YcsbOp, YcsbWorkload

R, U, INS, S, M = YcsbOp.READ, YcsbOp.UPDATE, YcsbOp.INSERT, YcsbOp.SCAN, YcsbOp.RMW

EXPECTED_MIX = {
    "a": {R: 0.5, U: 0.5},
    "b": {R: 0.95, U: 0.05},
    "c": {R: 1.0},
    "d": {R: 0.95, INS: 0.05},
    "e": {S: 0.95, INS: 0.05},
    "f": {R: 0.5, M: 0.5},
}

N_OPS = 200_000


def fnv1a64(value: int) -> int:
    """Reference FNV-1a 64 over the eight little-endian bytes of ``value``."""
    h = 0xCBF29CE484222325
    for byte in value.to_bytes(8, "little"):
        h = ((h ^ byte) * 0x100000001B3) % (1 << 64)
    return h


def counts_before(ops: np.ndarray, record_count: int) -> np.ndarray:
    """The record count each operation sees: the initial count plus earlier inserts."""
    is_insert = ops["op"] == YcsbOp.INSERT
    return record_count + np.cumsum(is_insert) - is_insert


def test_docstring_examples():
    result = doctest.testmod(ycsb_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_enum_and_dtype():
    assert YCSB_OPS is YcsbOp
    assert [(op.name, int(op)) for op in YcsbOp] == [
        ("READ", 0),
        ("UPDATE", 1),
        ("INSERT", 2),
        ("SCAN", 3),
        ("RMW", 4),
    ]
    assert YCSB_DTYPE.names == ("key", "op", "length")
    ops = YcsbWorkload("a", 10).sample(3)
    assert ops.dtype == YCSB_DTYPE
    assert len(YcsbWorkload("a", 10).sample(0)) == 0


@pytest.mark.parametrize("letter", sorted(EXPECTED_MIX))
def test_op_mix_matches_proportions(letter):
    wl = YcsbWorkload(letter, 10_000, seed=11)
    assert wl.proportions == EXPECTED_MIX[letter]
    ops = wl.sample(N_OPS)
    freq = np.bincount(ops["op"], minlength=len(YcsbOp)) / N_OPS
    # Each op's share is a binomial mean over 200,000 draws: its standard error
    # sqrt(p (1 - p) / n) is at most sqrt(0.25 / 200,000) ~ 0.0011, so 0.006 is > 5 SE.
    for op in YcsbOp:
        p = EXPECTED_MIX[letter].get(op, 0.0)
        if p == 0.0:
            assert freq[op] == 0.0
        else:
            assert freq[op] == pytest.approx(p, abs=0.006)
    assert (ops["length"][ops["op"] != YcsbOp.SCAN] == 1).all()


@pytest.mark.parametrize("letter", ["d", "e"])
def test_inserts_are_consecutive_new_records(letter):
    wl = YcsbWorkload(letter, 1000, seed=4)
    inserted = []
    for chunk in wl.chunks(50_000, 777):
        inserted.append(chunk["key"][chunk["op"] == YcsbOp.INSERT])
    keys = np.concatenate(inserted)
    assert len(keys) > 2000  # ~5% of 50,000
    np.testing.assert_array_equal(keys, np.arange(1000, 1000 + len(keys), dtype=np.uint64))
    assert wl.record_count == 1000 + len(keys)
    assert wl.initial_record_count == 1000


@pytest.mark.parametrize("letter", sorted(EXPECTED_MIX))
def test_keys_lie_below_the_current_record_count(letter):
    wl = YcsbWorkload(letter, 500, seed=6)
    ops = wl.sample(50_000)
    counts = counts_before(ops, 500)
    not_insert = ops["op"] != YcsbOp.INSERT
    assert (ops["key"][not_insert] < counts[not_insert]).all()
    assert wl.record_count == 500 + int((~not_insert).sum())


def test_workloads_without_inserts_keep_their_record_count():
    wl = YcsbWorkload("f", 321, seed=1)
    wl.sample(10_000)
    assert wl.record_count == 321


def test_latest_reads_favour_the_newest_records():
    record_count = 100_000
    wl = YcsbWorkload("d", record_count, seed=8)
    ops = wl.sample(N_OPS)
    counts = counts_before(ops, record_count)
    reads = ops["op"] == YcsbOp.READ
    recency = (counts[reads] - 1 - ops["key"][reads].astype(np.int64)).astype(np.int64)
    assert (recency >= 0).all()
    newest_share = float((recency < counts[reads] // 100).mean())
    # Zipf(0.99) over ~100,000 records puts ~60% of reads on the newest 1%.
    assert newest_share > 0.4
    hits = np.bincount(recency)
    assert int(np.argmax(hits)) == 0  # the newest record is the most read


def test_latest_stays_an_exact_zipf_as_records_are_added():
    # Start small so inserts grow the record count ~11-fold during the run; the expected
    # share of recency r averages (r + 1) ** -0.99 / zeta(n) over the counts the reads saw.
    wl = YcsbWorkload("d", 1000, seed=9)
    ops = wl.sample(N_OPS)
    counts = counts_before(ops, 1000)
    reads = ops["op"] == YcsbOp.READ
    n_reads = int(reads.sum())
    recency = counts[reads] - 1 - ops["key"][reads].astype(np.int64)
    zeta = np.cumsum(np.arange(1, counts.max() + 1, dtype=np.float64) ** -0.99)
    for r in range(4):
        p = float(np.mean((r + 1) ** -0.99 / zeta[counts[reads] - 1]))
        observed = float((recency == r).mean())
        # Binomial standard error of the share; allow 5 of them.
        assert observed == pytest.approx(p, abs=5 * np.sqrt(p * (1 - p) / n_reads))


def test_zipfian_keys_are_skewed_and_scrambled():
    record_count = 10_000
    ops = YcsbWorkload("a", record_count, seed=2).sample(N_OPS)
    hits = np.bincount(ops["key"].astype(np.int64), minlength=record_count)
    top = np.argsort(hits)[::-1][: record_count // 100]
    top_share = hits[top].sum() / N_OPS
    # The hottest 1% of records take about half the requests under zipf(0.99).
    assert top_share > 0.3
    # Rank 0 is scrambled to fnv1a64(0) % n, not to record 0 ...
    hottest = int(top[0])
    assert hottest == fnv1a64(0) % record_count
    assert hottest != 0
    # ... and the hot set is spread over the key space rather than packed at the bottom.
    deciles = set((top * 10 // record_count).tolist())
    assert len(deciles) >= 8


def test_scan_lengths_are_uniform_in_range():
    max_len = 100
    ops = YcsbWorkload("e", 10_000, seed=3, max_scan_length=max_len).sample(N_OPS)
    lengths = ops["length"][ops["op"] == YcsbOp.SCAN].astype(np.int64)
    assert lengths.min() == 1
    assert lengths.max() == max_len
    counts = np.bincount(lengths, minlength=max_len + 1)[1:]
    expected = len(lengths) / max_len
    # Each length's count is binomial with mean ~1,900 and standard deviation ~43;
    # allow 5 of them per bin.
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected)
    assert lengths.mean() == pytest.approx((max_len + 1) / 2, abs=0.5)


def test_scan_length_is_configurable():
    ops = YcsbWorkload("e", 100, seed=1, max_scan_length=7).sample(20_000)
    lengths = ops["length"][ops["op"] == YcsbOp.SCAN]
    assert set(lengths.tolist()) == set(range(1, 8))


@pytest.mark.parametrize("letter", sorted(EXPECTED_MIX))
def test_same_seed_same_stream(letter):
    a = YcsbWorkload(letter, 2000, seed=5).sample(5000)
    b = YcsbWorkload(letter, 2000, seed=5).sample(5000)
    c = YcsbWorkload(letter, 2000, seed=6).sample(5000)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a["key"], c["key"])
    ka = YcsbKeys(letter, 2000, seed=5).take(5000)
    np.testing.assert_array_equal(ka, YcsbKeys(letter, 2000, seed=5).take(5000))


# Start just below a block of the cumulative zipf weights (2**16 records), so inserts in D
# and E make the weights grow part-way through a chunk.
@pytest.mark.parametrize("letter", sorted(EXPECTED_MIX))
@pytest.mark.parametrize("chunk", [1, 37, 4096])
def test_chunking_is_invisible(letter, chunk):
    record_count = (1 << 16) - 40
    whole = YcsbWorkload(letter, record_count, seed=7).sample(6000)
    pieces = np.concatenate(list(YcsbWorkload(letter, record_count, seed=7).chunks(6000, chunk)))
    np.testing.assert_array_equal(whole, pieces)
    keys_whole = YcsbKeys(letter, record_count, seed=7, max_scan_length=20).take(6000)
    keys_pieces = np.concatenate(
        list(YcsbKeys(letter, record_count, seed=7, max_scan_length=20).chunks(6000, chunk))
    )
    np.testing.assert_array_equal(keys_whole, keys_pieces)


def test_chunks_sizes():
    assert [len(c) for c in YcsbWorkload("b", 10).chunks(10, 4)] == [4, 4, 2]


def test_keys_expansion_by_hand_scans_wrap_and_see_inserts():
    ops = YcsbWorkload("e", 5, seed=5, max_scan_length=4).sample(6)
    assert ops.tolist() == [
        (4, S, 3),  # records 4, 0, 1 (wraps below 5 records)
        (0, S, 2),  # 0, 1
        (0, S, 1),  # 0
        (5, INS, 1),  # inserts record 5
        (2, S, 4),  # 2, 3, 4, 5 (6 records now)
        (1, S, 2),  # 1, 2
    ]
    keys = YcsbKeys("e", 5, seed=5, max_scan_length=4).take(13)
    assert keys.tolist() == [4, 0, 1, 0, 1, 0, 5, 2, 3, 4, 5, 1, 2]


def test_keys_expansion_by_hand_rmw_touches_twice():
    ops = YcsbWorkload("f", 20, seed=2).sample(5)
    assert ops.tolist() == [(16, R, 1), (9, R, 1), (5, R, 1), (14, M, 1), (0, R, 1)]
    assert YcsbKeys("f", 20, seed=2).take(6).tolist() == [16, 9, 5, 14, 14, 0]


@pytest.mark.parametrize("letter", sorted(EXPECTED_MIX))
def test_keys_expansion_matches_a_manual_loop(letter):
    record_count, max_len = 30, 6
    ops = YcsbWorkload(letter, record_count, seed=12, max_scan_length=max_len).sample(400)
    expected = []
    count = record_count
    for key, op, length in ops.tolist():
        if op == YcsbOp.SCAN:
            expected.extend((key + j) % count for j in range(length))
        elif op == YcsbOp.RMW:
            expected.extend([key, key])
        else:
            expected.append(key)
        if op == YcsbOp.INSERT:
            count += 1
    keys = YcsbKeys(letter, record_count, seed=12, max_scan_length=max_len)
    assert keys.take(len(expected)).tolist() == expected


def test_single_record_and_case_insensitive_names():
    ops = YcsbWorkload("E", 1, seed=0).sample(200)
    counts = counts_before(ops, 1)
    assert (ops["key"][ops["op"] == YcsbOp.SCAN] < counts[ops["op"] == YcsbOp.SCAN]).all()
    np.testing.assert_array_equal(
        YcsbWorkload("workloadB", 100, seed=3).sample(100),
        YcsbWorkload("b", 100, seed=3).sample(100),
    )


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: YcsbWorkload("g", 10), "workload must be one of"),
        (lambda: YcsbWorkload("", 10), "workload must be one of"),
        (lambda: YcsbWorkload(1, 10), "workload must be one of"),
        (lambda: YcsbWorkload("a", 0), "record_count"),
        (lambda: YcsbWorkload("a", -5), "record_count"),
        (lambda: YcsbWorkload("a", 10.0), "record_count"),
        (lambda: YcsbWorkload("a", True), "record_count"),
        (lambda: YcsbWorkload("e", 10, max_scan_length=0), "max_scan_length"),
        (lambda: YcsbWorkload("a", 10, seed=-1), "seed"),
        (lambda: YcsbWorkload("a", 10).sample(-1), "n must be"),
        (lambda: list(YcsbWorkload("a", 10).chunks(10, 0)), "chunk"),
        (lambda: YcsbKeys("x", 10), "workload must be one of"),
        (lambda: YcsbKeys("a", 0), "record_count"),
        (lambda: YcsbKeys("a", 10).take(-1), "n must be"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(InvalidArgumentError, match=match):
        make()

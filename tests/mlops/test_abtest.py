"""A/B statistics: the z-test on a hand-computed case, mSPRT error rates by simulation,
and a deterministic, keyed traffic split."""

from __future__ import annotations

import hashlib
import platform
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import predis
from predis import InvalidArgumentError, _core
from predis.mlops.abtest import (
    MSPRT,
    TrafficSplit,
    bucket_moments,
    cluster_variance,
    cluster_variance_of_moments,
    two_proportion_ztest,
)

SECRET = bytes(range(32))  # a fixed test key, built rather than written as a literal


def _has_avx2() -> bool:
    """Whether this CPU has AVX2 (the split hashes with it then: checked, so a broken
    dispatch cannot leave the AVX2 kernel silently untested)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return any(
                line.startswith("flags") and " avx2" in f" {line.split(':', 1)[-1]}" for line in f
            )
    except OSError:
        return False


HAS_AVX2 = _has_avx2()


def test_ztest_hand_computed():
    # 50/100 vs 65/100: pooled 0.575, se = sqrt(0.575 * 0.425 * 0.02) = 0.069911,
    # z = 0.15 / 0.069911 = 2.1456, two-sided p = 2 * (1 - Phi(2.1456)) = 0.0319.
    z, p = two_proportion_ztest(50, 100, 65, 100)
    assert z == pytest.approx(2.1456, abs=1e-4)
    assert p == pytest.approx(0.0319, abs=1e-4)
    z2, p2 = two_proportion_ztest(65, 100, 50, 100)
    assert (z2, p2) == pytest.approx((-z, p))


def test_ztest_degenerate_and_bad_input():
    assert two_proportion_ztest(0, 10, 0, 20) == (0.0, 1.0)
    assert two_proportion_ztest(10, 10, 20, 20) == (0.0, 1.0)
    for bad in [(5, 4, 1, 2), (-1, 4, 1, 2), (1, 0, 1, 2), (1.5, 4, 1, 2)]:
        with pytest.raises(InvalidArgumentError):
            two_proportion_ztest(*bad)


def simulate(p_a: float, p_b: float, reps: int, seed: int) -> float:
    """Share of tests that ever decide, checking after every batch of 50 per arm."""
    rng = np.random.default_rng(seed)
    decided = 0
    for _ in range(reps):
        test = MSPRT(alpha=0.05, tau=0.02)
        for _ in range(100):
            test.record("champion", int(rng.binomial(50, p_a)), 50)
            if test.record("challenger", int(rng.binomial(50, p_b)), 50).decided:
                decided += 1
                break
    return decided / reps


def test_msprt_false_positive_rate_under_continuous_monitoring():
    # 300 A/A tests, each looked at 100 times: the always-valid guarantee bounds the share
    # that ever decide by alpha = 0.05 (binomial s.e. at 0.05 and n = 300: 0.0126).
    assert simulate(0.3, 0.3, reps=300, seed=1) <= 0.05 + 2 * 0.0126


def test_msprt_power_and_winner():
    assert simulate(0.30, 0.35, reps=100, seed=2) >= 0.95
    test = MSPRT(alpha=0.05, tau=0.02)
    rng = np.random.default_rng(3)
    res = None
    for _ in range(200):
        test.record("champion", int(rng.binomial(100, 0.40)), 100)
        res = test.record("challenger", int(rng.binomial(100, 0.30)), 100)
        if res.decided:
            break
    assert res is not None
    assert res.decided
    assert res.winner == "champion"
    assert res.difference < 0


def test_msprt_p_value_never_rises_and_waits_for_min_requests():
    test = MSPRT(min_requests=100)
    r = test.record("champion", 50, 50)
    assert (r.p_value, r.likelihood_ratio) == (1.0, 1.0)  # too few requests to say anything
    previous = 1.0
    rng = np.random.default_rng(4)
    for _ in range(50):
        test.record("champion", int(rng.binomial(40, 0.5)), 40)
        p = test.record("challenger", int(rng.binomial(40, 0.5)), 40).p_value
        assert p <= previous
        assert test.p_value == p  # the running value, read without building a result
        assert test.decided() == (p <= test.alpha)
        previous = p


@pytest.mark.parametrize(
    "make",
    [
        lambda: MSPRT(alpha=0),
        lambda: MSPRT(tau=1.5),
        lambda: MSPRT(min_requests=0),
        lambda: MSPRT(min_requests=True),
        lambda: MSPRT(min_requests=100.0),
        lambda: MSPRT().record("treatment", 1, 2),
        lambda: MSPRT().record("champion", 3, 2),
        lambda: TrafficSplit(b"short", 0.5),
        lambda: TrafficSplit(SECRET, 0.0),
        lambda: TrafficSplit(SECRET, 1.0),
        lambda: TrafficSplit(SECRET, True),
        lambda: TrafficSplit(SECRET, 0.5).arm(-1),
        lambda: TrafficSplit(SECRET, 0.5).arm(1.5),
        lambda: TrafficSplit(SECRET, 0.5).arm(True),
    ],
)
def test_bad_arguments(make):
    with pytest.raises(InvalidArgumentError):
        make()


def test_split_is_deterministic_keyed_and_proportioned():
    split = TrafficSplit(SECRET, 0.2)
    keys = list(range(50_000))
    arms = split.is_challenger(keys)
    assert arms.mean() == pytest.approx(0.2, abs=0.01)  # s.e. 0.0018
    assert (split.is_challenger(keys) == arms).all()
    assert TrafficSplit(SECRET, 0.2).arm(12345) == split.arm(12345)
    other = TrafficSplit(bytes(range(1, 33)), 0.2).is_challenger(keys)
    assert 0.25 < (other != arms).mean() < 0.40  # independent splits disagree on ~32%
    assert split.arm("user:1") == split.arm(b"user:1")
    assert 0 <= split.bucket(2**64 - 1) < 10_000


def _digest(secret: bytes, key: int) -> int:
    return int.from_bytes(
        hashlib.blake2b(key.to_bytes(8, "little"), key=secret, digest_size=8).digest(), "little"
    )


_M64 = (1 << 64) - 1


def _unmix(m: int) -> int:
    """The key whose splitmix64 finaliser (the memo's slot and tag) is ``m``."""

    def unshift(x: int, s: int) -> int:  # inverts x ^= x >> s
        out = x
        for _ in range(64 // s + 1):
            out = x ^ (out >> s)
        return out & _M64

    m = unshift(m, 31)
    m = (m * pow(0x94D049BB133111EB, -1, 1 << 64)) & _M64
    m = unshift(m, 27)
    m = (m * pow(0xBF58476D1CE4E5B9, -1, 1 << 64)) & _M64
    return unshift(m, 30)


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


@settings(max_examples=300, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=64),
    n_buckets=st.integers(1, 65_536),
    keys=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=40),
    slot=st.integers(0, (1 << 17) - 1),
    tags=st.lists(st.integers(0, (1 << 47) - 1), min_size=1, max_size=6),
    order=st.randoms(use_true_random=False),
    vectorized=st.booleans(),
)
def test_native_split_hash_is_hashlibs_blake2b_whatever_the_memo_holds(
    secret, n_buckets, keys, slot, tags, order, vectorized
):
    # Keys that share one memo slot (same low bits of the mix, other tags) are looked up
    # in turn, each several times, among arbitrary keys: every bucket must still be the
    # key's own, never a neighbour's remembered one. Both kernels: the AVX2 one (where the
    # CPU has it) and the portable one.
    native = _core.TrafficSplitHash(secret, n_buckets, memo_bits=17, vectorized=vectorized)
    assert native.vectorized == (vectorized and HAS_AVX2)
    rivals = [_unmix((tag << 17) | slot) for tag in tags]
    assert {_mix(k) & ((1 << 17) - 1) for k in rivals} == {slot}
    stream = (keys + rivals) * 3
    order.shuffle(stream)
    for k in keys[:3] + rivals[:1]:
        assert native.digest(k) == _digest(secret, k)
    for start in range(0, len(stream), 7):  # several calls: the memo carries over
        part = stream[start : start + 7]
        got = native.buckets(np.array(part, dtype=np.uint64)).tolist()
        assert got == [_digest(secret, k) % n_buckets for k in part]


@settings(max_examples=100, deadline=None)
@given(
    share=st.floats(0.01, 0.99),
    start=st.lists(st.integers(0, 50), min_size=3, max_size=3),
    keys=st.lists(st.integers(0, 300), max_size=200),
    hits=st.lists(st.booleans(), min_size=200, max_size=200),
)
def test_tally_counts_each_request_in_its_arm_and_bucket_with_its_moments(share, start, keys, hits):
    split = TrafficSplit(SECRET, share)
    arr = np.array(keys, dtype=np.uint64)
    hit = np.array(hits[: len(keys)], dtype=bool)
    # It adds to what is there: some earlier counts, and their moments.
    rng = np.random.default_rng(start)
    requests = [rng.integers(0, 3, 10_000) * start[i] for i in range(2)]
    earlier = [np.minimum(r, rng.integers(0, 5, 10_000)) for r in requests]
    sides = [
        (requests[i].copy(), earlier[i].copy(), bucket_moments(requests[i], earlier[i]))
        for i in range(2)
    ]
    sums = split.tally_u64(arr, hit, sides[0], sides[1])
    want = [(requests[i].copy(), earlier[i].copy()) for i in range(2)]
    for k, h in zip(keys, hit.tolist(), strict=True):
        side = want[0 if split.arm(k) == "challenger" else 1]
        side[0][split.bucket(k)] += 1
        side[1][split.bucket(k)] += h
    for (got_n, got_h, got_m), (want_n, want_h) in zip(sides, want, strict=True):
        assert np.array_equal(got_n, want_n)
        assert np.array_equal(got_h, want_h)
        assert got_m.tolist() == bucket_moments(want_n, want_h).tolist()
        # The variance from the moments is the arrays' variance.
        from_arrays = cluster_variance(want_h, want_n)
        from_moments = cluster_variance_of_moments(got_m)
        if from_arrays is None:
            assert from_moments is None
        else:
            assert from_moments == pytest.approx(from_arrays, rel=1e-9, abs=1e-15)
    chall = [split.arm(k) == "challenger" for k in keys]
    assert sums == (
        sum(chall),
        sum(h for c, h in zip(chall, hit.tolist(), strict=False) if c),
        len(keys) - sum(chall),
        sum(h for c, h in zip(chall, hit.tolist(), strict=False) if not c),
    )


def test_moments_refuse_a_count_their_int64_squares_may_not_hold():
    moments = np.array([2, 1 << 31, 1, 1 << 61, 1, 1], dtype=np.int64)
    with pytest.raises(InvalidArgumentError, match="wrapped"):
        cluster_variance_of_moments(moments)


def test_memo_lookups_from_many_threads_agree_with_hashlib():
    # A memo far smaller than the keys: threads overwrite each other's slots all the time.
    native = _core.TrafficSplitHash(SECRET, 10_000, memo_bits=17)
    rng = np.random.default_rng(7)
    key_sets = [rng.integers(0, 1 << 19, size=40_000, dtype=np.uint64) for _ in range(4)]
    want = [
        np.array([_digest(SECRET, k) % 10_000 for k in ks.tolist()], dtype=np.uint16)
        for ks in key_sets
    ]
    wrong: list[int] = []

    def run(i: int) -> None:
        for _ in range(5):
            got = native.buckets(key_sets[i])
            wrong.append(int(np.count_nonzero(got != want[i])))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wrong) == 20
    assert sum(wrong) == 0


@settings(max_examples=100, deadline=None)
@given(
    secret=st.binary(min_size=16, max_size=64),
    share=st.floats(0.01, 0.99),
    keys=st.lists(st.integers(0, 2**64 - 1), max_size=60),
)
def test_split_arrays_match_the_per_key_arm(secret, share, keys):
    split = TrafficSplit(secret, share)
    arr = np.array(keys, dtype=np.uint64)
    assert split.buckets(arr).tolist() == [split.bucket(k) for k in keys]
    assert split.is_challenger(arr).tolist() == [split.arm(k) == "challenger" for k in keys]
    assert split.is_challenger_u64(arr).tolist() == split.is_challenger(arr).tolist()


def test_native_split_refuses_bad_input():
    with pytest.raises(InvalidArgumentError, match="secret"):
        _core.TrafficSplitHash(b"", 10_000)
    with pytest.raises(InvalidArgumentError, match="secret"):
        _core.TrafficSplitHash(b"x" * 65, 10_000)
    for bad in (0, 65_537):
        with pytest.raises(InvalidArgumentError, match="n_buckets"):
            _core.TrafficSplitHash(b"k" * 32, bad)
    for bad in (16, 25):
        with pytest.raises(InvalidArgumentError, match="memo_bits"):
            _core.TrafficSplitHash(b"k" * 32, 10_000, memo_bits=bad)
    h = _core.TrafficSplitHash(b"k" * 32, 10_000)
    assert h.slots == 1 << 18
    assert h.n_buckets == 10_000
    with pytest.raises(InvalidArgumentError, match="1-D"):
        h.buckets(np.zeros((2, 2), dtype=np.uint64))
    keys, hits = np.arange(4, dtype=np.uint64), np.ones(4, dtype=bool)
    good = [np.zeros(size, dtype=np.int64) for size in (10_000, 10_000, 6, 10_000, 10_000, 6)]
    with pytest.raises(InvalidArgumentError, match="one length"):
        h.tally(keys, hits[:3], 5_000, *good)
    with pytest.raises(InvalidArgumentError, match="cutoff"):
        h.tally(keys, hits, 10_001, *good)
    for bad in (
        np.zeros(9_999, dtype=np.int64),  # not one count per bucket
        np.zeros(10_000, dtype=np.int64)[::-1].copy().reshape(100, 100),  # not 1-D
    ):
        with pytest.raises(InvalidArgumentError, match="low_hits"):
            h.tally(keys, hits, 5_000, good[0], bad, *good[2:])
    with pytest.raises(InvalidArgumentError, match="low_moments"):
        h.tally(keys, hits, 5_000, *good[:2], np.zeros(5, dtype=np.int64), *good[3:])
    # One array in two roles, or two views of one buffer, would be counted into twice.
    shared = np.zeros(20_000, dtype=np.int64)
    for low_hits in (good[0], shared[5_000:15_000]):
        first = good[0] if low_hits is good[0] else shared[:10_000]
        with pytest.raises(InvalidArgumentError, match="distinct"):
            h.tally(keys, hits, 5_000, first, low_hits, *good[2:])
    with pytest.raises(InvalidArgumentError, match="distinct"):
        h.tally(keys, hits, 5_000, *good[:3], *good[:3])
    frozen = np.zeros(10_000, dtype=np.int64)
    frozen.flags.writeable = False
    with pytest.raises(InvalidArgumentError, match="high_hits"):
        h.tally(keys, hits, 5_000, *good[:4], frozen, good[5])
    for wrong in (np.zeros(10_000, dtype=np.int32), np.zeros(20_000, dtype=np.int64)[::2]):
        with pytest.raises(TypeError):  # a converted copy would take the counts: refused
            h.tally(keys, hits, 5_000, wrong, *good[1:])
    with pytest.raises(TypeError):
        h.tally(keys, hits.astype(np.uint8), 5_000, *good)
    assert all(not g.any() for g in good)  # nothing counted by a refused call
    split = TrafficSplit(SECRET, 0.5)
    with pytest.raises(InvalidArgumentError, match="int keys"):
        split.buckets(np.array([-1, 2]))
    with pytest.raises(InvalidArgumentError, match="int keys"):
        split.buckets(np.array([0.5]))
    assert split.buckets(np.array([3, 4], dtype=np.int64)).tolist() == [
        split.bucket(3),
        split.bucket(4),
    ]


def _reference_step(a, b, null_difference, tau2, min_requests, p):
    """The mSPRT's step written out in Python: the reference the native one is held to."""

    def rate(hits, n):
        return hits / n if n else 0.0

    def var(hits, n, cluster):
        binomial = rate(hits, n) * (1 - rate(hits, n)) / n
        return binomial if cluster is None else max(binomial, cluster)

    diff = rate(b[0], b[1]) - rate(a[0], a[1])
    ratio = 1.0
    if a[1] >= min_requests and b[1] >= min_requests:
        v = max(var(*a) + var(*b), 1e-12)
        shift = diff - null_difference
        log_ratio = 0.5 * np.log(v / (v + tau2)) + tau2 * shift * shift / (2 * v * (v + tau2))
        ratio = float(np.exp(min(log_ratio, 700.0)))
        p = min(p, 1.0 / ratio)
    return diff, ratio, p


_arm = st.integers(0, 10**7).flatmap(
    lambda n: st.tuples(st.integers(0, n), st.just(n), st.one_of(st.none(), st.floats(0.0, 0.1)))
)


@settings(max_examples=400, deadline=None)
@given(
    a=_arm,
    b=_arm,
    null_difference=st.floats(-0.5, 0.5),
    tau=st.floats(1e-3, 0.5),
    min_requests=st.integers(1, 10**6),
    p=st.floats(0.0, 1.0),
)
def test_native_msprt_step_is_the_written_out_formula(a, b, null_difference, tau, min_requests, p):
    got = _core.msprt_step(*a, *b, null_difference, tau * tau, min_requests, p)
    want = _reference_step(a, b, null_difference, tau * tau, min_requests, p)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-300)
    assert got[2] <= p  # the running p-value never rises


@settings(max_examples=100, deadline=None)
@given(
    seeds=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    sizes=st.tuples(st.integers(0, 3_000), st.integers(0, 3_000)),
    clustered=st.tuples(st.booleans(), st.booleans()),
    looks=st.integers(1, 4),
)
def test_a_look_from_bucket_moments_is_feeding_the_variances_then_deciding(
    seeds, sizes, clustered, looks
):
    """MSPRT.look (one native call from the moments) leaves the test as setting each arm's
    counts and variance from the arrays and calling decided() does, look after look."""
    cheap, full = MSPRT(min_requests=50), MSPRT(min_requests=50)
    arms = []
    for seed, size, cluster in zip(seeds, sizes, clustered, strict=True):
        rng = np.random.default_rng(seed)
        n = rng.integers(0, 40, 10_000) if cluster else np.zeros(10_000, dtype=np.int64)
        arms.append([n, np.zeros(10_000, dtype=np.int64), rng, size, cluster])
    for _ in range(looks):
        given_arms = []
        for arm in arms:
            n, h, rng, size, cluster = arm
            buckets = rng.integers(0, 10_000, size)
            np.add.at(n, buckets, 1)
            np.add.at(h, buckets[rng.random(size) < 0.4], 1)
            h[:] = np.minimum(h, n)
            given_arms.append(
                (int(h.sum()), int(n.sum()), bucket_moments(n, h) if cluster else None)
            )
        for counts, (hits, requests, moments), arm in zip(
            (full.champion, full.challenger), given_arms, arms, strict=True
        ):
            counts.hits, counts.requests = hits, requests
            counts.variance = cluster_variance(arm[1], arm[0]) if moments is not None else None
        want = full.decided()
        assert cheap.look(*given_arms) == want
        for got, exp in ((cheap.champion, full.champion), (cheap.challenger, full.challenger)):
            assert (got.hits, got.requests) == (exp.hits, exp.requests)
            assert (got.variance is None) == (exp.variance is None)
            if exp.variance is not None:
                assert got.variance == pytest.approx(exp.variance, rel=1e-9, abs=1e-15)
        assert cheap.p_value == pytest.approx(full.p_value, rel=1e-9)


def test_a_look_past_the_exact_moments_changes_nothing_and_says_so():
    test = MSPRT(min_requests=10)
    test.look((5, 10, None), (6, 10, None))
    before = (test.champion, test.challenger, test.p_value)
    huge = np.array([2, 1 << 31, 1, 1 << 61, 1, 1], dtype=np.int64)
    assert test.look((1, 1 << 31, huge), (6, 20, None)) is None
    assert (test.champion, test.challenger, test.p_value) == before


@pytest.mark.parametrize(
    "args",
    [
        (11, 10, None, 5, 10, None),  # more hits than requests
        (-1, 10, None, 5, 10, None),
        (5, 10, np.arange(5), 5, 10, None),  # five moments, not six
        (5, 10, None, 5, 10, "moments"),
        (5, 10, np.array([2, 10, 12, 50, 25, 25]), 5, 10, None),  # hits over requests
    ],
)
def test_a_look_refuses_counts_that_are_not_an_arms(args):
    with pytest.raises(InvalidArgumentError):
        _core.msprt_look(*args, 0.0, 0.0004, 1, 1.0)


@pytest.mark.parametrize(
    "tail",
    [(1.5, 0.0004, 1, 1.0), (0.0, 0.0, 1, 1.0), (0.0, 0.0004, 0, 1.0), (0.0, 0.0004, 1, 1.5)],
)
def test_a_step_refuses_a_test_that_cannot_be(tail):
    with pytest.raises(InvalidArgumentError):
        _core.msprt_step(5, 10, None, 5, 10, 0.001, *tail)


def test_moments_are_integers_never_truncated_floats():
    assert MSPRT(min_requests=np.int64(100)).min_requests == 100
    with pytest.raises(InvalidArgumentError):
        cluster_variance_of_moments(np.array([2.5, 10.7, 5.0, 50.0, 25.0, 25.0]))
    with pytest.raises(InvalidArgumentError, match="six integers"):
        cluster_variance_of_moments(None)
    assert cluster_variance_of_moments([2, 10, 5, 50, 25, 25]) == 0.25


def test_a_step_refuses_a_variance_that_is_not_one():
    for bad in (float("nan"), -1.0, float("inf")):
        with pytest.raises(InvalidArgumentError):
            _core.msprt_step(5, 10, bad, 5, 10, None, 0.0, 0.0004, 1, 1.0)


def _sides():
    return tuple(
        (np.zeros(10_000, np.int64), np.zeros(10_000, np.int64), np.zeros(6, np.int64))
        for _ in range(2)
    )


def _served_into_a_tap(keys: list[int]) -> tuple[predis.Cache, _core.DemandTap]:
    """A cache that served ``keys`` (a third of them stored first, so some hit), its
    demand gets kept in a tap (the cache returned with it: it must outlive the tap's use)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a CPU-only build's fallback warning
        cache = predis.Cache(1 << 20, max_items=500, backend="cpu")
    tap = _core.DemandTap(1 << 12)
    cache._core.attach_demand_tap(tap)
    for k in keys:
        if k % 3 == 0:
            cache.put(k, b"v")
        cache.get(k)
    cache._drain_native()
    return cache, tap


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.integers(0, 3_000), max_size=400),
    limit=st.integers(1, 500),
    share=st.floats(0.05, 0.95),
)
def test_a_tally_of_a_taps_new_requests_is_the_tally_of_them_and_leaves_them_kept(
    keys, limit, share
):
    _cache, tap = _served_into_a_tap(keys)  # the cache kept alive while the tap is read
    split = TrafficSplit(SECRET, share)
    got, want = _sides(), _sides()
    n, sums = split.tally_tap(tap, limit, *got)
    assert n == min(limit, len(keys))
    assert (tap.pending, tap.peeked) == (len(keys), n)  # counted, still kept
    taken_keys, taken_hits = tap.take(n)
    assert split.tally_u64(taken_keys, taken_hits, *want) == sums
    for g, w in zip(got, want, strict=True):
        for a, b in zip(g, w, strict=True):
            assert np.array_equal(a, b)
    # What was left is new: the next tally counts it, and then nothing.
    rest, _ = split.tally_tap(tap, 1 << 20, *got)
    assert rest == len(keys) - n
    assert split.tally_tap(tap, 1 << 20, *got) == (0, (0, 0, 0, 0))


def test_a_tally_of_a_tap_refuses_count_arrays_that_are_not_an_arms():
    split = TrafficSplit(SECRET, 0.5)
    tap = _core.DemandTap(16)
    (req, hits, moments), other = _sides()
    with pytest.raises(InvalidArgumentError):
        split.tally_tap(tap, 10, (req, req, moments), other)  # one array in two roles
    with pytest.raises(InvalidArgumentError):
        split.tally_tap(tap, 10, (req[:5], hits, moments), other)
    with pytest.raises(TypeError):
        split.tally_tap(tap, 10, (req.astype(np.int32), hits, moments), other)


LOOK_SETTINGS = {
    "null_difference": 0.0,
    "tau2": 0.02**2,
    "alpha": 0.025,
    "min_requests": 20,
    "base_is_high": True,
    "horizon": 0,
    "budget": 0,
    "decide_every": 64,
    "growth": 8,
    "stream_every": 1_024,
    "p": 1.0,
    "looks_from": 0,
    "next_look": 64,
}


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.integers(0, 3_000), min_size=1, max_size=600),
    limit=st.integers(1, 700),
    share=st.floats(0.05, 0.95),
    base_is_high=st.booleans(),
    null_difference=st.sampled_from([0.0, -0.05, 0.1]),
    horizon=st.sampled_from([0, 50, 10**6]),
    budget=st.sampled_from([0, 40, 10**6]),
    next_look=st.integers(0, 700),
)
def test_a_native_look_counts_as_tally_tap_and_steps_as_msprt_look(
    keys, limit, share, base_is_high, null_difference, horizon, budget, next_look
):
    """LiveLooks.look(): the counts are tally_tap()'s, and when a look is due (its position
    at or past next_look) the running p-value is MSPRT.look()'s on the moments, the base arm
    the one asked for; it wakes exactly when the test may decide, or reaches its horizon
    (both arms) or budget (the other arm), and otherwise plans the next look."""
    _cache, tap = _served_into_a_tap(keys)  # the cache kept alive while the tap is read
    split = TrafficSplit(SECRET, share)
    got, want = _sides(), _sides()
    settings_ = {
        **LOOK_SETTINGS,
        "base_is_high": base_is_high,
        "null_difference": null_difference,
        "horizon": horizon,
        "budget": budget,
        "next_look": next_look,
    }
    looks = split.live_looks(*got, *settings_.values())
    counted, position, wake, every = looks.look(tap, limit, 0)
    n = min(limit, len(keys))
    assert counted == n
    assert (tap.pending, tap.peeked) == (len(keys), n)  # counted, still kept
    taken_keys, taken_hits = tap.take(n)
    sums = split.tally_u64(taken_keys, taken_hits, *want)
    assert looks.take_pending() == sums
    assert looks.take_pending() == (0, 0, 0, 0)
    for g, w in zip(got, want, strict=True):
        for a, b in zip(g, w, strict=True):
            assert np.array_equal(a, b)
    assert position == n  # released 0, plus what is now peeked
    if position < next_look:
        assert (wake, every, looks.p, looks.next_look) == (False, 0, 1.0, next_look)
        return
    low, high = got[0][2], got[1][2]
    base, other = (high, low) if base_is_high else (low, high)
    m = MSPRT(alpha=0.025, tau=0.02, min_requests=20, null_difference=null_difference)
    decided = m.look((int(base[2]), int(base[1]), base), (int(other[2]), int(other[1]), other))
    assert looks.p == pytest.approx(m.p_value, rel=1e-12)
    should_wake = (
        bool(decided)
        or (horizon > 0 and min(base[1], other[1]) >= horizon)
        or (budget > 0 and other[1] >= budget)
    )
    assert wake == should_wake
    if wake:
        assert (every, looks.next_look) == (0, next_look)  # left for the loop to plan
    else:
        assert every == max(64, min(position // 8, 1_024))
        assert looks.next_look == position + every


def test_native_looks_refuse_bad_settings_and_arrays():
    split = TrafficSplit(SECRET, 0.5)
    bad = [
        ("null_difference", 1.0),
        ("tau2", 0.0),
        ("tau2", float("nan")),
        ("alpha", 1.0),
        ("min_requests", 0),
        ("horizon", -1),
        ("budget", -5),
        ("decide_every", 0),
        ("growth", 0),
        ("stream_every", -1),
        ("p", 1.5),
        ("p", float("nan")),
        ("looks_from", -1),
        ("next_look", -1),
        ("next_look", 2**63 - 1),  # a position plus a span must not overflow
        ("decide_every", 2**41),
        ("horizon", 2**63 - 1),
    ]
    for name, value in bad:
        with pytest.raises(InvalidArgumentError):
            split.live_looks(*_sides(), *{**LOOK_SETTINGS, name: value}.values())
    (req, hits, moments), other = _sides()
    with pytest.raises(InvalidArgumentError):
        split.live_looks((req, req, moments), other, *LOOK_SETTINGS.values())
    with pytest.raises(InvalidArgumentError):
        split.live_looks((req, hits, moments[:5]), other, *LOOK_SETTINGS.values())
    with pytest.raises(TypeError):
        split.live_looks((req.astype(np.int32), hits, moments), other, *LOOK_SETTINGS.values())
    looks = split.live_looks(*_sides(), *LOOK_SETTINGS.values())
    with pytest.raises(InvalidArgumentError):
        looks.set_state(2.0, 0, 0)
    with pytest.raises(InvalidArgumentError):
        looks.set_state(0.5, -1, 0)
    looks.set_state(0.5, 10, 100)
    assert (looks.p, looks.looks_from, looks.next_look) == (0.5, 10, 100)
    with pytest.raises(InvalidArgumentError):
        looks.look(_core.DemandTap(16), 10, -1)  # released

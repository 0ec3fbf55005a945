"""A/B testing of a challenger model against the champion: traffic split and statistics.

**Split.** A key's arm comes from a keyed blake2b hash of the key into 10,000 buckets;
buckets below ``challenger_share * 10,000`` are the challenger's. The same key always lands
in the same arm (never Python's salted ``hash()``), and a secret per test keeps the split
unguessable and independent between tests.

**Statistics.** Each request is a Bernoulli outcome (hit or miss), per arm.

- Fixed horizon: the two-proportion z-test (pooled variance). At a horizon chosen in
  advance its false-positive rate is ``alpha``; looked at repeatedly, it is not.
- Continuous monitoring: the mixture sequential probability ratio test (mSPRT; Johari,
  Pekelis and Walsh, "Always valid inference", 2017) with a normal mixing distribution
  N(0, tau^2) over the hit-rate difference. Its always-valid p-value may be checked after
  every request: the chance that it ever falls below ``alpha`` when the arms are equal is at
  most ``alpha`` (asymptotically, since the variance is estimated). ``tau`` is the size of
  difference the test is tuned to find; the test stays valid for any ``tau``.
"""

from __future__ import annotations

import hashlib
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from predis import _core
from predis.errors import InvalidArgumentError

__all__ = [
    "MSPRT",
    "ArmCounts",
    "MSPRTResult",
    "TrafficSplit",
    "arm_variance",
    "cluster_variance",
    "two_proportion_ztest",
]

BUCKETS = 10_000


def _key_bytes(key: int | bytes | str) -> bytes:
    if isinstance(key, bool):
        raise InvalidArgumentError("keys must be int, bytes or str, not bool")
    if isinstance(key, (int, np.integer)):
        if not 0 <= int(key) < 2**64:
            raise InvalidArgumentError(f"int keys must be in [0, 2**64), got {key}")
        return int(key).to_bytes(8, "little")
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, bytes):
        return key
    raise InvalidArgumentError(f"keys must be int, bytes or str, not {type(key).__name__}")


class TrafficSplit:
    """Which arm serves a key: ``"challenger"`` for a ``challenger_share`` of the buckets.

    Example:
        >>> import secrets
        >>> split = TrafficSplit(secret=secrets.token_bytes(32), challenger_share=0.1)
        >>> split.arm(42) == split.arm(42)
        True
    """

    def __init__(self, secret: bytes, challenger_share: float) -> None:
        if not isinstance(secret, bytes) or not 16 <= len(secret) <= 64:
            raise InvalidArgumentError(
                "secret must be 16 to 64 bytes (e.g. secrets.token_bytes(32))"
            )
        if isinstance(challenger_share, bool) or not (
            isinstance(challenger_share, (int, float)) and 0 < challenger_share < 1
        ):
            raise InvalidArgumentError(
                f"challenger_share must be in (0, 1), got {challenger_share!r}"
            )
        self._secret = secret
        self.challenger_share = float(challenger_share)
        self._cutoff = round(self.challenger_share * BUCKETS)
        # The same keyed blake2b in C++ for whole uint64 arrays (GIL released), each key's
        # bucket remembered: the router splits demand keys and candidates through it.
        self._native = _core.TrafficSplitHash(secret, BUCKETS)

    def bucket(self, key: int | bytes | str) -> int:
        """The key's bucket in 0..9,999."""
        digest = hashlib.blake2b(_key_bytes(key), key=self._secret, digest_size=8).digest()
        return int.from_bytes(digest, "little") % BUCKETS

    def arm(self, key: int | bytes | str) -> str:
        """``"challenger"`` or ``"champion"``."""
        return "challenger" if self.bucket(key) < self._cutoff else "champion"

    def buckets(self, keys: np.ndarray) -> np.ndarray:
        """Every key's bucket, for an array of uint64 keys (a uint16 array; the same values
        as :meth:`bucket`, computed natively)."""
        arr = np.asarray(keys)
        if arr.dtype != np.uint64:
            if arr.size and (arr.dtype.kind not in "iu" or arr.min() < 0):
                raise InvalidArgumentError("buckets() takes an array of int keys in [0, 2**64)")
            arr = arr.astype(np.uint64)
        return self._native.buckets(np.ascontiguousarray(arr.ravel()))

    @property
    def cutoff(self) -> int:
        """Buckets below this serve the challenger."""
        return self._cutoff

    def tally_u64(
        self,
        keys: np.ndarray,
        hits: np.ndarray,
        challenger: tuple[np.ndarray, np.ndarray, np.ndarray],
        champion: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> tuple[int, int, int, int]:
        """Count each request (a C-contiguous uint64 key and its bool hit) in its arm's
        per-bucket requests and hits int64 arrays, and their moments (see
        :func:`bucket_moments`), in place, natively. Returns the challenger's requests and
        hits added, then the champion's."""
        return self._native.tally(keys, hits, self._cutoff, *challenger, *champion)

    def tally_tap(
        self,
        tap: _core.DemandTap,
        max_count: int,
        challenger: tuple[np.ndarray, np.ndarray, np.ndarray],
        champion: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> tuple[int, tuple[int, int, int, int]]:
        """:meth:`tally_u64` of the requests ``tap`` keeps that were not peeked at (up to
        ``max_count``), peeked at natively (they stay in the tap for a later take): the
        requests counted, and the sums as :meth:`tally_u64` returns them. Called by the
        tap's one consumer."""
        return self._native.tally_tap(tap, max_count, self._cutoff, *challenger, *champion)

    def live_looks(
        self,
        challenger: tuple[np.ndarray, np.ndarray, np.ndarray],
        champion: tuple[np.ndarray, np.ndarray, np.ndarray],
        *settings: Any,
    ) -> _core.LiveLooks:
        """A native :class:`predis._core.LiveLooks` over this split and the arms' count
        arrays (as :meth:`tally_tap` takes them): the looks at a running test that go on,
        done without the loop. ``settings``: the rest of its arguments, in order, from
        ``null_difference`` to ``next_look`` (positional: matching 13 keywords by name
        would double the cost of the call)."""
        return _core.LiveLooks(self._native, self._cutoff, *challenger, *champion, *settings)

    def is_challenger_u64(self, keys: np.ndarray) -> np.ndarray:
        """:meth:`is_challenger` for a C-contiguous uint64 array, without checks or copies
        (the router's per-batch path)."""
        return self._native.buckets(keys) < self._cutoff

    def is_champion_u64(self, keys: np.ndarray) -> np.ndarray:
        """The complement of :meth:`is_challenger_u64`: which keys the champion serves."""
        return self._native.buckets(keys) >= self._cutoff

    def is_challenger(self, keys: Sequence[int | bytes | str] | np.ndarray) -> np.ndarray:
        """A bool array: which keys the challenger serves."""
        if isinstance(keys, np.ndarray) and keys.dtype.kind in "iu":
            return self.buckets(keys) < self._cutoff
        return np.fromiter((self.bucket(k) < self._cutoff for k in keys), dtype=bool)


def two_proportion_ztest(
    hits_a: int,
    n_a: int,
    hits_b: int,
    n_b: int,
    var_a: float | None = None,
    var_b: float | None = None,
) -> tuple[float, float]:
    """(z, two-sided p-value) for H0: the two hit rates are equal (pooled variance).

    z > 0 when B's hit rate is higher. With no variance (both rates 0 or both 1) the
    result is (0.0, 1.0): no evidence either way. ``var_a`` and ``var_b``, the arms'
    cluster variances (:func:`cluster_variance`), replace the pooled binomial variance
    where they are larger, for requests that are not independent.
    """
    for name, hits, n in (("a", hits_a, n_a), ("b", hits_b, n_b)):
        if not (isinstance(hits, int) and isinstance(n, int)) or not 0 <= hits <= n or n < 1:
            raise InvalidArgumentError(f"arm {name}: need integers 0 <= hits <= n, n >= 1")
    pooled = (hits_a + hits_b) / (n_a + n_b)
    var = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if var_a is not None and var_b is not None:
        var = max(var, var_a + var_b)
    if var == 0:
        return 0.0, 1.0
    z = (hits_b / n_b - hits_a / n_a) / math.sqrt(var)
    return z, math.erfc(abs(z) / math.sqrt(2))


def cluster_variance(bucket_hits: np.ndarray, bucket_requests: np.ndarray) -> float | None:
    """The variance of an arm's hit rate when its requests come in clusters (the split's
    buckets): the ratio estimator's sandwich variance, ``m/(m-1) * sum((h_b - p n_b)^2) /
    N^2`` over the ``m`` buckets with requests. None with fewer than two such buckets.

    Traffic is split by key, so one arm's requests are not independent draws: a hot key's
    requests all land in one arm and mostly hit or mostly miss together. The binomial
    variance ``p(1-p)/N`` ignores that and, under a zipf workload, makes two arms serving
    the same model look significantly different far more often than ``alpha`` says.
    """
    n = bucket_requests.astype(np.float64)
    used = n > 0
    m = int(np.count_nonzero(used))
    total = float(n.sum())
    if m < 2 or total <= 0:
        return None
    h = bucket_hits.astype(np.float64)
    p = float(h.sum()) / total
    resid = h[used] - p * n[used]
    return m / (m - 1) * float(resid @ resid) / (total * total)


#: Below this many requests an arm's moments fit in int64s: sum n^2 <= N^2 < 2^62
#: (2**31, the native statistics' bound).
EXACT_MOMENTS_REQUESTS: int = _core.EXACT_MOMENTS_REQUESTS


def bucket_moments(bucket_requests: np.ndarray, bucket_hits: np.ndarray) -> np.ndarray:
    """What the variance needs of an arm's bucket counts n and h, as six int64s: buckets
    with requests, sum n, sum h, sum n^2, sum h*n, sum h^2 (the native tally keeps them up
    to date request by request)."""
    n = bucket_requests.astype(np.int64)
    h = bucket_hits.astype(np.int64)
    return np.array([np.count_nonzero(n), n.sum(), h.sum(), n @ n, h @ n, h @ h], dtype=np.int64)


def cluster_variance_of_moments(moments: np.ndarray | list[int]) -> float | None:
    """:func:`cluster_variance` from the bucket counts' moments (:func:`bucket_moments`),
    summed exactly (natively, in 128-bit integers): ``sum((h_b - p n_b)^2) = sum h^2 - 2p
    sum hn + p^2 sum n^2``, whose terms cancel. Only below :data:`EXACT_MOMENTS_REQUESTS`
    requests, where the int64 squares cannot have wrapped (use the arrays beyond)."""
    return _core.cluster_variance_of_moments(moments)


def arm_variance(arm: ArmCounts) -> float:
    """The larger of the binomial and the cluster variance of an arm's hit rate (an arm
    with requests)."""
    return _core.msprt_arm_variance(arm.hits, arm.requests, arm.variance)


@dataclass
class ArmCounts:
    """Hits and requests of one arm, and, when its requests are not independent, the
    variance of its hit rate estimated from clusters (see :func:`cluster_variance`)."""

    hits: int = 0
    requests: int = 0
    variance: float | None = None

    @property
    def hit_rate(self) -> float:
        """hits / requests, or 0.0 before the first request."""
        return self.hits / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class MSPRTResult:
    """The test's state after an update."""

    difference: float  # challenger hit rate - champion hit rate
    likelihood_ratio: float
    p_value: float  # always valid: may be read after every update
    decided: bool  # p_value <= alpha
    winner: str | None  # "challenger", "champion", or None while undecided


class MSPRT:
    """Always-valid sequential test of two hit rates (normal mixture, variance estimated).

    ``tau`` is the standard deviation of the mixing distribution over the difference: the
    effect size the test is most sensitive to (default 0.02, two percentage points of hit
    rate). ``min_requests`` per arm guards the variance estimate at the start.
    ``null_difference`` is the difference under the null hypothesis (default 0: equal
    rates); a rollback watch tests against ``-threshold`` ("no worse than the threshold").
    """

    def __init__(
        self,
        alpha: float = 0.05,
        tau: float = 0.02,
        min_requests: int = 100,
        null_difference: float = 0.0,
    ) -> None:
        if not -1 < null_difference < 1:
            raise InvalidArgumentError(
                f"null_difference must be in (-1, 1), got {null_difference!r}"
            )
        if not 0 < alpha < 1:
            raise InvalidArgumentError(f"alpha must be in (0, 1), got {alpha!r}")
        if not 0 < tau < 1:
            raise InvalidArgumentError(f"tau must be in (0, 1), got {tau!r}")
        try:
            if isinstance(min_requests, bool):
                raise TypeError
            min_requests = operator.index(min_requests)
        except TypeError:
            raise InvalidArgumentError(
                f"min_requests must be an int >= 1, got {min_requests!r}"
            ) from None
        if min_requests < 1:
            raise InvalidArgumentError(f"min_requests must be an int >= 1, got {min_requests!r}")
        self.alpha = alpha
        self.tau2 = tau * tau
        self.min_requests = min_requests
        self.null_difference = float(null_difference)
        self.champion = ArmCounts()
        self.challenger = ArmCounts()
        self._p = 1.0

    def record(self, arm: str, hits: int, requests: int) -> MSPRTResult:
        """Add ``hits`` out of ``requests`` to ``arm`` and return the updated state."""
        if arm not in ("champion", "challenger"):
            raise InvalidArgumentError(f"arm must be 'champion' or 'challenger', got {arm!r}")
        if not (isinstance(hits, int) and isinstance(requests, int)) or not 0 <= hits <= requests:
            raise InvalidArgumentError("need integers 0 <= hits <= requests")
        counts = self.champion if arm == "champion" else self.challenger
        counts.hits += hits
        counts.requests += requests
        return self.result()

    def result(self) -> MSPRTResult:
        """The current state, without adding data."""
        diff, ratio = self._update()
        decided = self._p <= self.alpha
        winner = None
        if decided:
            winner = "challenger" if diff - self.null_difference > 0 else "champion"
        return MSPRTResult(diff, ratio, self._p, decided, winner)

    @property
    def p_value(self) -> float:
        """The always-valid p-value as of the latest :meth:`result` or :meth:`decided`."""
        return self._p

    def decided(self) -> bool:
        """:meth:`result`'s ``decided``, without building the result (a look that only
        needs to know whether to go on). Like :meth:`result`, it takes the counts so far
        into the running p-value."""
        self._update()
        return self._p <= self.alpha

    def take_p_value(self, p: float) -> None:
        """Take in a running p-value computed elsewhere on the same counts (the router's
        native looks, which started from this one): the running minimum."""
        self._p = min(self._p, float(p))

    def look(
        self,
        champion: tuple[int, int, np.ndarray | None],
        challenger: tuple[int, int, np.ndarray | None],
    ) -> bool | None:
        """Set both arms' counts, each ``(hits, requests, bucket moments or None)`` (None:
        its requests are independent), their cluster variances computed from the moments,
        and take them into the running p-value, in one native call: whether the test has
        decided. None, with nothing changed, when an arm's moments count
        :data:`EXACT_MOMENTS_REQUESTS` requests or more (compute its variance from the
        bucket arrays, set the counts and call :meth:`decided` instead)."""
        out = _core.msprt_look(
            *champion, *challenger, self.null_difference, self.tau2, self.min_requests, self._p
        )
        if out is None:
            return None
        a, b = self.champion, self.challenger
        a.hits, a.requests, a.variance = champion[0], champion[1], out[3]
        b.hits, b.requests, b.variance = challenger[0], challenger[1], out[4]
        self._p = out[2]
        return out[2] <= self.alpha

    def _update(self) -> tuple[float, float]:
        """The difference and likelihood ratio on the counts so far; the running p-value
        takes the ratio in (a floor on the variance keeps degenerate rates, 0 or 1, from
        dividing by zero; before both arms reach ``min_requests`` the ratio is 1)."""
        a, b = self.champion, self.challenger
        diff, ratio, self._p = _core.msprt_step(
            a.hits,
            a.requests,
            a.variance,
            b.hits,
            b.requests,
            b.variance,
            self.null_difference,
            self.tau2,
            self.min_requests,
            self._p,
        )
        return diff, ratio

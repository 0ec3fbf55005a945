"""A/B decisions and the rollback watch, on per-arm counts from the router.

**A/B test** (:class:`ABTest`). Two looks share the false-positive budget ``alpha``
(Bonferroni): the mSPRT at ``alpha / 2``, read after every batch, and the two-proportion
z-test at ``alpha / 2``, read once, when both arms reach the sample budget
``max_requests``. So the chance of promoting a challenger that is no better than the
champion is at most ``alpha`` (asymptotically: both tests estimate the variance).

- Promote: one of the two tests finds the challenger's hit rate significantly higher and
  the guardrails hold: back-end fetches per request at most ``1 + max_fetch_increase``
  times the champion's, and mean inference time per batch within ``latency_budget_s``.
- Stop: a test finds it significantly lower, a guardrail fails where it would have been
  promoted, or the budget runs out without a significant difference.

**Rollback watch** (:class:`RollbackWatch`). After a promotion the previous champion keeps
serving a small holdback share of the keys for ``watch_requests``, so the new champion is
judged against the previous one's hit rate measured over the same period, not against a
figure from before (the workload may have moved since). An mSPRT with the null difference
``-rollback_threshold`` confirms a breach sequentially: it rejects with the new champion
below the previous one by more than the threshold (chance of a false rollback at most
``rollback_alpha``), or rejects the other way (the new champion is not that much worse),
which ends the watch early. At the end of the watch the back-end guardrail is checked
too; a breach of either rolls the registry back to ``previous``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from predis.errors import InvalidArgumentError
from predis.mlops.abtest import (
    BUCKETS,
    EXACT_MOMENTS_REQUESTS,
    MSPRT,
    ArmCounts,
    MSPRTResult,
    arm_variance,
    bucket_moments,
    cluster_variance,
    cluster_variance_of_moments,
    two_proportion_ztest,
)

__all__ = ["ABConfig", "ABTest", "ArmStats", "Decision", "RollbackWatch"]


@dataclass
class ArmStats:
    """What one arm of the router saw: demand outcomes of its keys and its prefetch work."""

    requests: int = 0
    hits: int = 0
    proposals: int = 0  # keys its model proposed (each one a back-end fetch at most)
    inference_batches: int = 0
    inference_seconds: float = 0.0
    # Requests and hits per split bucket, kept by the router's native tally (or
    # add_batch; None when the arm's requests were only counted): the unit of
    # randomisation, hence of the variance.
    bucket_requests: np.ndarray | None = field(default=None, repr=False, compare=False)
    bucket_hits: np.ndarray | None = field(default=None, repr=False, compare=False)
    # Their moments, kept with them (six int64s; see cluster_variance_of_moments), so a
    # look at the test costs the same whatever the number of buckets.
    bucket_moments: np.ndarray | None = field(default=None, repr=False, compare=False)

    def bucket_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The per-bucket requests and hits arrays and their moments, created empty at the
        first call; a native tally (:meth:`TrafficSplit.tally_u64`) adds to all three in
        place, and the caller then adds its sums to ``requests`` and ``hits``."""
        if self.bucket_requests is None or self.bucket_hits is None:
            self.bucket_requests = np.zeros(BUCKETS, dtype=np.int64)
            self.bucket_hits = np.zeros(BUCKETS, dtype=np.int64)
            # Empty counts have zero moments: not computed (int64 dot products over
            # 10,000 buckets are about a million instructions at every test's start).
            self.bucket_moments = np.zeros(6, dtype=np.int64)
        if self.bucket_moments is None:  # counts given without them: theirs
            self.bucket_moments = bucket_moments(self.bucket_requests, self.bucket_hits)
        return self.bucket_requests, self.bucket_hits, self.bucket_moments

    def add_batch(self, buckets: np.ndarray, hits: np.ndarray) -> None:
        """Count demand requests of this arm: their split buckets and hit flags (numpy,
        the moments recomputed: the reference the router's native tally is checked
        against, not its path)."""
        bucket_requests, bucket_hits, moments = self.bucket_counts()
        np.add.at(bucket_requests, buckets, 1)
        np.add.at(bucket_hits, buckets[hits], 1)
        moments[:] = bucket_moments(bucket_requests, bucket_hits)
        self.requests += len(buckets)
        self.hits += int(np.count_nonzero(hits))

    @property
    def variance(self) -> float | None:
        """The cluster variance of the hit rate over the buckets (None without them)."""
        if self.bucket_requests is None or self.bucket_hits is None:
            return None
        moments = self.bucket_moments
        if moments is not None and int(moments[1]) < EXACT_MOMENTS_REQUESTS:
            return cluster_variance_of_moments(moments)
        return cluster_variance(self.bucket_hits, self.bucket_requests)

    @property
    def hit_rate(self) -> float:
        """Demand hits per request of this arm's keys (0 before any)."""
        return self.hits / self.requests if self.requests else 0.0

    @property
    def fetches_per_request(self) -> float:
        """(demand misses + prefetch proposals) per request: an upper bound on the back-end
        fetches this arm causes (a proposal may be dropped by the executor's budget)."""
        if not self.requests:
            return 0.0
        return (self.requests - self.hits + self.proposals) / self.requests

    @property
    def mean_inference_s(self) -> float:
        """Mean model time per inference batch (0 when the model never ran)."""
        return self.inference_seconds / self.inference_batches if self.inference_batches else 0.0

    def as_dict(self) -> dict[str, float]:
        """The counts and derived rates, for events and the registry."""
        return {
            "requests": float(self.requests),
            "hits": float(self.hits),
            "proposals": float(self.proposals),
            "hit_rate": self.hit_rate,
            "fetches_per_request": self.fetches_per_request,
            "mean_inference_s": self.mean_inference_s,
        }


def _check(name: str, value: object, lo: float, hi: float, *, integer: bool = False) -> None:
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (isinstance(value, int) or not integer)
        and lo <= value <= hi
    )
    if not ok:
        kind = "an int" if integer else "a number"
        raise InvalidArgumentError(f"ABConfig.{name} must be {kind} in [{lo}, {hi}], got {value!r}")


@dataclass(frozen=True)
class ABConfig:
    """How A/B tests and rollback watches run.

    Attributes:
        challenger_share: share of the keys (hash buckets) the challenger serves.
        alpha: false-positive budget of a test (split between the mSPRT and the z-test).
        tau: the mSPRT's mixing scale: the hit-rate difference it is tuned to find.
        min_requests: requests per arm before the mSPRT may decide.
        max_requests: the sample budget per arm, and the z-test's fixed horizon.
        max_fetch_increase: guardrail on back-end load: the challenger's fetches per request
            may exceed the champion's by this share at most.
        latency_budget_s: guardrail on the challenger's mean inference time per batch.
        holdback_share: share of the keys the previous champion keeps during a watch.
        watch_requests: requests of the new champion's arm that a watch lasts.
        rollback_threshold: a hit-rate drop (absolute) beyond this is a breach.
        rollback_alpha: false-rollback budget of the watch's sequential test.
        experiment_scoring: ``"every"``: during a test or a watch both arms run their
            models on every batch (twice the model calls of serving); ``"alternate"``: they
            take turns, each scoring the batch it skipped with the next one (no more model
            calls than serving, but a smaller effect to detect; see
            :mod:`predis.mlops.router`).
    """

    challenger_share: float = 0.25
    alpha: float = 0.05
    tau: float = 0.02
    min_requests: int = 1_000
    max_requests: int = 200_000
    max_fetch_increase: float = 0.25
    latency_budget_s: float = 0.005
    holdback_share: float = 0.1
    watch_requests: int = 50_000
    rollback_threshold: float = 0.01
    rollback_alpha: float = 0.05
    experiment_scoring: str = "every"

    def __post_init__(self) -> None:
        if self.experiment_scoring not in ("alternate", "every"):
            raise InvalidArgumentError(
                "ABConfig.experiment_scoring must be 'alternate' or 'every', "
                f"got {self.experiment_scoring!r}"
            )
        _check("challenger_share", self.challenger_share, 0.01, 0.99)
        _check("alpha", self.alpha, 1e-6, 0.5)
        _check("tau", self.tau, 1e-4, 0.5)
        _check("min_requests", self.min_requests, 10, 10**12, integer=True)
        _check("max_requests", self.max_requests, self.min_requests, 10**12, integer=True)
        _check("max_fetch_increase", self.max_fetch_increase, 0.0, 100.0)
        _check("latency_budget_s", self.latency_budget_s, 1e-6, 10.0)
        _check("holdback_share", self.holdback_share, 0.01, 0.5)
        _check("watch_requests", self.watch_requests, self.min_requests, 10**12, integer=True)
        _check("rollback_threshold", self.rollback_threshold, 0.0, 0.5)
        _check("rollback_alpha", self.rollback_alpha, 1e-6, 0.5)


@dataclass(frozen=True)
class Decision:
    """What a test or watch concluded. ``action`` is ``"continue"``, ``"promote"`` or
    ``"stop"`` for a test; ``"continue"``, ``"pass"`` or ``"rollback"`` for a watch."""

    action: str
    reason: str
    statistics: dict[str, float]


def _feed(counts: ArmCounts, arm: ArmStats) -> None:
    counts.hits, counts.requests, counts.variance = arm.hits, arm.requests, arm.variance


def _look(m: MSPRT, base: ArmStats, other: ArmStats) -> bool:
    """Feed both arms' counts to the sequential test and take them in: whether it decided.
    One native call with the arms' bucket moments (a look at a running test comes here
    every few thousand requests); the arrays' variance beyond their exact range."""
    decided = m.look(
        (base.hits, base.requests, _moments(base)), (other.hits, other.requests, _moments(other))
    )
    if decided is None:
        _feed(m.champion, base)
        _feed(m.challenger, other)
        decided = m.decided()
    return decided


def _moments(arm: ArmStats) -> np.ndarray | None:
    """An arm's bucket moments (computed if it was given counts without them), or None when
    it has no bucket counts (its requests taken as independent)."""
    if arm.bucket_requests is None or arm.bucket_hits is None:
        return None
    moments = arm.bucket_moments
    return moments if moments is not None else arm.bucket_counts()[2]


def _stats(
    base: ArmStats,
    other: ArmStats,
    counts: tuple[ArmCounts, ArmCounts],
    p_seq: float,
    z: float | None,
    p_z: float | None,
) -> dict[str, float]:
    """The decision's statistics; ``counts``: base's and other's, as just fed to the
    sequential test (their variances computed once)."""
    out = {f"base_{k}": v for k, v in base.as_dict().items()}
    out |= {f"new_{k}": v for k, v in other.as_dict().items()}
    out["difference"] = other.hit_rate - base.hit_rate
    out["msprt_p"] = p_seq
    for name, arm in (("base", counts[0]), ("new", counts[1])):
        v = arm.variance
        if v is not None:
            out[f"{name}_cluster_variance"] = v
    if z is not None and p_z is not None:
        out["z"], out["z_p"] = z, p_z
    return out


class ABTest:
    """An A/B test of a challenger against the champion, fed per-arm stats by the router."""

    def __init__(self, config: ABConfig) -> None:
        self.config = config
        self._msprt = MSPRT(
            alpha=config.alpha / 2, tau=config.tau, min_requests=config.min_requests
        )

    def _guardrail(self, champion: ArmStats, challenger: ArmStats) -> str | None:
        c = self.config
        limit = champion.fetches_per_request * (1 + c.max_fetch_increase)
        if challenger.fetches_per_request > limit:
            return (
                f"back-end load {challenger.fetches_per_request:.3f} fetches/request is over "
                f"the limit {limit:.3f} (champion {champion.fetches_per_request:.3f})"
            )
        if challenger.mean_inference_s > c.latency_budget_s:
            return (
                f"inference {1e6 * challenger.mean_inference_s:.0f} us/batch is over the "
                f"budget {1e6 * c.latency_budget_s:.0f} us"
            )
        return None

    def sequential(self) -> MSPRTResult:
        """The sequential test's state as of the latest :meth:`decide` or :meth:`verdict`
        (for monitoring)."""
        return self._msprt.result()

    def decide(self, champion: ArmStats, challenger: ArmStats) -> Decision:
        """The decision on the counts so far (cumulative ``ArmStats`` of each arm)."""
        decision = self.verdict(champion, challenger)
        if decision is not None:
            return decision
        m = self._msprt
        p_seq = m.p_value
        return Decision(
            "continue",
            "collecting",
            _stats(champion, challenger, (m.champion, m.challenger), p_seq, None, None),
        )

    def verdict(self, champion: ArmStats, challenger: ArmStats) -> Decision | None:
        """:meth:`decide`'s decision if it is not ``"continue"``, else None, without
        building the statistics of a decision to continue: what the MLOps loop looks at on
        every chunk of a running test, where most looks continue."""
        m = self._msprt
        c = self.config
        at_horizon = min(champion.requests, challenger.requests) >= c.max_requests
        if not _look(m, champion, challenger) and not at_horizon:
            return None  # neither test can conclude: a decision to continue
        seq = m.result()
        z = p_z = None
        if at_horizon:
            z, p_z = two_proportion_ztest(
                champion.hits,
                champion.requests,
                challenger.hits,
                challenger.requests,
                m.champion.variance,
                m.challenger.variance,
            )
        stats = _stats(champion, challenger, (m.champion, m.challenger), seq.p_value, z, p_z)
        diff = stats["difference"]
        better = (seq.decided and seq.winner == "challenger") or (
            p_z is not None and p_z <= c.alpha / 2 and diff > 0
        )
        worse = (seq.decided and seq.winner == "champion") or (
            p_z is not None and p_z <= c.alpha / 2 and diff < 0
        )
        if better:
            breach = self._guardrail(champion, challenger)
            if breach is not None:
                return Decision("stop", f"better hit rate but a guardrail failed: {breach}", stats)
            test = "mSPRT" if seq.decided else "z-test at the horizon"
            return Decision(
                "promote",
                f"hit rate {challenger.hit_rate:.4f} vs {champion.hit_rate:.4f} "
                f"({100 * diff:+.2f} pp, {test}), guardrails hold",
                stats,
            )
        if worse:
            return Decision(
                "stop",
                f"significantly worse: hit rate {challenger.hit_rate:.4f} vs "
                f"{champion.hit_rate:.4f} ({100 * diff:+.2f} pp)",
                stats,
            )
        # A decided mSPRT names a winner, so what is left is the horizon, undecided.
        return Decision(
            "stop",
            f"sample budget of {c.max_requests:,} requests per arm spent without a "
            f"significant difference ({100 * diff:+.2f} pp)",
            stats,
        )


class RollbackWatch:
    """Watches a new champion against the previous one (serving the holdback keys)."""

    def __init__(self, config: ABConfig) -> None:
        self.config = config
        # Half the false-rollback budget to the sequential test, half to the fixed-horizon
        # z-test at the end of the watch (as the A/B test splits its alpha).
        self._msprt = MSPRT(
            alpha=config.rollback_alpha / 2,
            tau=config.tau,
            min_requests=config.min_requests,
            null_difference=-config.rollback_threshold,
        )

    def sequential(self) -> MSPRTResult:
        """The sequential test's state as of the latest :meth:`decide` or :meth:`verdict`
        (for monitoring)."""
        return self._msprt.result()

    def decide(self, previous: ArmStats, new: ArmStats) -> Decision:
        """The watch's verdict on the counts so far."""
        decision = self.verdict(previous, new)
        if decision is not None:
            return decision
        m = self._msprt
        return Decision(
            "continue",
            "watching",
            _stats(previous, new, (m.champion, m.challenger), m.p_value, None, None),
        )

    def verdict(self, previous: ArmStats, new: ArmStats) -> Decision | None:
        """:meth:`decide`'s verdict if it is not ``"continue"``, else None, without building
        the statistics of a decision to continue (the MLOps loop's looks)."""
        m = self._msprt
        c = self.config
        if not _look(m, previous, new) and new.requests < c.watch_requests:
            return None  # no breach confirmed and budget left: a decision to continue
        seq = m.result()
        stats = _stats(previous, new, (m.champion, m.challenger), seq.p_value, None, None)
        diff = stats["difference"]
        if seq.decided and seq.winner == "champion":
            return Decision(
                "rollback",
                f"hit rate {new.hit_rate:.4f} vs the previous champion's {previous.hit_rate:.4f} "
                f"({100 * diff:+.2f} pp, beyond -{100 * c.rollback_threshold:.2f} pp; mSPRT "
                f"p={seq.p_value:.2g})",
                stats,
            )
        if not seq.decided and min(previous.requests, new.requests) >= c.min_requests:
            # The budget is spent undecided: one fixed-horizon look, one-sided, at the
            # breach threshold, with the same (cluster-aware) variance.
            var = max(
                arm_variance(m.champion) + arm_variance(m.challenger),
                1e-12,
            )
            z = (diff + c.rollback_threshold) / math.sqrt(var)
            p_breach = 0.5 * math.erfc(-z / math.sqrt(2))  # P(Z <= z)
            stats["z"], stats["z_p"] = z, p_breach
            if p_breach <= c.rollback_alpha / 2:
                return Decision(
                    "rollback",
                    f"hit rate {new.hit_rate:.4f} vs the previous champion's "
                    f"{previous.hit_rate:.4f} ({100 * diff:+.2f} pp, beyond "
                    f"-{100 * c.rollback_threshold:.2f} pp; z-test at the end of the watch, "
                    f"p={p_breach:.2g})",
                    stats,
                )
        limit = previous.fetches_per_request * (1 + c.max_fetch_increase)
        if new.fetches_per_request > limit:
            return Decision(
                "rollback",
                f"back-end load {new.fetches_per_request:.3f} fetches/request is over the limit "
                f"{limit:.3f} (previous champion {previous.fetches_per_request:.3f})",
                stats,
            )
        return Decision(
            "pass",
            f"hit rate {new.hit_rate:.4f} vs the previous champion's {previous.hit_rate:.4f} "
            f"({100 * diff:+.2f} pp): no breach",
            stats,
        )

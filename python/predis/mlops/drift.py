"""Drift detection on streams (performance) and windows (features, key popularity).

- :class:`StreamDriftDetector`: ADWIN (native, the GIL released) on a 0/1 stream (hit/miss,
  prefetch used/wasted), bit by bit or in blocks of bits (a few nanoseconds a bit).
- :class:`FeatureDriftDetector`: per-feature PSI and Jensen-Shannon divergence on quantile
  bins frozen at training time, with a chi-square test per feature at a Bonferroni-corrected
  level: a feature alarms only when the shift is both large (PSI above the threshold) and
  significant (p below alpha / number of features).
- :class:`PopularityDriftDetector`: Jensen-Shannon divergence of the rank-frequency shape
  (mass of the top ranks) and of the reuse-distance histogram (log2 bins).

Window detectors confirm drift only when k of the last n windows alarm (persistence), and
stay quiet for a cooldown after :meth:`notify_retrained`. Every statistic is finite for any
input: empty windows give no decision, zero-probability bins are smoothed, constant
features get their own bins. Drift events go to subscribers; a subscriber that raises is
logged and counted, and detection goes on.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from predis import _core
from predis.errors import InvalidArgumentError

__all__ = [
    "DriftEvent",
    "FeatureDriftDetector",
    "Persistence",
    "PopularityDriftDetector",
    "StreamDriftDetector",
    "js_divergence",
    "psi",
]

log = logging.getLogger("predis.drift")
_EPS = 1e-6  # probability floor for empty bins: keeps PSI and JS finite


@dataclass(frozen=True)
class DriftEvent:
    """A confirmed drift: what kind, from which detector, its statistics, its decision."""

    kind: str  # "performance" | "feature" | "popularity"
    source: str
    statistics: dict[str, float]
    decision: str  # "drift"
    position: int  # stream position, or window number


def _probabilities(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    p = counts / total if total > 0 else np.full(len(counts), 1.0 / len(counts))
    p = np.maximum(p, _EPS)
    return p / p.sum()


def psi(reference: np.ndarray, window: np.ndarray) -> float:
    """Population stability index of two bin-count (or probability) vectors; >= 0, finite."""
    r, w = _probabilities(np.asarray(reference, float)), _probabilities(np.asarray(window, float))
    return float(np.sum((w - r) * np.log(w / r)))


def js_divergence(reference: np.ndarray, window: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of two bin-count vectors."""
    r, w = _probabilities(np.asarray(reference, float)), _probabilities(np.asarray(window, float))
    m = 0.5 * (r + w)
    return float(0.5 * np.sum(r * np.log2(r / m)) + 0.5 * np.sum(w * np.log2(w / m)))


class _Subscribers:
    def __init__(self) -> None:
        self._callbacks: list[Callable[[DriftEvent], object]] = []
        self.callback_errors = 0

    def subscribe(self, callback: Callable[[DriftEvent], object]) -> None:
        """Call ``callback(event)`` on each confirmed drift; checked here, not at the event."""
        if not callable(callback):
            raise InvalidArgumentError("a drift callback must be callable(event)")
        self._callbacks.append(callback)

    def _emit(self, event: DriftEvent) -> None:
        for cb in self._callbacks:
            try:
                cb(event)
            except Exception:
                self.callback_errors += 1
                log.exception("drift callback %r failed on %s", cb, event)


@dataclass
class Persistence:
    """k of the last n windows must alarm; then ``cooldown`` quiet windows after a retrain."""

    k: int = 2
    n: int = 3
    cooldown: int = 3
    _recent: deque[bool] = field(default_factory=deque, init=False, repr=False)
    _quiet: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if not (1 <= self.k <= self.n <= 1000) or not 0 <= self.cooldown <= 10_000:
            raise InvalidArgumentError("persistence needs 1 <= k <= n <= 1000 and 0 <= cooldown")
        self._recent = deque(maxlen=self.n)

    def observe(self, alarm: bool) -> bool:
        """Record one window's alarm; True when drift is confirmed."""
        if self._quiet > 0:
            self._quiet -= 1
            return False
        self._recent.append(alarm)
        if sum(self._recent) >= self.k:
            self._recent.clear()  # one confirmation per episode
            return True
        return False

    def retrained(self) -> None:
        """Start the cooldown and forget earlier alarms."""
        self._recent.clear()
        self._quiet = self.cooldown


class StreamDriftDetector(_Subscribers):
    """ADWIN over a 0/1 stream (hit/miss, prefetch used/wasted). ``drift_detected`` is True
    right after an update that found a change in the mean; ``cooldown_updates`` suppresses
    detections for that many bits after :meth:`notify_retrained`.

    The window is ``predis._core.Adwin``: ADWIN2 (Bifet and Gavaldà, 2007) in C++, fed
    whole arrays with the GIL released. With ``block`` > 1 it inserts ``block`` bits at a
    time as one bucket holding their exact count, sum and variance, so every statistic of
    the cut test is the bit-level one; only the boundaries it tests are block edges, and the
    cost per bit falls with the block (about 3 ns a bit at 64, against 300 to 900 ns a bit
    for river's ADWIN called bit by bit). Positions and cooldowns are in bits. ``clock`` is
    ADWIN's: the window is tested every ``clock`` insertions (blocks).
    """

    def __init__(
        self,
        source: str,
        delta: float = 0.002,
        cooldown_updates: int = 0,
        *,
        block: int = 1,
        clock: int = 32,
    ) -> None:
        super().__init__()
        if not 0 < delta < 1:
            raise InvalidArgumentError(f"delta must be in (0, 1), got {delta!r}")
        if cooldown_updates < 0:
            raise InvalidArgumentError("cooldown_updates must be >= 0")
        for name, value in (("block", block), ("clock", clock)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
                raise InvalidArgumentError(f"{name} must be an int in [1, 4096], got {value!r}")
        self.source = source
        self.block = block
        self._adwin = _core.Adwin(float(delta), block, clock)
        self._cooldown = cooldown_updates
        self._quiet = 0
        self._position = 0
        self._detected = False

    @property
    def drift_detected(self) -> bool:
        """Whether the last update confirmed a change."""
        return self._detected

    @property
    def mean(self) -> float:
        """ADWIN's current estimate of the stream's mean (0 before the first block)."""
        return float(self._adwin.mean)

    @property
    def width(self) -> int:
        """Bits in ADWIN's current window (whole blocks)."""
        return int(self._adwin.width)

    @property
    def position(self) -> int:
        """Bits fed so far."""
        return self._position

    def update(self, bit: bool | int | float) -> StreamDriftDetector:
        """Feed one outcome (truthy = 1)."""
        cut = self._adwin.update_bit(bool(bit))
        if cut is None:  # the common case, kept short
            self._position += 1
            if self._quiet:
                self._quiet -= 1
            self._detected = False
        else:
            self._account(1, [cut])
        return self

    def update_many(self, bits: Sequence[bool] | np.ndarray) -> bool:
        """Feed many outcomes; True if any of them confirmed a change. The same result,
        state and events as :meth:`update` on each bit in turn."""
        flags = np.asarray(bits).ravel()
        if flags.dtype != np.bool_:
            flags = flags != 0
        return self._account(len(flags), self._adwin.update(flags.view(np.uint8)))

    def _account(self, n: int, cuts: list[tuple[int, float, float]]) -> bool:
        """Position, cooldown and events after ``n`` bits that caused ``cuts``."""
        start, quiet = self._position, self._quiet
        self._position = start + n
        self._quiet = max(0, quiet - n)
        self._detected = False
        if not cuts:
            return False
        any_drift = False
        for consumed, mean, width in cuts:
            # The cut came with bit `consumed` of this call; the cooldown counts bits
            # before it (a bit by bit caller checks the cooldown, then decrements it).
            if consumed - 1 < quiet:
                continue
            any_drift = True
            self._detected = consumed == n
            stats = {"mean": float(mean), "width": float(width)}
            self._emit(DriftEvent("performance", self.source, stats, "drift", start + consumed))
        return any_drift

    def notify_retrained(self) -> None:
        """Start the cooldown."""
        self._quiet = self._cooldown


@dataclass(frozen=True)
class FeatureCheck:
    """One window's per-feature statistics and the decision."""

    psi: dict[str, float]
    js: dict[str, float]
    p_value: dict[str, float]
    alarmed: tuple[str, ...]
    drift: bool
    decided: bool  # False when the window was too small to judge


class FeatureDriftDetector(_Subscribers):
    """Feature-distribution drift against bins frozen from a reference sample."""

    def __init__(
        self,
        feature_names: Sequence[str],
        bins: int = 10,
        psi_threshold: float = 0.2,
        alpha: float = 0.01,
        persistence: Persistence | None = None,
        min_window: int = 50,
    ) -> None:
        super().__init__()
        names = list(feature_names)
        if not names or len(set(names)) != len(names):
            raise InvalidArgumentError("feature_names must be distinct and non-empty")
        if not 2 <= bins <= 1000:
            raise InvalidArgumentError("bins must be in 2..1000")
        if not 0 < psi_threshold < 10:
            raise InvalidArgumentError("psi_threshold must be in (0, 10)")
        if not 0 < alpha < 1:
            raise InvalidArgumentError("alpha must be in (0, 1)")
        if min_window < 1:
            raise InvalidArgumentError("min_window must be >= 1")
        self.names = names
        self.bins = bins
        self.psi_threshold = psi_threshold
        self.alpha = alpha
        self.persistence = persistence or Persistence()
        self.min_window = min_window
        self._edges: list[np.ndarray] = []
        self._ref: list[np.ndarray] = []
        self._windows = 0
        self.last_check: FeatureCheck | None = None  # the latest check(), for monitoring

    def _matrix(self, x: np.ndarray, what: str) -> np.ndarray:
        m = np.asarray(x, dtype=float)
        if m.ndim != 2 or m.shape[1] != len(self.names):
            raise InvalidArgumentError(f"{what} must be (n, {len(self.names)}), got {m.shape}")
        return m

    def fit(self, reference: np.ndarray) -> FeatureDriftDetector:
        """Freeze per-feature quantile bins and the reference's bin proportions."""
        m = self._matrix(reference, "reference")
        self._edges, self._ref = [], []
        for j in range(m.shape[1]):
            col = m[:, j][np.isfinite(m[:, j])]
            if len(col) == 0:
                raise InvalidArgumentError(
                    f"reference feature {self.names[j]!r} has no finite values"
                )
            edges = np.unique(np.quantile(col, np.linspace(0, 1, self.bins + 1)[1:-1]))
            if len(edges) == 0 or edges[0] == edges[-1] == col.min() == col.max():
                c = float(col[0])
                edges = np.array([c, np.nextafter(c, math.inf)])  # below / equal / above
            self._edges.append(edges)
            self._ref.append(
                np.bincount(np.searchsorted(edges, col, side="right"), minlength=len(edges) + 1)
            )
        return self

    def check(self, window: np.ndarray) -> FeatureCheck:
        """Judge one window; emits a DriftEvent when persistence confirms drift."""
        from scipy.stats import chisquare  # noqa: PLC0415 - heavy: imported on first use

        if not self._edges:
            raise InvalidArgumentError("call fit(reference) before check(window)")
        m = self._matrix(window, "window")
        self._windows += 1
        psis, jss, ps, alarmed = {}, {}, {}, []
        level = self.alpha / len(self.names)  # Bonferroni across features
        decided = False
        for j, name in enumerate(self.names):
            col = m[:, j][np.isfinite(m[:, j])]
            if len(col) < self.min_window:
                continue
            decided = True
            counts = np.bincount(
                np.searchsorted(self._edges[j], col, side="right"),
                minlength=len(self._edges[j]) + 1,
            )
            ref = self._ref[j]
            psis[name] = psi(ref, counts)
            jss[name] = js_divergence(ref, counts)
            expected = _probabilities(ref.astype(float)) * counts.sum()
            ps[name] = float(chisquare(counts, expected).pvalue)
            if psis[name] > self.psi_threshold and ps[name] < level:
                alarmed.append(name)
        drift = decided and self.persistence.observe(bool(alarmed))
        result = FeatureCheck(psis, jss, ps, tuple(alarmed), drift, decided)
        self.last_check = result
        if drift:
            stats = {f"psi:{n}": psis[n] for n in alarmed} | {f"p:{n}": ps[n] for n in alarmed}
            self._emit(DriftEvent("feature", ",".join(alarmed), stats, "drift", self._windows))
        return result

    def notify_retrained(self) -> None:
        """Start the cooldown (refit on the new training data as well, if it changed)."""
        self.persistence.retrained()


def reuse_histogram(keys: np.ndarray, max_log2: int = 20) -> np.ndarray:
    """Counts of reuse distances (requests since the same key's previous request) in bins
    [first access, 1, 2-3, 4-7, ..., >= 2**max_log2]."""
    k = np.asarray(keys)
    n = len(k)
    hist = np.zeros(max_log2 + 2, dtype=np.int64)
    if n == 0:
        return hist
    order = np.argsort(k, kind="stable")
    sk = k[order]
    same = np.empty(n, dtype=bool)
    same[0] = False
    same[1:] = sk[1:] == sk[:-1]
    gaps = np.diff(order)[same[1:]]
    hist[0] = n - len(gaps)
    if len(gaps):
        b = np.minimum(np.floor(np.log2(gaps)).astype(np.int64), max_log2) + 1
        hist += np.bincount(b, minlength=max_log2 + 2)[: max_log2 + 2]
    return hist


def rank_mass(keys: np.ndarray, top: int) -> np.ndarray:
    """Shares of requests taken by the 1st..top-th most requested keys, then the rest."""
    _, counts = np.unique(np.asarray(keys), return_counts=True)
    counts = np.sort(counts)[::-1]
    head = np.zeros(top + 1)
    head[: min(top, len(counts))] = counts[:top]
    head[top] = counts[top:].sum()
    return head


class PopularityDriftDetector(_Subscribers):
    """Drift in the shape of key popularity: rank-frequency and reuse distances.

    Both shapes depend on how many requests they are measured over (a shorter window sees
    more first accesses and no long reuse distances), so the detector judges windows of
    exactly ``window`` requests and measures the reference in windows of that length too.
    """

    def __init__(
        self,
        window: int = 20_000,
        top: int = 100,
        js_threshold: float = 0.05,
        persistence: Persistence | None = None,
    ) -> None:
        super().__init__()
        if not 100 <= window <= 10**8:
            raise InvalidArgumentError("window must be in 100..1e8 requests")
        if not 1 <= top <= 100_000:
            raise InvalidArgumentError("top must be in 1..100000")
        if not 0 < js_threshold < 1:
            raise InvalidArgumentError("js_threshold must be in (0, 1)")
        self.window = window
        self.top = top
        self.js_threshold = js_threshold
        self.persistence = persistence or Persistence()
        self._rank: np.ndarray | None = None
        self._reuse: np.ndarray | None = None
        self._windows = 0
        self.last_statistics: dict[str, float] | None = None  # the latest check()

    def fit(self, reference_keys: np.ndarray) -> PopularityDriftDetector:
        """Freeze the reference shapes, summed over the reference's whole windows."""
        keys = np.asarray(reference_keys)
        n = len(keys) // self.window
        if n == 0:
            raise InvalidArgumentError(
                f"the reference needs at least one window of {self.window} keys"
            )
        chunks = [keys[i * self.window : (i + 1) * self.window] for i in range(n)]
        self._rank = np.sum([rank_mass(c, self.top) for c in chunks], axis=0)
        self._reuse = np.sum([reuse_histogram(c) for c in chunks], axis=0)
        return self

    def check(self, window_keys: np.ndarray) -> dict[str, float]:
        """JS divergences of one window from the reference; emits a DriftEvent when
        persistence confirms drift."""
        if self._rank is None or self._reuse is None:
            raise InvalidArgumentError("call fit(reference_keys) before check(window_keys)")
        if len(window_keys) != self.window:
            raise InvalidArgumentError(
                f"a window is exactly {self.window} keys, got {len(window_keys)}"
            )
        self._windows += 1
        stats = {
            "js_rank_frequency": js_divergence(self._rank, rank_mass(window_keys, self.top)),
            "js_reuse_distance": js_divergence(self._reuse, reuse_histogram(window_keys)),
        }
        self.last_statistics = dict(stats)
        if self.persistence.observe(max(stats.values()) > self.js_threshold):
            self._emit(DriftEvent("popularity", "keys", stats, "drift", self._windows))
        return stats

    def notify_retrained(self) -> None:
        """Start the cooldown."""
        self.persistence.retrained()

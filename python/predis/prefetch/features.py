"""Candidate rows and their labels: what the prefetch model learns from.

:class:`TrackerConfig` configures the native candidate generator
(``predis._core.PatternTracker``); :data:`FEATURE_NAMES` names the columns of the feature
rows it emits; :func:`candidate_rows` runs it over a key sequence and
:func:`label_within` labels each row with whether its candidate was asked for within the
next ``horizon`` requests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from predis import _core
from predis.errors import InvalidArgumentError

__all__ = ["FEATURE_NAMES", "TrackerConfig", "candidate_rows", "label_within"]

#: Column names of the feature rows, in order (mirrors ``predis::Feature``).
FEATURE_NAMES: tuple[str, ...] = (
    "from_successor",
    "from_stride",
    "from_hot",
    "succ_count",
    "succ_share",
    "succ_rank",
    "key_total_log2",
    "stride_run",
    "stride_step",
    "cand_freq_log2",
    "cand_age_log2",
    "key_freq_log2",
    "key_age_log2",
    "succ_hit_rate",
    "stride_hit_rate",
    "key_distance_log2",
    "lag",
)
if len(FEATURE_NAMES) != _core.TRACKER_FEATURES:
    raise ImportError("FEATURE_NAMES is out of step with the native tracker's feature count")


_MAX_TRACKER_BYTES = 1 << 30  # 1 GiB of candidate-generator state at most


@dataclass(frozen=True)
class TrackerConfig:
    """Sizes of the candidate generator's bounded state (about 17 MB at the defaults).

    Attributes:
        table_bits: log2 of the successor table's sets (4 keys each).
        successors: successor counters kept per key (a Misra-Gries summary).
        window: a key's successors are the keys of its next ``window`` requests.
        streams: stride stream detectors.
        stride_depth: stride candidates proposed per request.
        max_stride: the largest key gap (either way) that may start a stride stream.
        sketch_bits: log2 of the count-min sketch's width (4 rows).
        hot: heavy-hitter keys tracked for re-warming.
        hot_per_request: heavy hitters proposed per request, in rotation.
        max_candidates: candidate rows per request at most.
    """

    table_bits: int = 14
    successors: int = 16
    window: int = 12
    streams: int = 16
    stride_depth: int = 32
    max_stride: int = 64
    sketch_bits: int = 16
    hot: int = 32
    hot_per_request: int = 2
    max_candidates: int = 48

    def __post_init__(self) -> None:
        if (
            isinstance(self.successors, int)
            and isinstance(self.window, int)
            and self.successors < self.window
        ):
            # Misra-Gries with fewer counters than successors per occurrence forgets a
            # sequence seen once: every occurrence would decrement everything.
            raise InvalidArgumentError(
                f"TrackerConfig.successors ({self.successors}) must be at least "
                f"window ({self.window})"
            )
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise InvalidArgumentError(f"TrackerConfig.{f.name} must be an int, got {v!r}")
        # Checked before anything is allocated (configurations also come from model files).
        if 0 <= self.table_bits <= 24 and 0 <= self.sketch_bits <= 24:
            entries = 4 << self.table_bits
            estimate = entries * (24 + 12 * max(self.successors, 0)) + (24 << self.sketch_bits)
            if estimate > _MAX_TRACKER_BYTES:
                raise InvalidArgumentError(
                    f"TrackerConfig needs about {estimate >> 20} MiB; the limit is "
                    f"{_MAX_TRACKER_BYTES >> 20} MiB (lower table_bits, successors or sketch_bits)"
                )
        self.make()  # the native constructor checks every range and says which is wrong

    def make(self) -> Any:
        """A fresh native tracker with this configuration."""
        return _core.PatternTracker(**asdict(self))

    def to_dict(self) -> dict[str, int]:
        """The configuration as plain ints (stored with a trained model)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrackerConfig:
        """The inverse of :meth:`to_dict`; unknown or missing fields are an error."""
        names = {f.name for f in fields(cls)}
        if not isinstance(d, dict) or set(d) != names:
            raise InvalidArgumentError(
                f"a tracker configuration needs exactly the fields {sorted(names)}"
            )
        return cls(**d)


def candidate_rows(
    keys: np.ndarray,
    config: TrackerConfig,
    batch_size: int = 32,
    cache_items: int | None = None,
    policy: str = "lru",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run a fresh tracker over ``keys`` in batches, as the live prefetcher does:
    (batch end position, candidate, features) rows, one per distinct candidate of a batch.

    With ``cache_items``, a shadow :class:`predis.Cache` of that many entries serves the
    same requests, and candidates it holds at the end of their batch are dropped, as the
    live prefetcher drops what the cache holds: the rows are the ones a model would score.
    """
    from predis.cache import Cache  # noqa: PLC0415 - the cache imports this package

    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be a positive int, got {batch_size!r}")
    tracker = config.make()
    shadow = None
    if cache_items is not None:
        shadow = Cache(  # a simulation of the serving cache's contents: the CPU reference
            capacity_bytes=max(1024, 16 * cache_items),
            max_items=cache_items,
            policy=policy,
            clock="manual",
            sample_rate=0.0,
            backend="cpu",
        )
    pos, cand, feat = [], [], []
    for start in range(0, len(keys), batch_size):
        batch = keys[start : start + batch_size]
        _, c, f = tracker.observe(batch)
        if shadow is not None:
            found = shadow.mget_arrays(batch)[2]
            missing = batch[~found]
            if len(missing):
                shadow.mput(missing, np.zeros((len(missing), 8), dtype=np.uint8))
            if len(c):
                fresh = ~shadow.mcontains(c)
                c, f = c[fresh], f[fresh]
        pos.append(np.full(len(c), start + len(batch) - 1, dtype=np.int64))
        cand.append(c)
        feat.append(f)
    if not pos:
        return (
            np.empty(0, np.int64),
            np.empty(0, np.uint64),
            np.empty((0, len(FEATURE_NAMES)), np.float32),
        )
    return np.concatenate(pos), np.concatenate(cand), np.concatenate(feat)


def label_within(keys: np.ndarray, pos: np.ndarray, cand: np.ndarray, horizon: int) -> np.ndarray:
    """1 where ``cand[i]`` is requested at some position in ``(pos[i], pos[i] + horizon]``.

    Example:
        >>> keys = np.array([1, 2, 3, 1], dtype=np.uint64)
        >>> label_within(keys, np.array([0, 0, 1]), np.array([3, 9, 1], dtype=np.uint64), 2)
        array([1, 0, 1], dtype=uint8)
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise InvalidArgumentError(f"horizon must be a positive int, got {horizon!r}")
    keys = np.asarray(keys, dtype=np.uint64)
    pos = np.asarray(pos, dtype=np.int64)
    cand = np.asarray(cand, dtype=np.uint64)
    if pos.shape != cand.shape:
        raise InvalidArgumentError("pos and cand must have the same length")
    if len(keys) >= 1 << 32:
        raise InvalidArgumentError("label_within handles fewer than 2**32 requests")
    out = np.zeros(len(cand), dtype=np.uint8)
    if len(keys) == 0 or len(cand) == 0:
        return out
    # Dense ids, then one sorted array of (id << 32 | position): the first occurrence of a
    # candidate after a position is one searchsorted away.
    uniq, ids = np.unique(keys, return_inverse=True)
    combined = np.sort(
        (ids.astype(np.uint64) << np.uint64(32)) | np.arange(len(keys), dtype=np.uint64)
    )
    where = np.searchsorted(uniq, cand)
    known = (where < len(uniq)) & (uniq[np.minimum(where, len(uniq) - 1)] == cand)
    cid = where[known].astype(np.uint64)
    query = (cid << np.uint64(32)) | (pos[known] + 1).astype(np.uint64)
    at = np.searchsorted(combined, query)
    ok = at < len(combined)
    nxt = combined[np.minimum(at, len(combined) - 1)]
    same = ok & ((nxt >> np.uint64(32)) == cid)
    nxt_pos = (nxt & np.uint64(0xFFFFFFFF)).astype(np.int64)
    hit = same & (nxt_pos <= pos[known] + horizon)
    out[np.flatnonzero(known)[hit]] = 1
    return out

"""The YCSB core workloads A-F as seeded operation streams, in numpy chunks.

Follows the Yahoo! Cloud Serving Benchmark (Cooper et al., "Benchmarking Cloud Serving
Systems with YCSB", SoCC 2010) and the ``workloads/workload[a-f]`` CoreWorkload properties:

====  ===============================  ====================  ======================
name  operation mix                    request distribution  typical application
====  ===============================  ====================  ======================
A     50% read, 50% update             zipfian               session store
B     95% read, 5% update              zipfian               photo tagging
C     100% read                        zipfian               user profile cache
D     95% read, 5% insert              latest                status updates
E     95% scan, 5% insert              zipfian (scan start)  threaded conversations
F     50% read, 50% read-modify-write  zipfian               user database
====  ===============================  ====================  ======================

Records are numbered ``0..record_count-1``; an insert appends the next record number.

Distributions, as YCSB defines them:

* **zipfian**: a rank ``r`` in ``[0, n)`` with P(r) proportional to ``1 / (r + 1) ** 0.99``
  (YCSB's ``ZIPFIAN_CONSTANT``), over the *current* record count ``n``, scrambled to
  ``fnv1a64(r) % n`` (YCSB's ``ScrambledZipfianGenerator``) so the popular records are
  spread over the key space instead of being the lowest numbers. The hash is FNV-1a 64 over
  the rank's eight little-endian bytes, as YCSB's ``Utils.fnvhash64`` computes it, read as
  unsigned (YCSB takes ``Math.abs`` of the signed value; the spreading is the same). YCSB
  draws its ranks from a fixed 10**10-item zipfian before hashing; drawing them over the
  record count instead keeps every record reachable by rank and the law exact for ranks.
* **latest**: record ``n - 1 - r`` with ``r`` zipfian over the current count ``n``: the
  newest record is rank 0 (YCSB's ``SkewedLatestGenerator``).

Growing record count (D, E): every operation draws its rank from the zipfian over the record
count *at that operation*, so the distribution stays exact as inserts arrive. The sampler
keeps the unnormalised cumulative weights ``W[i] = sum_{j <= i} (j + 1) ** -0.99`` in a
buffer that grows by whole blocks of ``2**16`` records (capacity doubles, so growth is
amortised O(1) per record); a draw over ``n`` records is a binary search of ``u * W[n - 1]``
in that buffer. Blocks are computed one at a time in a fixed order, so the weights (and so
the stream) do not depend on how the caller chunks its requests.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from enum import IntEnum

import numpy as np

from predis.errors import InvalidArgumentError
from predis.workloads.stream import KeyStream, check_count, iter_chunks

__all__ = ["YCSB_DTYPE", "YCSB_OPS", "YcsbKeys", "YcsbOp", "YcsbWorkload"]


class YcsbOp(IntEnum):
    """A YCSB operation, as stored in the ``op`` field of :data:`YCSB_DTYPE`."""

    READ = 0
    UPDATE = 1
    INSERT = 2
    SCAN = 3
    RMW = 4  # read-modify-write: read a record, then write it back


#: The operation enum under its constant-style name (the same class as :class:`YcsbOp`).
YCSB_OPS = YcsbOp

#: One operation: the record it starts at, its :class:`YcsbOp`, and its length (the number
#: of records a SCAN reads; 1 for every other operation).
YCSB_DTYPE = np.dtype([("key", "<u8"), ("op", "u1"), ("length", "<u4")])

_ZIPFIAN_CONSTANT = 0.99
_FNV_OFFSET_BASIS_64 = np.uint64(0xCBF29CE484222325)
_FNV_PRIME_64 = np.uint64(0x100000001B3)
_BLOCK = 1 << 16  # records per block of the cumulative zipf weights

# Letter -> (operation mix, request distribution), from YCSB's workloads/workload[a-f].
_WORKLOADS: dict[str, tuple[dict[YcsbOp, float], str]] = {
    "a": ({YcsbOp.READ: 0.5, YcsbOp.UPDATE: 0.5}, "zipfian"),
    "b": ({YcsbOp.READ: 0.95, YcsbOp.UPDATE: 0.05}, "zipfian"),
    "c": ({YcsbOp.READ: 1.0}, "zipfian"),
    "d": ({YcsbOp.READ: 0.95, YcsbOp.INSERT: 0.05}, "latest"),
    "e": ({YcsbOp.SCAN: 0.95, YcsbOp.INSERT: 0.05}, "zipfian"),
    "f": ({YcsbOp.READ: 0.5, YcsbOp.RMW: 0.5}, "zipfian"),
}


def _fnv1a64(values: np.ndarray) -> np.ndarray:
    """FNV-1a 64 of each uint64's eight little-endian bytes (uint64 arithmetic wraps)."""
    values = values.astype(np.uint64, copy=False)
    h = np.full(values.shape, _FNV_OFFSET_BASIS_64, dtype=np.uint64)
    for shift in range(0, 64, 8):
        h ^= (values >> np.uint64(shift)) & np.uint64(0xFF)
        h *= _FNV_PRIME_64
    return h


def _check_workload(workload: object) -> str:
    letter = workload.lower() if isinstance(workload, str) else None
    if letter is not None and letter.startswith("workload"):
        letter = letter[len("workload") :]
    if letter not in _WORKLOADS:
        raise InvalidArgumentError(
            f"workload must be one of 'a'..'f' (YCSB core workloads A-F), got {workload!r}"
        )
    return letter


class YcsbWorkload:
    """A YCSB core workload (A-F): an endless, seeded stream of operations.

    Each operation is a record of :data:`YCSB_DTYPE`. ``record_count`` grows by one with
    every INSERT, whose key is the next record number. Two workloads built with the same
    arguments yield the same operations, however the caller chunks them.

    Args:
        workload: ``"a"`` to ``"f"`` (any case; ``"workloada"`` also works).
        record_count: records loaded before the run, numbered ``0..record_count-1``.
        seed: seed of the random generator.
        max_scan_length: SCAN lengths are uniform in ``[1, max_scan_length]`` (workload E).

    Example:
        >>> wl = YcsbWorkload("d", record_count=1000, seed=1)
        >>> ops = wl.sample(10_000)
        >>> ops.dtype == YCSB_DTYPE, sorted(YcsbOp(op).name for op in set(ops["op"].tolist()))
        (True, ['INSERT', 'READ'])
        >>> inserted = ops["key"][ops["op"] == YcsbOp.INSERT]
        >>> int(inserted[0]), wl.record_count == 1000 + len(inserted)
        (1000, True)
    """

    def __init__(
        self, workload: str, record_count: int, seed: int = 0, max_scan_length: int = 100
    ) -> None:
        self.workload = _check_workload(workload)
        self.initial_record_count = check_count("record_count", record_count)
        self.max_scan_length = check_count("max_scan_length", max_scan_length)
        self.seed = check_count("seed", seed, 0)
        mix, self.request_distribution = _WORKLOADS[self.workload]
        self._mix_ops = np.array(list(mix), dtype=np.uint8)
        cum = np.cumsum(list(mix.values()))
        cum[-1] = 1.0
        self._mix_cum = cum
        self._mix = dict(mix)
        self._count = self.initial_record_count
        self._rng = np.random.default_rng(self.seed)
        self._weights = np.empty(0, dtype=np.float64)  # cumulative zipf weights W[0..cap)
        self._weights_len = 0
        self._ensure_weights(self._count)

    @property
    def record_count(self) -> int:
        """Records that exist now: the initial count plus the inserts sampled so far."""
        return self._count

    @property
    def proportions(self) -> dict[YcsbOp, float]:
        """The operation mix: the probability of each operation the workload issues."""
        return dict(self._mix)

    def _ensure_weights(self, n: int) -> None:
        """Grow the cumulative zipf weights to cover at least ``n`` records, block by block."""
        if self._weights_len >= n:
            return
        need = _BLOCK * math.ceil(n / _BLOCK)
        if need > len(self._weights):
            grown = np.empty(max(need, 2 * len(self._weights)), dtype=np.float64)
            grown[: self._weights_len] = self._weights[: self._weights_len]
            self._weights = grown
        while self._weights_len < need:
            start = self._weights_len
            ranks = np.arange(start + 1, start + _BLOCK + 1, dtype=np.float64)
            block = np.cumsum(ranks**-_ZIPFIAN_CONSTANT)
            if start:
                block += self._weights[start - 1]
            self._weights[start : start + _BLOCK] = block
            self._weights_len += _BLOCK

    def _zipf_ranks(self, u: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Zipfian ranks in ``[0, counts)``, one per uniform ``u``, as uint64."""
        w = self._weights[: self._weights_len]
        targets = u * w[counts - 1]
        ranks = np.searchsorted(w, targets, side="right")
        return np.minimum(ranks, counts - 1).astype(np.uint64)

    def _next(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``n`` operations, and the record count each one sees before it runs."""
        u = self._rng.random((n, 3))  # per operation: op, rank, scan length
        idx = np.searchsorted(self._mix_cum, u[:, 0], side="right")
        ops = self._mix_ops[np.minimum(idx, len(self._mix_ops) - 1)]
        is_insert = ops == YcsbOp.INSERT
        inserts_before = np.cumsum(is_insert) - is_insert
        counts = self._count + inserts_before.astype(np.int64)
        n_inserts = int(is_insert.sum())
        self._ensure_weights(self._count + n_inserts)

        out = np.empty(n, dtype=YCSB_DTYPE)
        out["op"] = ops
        out["length"] = 1
        ranks = self._zipf_ranks(u[:, 1], counts)
        counts_u = counts.astype(np.uint64)
        if self.request_distribution == "latest":
            keys = counts_u - np.uint64(1) - ranks
        else:
            keys = _fnv1a64(ranks) % counts_u
        keys[is_insert] = counts_u[is_insert]  # an insert creates record number `count`
        out["key"] = keys
        is_scan = ops == YcsbOp.SCAN
        if is_scan.any():
            lengths = 1 + np.floor(u[is_scan, 2] * self.max_scan_length).astype(np.int64)
            out["length"][is_scan] = np.minimum(lengths, self.max_scan_length)
        self._count += n_inserts
        return out, counts

    def sample(self, n: int) -> np.ndarray:
        """The next ``n`` operations, as an array of :data:`YCSB_DTYPE`."""
        return self._next(check_count("n", n, 0))[0]

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` operations in one array (the same as :meth:`sample`)."""
        return self.sample(n)

    def chunks(self, total: int, chunk: int) -> Iterator[np.ndarray]:
        """``total`` operations in arrays of at most ``chunk``."""
        return iter_chunks(self.sample, total, chunk)


class YcsbKeys(KeyStream):
    """The record keys a YCSB workload touches, in order, as a :class:`KeyStream`.

    Each operation of a :class:`YcsbWorkload` expands into its keys: READ, UPDATE and INSERT
    touch their one record; RMW touches its record twice (the read, then the write); a SCAN
    of length ``L`` from record ``k`` touches ``k, k+1, ..., k+L-1``, wrapping modulo the
    record count at that operation. Operations are expanded into a buffer, so the keys do
    not depend on how the caller chunks them; ``workload`` may therefore have run ahead of
    the keys returned so far.

    Example:
        >>> ks = YcsbKeys("e", record_count=50, seed=3, max_scan_length=4)
        >>> ks.take(12).tolist()
        [46, 47, 48, 49, 5, 6, 5, 6, 7, 23, 24, 25]
    """

    def __init__(
        self, workload: str, record_count: int, seed: int = 0, max_scan_length: int = 100
    ) -> None:
        self.workload = YcsbWorkload(workload, record_count, seed, max_scan_length)
        mix = self.workload.proportions
        mean_scan = (self.workload.max_scan_length + 1) / 2
        self._keys_per_op = (
            1.0 + mix.get(YcsbOp.RMW, 0.0) + mix.get(YcsbOp.SCAN, 0.0) * (mean_scan - 1.0)
        )
        self._buf = np.empty(0, dtype=np.uint64)

    @staticmethod
    def expand(ops: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """The keys ``ops`` touch in order, given the record count each op sees before it."""
        op = ops["op"]
        is_scan = op == YcsbOp.SCAN
        per_op = np.where(is_scan, ops["length"], 1).astype(np.int64)
        per_op[op == YcsbOp.RMW] = 2
        which = np.repeat(np.arange(len(ops)), per_op)
        starts = np.cumsum(per_op) - per_op
        offset = (np.arange(len(which)) - starts[which]).astype(np.uint64)
        keys = ops["key"][which].copy()
        scan = is_scan[which]
        keys[scan] = (keys[scan] + offset[scan]) % counts[which][scan].astype(np.uint64)
        return keys

    def sample(self, n: int) -> np.ndarray:
        """The next ``n`` keys, as uint64."""
        n = check_count("n", n, 0)
        parts = [self._buf]
        have = len(self._buf)
        while have < n:
            n_ops = max(16, math.ceil(1.05 * (n - have) / self._keys_per_op))
            keys = self.expand(*self.workload._next(n_ops))
            parts.append(keys)
            have += len(keys)
        buf = np.concatenate(parts) if len(parts) > 1 else self._buf
        out, self._buf = buf[:n], buf[n:].copy()
        return out

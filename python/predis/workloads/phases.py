"""Phase changes: a stream that switches workloads at given points, for drift work."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from predis.errors import InvalidArgumentError
from predis.workloads.stream import KeyStream, check_count
from predis.workloads.zipf import ZipfKeys

__all__ = ["PermutedKeys", "PhaseChange"]


class PermutedKeys(KeyStream):
    """``base`` with its keys relabelled by a seeded permutation of 0..n_keys-1.

    Applied to a zipf stream it keeps the popularity shape but moves the hot set.
    """

    def __init__(self, base: KeyStream, n_keys: int, seed: int = 0) -> None:
        self.base = base
        self.permutation = np.random.default_rng(seed).permutation(check_count("n_keys", n_keys))
        self.permutation = self.permutation.astype(np.uint64)

    def sample(self, n: int) -> np.ndarray:
        keys = self.base.sample(n)
        if len(keys) and int(keys.max()) >= len(self.permutation):
            raise InvalidArgumentError("base stream produced a key outside 0..n_keys-1")
        return self.permutation[keys.astype(np.int64)]


class PhaseChange(KeyStream):
    """Phase i's stream for its length, then phase i+1's; the last phase never ends.

    Example:
        >>> from predis.workloads.loop import LoopKeys
        >>> p = PhaseChange([(LoopKeys(2), 3), (LoopKeys(2, offset=10), None)])
        >>> p.take(6).tolist(), p.boundaries
        ([0, 1, 0, 10, 11, 10], [3])
    """

    def __init__(self, phases: Sequence[tuple[KeyStream, int | None]]) -> None:
        if not phases:
            raise InvalidArgumentError("PhaseChange needs at least one phase")
        self.phases: list[tuple[KeyStream, int | None]] = []
        for i, (stream, length) in enumerate(phases):
            if not isinstance(stream, KeyStream):
                raise InvalidArgumentError(f"phase {i} is not a KeyStream: {stream!r}")
            last = i == len(phases) - 1
            if length is None and not last:
                raise InvalidArgumentError(f"only the last phase may be endless (phase {i})")
            self.phases.append((stream, None if length is None else check_count("length", length)))
        # The last phase never ends, so its length (if given) sets no boundary.
        self.boundaries = [int(b) for b in np.cumsum([n for _, n in self.phases[:-1]])]
        self._pos = 0

    @classmethod
    def hot_set_shift(cls, n_keys: int, alpha: float, switch_at: int, seed: int = 0) -> PhaseChange:
        """zipf(alpha) over n_keys keys whose hot set moves to other keys at ``switch_at``."""
        before = ZipfKeys(n_keys, alpha, seed=seed)
        after = PermutedKeys(ZipfKeys(n_keys, alpha, seed=seed + 1), n_keys, seed=seed + 2)
        return cls([(before, switch_at), (after, None)])

    def phase_at(self, position: int) -> int:
        """Which phase request number ``position`` (from 0) belongs to."""
        return int(np.searchsorted(self.boundaries, position, side="right"))

    def sample(self, n: int) -> np.ndarray:
        parts = []
        while n > 0:
            phase = self.phase_at(self._pos)
            stream, _ = self.phases[phase]
            room = n if phase >= len(self.boundaries) else self.boundaries[phase] - self._pos
            take = min(n, room)
            parts.append(stream.sample(take))
            self._pos += take
            n -= take
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)

"""Any key stream with sequential one-time scans injected at a fixed rhythm."""

from __future__ import annotations

import numpy as np

from predis.workloads.stream import KeyStream, check_count

__all__ = ["ScanInjected"]


class ScanInjected(KeyStream):
    """``every`` keys from ``base``, then a scan of ``length`` never-seen keys, repeated.

    Scan keys count up from ``scan_start`` and are never requested again: they test
    whether a policy lets a scan flush the hot set.

    Example:
        >>> from predis.workloads.loop import LoopKeys
        >>> ScanInjected(LoopKeys(2), every=2, length=3, scan_start=100).take(9).tolist()
        [0, 1, 100, 101, 102, 0, 1, 103, 104]
    """

    def __init__(self, base: KeyStream, every: int, length: int, scan_start: int = 1 << 48) -> None:
        self.base = base
        self.every = check_count("every", every)
        self.length = check_count("length", length)
        self.scan_start = check_count("scan_start", scan_start, 0)
        self._phase = 0  # position within the current (every + length) cycle
        self._scanned = 0  # scan keys emitted so far

    def sample(self, n: int) -> np.ndarray:
        cycle = self.every + self.length
        pos = (self._phase + np.arange(n)) % cycle
        is_scan = pos >= self.every
        out = np.empty(n, dtype=np.uint64)
        n_scan = int(is_scan.sum())
        out[~is_scan] = self.base.sample(n - n_scan)
        out[is_scan] = np.uint64(self.scan_start + self._scanned) + np.arange(
            n_scan, dtype=np.uint64
        )
        self._scanned += n_scan
        self._phase = (self._phase + n) % cycle
        return out

"""The MLOps side: access-log collection into encrypted segments (more to come)."""

from __future__ import annotations

from predis.mlops.collector import Collector, CollectorStats
from predis.mlops.segments import SegmentError, read_segment, segment_info, write_segment

__all__ = [
    "Collector",
    "CollectorStats",
    "SegmentError",
    "read_segment",
    "segment_info",
    "write_segment",
]

"""The MLOps side: access-log collection into encrypted segments, and the model registry."""

from __future__ import annotations

from predis.mlops.abtest import MSPRT, MSPRTResult, TrafficSplit, two_proportion_ztest
from predis.mlops.collector import Collector, CollectorStats
from predis.mlops.drift import (
    DriftEvent,
    FeatureDriftDetector,
    Persistence,
    PopularityDriftDetector,
    StreamDriftDetector,
)
from predis.mlops.registry import ALIASES, ModelIntegrityError, ModelMeta, ModelRegistry
from predis.mlops.segments import SegmentError, read_segment, segment_info, write_segment

__all__ = [
    "ALIASES",
    "MSPRT",
    "Collector",
    "CollectorStats",
    "DriftEvent",
    "FeatureDriftDetector",
    "MSPRTResult",
    "ModelIntegrityError",
    "ModelMeta",
    "ModelRegistry",
    "Persistence",
    "PopularityDriftDetector",
    "SegmentError",
    "StreamDriftDetector",
    "TrafficSplit",
    "read_segment",
    "segment_info",
    "two_proportion_ztest",
    "write_segment",
]

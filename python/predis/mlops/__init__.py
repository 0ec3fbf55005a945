"""The MLOps side: access-log collection, drift detection, retraining with a validation
gate, A/B testing with automatic promotion and rollback, and the model registry.

:class:`MLOpsLoop` wires them together for one customer (see docs/mlops.md).
"""

from __future__ import annotations

from predis.mlops.abtest import MSPRT, MSPRTResult, TrafficSplit, two_proportion_ztest
from predis.mlops.collector import Collector, CollectorStats
from predis.mlops.controller import LoopConfig, MLOpsLoop
from predis.mlops.decisions import ABConfig, ABTest, ArmStats, Decision, RollbackWatch
from predis.mlops.drift import (
    DriftEvent,
    FeatureDriftDetector,
    Persistence,
    PopularityDriftDetector,
    StreamDriftDetector,
)
from predis.mlops.events import EVENT_KINDS, EventLog, MLOpsEvent
from predis.mlops.registry import ALIASES, ModelIntegrityError, ModelMeta, ModelRegistry
from predis.mlops.retraining import (
    DemandWindow,
    RetrainConfig,
    Retrainer,
    SegmentWindow,
    TrainingOutcome,
    ValidationReport,
    validate_challenger,
)
from predis.mlops.router import ABRouter
from predis.mlops.segments import SegmentError, read_segment, segment_info, write_segment

__all__ = [
    "ALIASES",
    "EVENT_KINDS",
    "MSPRT",
    "ABConfig",
    "ABRouter",
    "ABTest",
    "ArmStats",
    "Collector",
    "CollectorStats",
    "Decision",
    "DemandWindow",
    "DriftEvent",
    "EventLog",
    "FeatureDriftDetector",
    "LoopConfig",
    "MLOpsEvent",
    "MLOpsLoop",
    "MSPRTResult",
    "ModelIntegrityError",
    "ModelMeta",
    "ModelRegistry",
    "Persistence",
    "PopularityDriftDetector",
    "RetrainConfig",
    "Retrainer",
    "RollbackWatch",
    "SegmentError",
    "SegmentWindow",
    "StreamDriftDetector",
    "TrafficSplit",
    "TrainingOutcome",
    "ValidationReport",
    "read_segment",
    "segment_info",
    "two_proportion_ztest",
    "validate_challenger",
    "write_segment",
]

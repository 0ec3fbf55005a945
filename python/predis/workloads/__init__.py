"""Workload generators (seeded, streaming in numpy chunks) and trace readers."""

from __future__ import annotations

from predis.workloads.diurnal import DiurnalKeys
from predis.workloads.loop import LoopKeys
from predis.workloads.phases import PermutedKeys, PhaseChange
from predis.workloads.scans import ScanInjected
from predis.workloads.sessions import CorrelatedSessions
from predis.workloads.stream import KeyStream
from predis.workloads.zipf import ZipfKeys

__all__ = [
    "CorrelatedSessions",
    "DiurnalKeys",
    "KeyStream",
    "LoopKeys",
    "PermutedKeys",
    "PhaseChange",
    "ScanInjected",
    "ZipfKeys",
]

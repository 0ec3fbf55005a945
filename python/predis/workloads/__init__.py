"""Workload generators (seeded, streaming in numpy chunks) and trace readers."""

from __future__ import annotations

from predis.workloads.diurnal import DiurnalKeys
from predis.workloads.loop import LoopKeys
from predis.workloads.phases import PermutedKeys, PhaseChange
from predis.workloads.scans import ScanInjected
from predis.workloads.sessions import CorrelatedSessions
from predis.workloads.stream import KeyStream
from predis.workloads.traces import (
    ORACLE_GENERAL_DTYPE,
    REQUEST_DTYPE,
    TraceFormatError,
    key_hash,
    next_access_indices,
    open_trace,
    read_cache2k,
    read_cloudphysics,
    read_csv,
    read_lirs,
    read_oracle_general,
    read_oracle_general_with_next,
    write_oracle_general,
)
from predis.workloads.ycsb import YCSB_DTYPE, YCSB_OPS, YcsbKeys, YcsbOp, YcsbWorkload
from predis.workloads.zipf import ZipfKeys

__all__ = [
    "ORACLE_GENERAL_DTYPE",
    "REQUEST_DTYPE",
    "YCSB_DTYPE",
    "YCSB_OPS",
    "CorrelatedSessions",
    "DiurnalKeys",
    "KeyStream",
    "LoopKeys",
    "PermutedKeys",
    "PhaseChange",
    "ScanInjected",
    "TraceFormatError",
    "YcsbKeys",
    "YcsbOp",
    "YcsbWorkload",
    "ZipfKeys",
    "key_hash",
    "next_access_indices",
    "open_trace",
    "read_cache2k",
    "read_cloudphysics",
    "read_csv",
    "read_lirs",
    "read_oracle_general",
    "read_oracle_general_with_next",
    "write_oracle_general",
]

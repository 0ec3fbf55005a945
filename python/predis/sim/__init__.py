"""Trace replay through a real cache, a simulated back end, and hit-rate metrics."""

from __future__ import annotations

from predis.sim.backend import BackendModel, SimulatedBackend
from predis.sim.prefetcher import NextKeysPrefetcher, Prefetcher
from predis.sim.replay import ReplayResult, coverage, replay

__all__ = [
    "BackendModel",
    "NextKeysPrefetcher",
    "Prefetcher",
    "ReplayResult",
    "SimulatedBackend",
    "coverage",
    "replay",
]

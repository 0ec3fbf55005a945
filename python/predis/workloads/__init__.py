"""Workload generators and trace readers."""

from __future__ import annotations

from predis.workloads.zipf import ZipfKeys

__all__ = ["ZipfKeys"]

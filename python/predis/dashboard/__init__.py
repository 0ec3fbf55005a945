"""The customer ROI dashboard (the ``dashboard`` extra): it scrapes Predis exporters (or an
in-process :class:`~predis.monitoring.Monitor`, or a Prometheus server), keeps the samples in
SQLite, and serves authenticated pages that show what the cache saves, refreshed live.

Run it with ``predis dashboard`` or embed it::

    from predis.dashboard import DashboardConfig, DashboardServer, load_customers

See ``docs/dashboard.md``.
"""

from __future__ import annotations

from predis.dashboard.config import CustomerConfig, DashboardConfig, load_customers, parse_customers
from predis.dashboard.history import History
from predis.dashboard.roi import ROI, Measured, ROIInputs, compute_roi
from predis.dashboard.server import DashboardServer

__all__ = [
    "ROI",
    "CustomerConfig",
    "DashboardConfig",
    "DashboardServer",
    "History",
    "Measured",
    "ROIInputs",
    "compute_roi",
    "load_customers",
    "parse_customers",
]

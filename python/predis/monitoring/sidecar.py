"""The exporter sidecar: ``predis exporter`` serves the stats blocks that host processes
publish into shared memory (``Cache(..., stats_shm="name")``), one ``cache`` label each.

It never touches the host processes: it only reads their blocks. A host that exits or dies
turns its ``predis_up`` to 0 and the exporter keeps serving the others. With ``--all`` it
finds blocks as they appear; a cache it has seen stays listed (``up`` 0) after its block
goes away, so an alert on ``predis_up == 0`` fires.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from prometheus_client import CollectorRegistry

from predis.errors import InvalidArgumentError
from predis.monitoring.auth import MetricsAuth, read_secret_file
from predis.monitoring.metrics import Sample
from predis.monitoring.monitor import Monitor
from predis.monitoring.prometheus import MetricsServer, PredisCollector
from predis.monitoring.shm import list_blocks, validate_block_name
from predis.monitoring.sources import BlockSource

__all__ = ["DiscoverySource", "build_exporter", "run_exporter"]

log = logging.getLogger("predis.monitoring")
MAX_DISCOVERED = 1024


class DiscoverySource:
    """Every stats block in the shared-memory folder, found afresh on each collection."""

    name = "discovery"

    def __init__(self, exclude: Sequence[str] = ()) -> None:
        self._exclude = set(exclude)
        self._blocks: dict[str, BlockSource] = {}
        self._lock = threading.Lock()

    def collect(self) -> list[Sample]:
        """Samples of every stats block found now, except the excluded names."""
        found = [n for n in list_blocks() if n not in self._exclude]
        with self._lock:
            for n in found:
                if n not in self._blocks and len(self._blocks) < MAX_DISCOVERED:
                    self._blocks[n] = BlockSource(n)
            blocks = list(self._blocks.values())
        out: list[Sample] = []
        for b in blocks:
            out += b.collect()
        return out


def build_exporter(caches: Sequence[str] = (), discover: bool = False, gpu: bool = True) -> Monitor:
    """The sidecar's monitor: the named blocks, and every other block when ``discover``."""
    names = [validate_block_name(n) for n in caches]
    if len(set(names)) != len(names):
        raise InvalidArgumentError("a cache name is given twice")
    if not names and not discover:
        raise InvalidArgumentError("name at least one cache (--cache NAME) or pass --all")
    monitor = Monitor()
    for n in names:
        monitor.add_stats_block(n)
    if discover:
        monitor.add_source(DiscoverySource(exclude=names))
    if gpu:
        monitor.add_gpu()
    return monitor


def run_exporter(
    port: int = 9090,
    addr: str = "127.0.0.1",
    caches: Sequence[str] = (),
    discover: bool = False,
    gpu: bool = True,
    token_file: str | None = None,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Serve until SIGTERM or SIGINT (or ``stop`` is set); returns the exit status.

    Auth comes from ``PREDIS_METRICS_*`` (see :mod:`predis.monitoring.auth`), or a bearer
    token in ``token_file`` (mode 0600).
    """
    monitor = build_exporter(caches, discover, gpu)
    auth = (
        MetricsAuth.bearer(read_secret_file(token_file)) if token_file else MetricsAuth.from_env()
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PredisCollector(monitor))  # type: ignore[arg-type]
    stop = stop if stop is not None else threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    with MetricsServer(registry, port, addr, auth) as server:
        print(f"predis exporter: serving {server.url}", flush=True)
        if ready is not None:
            ready.set()
        stop.wait()
    return 0

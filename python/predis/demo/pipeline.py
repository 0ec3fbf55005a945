"""`predis demo`'s pipeline: every production part of Predis, on one synthetic day.

What runs, all of it the real components:

- a :class:`predis.Cache` with a ``loader`` in front of a simulated back end
  (:class:`~predis.demo.backend.DemoBackend`), prefetching through its live
  :class:`~predis.prefetch.runtime.PrefetchRuntime` with the MLOps loop's A/B router as
  the prefetcher;
- the :class:`~predis.mlops.Collector` draining the access log into encrypted segments
  (key file made here, 0600), which the loop's retraining reads back
  (:class:`~predis.mlops.SegmentWindow`);
- the :class:`~predis.mlops.MLOpsLoop`: ADWIN drift detection on the hit/miss stream,
  retraining, the validation gate, the A/B test, promotion, the rollback watch;
- the exporter on loopback and a dashboard token (:mod:`predis.demo.services`);
- an operator's mistake: a degraded model promoted by hand, which the watch rolls back.

**Lockstep.** The host serves one prefetch batch of requests, then waits until the prefetch
loop has taken that batch and finished the loads it proposed; and at every chunk boundary
it waits until the loop's training and actions are done. A live application keeps serving
meanwhile; the demo waits so that what it shows does not depend on how busy the machine
is (the waits are on conditions, never on timings).

The baseline is a plain cache of the same size and policy serving the same requests in the
same order, without prefetching (:func:`predis.sim.replay`), chunk by chunk beside the run.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from predis.cache import Cache
from predis.demo.backend import DemoBackend
from predis.demo.config import DemoConfig, prepare_workdir
from predis.demo.narration import narrate
from predis.demo.services import DemoServices, start_services
from predis.demo.workload import DemoWorkload, build_workload
from predis.errors import BackendFallbackWarning, PredisError
from predis.fileio import atomic_write_text
from predis.mlops import (
    ABConfig,
    ABRouter,
    Collector,
    DemandWindow,
    LoopConfig,
    MLOpsEvent,
    MLOpsLoop,
    ModelRegistry,
    RetrainConfig,
    SegmentWindow,
)
from predis.prefetch.base import CachedFn, Prefetcher
from predis.prefetch.features import FEATURE_NAMES
from predis.prefetch.model import TrainConfig, train_model
from predis.security.crypto import KeyRing, generate_key_line
from predis.security.validation import safe_path
from predis.sim.hitrate import predis_cache
from predis.sim.replay import replay

__all__ = ["CUSTOMER", "DemoRun", "run_pipeline"]

log = logging.getLogger("predis.demo")

CUSTOMER = "demo"
CHUNK = 4_000  # requests between two looks at the loop; a multiple of the batch size
TRAIN = TrainConfig(num_trees=30, threads=1, batch_size=16, max_rows=60_000, time_budget_s=20.0)
#: The share of the budget after which the operator's forced promotion happens even when
#: no promotion came first (so that a workload without one still shows the rollback watch).
FORCE_LATEST = 0.6


def loop_config(cache_items: int) -> LoopConfig:
    """The MLOps loop's settings for the demo: small windows and budgets, so that every
    step fits in a few minutes on two cores."""
    return LoopConfig(
        retrain=RetrainConfig(
            train=TRAIN, cache_items=cache_items, window=30_000, min_window=12_000
        ),
        ab=ABConfig(
            challenger_share=0.5,
            min_requests=500,
            # The demo's effects are several points of hit rate: the sequential test is
            # tuned to them, and the fixed horizon comes within the default run's length.
            tau=0.05,
            max_requests=12_000,
            holdback_share=0.2,
            watch_requests=10_000,
            rollback_threshold=0.02,
        ),
    )


class _Paced(Prefetcher):
    """The router, counting what it was shown and what it proposed, so the host can wait
    until the prefetch loop has handed every proposal to the executor."""

    def __init__(self, router: ABRouter) -> None:
        self.router = router
        self.batch_size = router.batch_size
        self.latency = router.latency  # the runtime reads inference latency from here
        self.requests = 0
        self.proposed = 0

    @property
    def inference_rows(self) -> int:
        """Rows the models scored (the runtime's stats read it)."""
        return self.router.inference_rows

    @property
    def model_version(self) -> int:
        """The router's count of champion changes (the runtime's stats read it)."""
        return self.router.model_version

    def propose(
        self, keys: np.ndarray, hits: np.ndarray, cached: CachedFn
    ) -> tuple[np.ndarray, np.ndarray]:
        out, conf = self.router.propose(keys, hits, cached)
        self.proposed += len(out)
        self.requests += len(keys)  # last: the host waits on it
        return out, conf

    def flush(self) -> None:
        self.router.flush()

    def idle(self) -> None:
        self.router.idle()

    def reset(self) -> None:
        self.router.reset()


@dataclass
class DemoRun:
    """What the pipeline measured; :mod:`predis.demo.report` turns it into the report."""

    config: DemoConfig
    workload: DemoWorkload
    workdir: Path
    requests: int = 0
    stopped_by: str = "duration"
    wall_s: float = 0.0
    process_cpu_s: float = 0.0
    host_cpu_s: float = 0.0
    demo_cpu_s: float = 0.0  # baseline replay and the degraded model's training
    pacing_timeouts: int = 0
    hits: int = 0
    misses: int = 0
    baseline_hits: int = 0
    baseline_misses: int = 0
    demand_fetches: int = 0
    prefetch_fetches: int = 0
    cache_stats: dict[str, Any] = field(default_factory=dict)
    prefetch_stats: dict[str, Any] = field(default_factory=dict)
    collector_stats: dict[str, Any] = field(default_factory=dict)
    segments: int = 0
    segment_bytes: int = 0
    timeline: list[dict[str, Any]] = field(default_factory=list)
    events: list[MLOpsEvent] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    aliases: dict[str, int | None] = field(default_factory=dict)
    forced: dict[str, Any] | None = None
    services: dict[str, object] = field(default_factory=dict)


class _Host:
    """The application: serves requests through the cache, batch by batch, in lockstep
    with the prefetch loop, and beside it the no-prefetch baseline."""

    def __init__(self, cache: Cache, paced: _Paced, items: int, policy: str) -> None:
        self.cache = cache
        self.paced = paced
        self.batch = paced.batch_size
        runtime = cache.prefetch_runtime
        if runtime is None:
            raise PredisError("the demo's cache must prefetch")
        self.executor = runtime.executor
        self.baseline = predis_cache(items, policy)
        self.served = 0
        self.timeouts = 0
        self.baseline_cpu = 0.0

    def _caught_up(self) -> bool:
        target = self.served - self.served % self.batch  # a partial batch waits for more
        if self.paced.requests < target:
            return False
        ex = self.executor.stats()
        handled = ex.submitted + ex.deduped + ex.dropped_full + ex.dropped_budget
        return handled >= self.paced.proposed and ex.in_flight == 0

    def _wait(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self._caught_up():
            if time.monotonic() > deadline:  # never hang the demo: counted and reported
                self.timeouts += 1
                return
            time.sleep(0.0002)

    def serve(self, keys: np.ndarray) -> tuple[int, int]:
        """Serve ``keys``; return (hits, baseline hits) among them."""
        get = self.cache.get
        before = self.cache.stats().hits
        listed = keys.tolist()
        for start in range(0, len(listed), self.batch):
            part = listed[start : start + self.batch]
            for key in part:
                get(key)
            self.served += len(part)
            self._wait(60.0 if self.timeouts == 0 else 1.0)
        hits = self.cache.stats().hits - before
        t0 = time.thread_time()
        base = replay([keys], self.baseline).hits
        self.baseline_cpu += time.thread_time() - t0
        return hits, base


def _degraded_model(stale_keys: np.ndarray, items: int) -> bytes:
    """A model trained on the first phase's traffic: zipf, where nothing is to be learned,
    so its calibrated threshold holds back. On the second phase it is stale: degraded."""
    model = train_model(stale_keys, TRAIN, cache_items=items)
    return model.to_bytes()


def dashboard_prices(config: DemoConfig) -> dict[str, float]:
    """The demo's prices as the dashboard's ROI inputs: the same fetch fee and back-end
    latency, no per-GB fee (the simulated back end charges per fetch), the CPU-hour price as
    the instance's hourly cost, and no licence price."""
    return {
        "backend_cost_per_fetch": config.roi.cost_per_fetch,
        "backend_cost_per_gb": 0.0,
        "mean_fetch_bytes": 0.0,
        "backend_latency_s": config.latency_ms / 1000.0,
        "gpu_cost_per_hour": config.roi.cpu_cost_per_hour,
        "predis_price_per_year": 0.0,
    }


def run_pipeline(config: DemoConfig, say: Callable[[str], None], progress: bool) -> DemoRun:
    """Run the whole demo and return what it measured. ``say`` receives the narration,
    one line at a time (from several threads: it must be thread-safe)."""
    workload = build_workload(config)  # a bad trace fails before anything is created
    workdir = prepare_workdir(config.workdir)
    run = DemoRun(config, workload, workdir)
    items = config.cache_items
    keyfile = safe_path(workdir, "data.key")
    atomic_write_text(keyfile, generate_key_line("demo-1") + "\n", mode=0o600)
    keyring = KeyRing.from_file(keyfile)
    registry = ModelRegistry(safe_path(workdir, "models"), CUSTOMER)
    backend = DemoBackend(config.latency_ms / 1000.0)
    collectors: list[Collector] = []  # the collector needs the cache, the cache the loop

    def sealed_segments() -> list[Path]:
        """Seal what the collector holds, then list the segments: a retraining reads every
        event collected so far, not only those of segments that happened to be full."""
        collector = collectors[0]
        while collector.drain_once():
            pass
        collector.flush()
        return collector.segments()

    window = SegmentWindow(sealed_segments, keyring)
    loop = MLOpsLoop(registry, loop_config(items), window=window)
    loop.events.subscribe(lambda e: say(narrate(e, config.switch_at)))
    paced = _Paced(loop.router)
    with warnings.catch_warnings():
        # The fallback to the CPU is logged once, and narrated below: no second copy.
        warnings.simplefilter("ignore", BackendFallbackWarning)
        cache = Cache(
            capacity_bytes=max(1024, 16 * items),
            max_items=items,
            loader=backend,
            prefetcher=paced,
            prefetch_options={"interval_s": 0.0005, "workers": 2},
        )
    services = DemoServices()
    collector: Collector | None = None
    collecting = False
    try:
        collector = Collector(
            cache,
            safe_path(workdir, "segments"),
            CUSTOMER,
            keyring,
            segment_events=4_096,
            segment_age_s=1.0,
            min_free_bytes=16 << 20,
        )
        collectors.append(collector)
        say(f"cache backend {cache.backend}; work folder {workdir} (data key {keyfile.name}, 0600)")
        if config.serve:
            services = start_services(
                cache=cache,
                collector=collector,
                registry=registry,
                workdir=workdir,
                customer=CUSTOMER,
                port=config.port,
                roi_prices=dashboard_prices(config),
            )
            say(f"exporter: {services.metrics_url}")
            if services.dashboard_url is not None:
                say(f"dashboard: {services.dashboard_url} (log in with the token below)")
            else:
                say(f"dashboard: not started: {services.dashboard_missing}")
            say(
                f"dashboard token (read-only, shown once; its hash is in "
                f"{services.token_file}): {services.token}"
            )
        run.services = services.describe()
        collector.start()
        collecting = True
        loop.start()
        _drive(run, config, workload, loop, registry, cache, paced, items, say, progress)
    finally:
        loop.close()
        cache.close()
        if collecting and collector is not None:
            collector.stop()  # drains and writes what is left
        elif collector is not None:
            collector.close()
        services.close()
    run.prefetch_fetches = backend.prefetch_fetches
    run.demand_fetches = backend.demand_fetches
    stats = cache.stats()
    run.cache_stats = {
        k: getattr(stats, k)
        for k in ("hits", "misses", "inserts", "evictions", "items", "events_dropped")
    }
    if collector is not None:
        run.collector_stats = vars(collector.stats())
        segs = collector.segments()
        run.segments = len(segs)
        run.segment_bytes = sum(p.stat().st_size for p in segs)
    run.events = loop.events.events()
    run.history = registry.history()
    run.aliases = registry.aliases()
    return run


def _drive(
    run: DemoRun,
    config: DemoConfig,
    workload: DemoWorkload,
    loop: MLOpsLoop,
    registry: ModelRegistry,
    cache: Cache,
    paced: _Paced,
    items: int,
    say: Callable[[str], None],
    progress: bool,
) -> None:
    host = _Host(cache, paced, items, "lru")
    stale = DemandWindow(TRAIN.max_rows)  # the first phase's latest keys
    budget = config.duration
    total = budget.requests if budget.requests is not None else workload.limit
    if budget.requests is not None and workload.limit is not None:
        total = min(budget.requests, workload.limit)
    force_at = None if total is None else int(FORCE_LATEST * total)
    say(
        f"workload {workload.name}: {workload.phases[0]}, then at request "
        f"{workload.switch_at:,} {workload.phases[1]}; serving {budget.describe()}"
    )
    start_wall = time.monotonic()
    start_cpu = time.process_time()
    start_host = time.thread_time()
    phase_started = time.time_ns()
    with tqdm(
        total=total,
        unit="req",
        unit_scale=True,
        disable=not progress,
        desc="predis demo",
        leave=False,
    ) as bar:
        for whole in workload.chunks(CHUNK):
            chunk = whole
            if budget.requests is not None:
                chunk = whole[: budget.requests - host.served]
            if len(chunk) == 0:
                break
            if budget.seconds is not None and time.monotonic() - start_wall >= budget.seconds:
                run.stopped_by = "time"
                break
            begin, switch = host.served, workload.switch_at
            parts = [chunk]
            if begin < switch < begin + len(chunk):  # each timeline entry is of one phase
                parts = [chunk[: switch - begin], chunk[switch - begin :]]
            for part in parts:
                if host.served < switch:
                    stale.extend(part)
                if host.served == switch:
                    say(f"phase change at request {switch:,}: now {workload.phases[1]}")
                hits, base = host.serve(part)
                run.hits += hits
                run.baseline_hits += base
                if not loop.wait_idle(timeout=600):
                    say("the MLOps loop is still busy after 600 s; going on without waiting")
                run.timeline.append(
                    {
                        "end": host.served,
                        "phase": 0 if host.served <= switch else 1,
                        "hit_rate": hits / len(part),
                        "baseline_hit_rate": base / len(part),
                        "state": loop.state,
                        "champion": registry.aliases()["champion"],
                    }
                )
            bar.update(len(chunk))
            if run.forced is None and _time_to_force(loop, host.served, force_at, workload):
                t0 = time.thread_time()
                run.forced = _force_degraded(
                    loop, registry, stale, items, host.served, phase_started, say
                )
                host.baseline_cpu += time.thread_time() - t0
        else:  # the stream ended: a trace, cut to the budget or shorter than it
            ended = budget.requests is None or host.served < budget.requests
            run.stopped_by = "end of the trace" if ended else "duration"
    run.requests = host.served
    run.misses = run.requests - run.hits
    run.baseline_misses = run.requests - run.baseline_hits
    run.wall_s = time.monotonic() - start_wall
    run.process_cpu_s = time.process_time() - start_cpu
    run.host_cpu_s = time.thread_time() - start_host - host.baseline_cpu
    run.demo_cpu_s = host.baseline_cpu
    run.pacing_timeouts = host.timeouts
    p = cache.stats().prefetch
    if p is not None:
        run.prefetch_stats = {
            "issued": p.issued,
            "used": p.used,
            "wasted": p.wasted,
            "errors": p.errors,
            "dropped": p.dropped,
            "inference_batches": p.inference_batches,
            "inference_rows": p.inference_rows,
            "inference_seconds_total": p.inference_seconds_total,
        }


def _time_to_force(
    loop: MLOpsLoop, served: int, force_at: int | None, workload: DemoWorkload
) -> bool:
    """The operator acts once the loop is serving after the first promotion's watch
    passed; without one, once ``force_at`` requests are served, the loop is serving and
    no drift is waiting for its retraining."""
    if loop.state != "serving" or served <= workload.switch_at:
        return False
    kinds = loop.events.kinds()
    if "watch-passed" in kinds:
        return True
    waiting = bool(kinds) and kinds[-1] == "drift"
    return force_at is not None and served >= force_at and not waiting


def _force_degraded(
    loop: MLOpsLoop,
    registry: ModelRegistry,
    stale: DemandWindow,
    items: int,
    position: int,
    phase_started: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    champion = registry.aliases()["champion"]
    say(
        f"forcing a degraded model at request {position:,}: training one on the stale "
        f"first-phase traffic ({min(stale.total, stale.capacity):,} requests)…"
    )
    raw = _degraded_model(stale.latest(stale.capacity), items)
    meta = registry.register(
        raw,
        feature_schema=FEATURE_NAMES,
        training_window=(phase_started, time.time_ns()),
        actor="demo-operator",
    )
    say(f"promoting version {meta.version} by hand, without an A/B test (an operator's mistake)")
    loop.force_promote(meta.version, "demo: a model trained on stale traffic, promoted by hand")
    if not loop.wait_idle(timeout=600):
        say("the forced promotion is still queued after 600 s")
    return {"version": meta.version, "at_request": position, "replaced": champion}

"""The demo's final report: every figure measured by the run, and the formulas that join them.

Definitions (all counts over the same requests, in the same order):

- **hit rate with Predis**: demand hits / requests of the live cache (prefetching on);
  **without**: the same for a plain cache of the same size and policy, no prefetching.
- **back-end fetches avoided** = baseline misses - Predis misses: requests that no longer
  wait on the back end. Prefetch loads are counted apart (they run off the request path);
  **net fetches saved** = baseline fetches - (Predis demand fetches + prefetch loads) may
  be negative: prefetching moves load off the request path, it does not remove it.
- **latency saved** = fetches avoided x the back end's latency per fetch.
- **ROI** = benefit / cost, with benefit = latency saved (hours) x ``wait_cost_per_hour``
  + net fetches saved x ``cost_per_fetch``, and cost = Predis's CPU time (hours) x
  ``cpu_cost_per_hour``. The prices are inputs (:class:`~predis.demo.config.RoiInputs`).
- **Predis's CPU time** = the process's CPU time - the host thread's: the prefetch loop,
  the loads, the collector, the MLOps loop (training included) and the exporter. The
  demo's own extra work (the baseline replay, training the degraded model) runs on the
  host thread and is taken out of both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from predis.demo.pipeline import DemoRun

__all__ = ["DemoReport", "build_report", "format_report"]


@dataclass(frozen=True)
class DemoReport:
    """The report's sections (JSON-ready dicts); see the module docstring for definitions."""

    workload: dict[str, Any]
    run: dict[str, Any]
    hit_rate: dict[str, Any]
    backend: dict[str, Any]
    roi: dict[str, Any]
    models: dict[str, Any]
    drift_events: list[dict[str, Any]]
    loop_events: list[dict[str, Any]]
    outcome: dict[str, Any]
    overhead: dict[str, Any]
    prefetch: dict[str, Any]
    collector: dict[str, Any]
    services: dict[str, Any]
    timeline: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return asdict(self)


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _by_phase(timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hit rates of each phase, from the per-chunk timeline."""
    out: dict[int, dict[str, Any]] = {}
    previous = 0
    for t in timeline:
        size = t["end"] - previous
        previous = t["end"]
        row = out.setdefault(t["phase"], {"phase": t["phase"], "requests": 0, "hits": 0, "b": 0})
        row["requests"] += size
        row["hits"] += round(t["hit_rate"] * size)
        row["b"] += round(t["baseline_hit_rate"] * size)
    return [
        {
            "phase": row["phase"],
            "requests": row["requests"],
            "predis": _ratio(row["hits"], row["requests"]),
            "baseline": _ratio(row["b"], row["requests"]),
        }
        for row in out.values()
    ]


def build_report(run: DemoRun) -> DemoReport:
    """The report of a finished run."""
    cfg = run.config
    n = run.requests
    latency = cfg.latency_ms / 1000.0
    avoided = run.baseline_misses - run.misses
    predis_fetches = run.demand_fetches + run.prefetch_fetches
    net_saved = run.baseline_misses - predis_fetches
    latency_saved = avoided * latency
    background_cpu = max(0.0, run.process_cpu_s - run.host_cpu_s - run.demo_cpu_s)
    prices = cfg.roi
    benefit = latency_saved / 3600 * prices.wait_cost_per_hour + net_saved * prices.cost_per_fetch
    cost = background_cpu / 3600 * prices.cpu_cost_per_hour
    events = [
        {
            "seq": e.seq,
            "kind": e.kind,
            "position": e.position,
            "message": e.message,
            "details": e.details,
        }
        for e in run.events
    ]
    drift = [
        {"position": e.position, "message": e.message, **e.details}
        for e in run.events
        if e.kind == "drift"
    ]
    ab = next(
        (e.details for e in run.events if e.kind == "promoted" and "difference" in e.details),
        None,
    )
    rollbacks = [e for e in run.events if e.kind == "rollback"]
    forced = run.forced
    forced_rolled_back = bool(
        forced
        and any(
            e.details.get("from_version") == forced["version"]
            and e.position >= forced["at_request"]
            for e in rollbacks
        )
    )
    train_s = sum(
        float(e.details.get("train_seconds", 0.0))
        for e in run.events
        if e.kind in ("challenger-registered", "validation-failed")
    )
    p = run.prefetch_stats
    batches = p.get("inference_batches", 0)
    inference_s = p.get("inference_seconds_total", 0.0)
    return DemoReport(
        workload={
            "name": run.workload.name,
            "phases": run.workload.phases,
            "switch_at": run.workload.switch_at,
            "seed": cfg.seed,
            "cache_items": cfg.cache_items,
        },
        run={
            "requests": n,
            "duration": cfg.duration.describe(),
            "stopped_by": run.stopped_by,
            "wall_s": run.wall_s,
            "requests_per_s": _ratio(n, run.wall_s),
            "workdir": str(run.workdir),
            "lockstep_timeouts": run.pacing_timeouts,
            "cache": run.cache_stats,
        },
        hit_rate={
            "predis": _ratio(run.hits, n),
            "baseline": _ratio(run.baseline_hits, n),
            "baseline_is": "a no-prefetch replay of the same requests through a cache of the "
            "same size and policy",
            "gain_pp": 100 * _ratio(run.hits - run.baseline_hits, n),
            "hits": run.hits,
            "misses": run.misses,
            "baseline_hits": run.baseline_hits,
            "baseline_misses": run.baseline_misses,
            "by_phase": _by_phase(run.timeline),
            "ab_control_arm": None
            if ab is None
            else {
                "version": ab.get("version"),
                "control_hit_rate": ab.get("base_hit_rate"),
                "challenger_hit_rate": ab.get("new_hit_rate"),
                "control_requests": ab.get("base_requests"),
                "challenger_requests": ab.get("new_requests"),
                "msprt_p": ab.get("msprt_p"),
            },
        },
        backend={
            "latency_ms": cfg.latency_ms,
            "baseline_fetches": run.baseline_misses,
            "predis_demand_fetches": run.demand_fetches,
            "predis_prefetch_fetches": run.prefetch_fetches,
            "predis_fetches": predis_fetches,
            "fetches_avoided": avoided,
            "net_fetches_saved": net_saved,
            "latency_saved_s": latency_saved,
            "mean_wait_ms_baseline": 1000 * _ratio(run.baseline_misses * latency, n),
            "mean_wait_ms_predis": 1000 * _ratio(run.demand_fetches * latency, n),
        },
        roi={
            "inputs": asdict(prices),
            "benefit": benefit,
            "cost": cost,
            "roi": _ratio(benefit, cost) if cost > 0 else None,
            "formula": "(latency_saved_h * wait_cost_per_hour + net_fetches_saved * "
            "cost_per_fetch) / (predis_cpu_h * cpu_cost_per_hour)",
        },
        models={"history": run.history, "aliases": run.aliases},
        drift_events=drift,
        loop_events=events,
        outcome={
            "drift_after_change": any(
                int(d.get("detected_at", d["position"])) >= run.workload.switch_at for d in drift
            ),
            "promoted": ab is not None,
            "forced": forced,
            "forced_rolled_back": forced_rolled_back,
            "rollbacks": len(rollbacks),
        },
        overhead={
            "process_cpu_s": run.process_cpu_s,
            "host_cpu_s": run.host_cpu_s,
            "demo_cpu_s": run.demo_cpu_s,
            "predis_cpu_s": background_cpu,
            "predis_cpu_share": _ratio(background_cpu, run.process_cpu_s - run.demo_cpu_s),
            "predis_cores": _ratio(background_cpu, run.wall_s),
            "training_s": train_s,
            "inference_batches": batches,
            "inference_mean_us_per_batch": 1e6 * _ratio(inference_s, batches),
            "inference_us_per_request": 1e6 * _ratio(inference_s, n),
        },
        prefetch={
            **p,
            "precision": _ratio(p.get("used", 0), p.get("issued", 0)),
        },
        collector={
            **run.collector_stats,
            "segment_files": run.segments,
            "segment_bytes_on_disk": run.segment_bytes,
            "encrypted": "AES-256-GCM, key file data.key (0600)",
        },
        services=run.services,
        timeline=run.timeline,
    )


def format_report(r: DemoReport) -> str:
    """The report as aligned text."""
    h, b, o, ov = r.hit_rate, r.backend, r.outcome, r.overhead
    roi = r.roi["roi"]
    rows = [
        ("workload", f"{r.workload['name']}: " + " -> ".join(r.workload["phases"])),
        ("requests", f"{r.run['requests']:,} in {r.run['wall_s']:.1f} s ({r.run['stopped_by']})"),
        ("hit rate with Predis", f"{h['predis']:.2%}"),
        ("hit rate without", f"{h['baseline']:.2%} (no-prefetch replay of the same requests)"),
        ("gain", f"{h['gain_pp']:+.1f} pp over the whole run"),
    ]
    rows += [
        (
            f"phase {p['phase'] + 1}",
            f"{p['predis']:.2%} with Predis, {p['baseline']:.2%} without "
            f"({p['requests']:,} requests)",
        )
        for p in h["by_phase"]
    ]
    rows += [
        (
            "back-end fetches",
            f"{b['fetches_avoided']:,} avoided on the request path "
            f"({b['baseline_fetches']:,} -> {b['predis_demand_fetches']:,}); "
            f"{b['predis_prefetch_fetches']:,} prefetch loads",
        ),
        (
            "latency saved",
            f"{b['latency_saved_s']:.1f} s at {b['latency_ms']:g} ms/fetch "
            f"(mean wait {b['mean_wait_ms_baseline']:.2f} -> {b['mean_wait_ms_predis']:.2f} ms)",
        ),
        (
            "ROI",
            ("n/a (no cost)" if roi is None else f"{roi:.2f}x")
            + f" (benefit {r.roi['benefit']:.6f}, cost {r.roi['cost']:.6f}; "
            "formula in docs/demo.md)",
        ),
    ]
    ab = h["ab_control_arm"]
    if ab is not None:
        rows.append(
            (
                "A/B control arm",
                f"v{ab['version']} {ab['challenger_hit_rate']:.3f} vs control "
                f"{ab['control_hit_rate']:.3f}",
            )
        )
    rows += [
        ("drift events", ", ".join(f"@{d['position']:,}" for d in r.drift_events) or "none"),
        (
            "outcome",
            f"drift after the change: {_yes(o['drift_after_change'])}; promoted: "
            f"{_yes(o['promoted'])}; forced model rolled back: {_yes(o['forced_rolled_back'])}",
        ),
        ("aliases", ", ".join(f"{k}={v}" for k, v in r.models["aliases"].items())),
        (
            "Predis CPU",
            f"{ov['predis_cpu_s']:.1f} s ({ov['predis_cpu_share']:.0%} of the process, "
            f"{ov['predis_cores']:.2f} cores; training {ov['training_s']:.1f} s)",
        ),
        (
            "prefetch inference",
            f"{ov['inference_mean_us_per_batch']:.0f} us/batch, "
            f"{ov['inference_us_per_request']:.1f} us/request",
        ),
        (
            "prefetch",
            f"{r.prefetch.get('issued', 0):,} issued, {r.prefetch.get('used', 0):,} used "
            f"(precision {r.prefetch['precision']:.2f})",
        ),
        (
            "segments",
            f"{r.collector['segment_files']} encrypted files, "
            f"{r.collector['events_written']:,} events, "
            f"{r.collector['segment_bytes_on_disk']:,} bytes",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines.append("model history:")
    for entry in r.models["history"]:
        version = entry.get("version")
        shown = "" if version is None else f"v{version}"
        lines.append(
            f"  {entry.get('action', '?'):<20} {shown:<4} by {entry.get('actor', '?')}"
            + (f": {entry['reason']}" if entry.get("reason") else "")
        )
    return "\n".join(lines)


def _yes(flag: object) -> str:
    return "yes" if flag else "no"

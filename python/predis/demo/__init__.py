"""`predis demo`: the whole of Predis on a synthetic workload with a phase change.

A cache with the learned prefetcher in front of a simulated back end; the collector writing
encrypted segments; the exporter and a dashboard token; drift, retraining, validation, an
A/B test and a promotion at the phase change; a degraded model promoted by hand and rolled
back automatically; and a final report of measured figures. See ``docs/demo.md``.

Example (headless, in Python)::

    from predis.demo import DemoConfig, format_report, parse_duration, run_demo
    report = run_demo(DemoConfig(duration=parse_duration("110k"), serve=False), say=print)
    print(format_report(report))
"""

from __future__ import annotations

from collections.abc import Callable

from predis.demo.config import WORKLOADS, Budget, DemoConfig, RoiInputs, parse_duration
from predis.demo.pipeline import run_pipeline
from predis.demo.report import DemoReport, build_report, format_report

__all__ = [
    "WORKLOADS",
    "Budget",
    "DemoConfig",
    "DemoReport",
    "RoiInputs",
    "format_report",
    "parse_duration",
    "run_demo",
]


def run_demo(
    config: DemoConfig | None = None,
    *,
    say: Callable[[str], None] | None = None,
    progress: bool = False,
) -> DemoReport:
    """Run the demo and return its report.

    Args:
        config: the settings (default: :class:`DemoConfig`'s defaults).
        say: receives the narration, one line at a time, from several threads (None:
            silent).
        progress: show a progress bar on stderr.
    """
    cfg = config if config is not None else DemoConfig()
    if not isinstance(cfg, DemoConfig):
        from predis.errors import InvalidArgumentError  # noqa: PLC0415

        raise InvalidArgumentError("config must be a DemoConfig")
    run = run_pipeline(cfg, say if say is not None else _silent, progress)
    return build_report(run)


def _silent(_line: str) -> None:
    """Narration nobody reads."""

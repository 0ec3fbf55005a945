"""Scraping: exporters over HTTP, an in-process :class:`~predis.monitoring.Monitor`, or a
Prometheus server's HTTP API, on an interval, into the :class:`History`.

Only the metrics the dashboard reads are stored (:data:`KEPT`). A target that fails records
the failure and no samples: its charts show a gap and its cards "no data since ...".
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Protocol

from prometheus_client.parser import text_string_to_metric_families

from predis.dashboard.history import History
from predis.errors import InvalidArgumentError
from predis.monitoring.metrics import CATALOGUE, HistogramValue
from predis.monitoring.monitor import Monitor

__all__ = [
    "KEPT",
    "MonitorTarget",
    "PrometheusTarget",
    "Scraper",
    "Target",
    "URLTarget",
    "parse_exposition",
]

log = logging.getLogger("predis.dashboard")

#: The metrics the dashboard stores (histograms as their ``_sum`` and ``_count``).
KEPT = frozenset(
    {
        "predis_up",
        "predis_keyspace_hits_total",
        "predis_keyspace_misses_total",
        "predis_commands_total",
        "predis_keys",
        "predis_memory_used_bytes",
        "predis_memory_max_bytes",
        "predis_prefetch_issued_total",
        "predis_prefetch_used_total",
        "predis_prefetch_wasted_total",
        "predis_ml_inference_duration_seconds_sum",
        "predis_ml_inference_duration_seconds_count",
        "predis_gpu_utilization_ratio",
        "predis_gpu_memory_used_bytes",
        "predis_gpu_memory_total_bytes",
        "predis_drift_events_total",
        "predis_model_version_info",
        "predis_abtest_requests_total",
        "predis_abtest_hits_total",
        "predis_abtest_p_value",
        "predis_abtest_decision",
    }
)
_MAX_BODY = 32 << 20
Samples = list[tuple[str, dict[str, str], float]]


def _label_names(name: str) -> tuple[str, ...] | None:
    base = re.sub(r"_(sum|count)$", "", name)
    metric = CATALOGUE.get(name) or CATALOGUE.get(base)
    return None if metric is None else metric.labels


def parse_exposition(text: str) -> Samples:
    """The kept samples of a Prometheus text exposition (labels reduced to the catalogue's,
    so a relabelling Prometheus or a new label does not split a series)."""
    out: Samples = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name not in KEPT:
                continue
            names = _label_names(s.name) or ()
            out.append((s.name, {k: str(s.labels.get(k, "")) for k in names}, float(s.value)))
    return out


class Target(Protocol):
    """Something to scrape: a ``name`` (stored with its samples) and ``scrape()``."""

    name: str

    def scrape(self) -> Samples:
        """The kept samples now; raises on failure."""
        ...


def _open(url: str, token: str | None, timeout: float, accept: str) -> bytes:
    # The URL was checked by validate_scrape_url: http or https only.
    req = urllib.request.Request(url, headers={"Accept": accept})  # noqa: S310
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310  # nosec B310
        body = resp.read(_MAX_BODY + 1)
    if len(body) > _MAX_BODY:
        raise InvalidArgumentError(f"{url} answered more than {_MAX_BODY} bytes")
    return bytes(body)


class URLTarget:
    """An exporter's ``/metrics`` over HTTP(S)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 5.0) -> None:
        from predis.dashboard.config import validate_scrape_url  # noqa: PLC0415

        self.name = validate_scrape_url(url)
        self._token = token
        self._timeout = timeout

    def scrape(self) -> Samples:
        """The exporter's samples now, from its text exposition; raises on failure."""
        body = _open(self.name, self._token, self._timeout, "text/plain;version=0.0.4")
        return parse_exposition(body.decode("utf-8"))


class MonitorTarget:
    """A :class:`~predis.monitoring.Monitor` in this process (for example over a
    :class:`~predis.Cache`): the same sources the exporter serves, read directly."""

    def __init__(self, monitor: Monitor, name: str = "in-process") -> None:
        if not isinstance(monitor, Monitor):
            raise InvalidArgumentError("MonitorTarget needs a predis.monitoring.Monitor")
        self.name = name
        self.monitor = monitor

    def scrape(self) -> Samples:
        """The in-process monitor's samples now."""
        out: Samples = []
        for s in self.monitor.collect():
            labels = s.label_dict
            if isinstance(s.value, HistogramValue):
                for suffix, v in (("_sum", s.value.sum), ("_count", float(s.value.count))):
                    if s.metric.name + suffix in KEPT:
                        out.append((s.metric.name + suffix, labels, v))
            elif s.metric.name in KEPT:
                out.append((s.metric.name, labels, float(s.value)))
        return out


class PrometheusTarget:
    """A Prometheus server's HTTP API (``/api/v1/query``): the latest value of every kept
    series it holds, read each interval as if scraped."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10.0) -> None:
        from predis.dashboard.config import validate_scrape_url  # noqa: PLC0415

        self.name = validate_scrape_url(base_url).rstrip("/")
        self._token = token
        self._timeout = timeout
        names = "|".join(sorted(re.escape(n) for n in KEPT))
        self._query = urllib.parse.urlencode({"query": f'{{__name__=~"{names}"}}'})

    def scrape(self) -> Samples:
        """Predis's series from the Prometheus server's query API now; raises on failure."""
        body = _open(
            f"{self.name}/api/v1/query?{self._query}",
            self._token,
            self._timeout,
            "application/json",
        )
        doc = json.loads(body)
        if not isinstance(doc, dict) or doc.get("status") != "success":
            raise InvalidArgumentError(f"{self.name}: the query failed: {str(doc)[:200]}")
        data = doc.get("data") or {}
        if data.get("resultType") != "vector":
            raise InvalidArgumentError(f"{self.name}: expected a vector result")
        out: Samples = []
        for item in data.get("result", []):
            metric = dict(item.get("metric", {}))
            name = str(metric.pop("__name__", ""))
            if name not in KEPT:
                continue
            names = _label_names(name) or ()
            value = float(item["value"][1])
            out.append((name, {k: str(metric.get(k, "")) for k in names}, value))
        return out


class Scraper:
    """Scrapes every target each ``interval_s`` in a daemon thread and prunes the history
    past ``retention_s``. :meth:`scrape_once` runs one round in the caller's thread."""

    def __init__(
        self,
        history: History,
        targets: Sequence[Target],
        interval_s: float = 5.0,
        retention_s: float = 30 * 86_400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not targets:
            raise InvalidArgumentError(
                "nothing to scrape: give an exporter URL (--scrape), a Prometheus URL or a cache"
            )
        names = [t.name for t in targets]
        if len(set(names)) != len(names):
            raise InvalidArgumentError("a scrape target is given twice")
        self.history = history
        self.targets = list(targets)
        self.interval_s = interval_s
        self.retention_s = retention_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0
        self._failing: dict[str, bool] = {}

    def scrape_once(self) -> dict[str, str | None]:
        """One round over every target; returns each target's error (None when it worked)."""
        result: dict[str, str | None] = {}
        for t in self.targets:
            ts = self._clock()
            try:
                samples = t.scrape()
            except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
                # OSError covers URLError and HTTPError; ValueError covers bad text, JSON
                # and InvalidArgumentError; the rest are malformed API answers.
                msg = f"{type(exc).__name__}: {exc}"
                # Warn when a target starts failing, not on every round while it stays down.
                level = logging.DEBUG if self._failing.get(t.name) else logging.WARNING
                log.log(level, "predis dashboard: scraping %s failed: %s", t.name, msg)
                self._failing[t.name] = True
                self.history.add_scrape(t.name, ts, None, msg)
                result[t.name] = msg
                continue
            self.history.add_scrape(t.name, ts, samples)
            if self._failing.pop(t.name, False):
                log.warning("predis dashboard: scraping %s works again", t.name)
            result[t.name] = None
        self.history.prune(self._clock() - self.retention_s)
        self.rounds += 1
        return result

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.scrape_once()
            except Exception:
                log.exception("predis dashboard: a scrape round failed")
            self._stop.wait(self.interval_s)

    def start(self) -> Scraper:
        """Start the background thread (the first round runs at once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="predis-dash-scraper", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

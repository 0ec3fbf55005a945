"""Helpers for the monitoring tests: scrape and parse /metrics."""

from __future__ import annotations

import math
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

import predis


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition as {(name, labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def scrape(url: str, headers: dict[str, str] | None = None) -> dict:
    """GET ``url`` and parse it."""
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return parse_metrics(resp.read().decode("utf-8"))


def value(samples: dict, name: str, **labels: str) -> float | None:
    """One sample's value, or None when absent."""
    return samples.get((name, frozenset(labels.items())))


@dataclass(frozen=True)
class StandInPrefetchStats:
    """The shape of issue 5's PrefetchStats (the real one lands later)."""

    issued: int
    used: int
    wasted: int
    errors: int
    dropped: int
    inference_batches: int
    inference_seconds_total: float
    inference_latency_buckets: tuple[tuple[float, int], ...]


class CacheWithPrefetch:
    """A real cache whose stats() carries a stand-in `prefetch` field."""

    def __init__(self, prefetch: StandInPrefetchStats | None) -> None:
        self.inner = predis.Cache(capacity_bytes=1 << 20)
        self.prefetch = prefetch
        self.backend, self.policy = self.inner.backend, self.inner.policy

    def stats(self):
        @dataclass(frozen=True)
        class Stats:
            base: predis.CacheStats
            prefetch: StandInPrefetchStats | None

            def __getattr__(self, name):
                return getattr(self.base, name)

        return Stats(self.inner.stats(), self.prefetch)


PREFETCH = StandInPrefetchStats(
    issued=40,
    used=25,
    wasted=10,
    errors=2,
    dropped=3,
    inference_batches=7,
    inference_seconds_total=0.0125,
    inference_latency_buckets=((0.001, 2), (0.005, 6), (math.inf, 7)),
)

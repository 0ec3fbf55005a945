"""Scrapes racing heavy cache traffic with real threads: every scrape parses, counters
never go back, and once the traffic stops the scrape equals the cache's own counters."""

from __future__ import annotations

import threading

import numpy as np
from monitoring_helpers import scrape, value

import predis
from predis.monitoring import serve

COUNTERS = (
    "predis_keyspace_hits_total",
    "predis_keyspace_misses_total",
    "predis_inserted_keys_total",
    "predis_updated_keys_total",
    "predis_evicted_keys_total",
)


def test_scrapes_race_heavy_traffic():
    cache = predis.Cache(capacity_bytes=1 << 20, max_items=4096, sample_rate=0.1)
    stop = threading.Event()
    errors: list[BaseException] = []

    def batches(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                keys = rng.integers(0, 20_000, 512, dtype=np.uint64)
                cache.mput(keys, np.zeros((512, 16), dtype=np.uint8))
                cache.mget(np.ascontiguousarray(keys[::-1]))
        except BaseException as exc:
            errors.append(exc)

    def singles(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                k = int(rng.integers(0, 20_000))
                cache.put(k, b"x" * 24)
                cache.get(k + 1)
                cache.delete(k + 2)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=batches, args=(i,)) for i in range(2)]
    workers += [threading.Thread(target=singles, args=(10 + i,)) for i in range(2)]
    with serve(cache, port=0, name="hot", gpu=False) as server:
        for w in workers:
            w.start()
        seen: list[dict] = []
        scrape_errors: list[BaseException] = []

        def scraper() -> None:
            try:
                for _ in range(40):
                    seen.append(scrape(server.url))
            except BaseException as exc:
                scrape_errors.append(exc)

        scrapers = [threading.Thread(target=scraper) for _ in range(3)]
        for s in scrapers:
            s.start()
        for s in scrapers:
            s.join()
        stop.set()
        for w in workers:
            w.join()
        final = scrape(server.url)
    assert not errors, errors
    assert not scrape_errors, scrape_errors
    assert len(seen) == 120
    # Scrapes ran while the counters moved; the per-scraper order cannot be recovered after
    # the fact, so check each scrape is sane and bounded by the final state.
    stats = cache.stats()
    for s in seen:
        assert value(s, "predis_up", cache="hot") == 1
        for name in COUNTERS:
            v = value(s, name, cache="hot")
            assert v is not None
            assert 0 <= v <= value(final, name, cache="hot")
        ratio = value(s, "predis_hit_ratio", cache="hot")
        lookups = value(s, COUNTERS[0], cache="hot") + value(s, COUNTERS[1], cache="hot")
        assert (ratio is None) == (lookups == 0)
        assert ratio is None or 0 <= ratio <= 1
    assert value(final, "predis_keyspace_hits_total", cache="hot") == stats.hits
    assert value(final, "predis_keyspace_misses_total", cache="hot") == stats.misses
    assert value(final, "predis_evicted_keys_total", cache="hot") == stats.evictions
    assert value(final, "predis_keys", cache="hot") == len(cache)
    assert stats.hits + stats.misses > 1000
    assert stats.evictions > 0


def test_counters_never_go_back_within_one_scraper():
    cache = predis.Cache(capacity_bytes=1 << 20, sample_rate=0.0)
    stop = threading.Event()

    def traffic() -> None:
        k = 0
        while not stop.is_set():
            cache.put(k % 5000, b"v")
            cache.get(k % 7000)
            k += 1

    t = threading.Thread(target=traffic)
    with serve(cache, port=0, name="m", gpu=False) as server:
        t.start()
        try:
            last = dict.fromkeys(COUNTERS, 0.0)
            for _ in range(60):
                s = scrape(server.url)
                for name in COUNTERS:
                    v = value(s, name, cache="m")
                    assert v >= last[name], name
                    last[name] = v
        finally:
            stop.set()
            t.join()
    assert last["predis_keyspace_hits_total"] + last["predis_keyspace_misses_total"] > 0

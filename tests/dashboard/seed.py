"""A seeded history with known counters, gaps and a counter restart (for the API tests)."""

from __future__ import annotations

from predis.dashboard import History

INTERVAL = 10.0
OK = [0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12]  # scrapes 7 and 8 failed: a gap
MAIN_HITS = {0: 0, 1: 100, 2: 250, 3: 300, 4: 300, 5: 500, 6: 600, 9: 50, 10: 150, 11: 250, 12: 400}
MAIN_MISSES = {0: 0, 1: 10, 2: 20, 3: 40, 4: 60, 5: 70, 6: 80, 9: 5, 10: 10, 11: 20, 12: 30}


def seed(history: History, t0: float, ab: bool = True) -> None:
    """Target exp1 serves acme's caches main and aux, a GPU and acme's A/B test and drift
    detector; exp2 serves globex's cache gmain. Scrape i happens at t0 + 10 i."""
    for i in range(13):
        ts = t0 + INTERVAL * i
        if i not in OK:
            history.add_scrape("exp1", ts, None, "URLError: connection refused")
            history.add_scrape("exp2", ts, None, "URLError: connection refused")
            continue
        samples = []
        for cache, hits, misses in (
            ("main", MAIN_HITS[i], MAIN_MISSES[i]),
            ("aux", 10 * i, 10 * i),
        ):
            c = {"cache": cache}
            samples += [
                ("predis_up", c, 1.0),
                ("predis_keyspace_hits_total", c, hits),
                ("predis_keyspace_misses_total", c, misses),
                ("predis_commands_total", {"cache": cache, "cmd": "get"}, hits + misses),
                ("predis_commands_total", {"cache": cache, "cmd": "put"}, misses),
                ("predis_commands_total", {"cache": cache, "cmd": "delete"}, 0),
            ]
        gpu = {"gpu": "0", "name": "H200"}
        samples += [
            ("predis_gpu_utilization_ratio", gpu, 0.5 + 0.01 * i),
            ("predis_gpu_memory_used_bytes", gpu, float(2**30 * (i + 1))),
        ]
        if ab:
            for arm, req, hit in (("champion", 20 * i, 7 * i), ("challenger", 20 * i, 9 * i)):
                labels = {"test": "ranker", "arm": arm}
                samples += [
                    ("predis_abtest_requests_total", labels, req),
                    ("predis_abtest_hits_total", labels, hit),
                ]
            samples.append(("predis_abtest_p_value", {"test": "ranker"}, 0.04))
            for state in ("undecided", "champion", "challenger"):
                samples.append(
                    (
                        "predis_abtest_decision",
                        {"test": "ranker", "state": state},
                        float(state == "undecided"),
                    )
                )
        drift = 0 if i < 4 else (1 if i < 10 else 3)
        samples.append(
            ("predis_drift_events_total", {"detector": "hit-rate", "kind": "performance"}, drift)
        )
        history.add_scrape("exp1", ts, samples)
        g = {"cache": "gmain"}
        history.add_scrape(
            "exp2",
            ts,
            [
                ("predis_keyspace_hits_total", g, 5.0 * i),
                ("predis_keyspace_misses_total", g, 5.0 * i),
            ],
        )

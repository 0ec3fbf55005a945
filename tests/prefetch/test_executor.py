"""The prefetch executor: dedup, backpressure, budgets, failing and hanging loaders."""

from __future__ import annotations

import logging
import threading

import pytest

from predis import InvalidArgumentError
from predis.prefetch.executor import PrefetchExecutor


def test_loads_run_and_in_flight_keys_are_deduplicated():
    gate = threading.Event()
    loaded: list[int] = []

    def load(key: int, confidence: float) -> bool:
        gate.wait(10)
        loaded.append(key)
        return True

    ex = PrefetchExecutor(load, workers=1, queue_size=8)
    assert ex.submit(1, 0.9)
    assert not ex.submit(1, 0.9)  # already queued or loading
    assert ex.submit(2, 0.5)
    gate.set()
    assert ex.wait_idle()
    s = ex.stats()
    assert sorted(loaded) == [1, 2]
    assert (s.submitted, s.completed, s.deduped, s.in_flight) == (2, 2, 1, 0)
    assert ex.submit(1, 0.9)  # done loading: a new proposal is accepted again
    ex.close()


def test_a_hanging_loader_fills_the_queue_and_then_proposals_are_dropped():
    hang = threading.Event()
    ex = PrefetchExecutor(lambda _k, _c: hang.wait(30), workers=1, queue_size=2)
    accepted = [ex.submit(k, 1.0) for k in range(10)]  # returns at once every time
    # One load hangs in the worker, two wait in the queue, the rest are dropped.
    assert 2 <= sum(accepted) <= 3
    s = ex.stats()
    assert s.dropped_full == 10 - sum(accepted)
    hang.set()
    assert ex.wait_idle()
    ex.close()


def test_loader_errors_are_counted_and_logged_not_raised(caplog):
    def load(key: int, confidence: float) -> bool:
        raise ConnectionError(f"backend down for {key}")

    ex = PrefetchExecutor(load, workers=2)
    with caplog.at_level(logging.WARNING, logger="predis.prefetch"):
        for k in range(20):
            ex.submit(k, 0.5)
        assert ex.wait_idle()
    s = ex.stats()
    assert s.errors == 20
    assert s.completed == 0
    # Logged once per error type per minute, not once per failure.
    assert sum("ConnectionError" in r.getMessage() for r in caplog.records) == 1
    ex.close()


def test_the_loads_per_second_budget_drops_the_excess():
    ex = PrefetchExecutor(lambda _k, _c: True, workers=1, max_loads_per_s=5)
    accepted = sum(ex.submit(k, 1.0) for k in range(100))
    s = ex.stats()
    assert accepted <= 6  # a one-second bucket of 5 tokens (plus refill while submitting)
    assert s.dropped_budget == 100 - accepted
    ex.close()


def test_a_loader_returning_nothing_is_counted_as_empty():
    ex = PrefetchExecutor(lambda _k, _c: False, workers=1)
    ex.submit(3, 0.7)
    assert ex.wait_idle()
    assert ex.stats().empty == 1
    ex.close()


@pytest.mark.parametrize(
    "kwargs",
    [{"workers": 0}, {"queue_size": 0}, {"max_loads_per_s": 0}, {"workers": True}],
)
def test_bad_bounds_are_refused(kwargs):
    with pytest.raises(InvalidArgumentError):
        PrefetchExecutor(lambda _k, _c: True, **kwargs)


def test_closed_executor_accepts_nothing():
    ex = PrefetchExecutor(lambda _k, _c: True)
    ex.close()
    assert not ex.submit(1, 1.0)

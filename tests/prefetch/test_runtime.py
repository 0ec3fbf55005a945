"""The live prefetch loop behind Cache(prefetch=...), driven step by step."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predis import Cache, InvalidArgumentError
from predis.prefetch import LearnedPrefetcher, PrefetchModel
from predis.prefetch.base import Prefetcher, merge_proposals


def value_of(key: int) -> bytes:
    return int(key).to_bytes(8, "little")


class CountingLoader:
    def __init__(self, fail_from: int | None = None) -> None:
        self.calls = 0
        self.fail_from = fail_from
        self.lock = threading.Lock()

    def __call__(self, key: int) -> bytes:
        with self.lock:
            self.calls += 1
        if self.fail_from is not None and key >= self.fail_from:
            raise ConnectionError("backend refused")
        return value_of(key)


def serve(cache: Cache, keys: np.ndarray, step: bool) -> None:
    """Host requests, with the prefetch loop stepped after every batch (deterministic)."""
    runtime = cache.prefetch_runtime
    for i, k in enumerate(keys.tolist()):
        assert cache.get(k) == value_of(k)
        if step and runtime is not None and i % 8 == 7:
            runtime.step(cache)
            runtime.executor.wait_idle()


def test_live_prefetching_cuts_misses_and_counts_its_work(
    sessions_model: PrefetchModel, make_sessions
):
    keys = make_sessions(12_000, seed=1)
    plain = Cache(capacity_bytes=1 << 20, max_items=100, loader=CountingLoader())
    serve(plain, keys, step=False)
    loader = CountingLoader()
    cache = Cache(
        capacity_bytes=1 << 20,
        max_items=100,
        loader=loader,
        prefetcher=LearnedPrefetcher(sessions_model),
        prefetch_options={"interval_s": 10.0},  # the test steps the loop itself
    )
    serve(cache, keys, step=True)
    base, ours = plain.stats(), cache.stats()
    assert ours.prefetch is not None
    assert base.prefetch is None
    p = ours.prefetch
    # A clear margin: at least a quarter of the demand misses are gone.
    assert ours.misses <= 0.75 * base.misses, (ours.misses, base.misses)
    assert p.issued > 0
    assert 0 < p.used <= p.issued
    assert p.precision >= 0.5
    assert p.inference_batches > 0
    assert p.inference_rows > 0
    assert p.inference_latency_buckets[-1] == (float("inf"), p.inference_batches)
    assert p.model_version == 1
    # Every load was a demand miss or a prefetch load, and every stored guess was seen.
    cache.prefetch_runtime.step(cache)
    ex = cache.prefetch_runtime.executor.stats()
    assert loader.calls == ours.misses + ex.completed + ex.empty + ex.errors
    assert cache.stats().prefetch.issued == ex.completed
    cache.close()


def test_events_still_reach_drain_events_for_the_collector(sessions_model):
    cache = Cache(
        capacity_bytes=1 << 20,
        max_items=100,
        loader=CountingLoader(),
        prefetcher=LearnedPrefetcher(sessions_model),
        prefetch_options={"interval_s": 10.0},
    )
    for k in range(50):
        cache.get(k)
    cache.prefetch_runtime.step(cache)
    events = cache.drain_events()
    gets = events[events["op"] == 0]
    assert gets["key"].tolist()[:50] == list(range(50))
    cache.close()


def test_prefetch_loader_errors_are_counted_and_the_host_is_untouched(
    sessions_model, make_sessions
):
    keys = make_sessions(4_000, seed=2)
    cache = Cache(
        capacity_bytes=1 << 20,
        max_items=100,
        loader=CountingLoader(fail_from=1_000_000),  # all session keys fail to load
        prefetcher=LearnedPrefetcher(sessions_model),
        prefetch_options={"interval_s": 10.0},
    )
    runtime = cache.prefetch_runtime
    failures = 0
    for i, k in enumerate(keys.tolist()):
        try:
            cache.get(k)
        except Exception:  # the host's own demand load fails for these keys, as it should
            failures += 1
        if i % 8 == 7:
            runtime.step(cache)
            runtime.executor.wait_idle()
    p = cache.stats().prefetch
    assert p.errors > 0
    assert p.issued == 0
    assert failures > 0  # demand loads raise LoaderError; prefetch loads never did
    cache.close()


def test_default_prefetcher_trains_its_first_model_in_the_background(make_sessions):
    keys = make_sessions(12_000, seed=4)
    with Cache(
        capacity_bytes=1 << 20,
        max_items=100,
        loader=CountingLoader(),
        prefetch=True,
        prefetch_options={"train_after": 8_000, "interval_s": 0.001},
    ) as cache:
        runtime = cache.prefetch_runtime
        for k in keys.tolist():
            cache.get(k)
        assert runtime.wait_trained(timeout=120)
        assert cache.stats().prefetch.model_version == 1
    assert cache.prefetch_runtime is None  # closed by the with block
    assert cache.get(int(keys[0])) is not None  # still a working cache


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prefetch": True}, "loader"),
        ({"prefetch": True, "loader": value_of, "sample_rate": 0.5}, "sample_rate"),
        ({"prefetcher": object(), "loader": value_of}, "Prefetcher"),
        ({"prefetch": True, "loader": value_of, "prefetch_options": {"nope": 1}}, "options"),
        ({"prefetch": True, "loader": value_of, "prefetch_options": {"interval_s": 0}}, "interval"),
    ],
)
def test_bad_prefetch_setup_is_refused(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        Cache(capacity_bytes=1 << 20, **kwargs)


def test_swapping_in_a_model_with_another_tracker_is_refused(sessions_model):
    from predis.prefetch import TrackerConfig

    p = LearnedPrefetcher(tracker=TrackerConfig(window=8))
    with pytest.raises(InvalidArgumentError, match="tracker"):
        p.swap_model(sessions_model)
    p2 = LearnedPrefetcher()
    p2.swap_model(sessions_model)
    assert p2.model is sessions_model
    assert p2.model_version == 1


def test_close_drops_queued_loads_stops_every_worker_and_keeps_events(sessions_model):
    import threading as th

    gate = th.Event()

    def slow(key: int) -> bytes:
        gate.wait(30)
        return value_of(key)

    cache = Cache(
        capacity_bytes=1 << 20,
        max_items=100,
        loader=slow,
        prefetcher=LearnedPrefetcher(sessions_model),
        prefetch_options={"interval_s": 10.0, "workers": 3, "queue_size": 4},
    )
    runtime = cache.prefetch_runtime
    ex = runtime.executor
    for k in range(20):
        ex.submit(10**9 + k, 0.9)  # three loads block in the workers, four wait in the queue
    cache.put(5, b"x")
    cache.get(5)
    runtime.step(cache)  # the loop drains these events into its buffer
    gate.set()
    cache.close()
    assert all(not t.is_alive() for t in ex._threads)
    assert not ex.submit(1, 1.0)
    assert ex.stats().dropped_full >= 4  # the queued ones were dropped at close
    ops = cache.drain_events()["op"].tolist()
    assert ops[:2] == [1, 0]  # the put and the get, drained before close, are still there


@pytest.mark.parametrize("option", ["pending_limit", "event_buffer"])
def test_runtime_bounds_are_checked(option):
    with pytest.raises(InvalidArgumentError, match=option):
        Cache(capacity_bytes=1 << 20, loader=value_of, prefetch=True, prefetch_options={option: -1})


def test_lowering_the_sample_rate_while_prefetching_is_refused():
    with Cache(capacity_bytes=1 << 20, loader=value_of, prefetch=True) as cache:
        with pytest.raises(InvalidArgumentError, match="every access"):
            cache.sample_rate = 0.5
        assert cache.sample_rate == 1.0
    cache.sample_rate = 0.5  # closed: a plain cache again


def test_steps_from_several_threads_hand_over_every_event_once(sessions_model):
    """step() drains into one reused buffer: steps on real threads at once must still hand
    over each logged event exactly once."""
    cache = Cache(
        capacity_bytes=1 << 20,
        max_items=100,
        loader=CountingLoader(),
        prefetcher=LearnedPrefetcher(sessions_model),
        prefetch_options={"interval_s": 10.0},  # the test's threads step the loop
    )
    runtime = cache.prefetch_runtime
    done = threading.Event()

    def stepper() -> None:
        while not done.is_set():
            runtime.step(cache)

    threads = [threading.Thread(target=stepper) for _ in range(3)]
    for t in threads:
        t.start()
    for k in range(20_000):
        cache.put(k, value_of(k))
    done.set()
    for t in threads:
        t.join(60)
    runtime.step(cache)
    puts = cache.drain_events(1 << 30)
    puts = puts[puts["op"] == 1]
    assert sorted(puts["key"].tolist()) == list(range(20_000))
    cache.close()


class Fixed(Prefetcher):
    """Proposes the same keys, at given confidences, on every batch."""

    batch_size = 8

    def __init__(self, keys: list[int], conf: list[float]) -> None:
        self.out = (np.array(keys, dtype=np.uint64), np.array(conf, dtype=np.float64))
        self.batches = 0

    def propose(self, keys, hits, cached):
        self.batches += 1
        return self.out


def test_a_routed_pair_is_called_on_every_batch_and_its_lists_merged(sessions_model):
    """route(first, second): both run on each batch, their proposals loaded most confident
    first; route(None) hands the batches back to the prefetcher alone."""
    own = Fixed([900], [0.9])
    cache = Cache(
        capacity_bytes=1 << 20,
        max_items=1_000,
        loader=CountingLoader(),
        prefetcher=own,
        prefetch_options={"interval_s": 10.0},  # the test steps the loop
    )
    runtime = cache.prefetch_runtime
    first, second = Fixed([1_001, 1_002], [0.5, 0.2]), Fixed([2_001], [0.7])
    runtime.route(first.propose, second.propose)
    submitted: list[tuple[int, float]] = []
    real_submit = runtime.executor.submit
    runtime.executor.submit = lambda k, c: submitted.append((k, c)) or real_submit(k, c)
    for k in range(8):
        cache.get(k)
    runtime.step(cache)
    assert (first.batches, second.batches, own.batches) == (1, 1, 0)
    assert submitted == [(2_001, 0.7), (1_001, 0.5), (1_002, 0.2)]
    with pytest.raises(InvalidArgumentError, match="second proposer needs a first"):
        runtime.route(None, second.propose)
    runtime.route(None)
    submitted.clear()
    for k in range(8, 16):
        cache.get(k)
    runtime.step(cache)
    assert (first.batches, second.batches, own.batches) == (1, 1, 1)
    assert submitted == [(900, 0.9)]
    cache.close()


@settings(max_examples=200, deadline=None)
@given(
    a=st.lists(st.tuples(st.integers(0, 50), st.floats(0, 1)), max_size=12),
    b=st.lists(st.tuples(st.integers(0, 50), st.floats(0, 1)), max_size=12),
)
def test_merged_proposals_are_both_lists_most_confident_first(a, b):
    def arrays(pairs):
        return (
            np.array([k for k, _ in pairs], dtype=np.uint64),
            np.array([c for _, c in pairs], dtype=np.float64),
        )

    # Each prefetcher's own list comes most confident first.
    a, b = sorted(a, key=lambda kc: -kc[1]), sorted(b, key=lambda kc: -kc[1])
    keys, conf = merge_proposals(arrays(a), arrays(b))
    # The reference: a stable sort of a's entries then b's, by confidence descending.
    expected = sorted(a + b, key=lambda kc: -kc[1])
    assert list(zip(keys.tolist(), conf.tolist(), strict=True)) == expected

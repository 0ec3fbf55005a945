"""The A/B router serving a live cache: the runtime calls the roles' models directly (the
champion, or an experiment's two arms), the listeners read the demand stream from the
cache's native tap, and only the first batch after a change of roles comes through the
router. Real caches, real runtime threads."""

from __future__ import annotations

import gc
import time
import warnings
import weakref

import numpy as np
import pytest

from predis import Cache, InvalidArgumentError
from predis.mlops import ABRouter
from predis.prefetch import LearnedPrefetcher, TrainConfig, train_model
from predis.workloads import CorrelatedSessions

TRAIN = TrainConfig(num_trees=20, threads=1, batch_size=16, time_budget_s=20.0)


def stream(n: int, seed: int) -> np.ndarray:
    return CorrelatedSessions(1_000_000, 200, 12, alpha=0.8, noise=0.05, seed=seed).take(n)


@pytest.fixture(scope="module")
def model():
    return train_model(stream(15_000, seed=3), TRAIN, cache_items=150)


class CountingRouter(ABRouter):
    """A real router that counts the batches handed to it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0

    def propose(self, keys, hits, cached):
        self.calls += 1
        return super().propose(keys, hits, cached)


def live(router: ABRouter) -> Cache:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a CPU-only build's fallback warning
        return Cache(1 << 16, max_items=150, loader=lambda _k: b"v" * 8, prefetcher=router)


def serve(cache: Cache, router: ABRouter, keys: np.ndarray) -> None:
    """Gets in steps of 64, letting the drain thread keep up (waits, not timing checks)."""
    runtime = cache.prefetch_runtime
    assert runtime is not None
    deadline = time.monotonic() + 60
    for start in range(0, len(keys), 64):
        done = router.requests
        step = keys[start : start + 64].tolist()
        for k in step:
            cache.get(k)
        while router.requests < done + len(step) and time.monotonic() < deadline:
            time.sleep(0.0005)
        assert router.requests >= done + len(step), "the drain thread stalled"
        runtime.executor.wait_idle(10)


def test_between_experiments_the_champion_serves_directly_and_listeners_see_every_get(model):
    champion = LearnedPrefetcher(model)
    router = CountingRouter(champion, listen_every=256)
    chunks: list[tuple[int, np.ndarray, np.ndarray]] = []
    router.subscribe(lambda r, k, h: chunks.append((r.released, k.copy(), h.copy())))
    keys = stream(4_000, seed=5)
    cache = live(router)
    with cache:
        serve(cache, router, keys)
        served = cache.stats()
    stats = served.prefetch
    assert router.calls == 0  # no batch came through the router
    assert champion.inference_calls > 0
    assert stats is not None
    assert stats.issued > 0
    got_keys = np.concatenate([k for _, k, _ in chunks])
    got_hits = np.concatenate([h for _, _, h in chunks])
    assert got_keys.tolist() == keys.tolist()  # every demand get, in order, once
    assert int(got_hits.sum()) == served.hits  # the demand gets' hits, each once
    # Each listener call sees the position of its chunk's end.
    ends = np.cumsum([len(k) for _, k, _ in chunks]).tolist()
    assert [position for position, _, _ in chunks] == ends
    assert router.requests == router.released == len(keys)
    s = router.roles.champion_stats
    assert (s.requests, s.hits) == (len(keys), served.hits)
    assert s.inference_batches == champion.inference_calls
    assert s.proposals == champion.proposals
    assert router.inference_rows == champion.inference_rows


def test_an_experiment_on_a_live_cache_serves_both_arms_directly_and_counts_every_get_once(model):
    champion, challenger = LearnedPrefetcher(model), LearnedPrefetcher(model)
    router = CountingRouter(champion, listen_every=256, look_every=64)
    heard = []
    router.subscribe(lambda _r, k, _h: heard.append(len(k)))
    cache = live(router)
    with cache:
        serve(cache, router, stream(1_024, seed=6))
        assert router.calls == 0
        serving = router.roles
        roles = router.start_test(challenger, 0.5)
        serve(cache, router, stream(2_048, seed=7))
        # The first batch after the change settles the champion's counts and hands the
        # runtime both arms (one more may have started before the change, on the champion).
        during = router.calls
        assert 1 <= during <= 2
        assert challenger.inference_calls > 0
        router.end_experiment()
        serve(cache, router, stream(1_024, seed=8))
        # The first batch after the change settles the test's counts and hands the
        # champion back: after it, none.
        after = router.calls - during
        assert 1 <= after <= 2
    total = 1_024 + 2_048 + 1_024
    assert router.requests == router.released == sum(heard) == total
    arms = roles.champion_stats.requests + roles.other_stats.requests
    # The arms count the batches the test served. At each change one batch may fall on
    # the other side: the runtime hands over what one drain brought (up to a step of 64
    # gets here) plus what it carried below a batch (up to 15).
    slack = 64 + router.batch_size - 1
    assert 2_048 - 2 * slack <= arms <= 2_048 + 2 * slack
    # The champion alone is counted for what it served before and after: requests the tap
    # held at a change go to the roles they were served under, not to whoever is next, and
    # every demand get is counted once.
    before = serving.champion_stats.requests
    after = router.roles.champion_stats.requests
    assert 1_024 - slack <= before <= 1_024 + slack
    assert before + arms + after == total
    assert roles.other_stats.requests > 0
    # The per-bucket counts (the test's unit) hold the same requests as the totals.
    for stats in (roles.champion_stats, roles.other_stats):
        assert stats.bucket_requests is not None
        assert stats.bucket_hits is not None
        assert int(stats.bucket_requests.sum()) == stats.requests
        assert int(stats.bucket_hits.sum()) == stats.hits
    # The challenger served only in the test: all its model work is counted for its arm.
    assert roles.other_stats.inference_batches == challenger.inference_calls
    assert roles.other_stats.proposals == challenger.proposals


def test_a_router_serves_one_live_cache_at_a_time_and_counts_on_after_it(model):
    router = ABRouter(LearnedPrefetcher(model), listen_every=128)
    first = live(router)
    with pytest.raises(InvalidArgumentError, match="already serves a live cache"):
        live(router)
    with first:
        serve(first, router, stream(512, seed=9))
        assert first._core.demand_tap is not None
    assert first._core.demand_tap is None  # the runtime's stop detached the tap
    assert router.requests == 512
    # After the cache, the router counts the batches handed to it again, going on from there.
    keys = stream(64, seed=10)
    router.propose(keys, np.zeros(64, dtype=bool), lambda k: np.zeros(len(k), dtype=bool))
    assert router.requests == 576
    second = live(router)  # and may serve another cache
    with second:
        serve(second, router, stream(256, seed=11))
    assert router.requests == 576 + 256


def test_a_cache_dropped_during_an_experiment_is_freed_and_its_runtime_ends(model):
    # The runtime holds its cache weakly, so that dropping the cache ends the loop; the
    # experiment's proposer must not keep the cache alive through its `cached` either.
    router = ABRouter(LearnedPrefetcher(model), listen_every=256, look_every=64)
    cache = live(router)
    serve(cache, router, stream(512, seed=12))
    router.start_test(LearnedPrefetcher(model), 0.5)
    serve(cache, router, stream(1_024, seed=13))
    router.flush()  # what the router's thread has not taken yet
    assert router.roles.other_stats.requests > 0  # the arms served
    runtime = cache.prefetch_runtime
    assert runtime is not None
    gone = weakref.ref(cache)
    del cache
    deadline = time.monotonic() + 10
    while gone() is not None and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    assert gone() is None
    runtime._thread.join(10)
    assert not runtime._thread.is_alive()


class Recording(LearnedPrefetcher):
    """A real LearnedPrefetcher that keeps what it proposed, and whether its candidates
    were cut to an arm's keys when the call began."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.proposed: list[int] = []
        self.cut: list[int] = []  # proposed by calls that began with `serves` set

    def propose(self, keys, hits, cached, **kwargs):
        cut = self.serves is not None
        out, conf = super().propose(keys, hits, cached, **kwargs)
        got = out.tolist()
        if cut:
            self.cut += got
        self.proposed += got
        return out, conf


def settled(cache: Cache) -> None:
    """Wait for the drain thread's batch in flight, if any, to finish (serve() waits for
    the tap, which the drain fills before it calls the models)."""
    runtime = cache.prefetch_runtime
    assert runtime is not None
    with runtime._step_lock:
        pass


def test_on_a_live_cache_each_arm_proposes_only_its_keys_until_the_roles_end(model):
    champion, challenger = Recording(model), Recording(model)
    router = ABRouter(champion, look_every=64)
    cache = live(router)
    with cache:
        serve(cache, router, stream(512, seed=11))
        assert champion.serves is None
        roles = router.start_test(challenger, 0.5)
        split = roles.split
        assert split is not None
        serve(cache, router, stream(3_000, seed=12))
        settled(cache)
        # The runtime called both arms directly: each proposed keys of its own arm only.
        # (A batch the drain thread was still scoring at the change began uncut, and is
        # left out: `cut` holds what calls that began under the test proposed.)
        assert champion.cut
        assert challenger.cut == challenger.proposed
        assert not split.is_challenger(np.array(champion.cut, dtype=np.uint64)).any()
        assert split.is_challenger(np.array(challenger.cut, dtype=np.uint64)).all()
        router.end_experiment()
        # Back to the champion alone: its candidates are no longer cut, and the challenger
        # is no arm of this router any more.
        assert champion.serves is None
        assert challenger.serves is None
        assert challenger.latency_sink is None
        settled(cache)
        before = len(champion.proposed)
        serve(cache, router, stream(3_000, seed=13))
    after = champion.proposed[before:]
    assert after
    assert split.is_challenger(np.array(after, dtype=np.uint64)).any()


def test_arms_are_cut_to_their_sides_through_every_change_of_roles(model):
    champion, challenger = LearnedPrefetcher(model), LearnedPrefetcher(model)
    router = ABRouter(champion)
    keys = np.arange(4_000, dtype=np.uint64)
    roles = router.start_test(challenger, 0.3)
    assert roles.split is not None
    side = roles.split.is_challenger(keys)
    assert (challenger.serves(keys) == side).all()
    assert (champion.serves(keys) == ~side).all()
    roles = router.promote(0.1)  # the challenger serves most keys; the old one holds back
    assert roles.split is not None
    side = roles.split.is_challenger(keys)
    assert (champion.serves(keys) == side).all()
    assert (challenger.serves(keys) == ~side).all()
    assert 0.05 < side.mean() < 0.15
    router.rollback()
    assert champion.serves is None
    assert challenger.serves is None
    # A promotion without a test, then its watch ended: cut, then whole again.
    third = LearnedPrefetcher(model)
    roles = router.install(third, 0.2)
    assert roles.split is not None
    side = roles.split.is_challenger(keys)
    assert (third.serves(keys) == ~side).all()
    assert (roles.other.serves(keys) == side).all()
    router.end_experiment()
    assert third.serves is None
    assert roles.other.serves is None
    # A new router does not inherit a cut an earlier one left on its champion.
    third.serves = roles.split.is_challenger_u64
    assert ABRouter(third).champion.serves is None


def test_during_an_experiment_looks_count_the_arms_between_chunks(model):
    """Serving a live cache during an experiment, the router's thread counts the arms every
    ``look_every`` requests and tells the count listeners, while the batch listeners get
    chunks of ``stream_every``: every get is counted once and heard once, in order."""
    champion, challenger = LearnedPrefetcher(model), LearnedPrefetcher(model)
    router = ABRouter(champion, look_every=128, stream_every=1_024, max_hold_s=3600.0)
    chunks: list[tuple[int, np.ndarray]] = []
    router.subscribe(lambda r, k, _h: chunks.append((r.released, k.copy())))
    looks: list[tuple[int, int, int]] = []

    def on_counts(r: ABRouter, position: int) -> None:
        s = r.roles
        looks.append((position, s.champion_stats.requests + s.other_stats.requests, r.released))

    def fails(_r: ABRouter, _position: int) -> None:
        raise RuntimeError("a count listener that fails")

    router.subscribe_counts(on_counts)
    router.subscribe_counts(fails)
    keys = stream(4_096, seed=9)
    cache = live(router)
    with cache:
        roles = router.start_test(challenger, 0.5)
        serve(cache, router, keys)
    assert looks, "no look counted the arms between chunks"
    positions = [p for p, _, _ in looks]
    assert positions == sorted(set(positions))
    for position, counted, released in looks:
        assert counted == position  # every request up to the look, counted once
        assert released < position < released + 1_024 + 64  # between two chunks
    assert router.listener_errors == len(looks)  # the failing listener, at every look
    got = np.concatenate([k for _, k in chunks])
    assert got.tolist() == keys.tolist()  # every get heard once, in order
    # Chunks of stream_every, but for the first: a look before the runtime's first batch
    # under the test's roles takes a chunk instead (that batch settles the old roles).
    assert all(len(k) >= 1_024 for _, k in chunks[1:-1]), [len(k) for _, k in chunks]
    assert len(chunks) < len(keys) // 1_024 + 2
    stats = (roles.champion_stats, roles.other_stats)
    assert sum(s.requests for s in stats) == len(keys)
    for s in stats:
        assert s.bucket_requests is not None
        assert s.bucket_hits is not None
        assert int(s.bucket_requests.sum()) == s.requests
        assert int(s.bucket_hits.sum()) == s.hits


def test_a_full_tap_during_an_experiment_drops_requests_without_miscounting(model, monkeypatch):
    """The tap keeps at most TAP_CAPACITY requests; past that the gets are counted in
    ``requests`` (positions) but kept for no one. A look then counts the kept ones for the
    arms, the take after it hands them on without counting them again, and the counting
    goes on from there: no request counted twice, none counted that was dropped."""
    import predis.mlops.router as router_module

    monkeypatch.setattr(router_module, "TAP_CAPACITY", 256)
    champion, challenger = LearnedPrefetcher(model), LearnedPrefetcher(model)
    # The router's own thread waits for far more than this test serves: this thread does
    # its steps, at the points chosen here (as bench/callgrind/look_cost.py does).
    router = ABRouter(champion, look_every=1 << 20, stream_every=1 << 20, max_hold_s=3600.0)
    chunks: list[np.ndarray] = []
    router.subscribe(lambda _r, k, _h: chunks.append(k.copy()))
    positions: list[int] = []
    router.subscribe_counts(lambda _r, position: positions.append(position))
    keys = stream(1_000, seed=11)
    more = stream(200, seed=12)  # fewer than the tap keeps
    # The test starts before the cache is live: no change of roles wakes the router's thread
    # while this one serves.
    roles = router.start_test(challenger, 0.5)
    cache = live(router)
    with cache:
        tap = router._tap
        assert tap is not None
        serve(cache, router, keys)
        assert (tap.pending, tap.dropped) == (256, len(keys) - 256)
        assert router.requests == len(keys)

        def counted() -> int:
            return roles.champion_stats.requests + roles.other_stats.requests

        router.look_every = 64
        router._step(tap)  # a look: the 256 kept are counted, and stay kept
        assert counted() == 256
        assert tap.peeked == 256
        assert positions == [256]  # the dropped ones are not counted yet, where it looks
        router._step(tap)  # nothing new: a look counts nothing, so the chunk is taken
        assert counted() == 256
        assert [c.tolist() for c in chunks] == [keys[:256].tolist()]
        assert router.released == len(keys)  # the dropped gets passed, positions kept

        serve(cache, router, more)  # room again: all kept
        assert tap.pending == len(more)
        router._step(tap)
        assert counted() == 256 + len(more)
        assert positions[-1] == len(keys) + len(more)
        router.stream_every = 1  # the next step takes the chunk
        router._step(tap)
        assert counted() == 256 + len(more)
        assert chunks[-1].tolist() == more.tolist()
    for s in (roles.champion_stats, roles.other_stats):
        assert s.bucket_requests is not None
        assert int(s.bucket_requests.sum()) == s.requests


def test_native_looks_step_the_test_as_the_loop_would_and_wake_it_to_decide(model):
    """An armed LookPlan: the router's looks between chunks count the arms and step the
    mSPRT natively. Each look's running p-value equals what MSPRT.look computes on the
    arms' counts at that point, the schedule is the loop's, the count listeners hear only
    the look that wakes them (a decision or the horizon), and what was counted reaches the
    arms' stats then."""
    from predis.mlops.abtest import MSPRT
    from predis.mlops.router import LookPlan

    champion, challenger = LearnedPrefetcher(model), LearnedPrefetcher(model)
    router = ABRouter(champion, look_every=1 << 20, stream_every=1 << 20, max_hold_s=3600.0)
    heard: list[int] = []
    router.subscribe_counts(lambda _r, position: heard.append(position))
    keys = stream(6_000, seed=13)
    # The arms serve the same model; against a null difference of -5 points the running
    # p-value falls look by look, until the test decides or its horizon wakes the loop.
    m = MSPRT(alpha=0.025, tau=0.02, min_requests=50, null_difference=-0.05)
    reference = MSPRT(alpha=0.025, tau=0.02, min_requests=50, null_difference=-0.05)
    schedule = {"looks_from": 0, "next_look": 256}
    absorbed: list[tuple[float, int]] = []

    def absorb(p: float, next_look: int) -> None:
        absorbed.append((p, next_look))
        m.take_p_value(p)
        schedule["next_look"] = next_look

    roles = router.start_test(challenger, 0.5)  # before the cache is live, as above
    cache = live(router)
    with cache:
        plan = LookPlan(
            roles,
            null_difference=m.null_difference,
            tau2=m.tau2,
            alpha=m.alpha,
            min_requests=m.min_requests,
            base_is_champion=True,
            horizon=2_500,
            budget=0,
            decide_every=256,
            growth=8,
            stream_every=4_096,
            state=lambda: (m.p_value, schedule["looks_from"], schedule["next_look"]),
            absorb=absorb,
        )
        router.arm_looks(plan)
        tap = router._tap
        assert tap is not None
        due = 256  # the reference's schedule, as the loop plans it
        compared = 0
        every = 128  # what the router's thread would wait for
        for start in range(0, len(keys), 128):
            serve(cache, router, keys[start : start + 128])
            if tap.pending - tap.peeked < every:
                continue  # the router's thread would still be waiting
            # Its own wait is for far more (set before the test began): this thread steps.
            router.look_every = every
            router._step(tap)
            every, router.look_every = router.look_every, 1 << 20
            held = router._live_looks
            assert held is not None
            assert held[0] is plan
            looks = held[1]
            low, high = roles.other_stats.bucket_moments, roles.champion_stats.bucket_moments
            assert low is not None
            assert high is not None
            position = router.released + tap.peeked
            if heard:
                break  # the look that woke the loop
            if position >= due:
                reference.look(
                    (int(high[2]), int(high[1]), high.copy()),
                    (int(low[2]), int(low[1]), low.copy()),
                )
                assert every == max(256, min(position // 8, 4_096))  # the next wait
                due = position + every
                compared += 1
            assert looks.p == pytest.approx(reference.p_value, rel=1e-12)
            assert looks.next_look == due
        assert heard, "nothing woke the loop"
        assert compared >= 2  # (tests/mlops/test_abtest.py varies the p-values compared)
        assert absorbed
        assert absorbed[-1][1] <= heard[-1]
        assert m.p_value == absorbed[-1][0]
        stats = (roles.champion_stats, roles.other_stats)
        assert m.p_value <= m.alpha or min(s.requests for s in stats) >= 2_500
        assert sum(s.requests for s in stats) == heard[-1]  # counted once, absorbed
        for s in stats:
            assert s.bucket_requests is not None
            assert int(s.bucket_requests.sum()) == s.requests

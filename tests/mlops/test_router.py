"""The A/B router: each arm proposes only its own keys, per-arm counts, role changes, and a
live cache driven through it."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from predis import Cache, InvalidArgumentError
from predis.mlops import ABRouter
from predis.prefetch import LearnedPrefetcher, TrainConfig, train_model
from predis.sim.hitrate import predis_cache
from predis.workloads import CorrelatedSessions

TRAIN = TrainConfig(num_trees=20, threads=1, batch_size=16, time_budget_s=20.0)


def stream(n: int, seed: int = 3) -> np.ndarray:
    return CorrelatedSessions(1_000_000, 200, 12, alpha=0.8, noise=0.05, seed=seed).take(n)


@pytest.fixture(scope="module")
def model():
    return train_model(stream(15_000), TRAIN, cache_items=150)


class Recording(LearnedPrefetcher):
    """A real LearnedPrefetcher that keeps what it proposed, to check the routing."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.proposed: list[int] = []
        self.seen = 0

    def propose(self, keys, hits, cached, **kwargs):
        self.scored_at_most = max(getattr(self, "scored_at_most", 0), kwargs.get("score_last", 0))
        self.seen += len(keys)
        out, conf = super().propose(keys, hits, cached, **kwargs)
        self.proposed += out.tolist()
        return out, conf


def drive(router: ABRouter, keys: np.ndarray) -> np.ndarray:
    """Feed batches as the runtime would, in front of a real 150-entry LRU cache; returns
    the hit bit of each request."""
    cache = predis_cache(150, "lru")
    bits = []
    for start in range(0, len(keys) - router.batch_size + 1, router.batch_size):
        batch = keys[start : start + router.batch_size]
        hits = np.array([cache.get(int(k)) is not None for k in batch])
        for k in batch[~hits].tolist():
            cache.put(k, b"v")
        bits.append(hits)
        out, conf = router.propose(batch, hits, cache.mcontains)
        for k, c in zip(out.tolist(), conf.tolist(), strict=True):
            cache.put_prefetched(k, b"p", c)
    return np.concatenate(bits)


@pytest.mark.parametrize("scoring", ["alternate", "every"])
def test_each_arm_proposes_only_its_keys_and_sees_every_request(model, scoring):
    champion, challenger = Recording(model), Recording(model)
    router = ABRouter(champion, experiment_scoring=scoring)
    roles = router.start_test(challenger, 0.5)
    keys = stream(8_000, seed=5)
    hits = drive(router, keys)
    # Each arm's requests are counted per chunk: they trail by less than a chunk until the
    # last one is released.
    counted = roles.champion_stats.requests + roles.other_stats.requests
    assert 0 <= len(hits) - counted < router.look_every
    router.flush()
    assert roles.split is not None
    assert champion.proposed
    assert challenger.proposed
    assert not any(roles.split.arm(k) == "challenger" for k in champion.proposed)
    assert all(roles.split.arm(k) == "challenger" for k in challenger.proposed)
    # Both trackers learn from the whole stream, not just their half of the keys (taking
    # turns, the arm whose turn is next has not yet seen the last batch).
    for arm in (champion, challenger):
        assert len(hits) - router.batch_size <= arm.seen <= len(hits)
    # Per-arm counts: the requests and hits of each arm's keys, exactly.
    in_challenger = roles.split.is_challenger(keys[: len(hits)])
    assert roles.other_stats.requests == int(in_challenger.sum())
    assert roles.other_stats.hits == int(hits[in_challenger].sum())
    assert roles.champion_stats.requests == int((~in_challenger).sum())
    assert roles.champion_stats.hits == int(hits[~in_challenger].sum())
    assert roles.champion_stats.proposals == len(champion.proposed)
    assert roles.other_stats.proposals == len(challenger.proposed)
    assert roles.other_stats.inference_batches > 0
    assert router.requests == len(hits)
    # Model calls: "every" runs both arms on each batch; "alternate" runs one arm per batch,
    # taking turns, so the test makes no more calls than the champion alone would.
    batches = len(hits) // router.batch_size
    calls = champion.inference_calls + challenger.inference_calls
    assert roles.champion_stats.inference_batches == champion.inference_calls
    assert roles.other_stats.inference_batches == challenger.inference_calls
    alone = LearnedPrefetcher(model)
    drive(ABRouter(alone), keys)
    if scoring == "alternate":
        assert calls <= batches
        assert abs(champion.inference_calls - challenger.inference_calls) <= batches // 4
    else:
        assert calls > batches
        assert calls >= 2 * alone.inference_calls - batches // 4


def test_between_experiments_batches_reach_listeners_in_chunks(model):
    """Between experiments a batch is held; every listen_every requests the chunk is counted
    and handed to the listeners in one piece, in order; flush() hands over the rest."""
    router = ABRouter(LearnedPrefetcher(model), listen_every=100)
    chunks: list[tuple[np.ndarray, np.ndarray]] = []
    router.subscribe(lambda _r, k, h: chunks.append((k.copy(), h.copy())))
    keys = stream(3_000, seed=4)
    hits = drive(router, keys)
    assert all(len(k) >= 100 for k, _ in chunks)
    assert sum(len(k) for k, _ in chunks) < len(hits)  # the tail is still held
    router.flush()
    got_keys = np.concatenate([k for k, _ in chunks])
    got_hits = np.concatenate([h for _, h in chunks])
    assert got_keys.tolist() == keys[: len(hits)].tolist()
    assert got_hits.tolist() == hits.tolist()
    s = router.roles.champion_stats
    assert (s.requests, s.hits) == (len(hits), int(hits.sum()))
    assert router.requests == len(hits)
    # Lists and other dtypes are converted (and copied) before they are held.
    batch = keys[:16].tolist()
    router.propose(batch, [True] * 8 + [False] * 8, lambda c: np.zeros(len(c), dtype=bool))
    batch[0] = -1  # the caller's list changes after the call: the held copy must not
    router.flush()
    assert chunks[-1][0].tolist() == keys[:16].tolist()
    assert s.hits == int(hits.sum()) + 8
    hits = np.concatenate([hits, np.array([True] * 8 + [False] * 8)])
    # A role change counts the held batches for the roles they were served under.
    more = drive(router, stream(500, seed=9))
    roles = router.start_test(LearnedPrefetcher(model), 0.5)
    drive(router, stream(320, seed=10))
    router.flush()
    assert s.requests == len(hits) + len(more)
    assert roles.champion_stats.requests + roles.other_stats.requests == 320


def test_router_settings_are_checked(model):
    for bad in (0, -1, 1.5, True, 1 << 21):
        with pytest.raises(InvalidArgumentError, match="listen_every"):
            ABRouter(LearnedPrefetcher(model), listen_every=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="look_every"):
            ABRouter(LearnedPrefetcher(model), look_every=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="experiment_scoring"):
        ABRouter(LearnedPrefetcher(model), experiment_scoring="sometimes")


def test_budget_is_shared_by_share_and_roles_move(model):
    a, b = LearnedPrefetcher(model), LearnedPrefetcher(model)
    router = ABRouter(a, max_per_request=2.0)
    assert a.max_per_request == 2.0
    router.start_test(b, 0.25)
    assert (a.max_per_request, b.max_per_request) == (1.5, 0.5)
    version = router.model_version
    roles = router.promote(holdback_share=0.1)
    assert (roles.champion, roles.other, roles.other_role) == (b, a, "holdback")
    assert b.max_per_request == pytest.approx(1.8)
    assert router.model_version == version + 1
    roles = router.rollback()
    assert (roles.champion, roles.other) == (a, None)
    assert a.max_per_request == 2.0
    roles = router.install(b, 0.2)
    assert (roles.champion, roles.other, roles.other_role) == (b, a, "holdback")
    assert router.end_experiment().other is None


def test_bad_role_changes_are_refused(model):
    a = LearnedPrefetcher(model)
    router = ABRouter(a)
    with pytest.raises(InvalidArgumentError, match="no challenger"):
        router.promote(0.1)
    with pytest.raises(InvalidArgumentError, match="no previous champion"):
        router.rollback()
    with pytest.raises(InvalidArgumentError, match="another prefetcher"):
        router.start_test(a, 0.5)
    with pytest.raises(InvalidArgumentError, match=r"batch[ _]size"):  # refused on creation
        router.start_test(LearnedPrefetcher(model, batch_size=8), 0.5)
    with pytest.raises(InvalidArgumentError):
        router.start_test(LearnedPrefetcher(model), 1.5)
    with pytest.raises(InvalidArgumentError):
        ABRouter(a, max_per_request=0)
    with pytest.raises(InvalidArgumentError):
        ABRouter("not a prefetcher")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        router.subscribe(42)  # type: ignore[arg-type]


def test_a_failing_listener_is_counted_and_proposals_still_flow(model):
    router = ABRouter(LearnedPrefetcher(model), listen_every=16)  # a chunk per batch

    def broken(*_args):
        raise RuntimeError("listener bug")

    router.subscribe(broken)
    drive(router, stream(4_000, seed=6))
    assert router.listener_errors == 4_000 // 16
    assert router.roles.champion_stats.proposals > 0


def test_a_live_cache_prefetches_through_the_router(model):
    keys = stream(6_000, seed=8)
    router = ABRouter(LearnedPrefetcher(model))
    router.start_test(LearnedPrefetcher(model), 0.5)
    with Cache(1 << 16, max_items=150, loader=lambda _k: b"v" * 8, prefetcher=router) as cache:
        runtime = cache.prefetch_runtime
        assert runtime is not None
        deadline = time.monotonic() + 60  # waits for the drain thread, not timing checks
        for start in range(0, len(keys), 64):
            for k in keys[start : start + 64].tolist():
                cache.get(k)
            # Let the drain thread keep up, as it does when the host does real work between
            # gets; a host in a tight loop gets its batches scored only in part.
            while router.requests < start + 48 and time.monotonic() < deadline:
                time.sleep(0.0005)
            runtime.executor.wait_idle(10)
        stats = cache.stats().prefetch
    assert stats is not None
    assert stats.inference_batches > 0
    assert stats.issued > 0
    roles = router.roles
    assert roles.champion_stats.requests > 0
    assert roles.other_stats.requests > 0
    assert roles.champion_stats.requests + roles.other_stats.requests == router.requests


def test_idle_releases_a_chunk_only_once_it_has_waited(model):
    """The live runtime calls idle() whenever the ring is empty: a chunk younger than
    max_hold_s stays held (chunks keep their size under steady traffic), an old one goes."""
    chunks: list[int] = []
    keep = ABRouter(LearnedPrefetcher(model), max_hold_s=3600)
    keep.subscribe(lambda _r, k, _h: chunks.append(len(k)))
    drive(keep, stream(320, seed=11))
    keep.idle()
    assert chunks == []
    go = ABRouter(LearnedPrefetcher(model), max_hold_s=0)
    go.subscribe(lambda _r, k, _h: chunks.append(len(k)))
    drive(go, stream(320, seed=11))
    go.idle()
    assert chunks == [320]
    go.idle()  # nothing held: nothing happens
    assert chunks == [320]
    with pytest.raises(InvalidArgumentError, match="max_hold_s"):
        ABRouter(LearnedPrefetcher(model), max_hold_s=-1)


def test_model_time_and_counts_between_experiments_match_the_champion(model):
    champion = LearnedPrefetcher(model)
    router = ABRouter(champion, listen_every=100)
    hits = drive(router, stream(2_000, seed=12))
    router.flush()
    s = router.roles.champion_stats
    assert champion.inference_calls > 0
    assert (s.inference_batches, s.requests, s.hits) == (
        champion.inference_calls,
        len(hits),
        int(hits.sum()),
    )
    assert s.inference_seconds == pytest.approx(champion.inference_seconds)
    assert router.inference_rows == champion.inference_rows
    # Every model call reached the router's histogram too (through the champion's sink).
    assert router.latency.totals()[0] == champion.inference_calls
    # A test starts: what was held is counted for the roles it was served under.
    drive(router, stream(48, seed=13))
    served_alone = champion.inference_calls
    roles = router.start_test(LearnedPrefetcher(model), 0.5)
    drive(router, stream(16, seed=14))
    assert s.inference_batches == served_alone
    assert s.requests == len(hits) + 48
    router.flush()  # the test's counts, like the serving ones, are counted per chunk
    assert roles.champion_stats.inference_batches == champion.inference_calls - served_alone
    assert roles.champion_stats.requests + roles.other_stats.requests == 16


def test_alternate_turns_never_score_a_backlog(model):
    """A caller that fell behind hands over many batches at once: an arm on its turn
    scores at most the two latest batches' worth, as the champion alone would score one."""
    champion, challenger = Recording(model), Recording(model)
    router = ABRouter(champion, experiment_scoring="alternate")
    router.start_test(challenger, 0.5)
    keys = stream(4_000, seed=15)
    cache = predis_cache(150, "lru")
    for start in range(0, 3_200, 160):  # ten batches per call
        batch = keys[start : start + 160]
        hits = np.array([cache.get(int(k)) is not None for k in batch])
        for k in batch[~hits].tolist():
            cache.put(k, b"v")
        router.propose(batch, hits, cache.mcontains)
    for arm in (champion, challenger):
        assert 0 < arm.scored_at_most <= 2 * router.batch_size


def test_a_failing_model_leaves_the_batch_uncounted(model):
    class Broken(LearnedPrefetcher):
        def propose(self, keys, hits, cached, **kwargs):
            raise RuntimeError("model bug")

    router = ABRouter(LearnedPrefetcher(model))
    roles = router.start_test(Broken(model), 0.5)
    with pytest.raises(RuntimeError, match="model bug"):
        router.propose(stream(16, seed=16), np.zeros(16, dtype=bool), lambda c: c == 0)
    router.flush()
    for stats in (roles.champion_stats, roles.other_stats):
        assert (stats.requests, stats.proposals, stats.inference_batches) == (0, 0, 0)
    assert router.requests == 0


def test_a_batch_whose_second_arm_fails_mid_chunk_leaves_no_model_work_counted(model):
    """The champion runs, then the challenger raises: that batch is not held, and the
    champion's calls and proposals in it must stay out of the chunk's counts, wherever in
    the chunk it falls."""

    class Flaky(LearnedPrefetcher):
        calls = 0

        def propose(self, keys, hits, cached, **kwargs):
            self.calls += 1
            if self.calls % 3 == 0:
                raise RuntimeError("model bug")
            return super().propose(keys, hits, cached, **kwargs)

    champion = Recording(model)
    router = ABRouter(champion, look_every=10_000)  # one chunk for the whole stream
    roles = router.start_test(Flaky(model), 0.5)
    cache = predis_cache(150, "lru")
    keys = stream(3_200, seed=19)
    held_calls = held_proposals = held = 0
    for start in range(0, len(keys), 16):
        batch = keys[start : start + 16]
        hits = np.array([cache.get(int(k)) is not None for k in batch])
        for k in batch[~hits].tolist():
            cache.put(k, b"v")
        calls, proposed = champion.inference_calls, len(champion.proposed)
        try:
            router.propose(batch, hits, cache.mcontains)
        except RuntimeError:
            continue
        held += len(batch)
        held_calls += champion.inference_calls - calls
        held_proposals += len(champion.proposed) - proposed
    router.flush()
    s = roles.champion_stats
    assert held_proposals > 0
    assert len(champion.proposed) > held_proposals  # failed batches did propose
    assert (s.inference_batches, s.proposals) == (held_calls, held_proposals)
    assert s.requests + roles.other_stats.requests == held == router.requests


def test_listeners_get_read_only_chunks(model):
    router = ABRouter(LearnedPrefetcher(model), listen_every=32)
    seen: list[tuple[bool, bool]] = []
    router.subscribe(lambda _r, k, h: seen.append((k.flags.writeable, h.flags.writeable)))
    drive(router, stream(16, seed=17))  # one batch: a single part
    router.flush()
    drive(router, stream(64, seed=18))  # two batches per chunk: joined
    assert seen
    assert all(flags == (False, False) for flags in seen)


def test_requests_read_from_another_thread_never_go_back(model):
    """A release moves the held count into the released total; a reader on another thread
    (the loop's actions thread records positions) must never see the sum dip."""
    router = ABRouter(LearnedPrefetcher(model), listen_every=32)
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(router.requests)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        keys = stream(6_000, seed=9)
        hits = drive(router, keys)
    finally:
        done.set()
        reader.join()
    assert len(seen) > 10
    assert all(a <= b for a, b in itertools.pairwise(seen))
    assert router.requests == len(hits)
    router.flush()  # the last chunk's counts, from the champion's own counters
    stats = router.roles.champion_stats
    assert (stats.requests, stats.hits) == (len(hits), int(hits.sum()))
    assert stats.proposals == router.champion.proposals > 0


def test_batches_held_when_the_roles_change_are_counted_with_their_own_split(model):
    """A chunk is counted when it is released; batches served under a test and still held
    at a promotion must go to that test's arms, by that test's split, not the new one's."""
    router = ABRouter(LearnedPrefetcher(model), look_every=10_000)  # nothing released early
    test = router.start_test(LearnedPrefetcher(model), 0.5)
    keys = stream(1_600, seed=12)
    first = drive(router, keys[:800])
    watch = router.promote(0.2)
    second = drive(router, keys[800:])
    router.flush()
    for roles, part, hits in ((test, keys[:800], first), (watch, keys[800:], second)):
        assert roles.split is not None
        other = roles.split.is_challenger(part[: len(hits)])
        assert (roles.other_stats.requests, roles.other_stats.hits) == (
            int(other.sum()),
            int(hits[other].sum()),
        )
        assert (roles.champion_stats.requests, roles.champion_stats.hits) == (
            int((~other).sum()),
            int(hits[~other].sum()),
        )


def test_a_chunk_whose_first_call_failed_keeps_its_hold_time(model):
    """A champion that raises on a chunk's first batch begins no chunk: the next batch
    begins it, with its own hold time, so idle() does not release it at once."""

    class FailsOnce(LearnedPrefetcher):
        failed = False

        def propose(self, keys, hits, cached, **kwargs):
            if not self.failed:
                self.failed = True
                raise RuntimeError("model bug")
            return super().propose(keys, hits, cached, **kwargs)

    chunks: list[int] = []
    router = ABRouter(FailsOnce(model), max_hold_s=3600)
    router.subscribe(lambda _r, k, _h: chunks.append(len(k)))
    batch = stream(32, seed=20)
    with pytest.raises(RuntimeError, match="model bug"):
        router.propose(batch[:16], np.zeros(16, dtype=bool), lambda c: c == 0)
    router.propose(batch[16:], np.zeros(16, dtype=bool), lambda c: c == 0)
    router.idle()
    assert chunks == []  # held: it has not waited max_hold_s
    router.flush()
    assert chunks == [16]
    assert router.roles.champion_stats.requests == 16

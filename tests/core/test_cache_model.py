"""Model-based tests: `predis.Cache` against a plain-Python reference model.

The model is a dict ``identity -> Entry(value, expiry_ns)`` plus a manual clock, where the
identity of a str key is its UTF-8 bytes (so "a" and b"a" are one key) and an int key is
never the same as a bytes key.

Eviction is approximate, so in the *small* machines (capacity_bytes=1024, max_items=16)
the model cannot say which keys survive. There, the model holds every key that *may* be in
the cache; when the cache reports a key missing, the model forgets it (it was evicted or
expired, and can never come back without a new write). Checked after every step:

* a read returns either nothing or exactly the last value written, and never a value for an
  expired, deleted or evicted key;
* the key written by the most recent put is readable right after it;
* bytes_used <= capacity_bytes, items <= max_items, len(cache) == items, and the counters
  balance: inserts - deletes - evictions - expirations - cleared == items;
* hits, misses, inserts + updates and deletes equal what the reads, writes and deletes
  observed.

In the *exact* machine (a capacity the model never comes near) nothing may be evicted, so
the cache must equal the model: the same keys, the same values, the same length, and every
counter (hits, misses, inserts, updates, deletes, expirations, evictions == 0) exactly.

Run with ``--hypothesis-show-statistics`` to see how many runs evicted, expired entries and
reached max_items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import predis

# ---- the key pool: ints, bytes and str, with str/bytes aliases ----

INT_KEYS = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 97, 2**32, 2**63, 2**64 - 1]
BYTES_KEYS = [b"", b"a", b"b", b"key", b"\x00", b"\xff\xfe"]
# "", "a", "b" and "key" alias bytes keys above; the two others are new keys.
STR_KEYS = ["", "a", "b", "key", "ключ", "ß"]
# numpy integer scalars are int keys: these alias 5 and 97.
NUMPY_KEYS = [np.uint64(5), np.int64(97)]
ALL_KEYS = INT_KEYS + BYTES_KEYS + STR_KEYS + NUMPY_KEYS

NS_PER_S = 1_000_000_000
GET_INTO_WIDTH = 400  # as wide as the widest value drawn below


def identity(key: int | bytes | str | np.integer) -> tuple[str, int | bytes]:
    """The key as the cache sees it: str is its UTF-8 bytes; ints never alias bytes."""
    if isinstance(key, np.integer):
        return ("i", int(key))
    if isinstance(key, str):
        return ("b", key.encode("utf-8"))
    if isinstance(key, bytes):
        return ("b", key)
    return ("i", key)


def ttl_to_ns(seconds: float) -> int:
    """The cache's seconds -> ns conversion (documented as seconds, rounded to ns)."""
    return max(1, round(float(seconds) * NS_PER_S))


@dataclass
class Entry:
    key: int | bytes | str  # a key object that names this entry
    value: bytes
    expiry: int | None  # ns on the model clock; None: never


# ---- strategies ----

keys_st = st.sampled_from(ALL_KEYS)
int_keys_st = st.sampled_from(INT_KEYS)
key_lists = st.lists(keys_st, max_size=12)
int_key_arrays = st.lists(int_keys_st, max_size=10).map(lambda ks: np.array(ks, dtype=np.uint64))
values_st = st.one_of(st.binary(max_size=16), st.binary(min_size=150, max_size=400))
ttl_st = st.one_of(st.none(), st.sampled_from([0.25, 0.5, 1, 1.5, 2.0, 3]))
advance_st = st.sampled_from([1e-9, 0.25, 0.5, 0.75, 1, 1.5, 3])
# The bytes-like types a value may arrive as.
wrappers_st = st.sampled_from(
    [
        bytes,
        bytearray,
        memoryview,
        lambda b: np.frombuffer(b, dtype=np.uint8),
    ]
)


@st.composite
def list_batches(draw: st.DrawFn) -> tuple[list[int | bytes | str], list[bytes]]:
    """Keys and a list of values, one per key."""
    keys = draw(key_lists)
    return keys, [draw(values_st) for _ in keys]


@st.composite
def array_batches(draw: st.DrawFn) -> tuple[list[int | bytes | str], np.ndarray]:
    """Keys and a 2-D C-contiguous uint8 array with one row per key."""
    keys = draw(key_lists)
    width = draw(st.integers(0, 40))
    raw = draw(st.binary(min_size=len(keys) * width, max_size=len(keys) * width))
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(len(keys), width).copy()
    return keys, arr


class CacheMachine(RuleBasedStateMachine):
    """Runs a manual-clock `predis.Cache` beside the reference model."""

    CAPACITY = 1024
    MAX_ITEMS = 16
    POLICY = "lru"
    DEFAULT_TTL: float | None = None
    EXACT = False  # True: the cache must equal the model (no eviction is possible)

    def __init__(self) -> None:
        super().__init__()
        # The CPU backend's rules: batches with repeated keys apply in order, and eviction
        # follows each insert. The GPU's differ there (docs/api.md); tests/gpu runs it
        # against this backend within the rules the two share.
        self.cache = predis.Cache(
            self.CAPACITY,
            backend="cpu",
            max_items=self.MAX_ITEMS,
            policy=self.POLICY,
            ttl=self.DEFAULT_TTL,
            clock="manual",
            access_log_capacity=64,
        )
        self.model: dict[tuple[str, int | bytes], Entry] = {}
        self.now = 0
        # What the operations observed; the counters must agree.
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self.deleted = 0
        self.cleared = 0
        # Exact machine only: the counters the model can predict one by one.
        self.inserts = 0
        self.updates = 0
        self.expirations = 0
        self.peak_items = 0

    # ---- model helpers ----

    def alive(self, entry: Entry) -> bool:
        return entry.expiry is None or self.now < entry.expiry

    def observe_read(self, key: int | bytes | str, got: bytes | None) -> None:
        """A get-type read (counts a hit or a miss) returned `got` for `key`."""
        ident = identity(key)
        entry = self.model.get(ident)
        if got is None:
            self.misses += 1
            if entry is not None:
                if self.alive(entry):
                    assert not self.EXACT, f"live key {key!r} missing with nothing evicted"
                elif self.EXACT:
                    self.expirations += 1
                del self.model[ident]  # evicted or expired: it cannot come back unwritten
            return
        self.hits += 1
        assert entry is not None, (
            f"read of {key!r} returned {got!r}; it was never written, or was deleted"
        )
        assert self.alive(entry), f"read of {key!r} returned {got!r} after it expired"
        assert got == entry.value, f"read of {key!r} returned {got!r}, last written {entry.value!r}"

    def observe_contains(self, key: int | bytes | str, present: bool) -> None:
        """A contains-type lookup (no hit/miss counted) said `present` for `key`."""
        ident = identity(key)
        entry = self.model.get(ident)
        if present:
            assert entry is not None, (
                f"{key!r} reported present; it was never written, or was deleted"
            )
            assert self.alive(entry), f"{key!r} reported present after it expired"
            return
        if entry is not None:
            if self.alive(entry):
                assert not self.EXACT, f"live key {key!r} reported absent with nothing evicted"
            elif self.EXACT:
                self.expirations += 1
            del self.model[ident]

    def observe_delete(self, key: int | bytes | str, removed: bool) -> None:
        ident = identity(key)
        entry = self.model.pop(ident, None)
        if removed:
            self.deleted += 1
            assert entry is not None, f"delete of {key!r} removed something never written"
            assert self.alive(entry), f"delete of {key!r} reported removing an expired entry"
            return
        if entry is not None:
            if self.alive(entry):
                assert not self.EXACT, f"delete of live key {key!r} found nothing"
            elif self.EXACT:
                self.expirations += 1

    def record_write(self, key: int | bytes | str, value: bytes, ttl: float | None) -> None:
        ident = identity(key)
        seconds = self.DEFAULT_TTL if ttl is None else ttl
        expiry = None if seconds is None else self.now + ttl_to_ns(seconds)
        old = self.model.get(ident)
        self.writes += 1
        if old is not None and self.alive(old):
            self.updates += 1
        else:
            self.inserts += 1
            if old is not None:
                self.expirations += 1  # the expired entry is replaced in place
        self.model[ident] = Entry(key, value, expiry)

    def check_readable(self, key: int | bytes | str) -> None:
        """The key just written must be readable at once, with the value just written."""
        got = self.cache.get(key)
        assert got is not None, f"{key!r} not readable right after it was written"
        self.observe_read(key, got)

    # ---- rules ----

    @initialize()
    def start(self) -> None:
        assert len(self.cache) == 0

    @rule(key=keys_st, value=values_st, ttl=ttl_st, wrap=wrappers_st)
    def put(self, key, value, ttl, wrap) -> None:
        self.cache.put(key, wrap(value), ttl=ttl)
        self.record_write(key, value, ttl)
        self.check_readable(key)

    @rule(key=keys_st, value=values_st)
    def setitem(self, key, value) -> None:
        self.cache[key] = value
        self.record_write(key, value, None)
        self.check_readable(key)

    @rule(key=keys_st)
    def get(self, key) -> None:
        self.observe_read(key, self.cache.get(key))

    @rule(key=keys_st)
    def delete(self, key) -> None:
        self.observe_delete(key, self.cache.delete(key))

    @rule(key=keys_st)
    def contains(self, key) -> None:
        self.observe_contains(key, self.cache.contains(key))

    @rule(key=keys_st)
    def dunder_contains(self, key) -> None:
        self.observe_contains(key, key in self.cache)

    @rule(keys=key_lists)
    def mget(self, keys) -> None:
        got = self.cache.mget(keys)
        assert isinstance(got, list)
        assert len(got) == len(keys)
        for key, value in zip(keys, got, strict=True):
            self.observe_read(key, value)

    @rule(keys=int_key_arrays)
    def mget_numpy(self, keys) -> None:
        got = self.cache.mget(keys)
        assert len(got) == len(keys)
        for key, value in zip(keys.tolist(), got, strict=True):
            self.observe_read(key, value)

    @rule(batch=list_batches(), ttl=ttl_st)
    def mput(self, batch, ttl) -> None:
        keys, vals = batch
        self.cache.mput(keys, vals, ttl=ttl)
        for key, value in zip(keys, vals, strict=True):
            self.record_write(key, value, ttl)
        if keys:
            self.check_readable(keys[-1])

    @rule(keys=st.lists(keys_st, min_size=8, max_size=24), value=st.binary(max_size=8))
    def mput_many_small(self, keys, value) -> None:
        """Many small entries at once: the way to reach max_items."""
        vals = [value + bytes([i]) for i in range(len(keys))]
        self.cache.mput(keys, vals)
        for key, v in zip(keys, vals, strict=True):
            self.record_write(key, v, None)
        self.check_readable(keys[-1])

    @rule(batch=array_batches(), ttl=ttl_st)
    def mput_array(self, batch, ttl) -> None:
        keys, arr = batch
        self.cache.mput(keys, arr, ttl=ttl)
        for key, row in zip(keys, arr, strict=True):
            self.record_write(key, row.tobytes(), ttl)
        if keys:
            self.check_readable(keys[-1])

    @rule(keys=st.one_of(key_lists, int_key_arrays))
    def mdelete(self, keys) -> None:
        removed = self.cache.mdelete(keys)
        assert removed.dtype == np.bool_
        assert removed.shape == (len(keys),)
        listed = keys.tolist() if isinstance(keys, np.ndarray) else keys
        for key, was in zip(listed, removed.tolist(), strict=True):
            self.observe_delete(key, was)

    @rule(keys=st.one_of(key_lists, int_key_arrays))
    def mcontains(self, keys) -> None:
        present = self.cache.mcontains(keys)
        assert present.dtype == np.bool_
        assert present.shape == (len(keys),)
        listed = keys.tolist() if isinstance(keys, np.ndarray) else keys
        for key, was in zip(listed, present.tolist(), strict=True):
            self.observe_contains(key, was)

    @rule(keys=st.one_of(key_lists, int_key_arrays))
    def mget_arrays(self, keys) -> None:
        offsets, data, found = self.cache.mget_arrays(keys)
        n = len(keys)
        assert offsets.dtype == np.int64
        assert data.dtype == np.uint8
        assert found.dtype == np.bool_
        assert offsets.shape == (n + 1,)
        assert found.shape == (n,)
        assert offsets[0] == 0
        assert offsets[-1] == data.size
        assert (np.diff(offsets) >= 0).all()
        listed = keys.tolist() if isinstance(keys, np.ndarray) else keys
        for i, key in enumerate(listed):
            chunk = data[offsets[i] : offsets[i + 1]].tobytes()
            if found[i]:
                self.observe_read(key, chunk)
            else:
                assert chunk == b"", "a miss must take no bytes in data"
                self.observe_read(key, None)

    @rule(keys=st.one_of(key_lists, int_key_arrays), fill=st.integers(0, 255))
    def get_into(self, keys, fill) -> None:
        out = np.full((len(keys), GET_INTO_WIDTH), fill, dtype=np.uint8)
        found = self.cache.get_into(keys, out)
        assert found.dtype == np.bool_
        assert found.shape == (len(keys),)
        listed = keys.tolist() if isinstance(keys, np.ndarray) else keys
        for i, key in enumerate(listed):
            row = out[i].tobytes()
            if not found[i]:
                assert row == bytes(GET_INTO_WIDTH), "a miss's row must be zeroed"
                self.observe_read(key, None)
                continue
            entry = self.model.get(identity(key))
            assert entry is not None, f"get_into found {key!r}, which the model lacks"
            n = len(entry.value)
            assert row[n:] == bytes(GET_INTO_WIDTH - n), "a short value must be zero-padded"
            self.observe_read(key, row[:n])

    @rule(seconds=advance_st)
    def advance_time(self, seconds) -> None:
        self.cache.advance_time(seconds)
        self.now += ttl_to_ns(seconds)

    @rule()
    def advance_one_second(self) -> None:
        """A second rule that moves time, so that entries expire in more runs."""
        self.cache.advance_time(1)
        self.now += NS_PER_S

    @rule()
    def clear(self) -> None:
        items = len(self.cache)
        if self.EXACT:
            assert items == len(self.model)
        self.cache.clear()
        self.cleared += items
        self.model.clear()
        assert len(self.cache) == 0
        s = self.cache.stats()
        assert s.items == 0
        assert s.bytes_used == 0

    def teardown(self) -> None:
        # Shown by --hypothesis-show-statistics: how often each path was exercised.
        s = self.cache.stats()
        event(f"evictions: {'yes' if s.evictions else 'no'}")
        event(f"expirations: {'yes' if s.expirations else 'no'}")
        event(f"reached max_items: {'yes' if self.peak_items == s.max_items else 'no'}")

    # ---- invariants ----

    @invariant()
    def limits_and_counters(self) -> None:
        s = self.cache.stats()
        assert s.capacity_bytes == self.CAPACITY
        assert s.max_items == self.MAX_ITEMS
        assert s.bytes_used <= s.capacity_bytes, s
        assert s.items <= s.max_items, s
        assert len(self.cache) == s.items
        self.peak_items = max(self.peak_items, s.items)
        assert s.hits == self.hits, (s, self.hits)
        assert s.misses == self.misses, (s, self.misses)
        assert s.inserts + s.updates == self.writes, (s, self.writes)
        assert s.deletes == self.deleted, (s, self.deleted)
        assert s.inserts - s.deletes - s.evictions - s.expirations - self.cleared == s.items, s
        # Every entry in the cache is one the model may hold.
        assert s.items <= len(self.model), (s, len(self.model))
        if self.EXACT:
            assert s.evictions == 0, s
            assert s.inserts == self.inserts, (s, self.inserts)
            assert s.updates == self.updates, (s, self.updates)
            assert s.expirations == self.expirations, (s, self.expirations)

    @invariant()
    def contents(self) -> None:
        live = [e for e in self.model.values() if self.alive(e)]
        expired = [e for e in self.model.values() if not self.alive(e)]
        # contains() on a live key has no side effect, so this leaves the cache as it was.
        present = self.cache.mcontains([e.key for e in live]).tolist()
        if self.EXACT:
            assert all(present), "a live model key is missing though nothing was evicted"
        for entry, here in zip(live, present, strict=True):
            if not here:
                del self.model[identity(entry.key)]  # evicted
        kept = [e for e, here in zip(live, present, strict=True) if here]

        def footprint(e: Entry) -> int:
            return self.cache.footprint(e.key, len(e.value))

        s = self.cache.stats()
        low = sum(footprint(e) for e in kept)
        high = low + sum(footprint(e) for e in expired)
        # Expired entries leave lazily: each is either still held or already gone.
        assert len(kept) <= s.items <= len(kept) + len(expired), (s, len(kept), len(expired))
        assert low <= s.bytes_used <= high, (s, low, high)
        if self.EXACT:
            assert s.items == len(self.model)
            assert s.bytes_used == high
            # Every live value, exactly (these reads count as hits).
            offsets, data, found = self.cache.mget_arrays([e.key for e in kept])
            assert found.all()
            for i, entry in enumerate(kept):
                assert data[offsets[i] : offsets[i + 1]].tobytes() == entry.value
            self.hits += len(kept)


SETTINGS = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class SmallLruMachine(CacheMachine):
    """1 KiB and 16 items: most runs evict, by bytes or by item count."""

    POLICY = "lru"


class SmallLfuMachine(CacheMachine):
    """As above with LFU, and a default ttl so that plain puts expire too."""

    POLICY = "lfu"
    DEFAULT_TTL = 2.0


class ExactMachine(CacheMachine):
    """Far more room than the key pool can fill: the cache must equal the model."""

    CAPACITY = 1 << 20
    MAX_ITEMS = 4096
    EXACT = True


TestSmallLru = SmallLruMachine.TestCase
TestSmallLru.settings = SETTINGS
TestSmallLfu = SmallLfuMachine.TestCase
TestSmallLfu.settings = SETTINGS
TestExact = ExactMachine.TestCase
TestExact.settings = SETTINGS


def test_key_pool_has_aliases_and_more_keys_than_max_items() -> None:
    """The pool really does exercise aliasing and the max_items limit."""
    idents = {identity(k) for k in ALL_KEYS}
    assert identity("a") == identity(b"a")
    assert identity(97) != identity(b"a")
    assert identity(np.int64(97)) == identity(97)
    assert len(idents) > CacheMachine.MAX_ITEMS
    assert len(idents) < len(ALL_KEYS)


@pytest.mark.parametrize("seconds", [1e-9, 0.25, 0.5, 1, 1.5, 2.0, 3])
def test_model_clock_matches_cache_clock(seconds: float) -> None:
    """The model's seconds -> ns rounding is the cache's: a ttl lands on the same tick."""
    cache = predis.Cache(4096, clock="manual")
    cache.put(1, b"x", ttl=seconds)
    ns = ttl_to_ns(seconds)
    if ns > 1:
        cache.advance_time((ns - 1) / NS_PER_S)
        assert cache.get(1) == b"x"
        cache.advance_time(1e-9)
    else:
        cache.advance_time(1e-9)
    assert cache.get(1) is None

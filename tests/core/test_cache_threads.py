"""Multi-threaded stress with real threads: no torn, mixed-up or lost values, consistent stats.

Batch calls release the GIL, so writers, readers and deleters really run at once in the
native table. The amount of work is fixed (no timing assertions); each test takes a second
or two.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Callable

import numpy as np
import pytest

import predis

JOIN_TIMEOUT_S = 120.0
N_INT_KEYS = 300
N_BYTES_KEYS = 100
HEADER = struct.Struct("<QQI")  # key id, version, payload length
MAX_PAYLOAD = 200
ROW_WIDTH = HEADER.size + MAX_PAYLOAD + 4


def key_of(key_id: int) -> int | bytes:
    """Key ids below N_INT_KEYS are int keys; the rest are bytes keys."""
    return key_id if key_id < N_INT_KEYS else b"key-%d" % key_id


def key_id_of(key: int | bytes) -> int:
    return key if isinstance(key, int) else int(key[4:])


def encode(key_id: int, version: int) -> bytes:
    """A value that names its key and version, with a length that depends on both and a CRC."""
    n = (key_id * 7 + version * 13) % (MAX_PAYLOAD + 1)
    payload = bytes((key_id + version + i) & 0xFF for i in range(n))
    body = HEADER.pack(key_id, version, n) + payload
    return body + struct.pack("<I", zlib.crc32(body))


def check_value(key_id: int, value: bytes) -> None:
    """`value` is a whole, well-formed value written for `key_id` (some version)."""
    assert len(value) >= HEADER.size + 4, f"key {key_id}: value too short ({len(value)} bytes)"
    got_id, version, n = HEADER.unpack_from(value)
    assert got_id == key_id, f"key {key_id} holds a value written for key {got_id}"
    assert len(value) == HEADER.size + n + 4, (
        f"key {key_id}: torn value (length {len(value)}, payload {n})"
    )
    (crc,) = struct.unpack_from("<I", value, HEADER.size + n)
    assert crc == zlib.crc32(value[: HEADER.size + n]), (
        f"key {key_id}: checksum mismatch (torn value)"
    )
    assert value == encode(key_id, version), f"key {key_id}: value differs from version {version}"


def check_row(key_id: int, row: np.ndarray) -> None:
    """A get_into row: a well-formed value, then zeros."""
    raw = row.tobytes()
    _, _, n = HEADER.unpack_from(raw)
    assert n <= MAX_PAYLOAD, f"key {key_id}: bad length field {n}"
    end = HEADER.size + n + 4
    check_value(key_id, raw[:end])
    assert raw[end:] == bytes(len(raw) - end), f"key {key_id}: row not zero-padded"


def run_threads(targets: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []
    lock = threading.Lock()

    def wrap(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # recorded and asserted by the caller
                with lock:
                    errors.append(exc)

        return run

    threads = [threading.Thread(target=wrap(fn)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return errors


def test_values_are_never_torn_or_mixed_up_under_concurrency() -> None:
    capacity = 32 << 10  # small enough that eviction runs all the time
    cache = predis.Cache(capacity, max_items=160, policy="lru", sample_rate=0.0)
    n_keys = N_INT_KEYS + N_BYTES_KEYS
    rounds = 1000
    done_writing = threading.Event()

    def writer(seed: int) -> Callable[[], None]:
        def run() -> None:
            rng = np.random.default_rng(seed)
            for version in range(rounds):
                ids = rng.choice(n_keys, size=16, replace=False).tolist()
                if version % 3 == 0:
                    for key_id in ids[:4]:
                        cache.put(key_of(key_id), encode(key_id, version))
                else:
                    cache.mput([key_of(k) for k in ids], [encode(k, version) for k in ids])
                if version % 5 == 0:
                    # A 2-D array batch: ids k and k + 201 have values of the same length.
                    k = int(rng.integers(0, N_INT_KEYS - 201))
                    rows = [encode(k, version), encode(k + 201, version)]
                    arr = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(2, -1)
                    cache.mput(np.array([k, k + 201], dtype=np.uint64), arr)

        return run

    def reader(seed: int) -> Callable[[], None]:
        def run() -> None:
            rng = np.random.default_rng(seed)
            step = 0
            while not done_writing.is_set() or step < 50:
                step += 1
                ids = rng.choice(n_keys, size=32, replace=True).tolist()
                keys = [key_of(k) for k in ids]
                mode = step % 4
                if mode == 0:
                    for key_id, value in zip(ids, cache.mget(keys), strict=True):
                        if value is not None:
                            check_value(key_id, value)
                elif mode == 1:
                    int_ids = [k for k in ids if k < N_INT_KEYS]
                    got = cache.mget(np.array(int_ids, dtype=np.uint64))
                    for key_id, value in zip(int_ids, got, strict=True):
                        if value is not None:
                            check_value(key_id, value)
                elif mode == 2:
                    out = np.full((len(keys), ROW_WIDTH), 0xEE, dtype=np.uint8)
                    found = cache.get_into(keys, out)
                    for i, key_id in enumerate(ids):
                        if found[i]:
                            check_row(key_id, out[i])
                        else:
                            assert not out[i].any(), "a miss's row must be zeroed"
                else:
                    offsets, data, found = cache.mget_arrays(keys)
                    for i, key_id in enumerate(ids):
                        chunk = data[offsets[i] : offsets[i + 1]].tobytes()
                        if found[i]:
                            check_value(key_id, chunk)
                        else:
                            assert chunk == b""
                    for key_id in ids[:4]:
                        value = cache.get(key_of(key_id))
                        if value is not None:
                            check_value(key_id, value)

        return run

    def deleter(seed: int) -> Callable[[], None]:
        def run() -> None:
            rng = np.random.default_rng(seed)
            step = 0
            while not done_writing.is_set() or step < 50:
                step += 1
                ids = rng.choice(n_keys, size=8, replace=False).tolist()
                if step % 2:
                    removed = cache.mdelete([key_of(k) for k in ids])
                    assert removed.dtype == np.bool_
                else:
                    cache.delete(key_of(ids[0]))
                present = cache.mcontains([key_of(k) for k in ids])
                assert present.shape == (8,)

        return run

    writers = [writer(s) for s in (1, 2, 3)]
    others = [reader(10), reader(11), reader(12), deleter(20), deleter(21)]

    def writers_then_signal() -> None:
        errs = run_threads(writers)
        done_writing.set()
        if errs:
            raise errs[0]

    errors = run_threads([writers_then_signal, *others])
    assert errors == [], errors

    # Quiescent now: the stats must be consistent with the contents.
    s = cache.stats()
    assert s.bytes_used <= s.capacity_bytes, s
    assert s.items <= s.max_items, s
    assert len(cache) == s.items
    assert s.inserts - s.deletes - s.evictions - s.expirations == s.items, s
    all_keys = [key_of(k) for k in range(n_keys)]
    values = cache.mget(all_keys)
    present = [(key, v) for key, v in zip(all_keys, values, strict=True) if v is not None]
    assert len(present) == s.items
    for key, value in present:
        check_value(key_id_of(key), value)
    assert sum(cache.footprint(key, len(v)) for key, v in present) == s.bytes_used
    assert s.evictions > 0  # the scenario did exercise eviction


@pytest.mark.parametrize(
    "ring",
    [
        pytest.param(1 << 12, id="small-ring"),  # overflows: many events dropped, all counted
        pytest.param(1 << 17, id="large-ring"),  # holds every event: drops only from contention
    ],
)
def test_access_log_under_concurrency_loses_and_duplicates_nothing(ring: int) -> None:
    producers = 4
    per_producer = 25000
    batch = 50
    cache = predis.Cache(1 << 20, sample_rate=1.0, access_log_capacity=ring)
    stop = threading.Event()
    drained: list[np.ndarray] = []

    def producer(p: int) -> Callable[[], None]:
        def run() -> None:
            base = p * per_producer
            for start in range(0, per_producer, batch):
                if (start // batch) % 2:
                    cache.mget(np.arange(base + start, base + start + batch, dtype=np.uint64))
                else:
                    for k in range(base + start, base + start + batch):
                        cache.get(k)

        return run

    def consumer() -> None:
        while not stop.is_set():
            got = cache.drain_events(256)
            if got.size:
                drained.append(got.copy())

    consumer_thread = threading.Thread(target=consumer)
    consumer_thread.start()
    try:
        errors = run_threads([producer(p) for p in range(producers)])
    finally:
        stop.set()
        consumer_thread.join(JOIN_TIMEOUT_S)
    assert not consumer_thread.is_alive()
    assert errors == [], errors

    s = cache.stats()
    total = producers * per_producer
    pending_before = s.events_pending
    rest = cache.drain_events()
    assert rest.size == pending_before
    events = np.concatenate([*drained, rest])
    s = cache.stats()
    assert s.events_pending == 0
    assert s.misses == total
    # Every access was sampled (rate 1.0): each one was either logged or dropped.
    assert s.events_logged + s.events_dropped == total
    assert events.size == s.events_logged
    keys = events["key"]
    assert np.unique(keys).size == keys.size, "an event was delivered twice"
    assert (keys < total).all()
    assert (events["op"] == predis.AccessOp.GET).all()
    assert (events["hit"] == 0).all()
    # Each producer's events arrive in the order it made the accesses.
    for p in range(producers):
        mine = keys[(keys >= p * per_producer) & (keys < (p + 1) * per_producer)]
        assert (np.diff(mine.astype(np.int64)) > 0).all(), f"producer {p}'s events were reordered"

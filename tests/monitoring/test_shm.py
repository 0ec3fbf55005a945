"""The shared-memory stats block: round trip, validation of hostile blocks and names,
take-over of stale blocks, and readers racing the publisher."""

from __future__ import annotations

import gc
import math
import os
import struct
import threading
import zlib
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import predis
from predis import InvalidArgumentError
from predis.monitoring import shm
from predis.monitoring.shm import (
    BLOCK_SIZE,
    StatsBlockError,
    StatsPublisher,
    decode_block,
    read_block,
    segment_path,
)


def test_round_trip(block_name):
    cache = predis.Cache(capacity_bytes=1 << 20, policy="lfu", stats_shm=block_name)
    try:
        path = segment_path(block_name)
        assert path.exists()
        assert (path.stat().st_mode & 0o777) == 0o600
        assert path.stat().st_size == BLOCK_SIZE
        for k in range(10):
            cache.put(k, b"v")
        cache.get(1)
        cache.get(99)
        cache._stats_publisher.publish()
        r = read_block(block_name)
        assert r.name == block_name
        assert r.pid == os.getpid()
        assert r.backend == "cpu"
        assert r.policy == "lfu"
        assert r.predis_version == predis.__version__
        assert r.stats == {f: getattr(cache.stats(), f) for f in shm.CACHE_FIELDS}
        assert r.prefetch is None
        assert r.host_alive()
        assert r.interval_ns == 10**9
    finally:
        cache._stats_publisher.close()
    assert not segment_path(block_name).exists()


def test_collected_cache_closes_its_block(block_name):
    cache = predis.Cache(capacity_bytes=1 << 20, stats_shm=block_name)
    assert segment_path(block_name).exists()
    del cache
    gc.collect()
    assert not segment_path(block_name).exists()


def test_op_latency_round_trip(block_name):
    cache = predis.Cache(capacity_bytes=1 << 20, stats_shm=block_name, latency_sampling=1)
    try:
        for k in range(25):
            cache.put(k, b"v")
        for k in range(40):
            cache.get(k)
        cache.mget([1, 2, 3])
        cache._stats_publisher.publish()
        r = read_block(block_name)
        local = cache.stats()
        assert r.latency_period == 1
        assert r.op_latency["get"].count == 40
        assert r.op_latency["put"].count == 25
        assert r.op_latency["get_batch"].count == 1
        for op, h in local.op_latency.items():
            assert r.op_latency[op].counts == h.counts
            assert r.op_latency[op].sum_seconds == pytest.approx(h.sum_seconds, abs=1e-9)
    finally:
        cache.close()


def test_prefetch_section_round_trip(block_name):
    prefetch = SimpleNamespace(
        issued=5,
        used=3,
        wasted=1,
        errors=0,
        dropped=2,
        inference_batches=4,
        inference_seconds_total=0.25,
        inference_latency_buckets=((0.01, 1), (0.1, 3), (math.inf, 4)),
    )
    cache = predis.Cache(capacity_bytes=1 << 20, stats_shm=block_name)
    try:
        pub = cache._stats_publisher
        base = cache.stats()
        stats = SimpleNamespace(
            **{f: getattr(base, f) for f in shm.CACHE_FIELDS}, prefetch=prefetch
        )
        with pub._lock:
            pub._write(shm.STATE_RUNNING, stats)
        r = read_block(block_name)
        assert r.prefetch is not None
        assert (r.prefetch.issued, r.prefetch.used, r.prefetch.wasted) == (5, 3, 1)
        assert r.prefetch.inference_batches == 4
        assert r.prefetch.dropped == 2
        assert r.prefetch.inference_seconds_total == 0.25
        assert r.prefetch.inference_latency_buckets == ((0.01, 1), (0.1, 3), (math.inf, 4))
    finally:
        pub.close()


@pytest.mark.parametrize(
    "bad", ["", "../escape", "a/b", "x" * 64, "a\0b", "-lead", "_lead", "sp ace", "é", 7]
)
def test_hostile_names_are_refused(bad):
    with pytest.raises(InvalidArgumentError, match="stats_shm name"):
        predis.Cache(capacity_bytes=1 << 20, stats_shm=bad)
    with pytest.raises(InvalidArgumentError):
        read_block(bad)


def good_block(name: str = "blk") -> bytes:
    stats = SimpleNamespace(**dict.fromkeys(shm.CACHE_FIELDS, 1))
    return shm._encode(name, shm.STATE_RUNNING, 2, (1, 2, 3), 10**9, ("cpu", "lru", "0"), stats)


def corrupt(raw: bytes, offset: int, data: bytes, fix_crc: bool = True) -> bytes:
    out = bytearray(raw)
    out[offset : offset + len(data)] = data
    if fix_crc:
        struct.pack_into("<I", out, 28, zlib.crc32(bytes(out[32:BLOCK_SIZE])))
    return bytes(out)


@pytest.mark.parametrize(
    ("offset", "data", "fix_crc", "message"),
    [
        (0, b"NOTSTATS", True, "bad magic"),
        (8, struct.pack("<I", 1), True, "version 1 is not supported"),
        (8, struct.pack("<I", 3), True, "version 3 is not supported"),
        (12, struct.pack("<I", 512), True, "declares 512 bytes"),
        (16, struct.pack("<Q", 3), True, "being written"),
        (24, struct.pack("<I", 9), True, "unknown state"),
        (200, b"\xff", False, "checksum"),
        (80, b"../../etc" + b"\0" * 55, True, "invalid name"),
        (80, b"\xff\xfe" + b"\0" * 62, True, "not UTF-8"),
        (72, struct.pack("<Q", 0), True, "publish interval"),
        (328, struct.pack("<Q", 7), True, "prefetch flag"),
        (656, struct.pack("<Q", 3), True, "latency period"),
        (656, struct.pack("<Q", 1 << 31), True, "latency period"),
    ],
)
def test_hostile_blocks_are_refused(offset, data, fix_crc, message):
    with pytest.raises(StatsBlockError, match=message):
        decode_block(corrupt(good_block(), offset, data, fix_crc))


def test_short_and_mismatched_blocks_are_refused():
    with pytest.raises(StatsBlockError, match="bytes"):
        decode_block(good_block()[:100])
    with pytest.raises(StatsBlockError, match="expected"):
        decode_block(good_block("other"), expected_name="blk")
    raw = corrupt(good_block(), 328, struct.pack("<Q", 1))
    raw = corrupt(raw, 392, struct.pack("<Q", 99))
    with pytest.raises(StatsBlockError, match="buckets"):
        decode_block(raw)
    raw = corrupt(corrupt(good_block(), 328, struct.pack("<Q", 1)), 392, struct.pack("<Q", 2))
    raw = corrupt(raw, 400, struct.pack("<dQdQ", 2.0, 5, 1.0, 6))
    with pytest.raises(StatsBlockError, match="cumulative"):
        decode_block(raw)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=0, max_size=BLOCK_SIZE + 8),
    st.integers(0, BLOCK_SIZE - 1),
    st.binary(min_size=1, max_size=16),
)
def test_any_bytes_decode_or_raise_stats_block_error(noise, offset, patch):
    for raw in (noise, corrupt(good_block(), offset, patch, fix_crc=True)):
        try:
            r = decode_block(raw)
        except StatsBlockError:
            continue
        assert r.name
        assert r.interval_ns > 0


def test_missing_symlinked_and_special_segments(tmp_path, monkeypatch):
    monkeypatch.setenv("PREDIS_SHM_DIR", str(tmp_path))
    with pytest.raises(StatsBlockError, match="does not exist"):
        read_block("absent")
    target = tmp_path / "elsewhere"
    target.write_bytes(good_block("linked"))
    (tmp_path / "predis-stats.linked").symlink_to(target)
    with pytest.raises(StatsBlockError, match="symbolic link"):
        read_block("linked")
    os.mkfifo(tmp_path / "predis-stats.fifo")
    with pytest.raises(StatsBlockError):
        read_block("fifo")
    monkeypatch.setenv("PREDIS_SHM_DIR", str(tmp_path / "nope"))
    with pytest.raises(StatsBlockError, match="PREDIS_SHM_DIR"):
        read_block("x")


def test_symlinked_segment_is_not_followed_by_the_host(tmp_path, monkeypatch):
    monkeypatch.setenv("PREDIS_SHM_DIR", str(tmp_path))
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    (tmp_path / "predis-stats.evil").symlink_to(victim)
    with pytest.raises(StatsBlockError):
        predis.Cache(capacity_bytes=1 << 20, stats_shm="evil")
    assert victim.read_bytes() == b"keep me"


def test_a_live_block_is_refused_and_a_stale_one_taken_over(block_name, tmp_path):
    first = predis.Cache(capacity_bytes=1 << 20, stats_shm=block_name)
    try:
        with pytest.raises(InvalidArgumentError, match="in use by process"):
            predis.Cache(capacity_bytes=1 << 20, stats_shm=block_name)
    finally:
        first._stats_publisher.close()
    # A block left behind by a dead process (a pid that cannot exist) is taken over.
    path = segment_path(block_name)
    raw = bytearray(good_block(block_name))
    struct.pack_into("<Q", raw, 32, 2**22 + 12345)  # beyond pid_max
    struct.pack_into("<Q", raw, 40, shm._pid_ns())
    struct.pack_into("<I", raw, 28, zlib.crc32(bytes(raw[32:])))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, bytes(raw))
    os.close(fd)
    assert not read_block(block_name).host_alive()
    second = predis.Cache(capacity_bytes=1 << 20, stats_shm=block_name)
    try:
        assert read_block(block_name).pid == os.getpid()
    finally:
        second._stats_publisher.close()


def test_publisher_refuses_bad_intervals(block_name):
    cache = predis.Cache(capacity_bytes=1 << 20)
    for bad in (0, -1, 1e9, "1", True):
        with pytest.raises(InvalidArgumentError, match="interval"):
            StatsPublisher(cache, block_name, bad)  # type: ignore[arg-type]
    assert not segment_path(block_name).exists()


def test_readers_racing_the_publisher_never_see_a_torn_block(block_name):
    cache = predis.Cache(capacity_bytes=1 << 22, stats_shm=block_name, sample_rate=0.0)
    pub = cache._stats_publisher
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        k = 0
        while not stop.is_set():
            cache.put(k % 5000, b"x" * 8)
            k += 1
            if k % 50 == 0:
                pub.publish()

    def reader() -> None:
        last = 0
        try:
            for _ in range(3000):
                r = read_block(block_name, retries=1000)
                inserts = r.stats["inserts"] + r.stats["updates"]
                assert inserts >= last  # counters never go back
                last = inserts
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=writer),
        *(threading.Thread(target=reader) for _ in range(2)),
    ]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    pub.close()
    assert not errors, errors

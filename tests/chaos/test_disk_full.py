"""Chaos: the disk under the collector and the model registry fills up, then frees up.

Must hold: no torn or partial file is left; the cache keeps serving; the collector skips
batches the free-space check says cannot fit, keeps (up to four segments' worth) batches
whose write failed anyway, counts every event it skips or drops, and writes again by itself
once space returns (written + skipped + dropped = drained); a model that cannot be
registered raises a clear error and leaves the registry as it was.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import predis
from predis.mlops import Collector, ModelRegistry, read_segment
from predis.prefetch import FEATURE_NAMES


@contextmanager
def tmpfs(mnt: Path, options: str) -> Iterator[Path]:
    """A real tmpfs mounted at ``mnt`` with ``options``, so that a full disk is a real
    ENOSPC; skipped where mounting is not allowed (it needs root)."""
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"{options},mode=0700", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB filesystem."""
    with tmpfs(tmp_path / "disk", "size=2m") as mnt:
        yield mnt


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte with a ballast file; return it."""
    ballast = disk / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 4096, 1):  # big writes, then smaller, to the last byte
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return ballast


def segment_batch(cache: predis.Cache, col: Collector, rng: np.random.Generator) -> None:
    cache.mget(rng.integers(0, 2**63, 1_000, dtype=np.uint64))
    col.drain_once()
    col.flush()


def test_collector_when_the_bytes_run_out(small_disk, keys):
    cache = predis.Cache(1 << 24, clock="manual", access_log_capacity=1 << 16)
    col = Collector(cache, small_disk / "seg", "acme", keys, segment_events=1_000, min_free_bytes=0)
    rng = np.random.default_rng(0)
    segment_batch(cache, col, rng)
    assert len(col.segments()) == 1  # written while there was room
    ballast = fill(small_disk)
    for _ in range(3):  # the free-space check sees the full disk: skipped, counted
        segment_batch(cache, col, rng)
        assert cache.get(1) is None  # the cache keeps serving
    st = col.stats()
    assert st.events_skipped_low_disk >= 3_000  # the batches, and the gets' own events
    assert st.write_errors == 0
    assert len(col.segments()) == 1
    ballast.unlink()
    segment_batch(cache, col, rng)  # space is back: writing resumes by itself
    st = col.stats()
    assert st.events_written + st.events_skipped_low_disk == st.events_drained
    assert st.events_written >= 2_000
    assert len(col.segments()) == -(-st.events_written // 1_000)
    for p in col.segments():
        read_segment(p, keys)
    col.close()


@pytest.fixture
def few_inodes(tmp_path):
    """A tmpfs with room for bytes but almost no files: creating one fails with ENOSPC
    after the free-space check has passed, the write path's own failure."""
    with tmpfs(tmp_path / "inodes", "size=8m,nr_inodes=8") as mnt:
        yield mnt


def test_collector_when_writes_fail_with_enospc(few_inodes, keys):
    cache = predis.Cache(1 << 24, clock="manual", access_log_capacity=1 << 16)
    seg = few_inodes / "seg"
    col = Collector(cache, seg, "acme", keys, segment_events=1_000, min_free_bytes=0)
    rng = np.random.default_rng(1)
    fillers = []
    for i in range(64):  # use up the inodes left after the folder and its lock file
        try:
            (few_inodes / f"f{i}").touch()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            break
        fillers.append(few_inodes / f"f{i}")
    assert len(fillers) < 64  # the inodes did run out
    for _ in range(6):  # six segments' worth: four kept for retry, two dropped, all counted
        segment_batch(cache, col, rng)
        assert cache.get(1) is None
    st = col.stats()
    assert st.write_errors >= 6  # a drain and a flush each try, and fail
    assert st.events_dropped_after_errors >= 2_000
    assert col.segments() == []
    assert not [p for p in seg.iterdir() if p.name.endswith(".tmp")]
    for f in fillers:
        f.unlink()
    col.flush()  # the kept events go out once files can be created again
    st = col.stats()
    assert st.events_written + st.events_dropped_after_errors == st.events_drained
    assert st.events_written == 4_000  # exactly the four segments' worth that were kept
    assert len(col.segments()) == 4
    for p in col.segments():
        read_segment(p, keys)
    col.close()


def test_registry_on_a_full_disk(small_disk):
    reg = ModelRegistry(small_disk / "models", "acme")
    reg.register(b"\x01" * 1000, feature_schema=FEATURE_NAMES, training_window=(0, 1))
    reg.promote(1, actor="test", reason="first")
    before = (reg.list_versions(), reg.aliases(), reg.history())
    ballast = fill(small_disk)
    with pytest.raises(OSError, match="No space left on device"):
        reg.register(b"\x02" * 100_000, feature_schema=FEATURE_NAMES, training_window=(0, 1))
    with pytest.raises(OSError, match="No space left on device"):
        reg.promote(1, actor="test", reason="again")
    assert (reg.list_versions(), reg.aliases(), reg.history()) == before
    assert reg.get("champion")[1] == b"\x01" * 1000

    ballast.unlink()
    meta = reg.register(b"\x03" * 10, feature_schema=FEATURE_NAMES, training_window=(0, 1))
    assert reg.get(meta.version)[1] == b"\x03" * 10

"""The collector: drains real caches, rotates, retains, survives crashes and low disk, and
exports only with a valid token into a contained path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import predis
from predis import InvalidArgumentError
from predis.mlops import Collector, read_segment
from predis.security.crypto import KeyRing, generate_key_line
from predis.security.tokens import AuthError, TokenStore


@pytest.fixture
def keys() -> KeyRing:
    return KeyRing.parse(generate_key_line("k1"))


def cache(log_capacity: int = 1 << 16) -> predis.Cache:
    return predis.Cache(1 << 22, clock="manual", access_log_capacity=log_capacity)


def read_all(collector: Collector, keys: KeyRing) -> np.ndarray:
    parts = [read_segment(p, keys)[1] for p in collector.segments()]
    return np.concatenate(parts) if parts else np.empty(0, dtype=predis.EVENT_DTYPE)


def test_every_event_reaches_a_segment_in_order(tmp_path, keys):
    c = cache()
    col = Collector(c, tmp_path / "seg", "acme", keys, segment_events=1000, min_free_bytes=0)
    seen = []
    col.subscribe(lambda ev: seen.append(len(ev)))
    for chunk in range(5):
        c.mput(np.arange(chunk * 700, (chunk + 1) * 700, dtype=np.uint64), [b"v"] * 700)
        col.drain_once()
    col.flush()
    events = read_all(col, keys)
    assert len(events) == 3500
    assert events["key"].tolist() == list(range(3500))
    assert (events["op"] == predis.AccessOp.PUT).all()
    assert sum(seen) == 3500
    s = col.stats()
    assert (s.events_drained, s.events_written, s.segments_written) == (3500, 3500, 4)
    assert [len(read_segment(p, keys)[1]) for p in col.segments()] == [1000, 1000, 1000, 500]


def test_compression_level_is_checked_up_front_and_used(tmp_path, keys):
    c = cache()
    with pytest.raises(InvalidArgumentError, match="zstd compression level"):
        Collector(c, tmp_path / "bad", "acme", keys, compression_level=23)
    keys_ = np.arange(20_000, dtype=np.uint64) % 700
    sizes = {}
    for level in (-50, 19):
        col = Collector(c, tmp_path / f"l{level}", "acme", keys, compression_level=level)
        c.mget_arrays(keys_)
        col.drain_once()
        col.flush()
        (path,) = col.segments()
        header, events = read_segment(path, keys)
        assert (header["format"], len(events)) == (2, 20_000)
        assert events["key"].tolist() == keys_.tolist()
        sizes[level] = path.stat().st_size
        col.close()
    assert sizes[19] < sizes[-50]


def test_background_thread_and_age_rotation(tmp_path, keys):
    c = cache()
    col = Collector(
        c,
        tmp_path,
        "acme",
        keys,
        segment_events=10**6,
        segment_age_s=0.05,
        interval_s=0.01,
        min_free_bytes=0,
    )
    with col:
        c.mget(np.arange(100, dtype=np.uint64))
        deadline = time.monotonic() + 20
        while col.stats().segments_written == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert col.stats().segments_written >= 1  # written by age, not by size
        c.mget(np.arange(100, 150, dtype=np.uint64))
    assert len(read_all(col, keys)) == 150


def test_a_raising_subscriber_is_counted_not_fatal(tmp_path, keys):
    c = cache()
    col = Collector(c, tmp_path, "acme", keys, min_free_bytes=0)

    def bad(_events: np.ndarray) -> None:
        raise RuntimeError("boom")

    col.subscribe(bad)
    c.get(1)
    col.drain_once()
    col.flush()
    assert col.stats().subscriber_errors == 1
    assert len(read_all(col, keys)) == 1
    with pytest.raises(InvalidArgumentError):
        col.subscribe("not callable")  # type: ignore[arg-type]


def test_low_disk_skips_and_counts(tmp_path, keys):
    c = cache()
    col = Collector(c, tmp_path, "acme", keys, min_free_bytes=1 << 62)
    c.mget(np.arange(10, dtype=np.uint64))
    col.drain_once()
    col.flush()
    s = col.stats()
    assert (s.events_skipped_low_disk, s.segments_written) == (10, 0)
    assert col.segments() == []


def test_write_errors_keep_the_batch_for_retry(tmp_path, keys, monkeypatch):
    c = cache()
    col = Collector(c, tmp_path, "acme", keys, min_free_bytes=0, segment_events=100)
    import predis.mlops.collector as mod

    def failing(*_args: object, **_kw: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mod, "write_segment", failing)
    c.mget(np.arange(50, dtype=np.uint64))
    col.drain_once()
    col.flush()
    assert col.stats().write_errors == 1
    monkeypatch.undo()
    col.flush()
    assert len(read_all(col, keys)) == 50
    assert col.stats().events_dropped_after_errors == 0


def test_retention_by_bytes_keeps_the_newest(tmp_path, keys):
    c = cache()
    col = Collector(
        c, tmp_path, "acme", keys, segment_events=100, min_free_bytes=0, retention_bytes=1
    )
    for i in range(5):
        c.mget(np.arange(i * 100, (i + 1) * 100, dtype=np.uint64))
        col.drain_once()
    col.flush()
    assert len(col.segments()) == 1
    assert read_all(col, keys)["key"].tolist() == list(range(400, 500))
    assert col.stats().segments_deleted == 4


WRITER = textwrap.dedent(
    """
    import sys, numpy as np, predis
    from predis.mlops import Collector
    from predis.security.crypto import KeyRing
    keys = KeyRing.parse(sys.argv[2])
    c = predis.Cache(1 << 22, clock="manual", access_log_capacity=1 << 16)
    col = Collector(c, sys.argv[1], "acme", keys, segment_events=2000, min_free_bytes=0)
    print("ready", flush=True)
    i = 0
    while True:
        c.mget(np.arange(i, i + 2000, dtype=np.uint64))
        i += 2000
        col.drain_once()
    """
)


def test_sigkill_mid_write_leaves_only_whole_segments_and_recovery_resumes(tmp_path, keys):
    key_line = generate_key_line("k1")
    keys = KeyRing.parse(key_line)
    seg_dir = tmp_path / "seg"
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(seg_dir), key_line],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3 + 0.1 * round_)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        # Every segment present is whole and authentic; partial files are temporaries.
        for p in seg_dir.glob("*.pseg"):
            header, events = read_segment(p, keys)
            assert len(events) == header["count"] in (2000, 10)  # 10: the recovery checks below
        col = Collector(cache(), seg_dir, "acme", keys, min_free_bytes=0)
        assert not [p for p in seg_dir.iterdir() if p.name.endswith(".tmp")]
        before = len(col.segments())
        c = col.cache
        c.mget(np.arange(10, dtype=np.uint64))
        col.drain_once()
        col.flush()
        assert len(col.segments()) == before + 1  # numbering resumed without overwriting
        col.close()


class TestExport:
    def setup(self, tmp_path, keys):
        c = cache()
        col = Collector(c, tmp_path / "seg", "acme", keys, segment_events=100, min_free_bytes=0)
        for _ in range(3):
            c.advance_time(1.0)
            c.mget(np.arange(100, dtype=np.uint64))
            col.drain_once()
        col.flush()
        store = TokenStore(tmp_path / "tokens.json")
        root = tmp_path / "exports"
        root.mkdir()
        return col, store, root

    def test_export_with_a_valid_token(self, tmp_path, keys):
        col, store, root = self.setup(tmp_path, keys)
        token, _ = store.create("acme", ["export"])
        t_mid = read_segment(col.segments()[1], keys)[0]["t_min"]
        out = col.export("week1", t_mid, t_mid, token=token, tokens=store, export_root=root)
        assert [p.name for p in out] == [col.segments()[1].name]
        assert read_segment(out[0], keys)[0]["count"] == 100
        everything = col.export("all", 0, 2**63, token=token, tokens=store, export_root=root)
        assert len(everything) == 3

    @pytest.mark.parametrize("dest", ["../escape", "/etc/abs-escape", "a/../../b", "link/inside"])
    def test_paths_that_leave_the_root_are_refused(self, tmp_path, keys, dest):
        col, store, root = self.setup(tmp_path, keys)
        (root / "link").symlink_to(tmp_path)
        token, _ = store.create("acme", ["export"])
        with pytest.raises(InvalidArgumentError, match="leaves"):
            col.export(dest, 0, 2**63, token=token, tokens=store, export_root=root)

    def test_tokens_without_export_or_for_others_or_forged_are_refused(self, tmp_path, keys):
        col, store, root = self.setup(tmp_path, keys)
        read_only, _ = store.create("acme", ["read"])
        other, _ = store.create("globex", ["export"])
        good, _ = store.create("acme", ["export"])
        forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
        for bad, match in [(read_only, "scope"), (other, "another customer"), (forged, "wrong")]:
            with pytest.raises(AuthError, match=match):
                col.export("x", 0, 2**63, token=bad, tokens=store, export_root=root)
        assert not (root / "x").exists()

    def test_export_while_draining(self, tmp_path, keys):
        col, store, root = self.setup(tmp_path, keys)
        token, _ = store.create("acme", ["export"])
        c = col.cache
        errors: list[BaseException] = []
        stop = threading.Event()

        def producer() -> None:
            try:
                i = 0
                while not stop.is_set():
                    c.mget(np.arange(i, i + 100, dtype=np.uint64))
                    col.drain_once()
                    i += 100
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=producer)
        t.start()
        try:
            for n in range(5):
                for p in col.export(f"e{n}", 0, 2**63, token=token, tokens=store, export_root=root):
                    read_segment(p, keys)  # every exported file is whole and authentic
        finally:
            stop.set()
            t.join(timeout=60)
        assert not t.is_alive()
        assert errors == []


def test_bad_configuration(tmp_path, keys):
    with pytest.raises(InvalidArgumentError, match="customer id"):
        Collector(cache(), tmp_path, "ACME", keys)
    with pytest.raises(InvalidArgumentError):
        Collector(cache(), tmp_path, "acme", keys, segment_events=0)
    assert os.path.isdir(tmp_path)


def test_failed_writes_keep_the_newest_events_in_order(tmp_path, keys, monkeypatch):
    """Drains of uneven sizes while every write fails: exactly the newest four segments'
    worth is kept (the oldest dropped and counted), and it is written in order once writes
    work again."""
    import predis.mlops.collector as mod

    c = cache()
    col = Collector(c, tmp_path, "acme", keys, min_free_bytes=0, segment_events=100)
    real = mod.write_segment

    def failing(*_args: object, **_kw: object) -> int:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(mod, "write_segment", failing)
    start = 0
    for size in (37, 150, 8, 222, 91, 1, 64):  # 573 events
        c.mget(np.arange(start, start + size, dtype=np.uint64))
        start += size
        col.drain_once()
    col.flush()
    assert col.stats().events_dropped_after_errors == start - 400
    monkeypatch.setattr(mod, "write_segment", real)
    col.flush()
    assert read_all(col, keys)["key"].tolist() == list(range(start - 400, start))
    assert [len(read_segment(p, keys)[1]) for p in col.segments()] == [100] * 4


def test_drains_beside_the_background_thread_keep_event_order(tmp_path):
    """Explicit drain_once calls race the collector's own thread; no batch may swap places."""
    from predis.prefetch.data import keys_from_segments

    ring = KeyRing.parse(generate_key_line("k1"))
    cache = predis.Cache(1 << 20, max_items=1000, access_log_capacity=1 << 16)
    n = 20_000
    with Collector(
        cache, tmp_path / "seg", "acme", ring, segment_events=500, drain_batch=32, interval_s=1e-4
    ) as collector:
        for k in range(n):
            cache.get(k)
            if k % 20 == 0:
                collector.drain_once()
    assert keys_from_segments(collector.segments(), ring).tolist() == list(range(n))

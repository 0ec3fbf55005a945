"""Chaos: the data key is rotated while the collector runs under traffic.

Must hold: no event is lost across the switch; every segment reads back with the new ring;
segments written after the switch are sealed with the new key; once the old key is retired,
its segments are refused with a clear error, and training skips (and counts) them instead of
failing.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from chaos_helpers import eventually

import predis
from predis.errors import InvalidArgumentError
from predis.mlops import Collector, read_segment
from predis.mlops.retraining import SegmentWindow
from predis.mlops.segments import SegmentError, segment_info
from predis.security.crypto import KeyRing, generate_key_line


def test_rotate_mid_run_under_traffic(tmp_path, key_line):
    old = KeyRing.parse(key_line)
    new_line = generate_key_line("k2")
    both = KeyRing.parse(new_line + "\n" + key_line)
    cache = predis.Cache(1 << 24, access_log_capacity=1 << 18)
    col = Collector(
        cache,
        tmp_path / "seg",
        "acme",
        old,
        segment_events=2_000,
        min_free_bytes=0,
        interval_s=0.005,
    ).start()
    stop = threading.Event()
    sent = [0]

    def traffic() -> None:
        k = 0
        while not stop.is_set():
            cache.get(k)  # a miss: one demand event per key, in order
            k += 1
            sent[0] = k

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        eventually(lambda: col.stats().segments_written >= 3, "segments under the old key")
        col.rotate_keys(both)
        at = col.stats().segments_written
        eventually(lambda: col.stats().segments_written >= at + 3, "segments under the new key")
    finally:
        stop.set()
        worker.join()
    col.stop()
    left_in_ring = len(cache.drain_events())

    segments = col.segments()
    kids = [segment_info(p)["key_id"] for p in segments]
    switch = kids.index("k2")
    assert set(kids[:switch]) == {"k1"}
    assert set(kids[switch:]) == {"k2"}
    events = np.concatenate([read_segment(p, both)[1] for p in segments])
    # The host outruns the collector here, so the ring drops events: every one of them is
    # counted, and what was written is in order, whichever key sealed it.
    st = col.stats()
    assert len(events) == st.events_written == st.events_drained
    assert len(events) + st.ring_events_dropped + left_in_ring == sent[0]
    assert np.all(np.diff(events["key"].astype(np.int64)) > 0)

    # Retire k1: its segments are refused by name, and training skips them.
    only_new = KeyRing.parse(new_line)
    with pytest.raises(SegmentError, match="k1"):
        read_segment(segments[0], only_new)
    window = SegmentWindow(col.segments, only_new)
    keys = window.latest(10**9)
    expected = np.concatenate([read_segment(p, both)[1]["key"] for p in segments[switch:]])
    assert np.array_equal(keys, expected)
    assert window.damaged == switch


def test_rotate_refuses_what_is_not_a_key_ring(tmp_path, keys):
    col = Collector(predis.Cache(1 << 20), tmp_path / "seg", "acme", keys, min_free_bytes=0)
    with pytest.raises(InvalidArgumentError, match="KeyRing"):
        col.rotate_keys("k2:" + "A" * 44)  # type: ignore[arg-type]
    assert col.keys is keys
    col.close()

"""Chaos: the collector's process is killed while a segment is half written.

Must hold: every segment file present is whole and authentic; the partial file is a
temporary that the next collector removes (and counts); numbering resumes without
overwriting; the events lost are exactly those the dead process had not yet written (it
reported its written count before each kill), nothing already written is lost.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import numpy as np

import predis
from predis.mlops import Collector, read_segment

# The child writes 500-event segments; its third write stops inside the temporary file,
# after the data and before the rename, and the test kills it there.
CHILD = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    import predis
    from predis.mlops import Collector
    from predis.security.crypto import KeyRing

    seg_dir, key_line = sys.argv[1], sys.argv[2]
    real_fsync, writes = os.fsync, [0]

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        if target.startswith(seg_dir) and target.endswith(".tmp"):
            writes[0] += 1
            if writes[0] == 3:
                print("mid-write", target, flush=True)
                time.sleep(3600)
        real_fsync(fd)

    os.fsync = fsync
    cache = predis.Cache(1 << 22, clock="manual")
    col = Collector(cache, seg_dir, "acme", KeyRing.parse(key_line),
                    segment_events=500, min_free_bytes=0)
    for i in range(10):
        cache.mget(np.arange(i * 500, (i + 1) * 500, dtype=np.uint64))
        col.drain_once()
        col.flush()
        print("written", col.stats().events_written, flush=True)
    """
)


def test_kill_inside_a_segment_write(tmp_path, key_line, keys):
    seg_dir = tmp_path / "seg"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(seg_dir), key_line], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    written = 0
    for line in proc.stdout:
        word, value = line.split(maxsplit=1)
        if word == "written":
            written = int(value)
        else:
            assert word == "mid-write"
            partial = value.strip()
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()

    # The half-written temporary is there, beside two whole segments.
    assert partial.endswith(".tmp")
    assert any(p.name.endswith(".tmp") for p in seg_dir.iterdir())
    whole = sorted(seg_dir.glob("*.pseg"))
    assert written == 1000
    assert len(whole) == 2
    events = np.concatenate([read_segment(p, keys)[1] for p in whole])
    assert np.array_equal(events["key"], np.arange(1000, dtype=np.uint64))

    # The next collector cleans up, counts it and numbers on.
    cache = predis.Cache(1 << 22, clock="manual")
    col = Collector(cache, seg_dir, "acme", keys, segment_events=500, min_free_bytes=0)
    assert col.stats().temp_files_removed == 1
    assert not [p for p in seg_dir.iterdir() if p.name.endswith(".tmp")]
    cache.mget(np.arange(7, dtype=np.uint64))
    col.drain_once()
    col.flush()
    names = [p.name for p in col.segments()]
    assert names == [p.name for p in whole] + ["acme-0000000002.pseg"]
    header, _tail = read_segment(col.segments()[-1], keys)
    assert header["count"] == 7
    col.close()

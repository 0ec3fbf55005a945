"""Segment formats: format 2 (shuffle + delta-ts + zstd) round-trips any events exactly,
format 1 (zlib) files from earlier versions still read, and hostile payloads sealed with the
right key (a compromised writer, a bug) are refused without expanding past the header's
count."""

from __future__ import annotations

import hashlib
import json
import struct
import tempfile
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from predis import EVENT_DTYPE
from predis.errors import InvalidArgumentError
from predis.mlops import SegmentError, read_segment, segment_info, write_segment
from predis.mlops.segment_codec import FILTER, decode, encode
from predis.security.crypto import KeyRing, generate_key_line

DATA = Path(__file__).parent / "data"
U64 = 2**64 - 1
EDGE_TIMES = [0, 1, 2, 2**32, 2**63 - 1, 2**63, U64 - 1, U64]
BLOCK = 128 << 10  # zstd's largest block


@pytest.fixture
def keys() -> KeyRing:
    return KeyRing.parse(generate_key_line("k1"))


def fixture_events() -> np.ndarray:
    """The events in data/segment_format1.pseg (written by the format-1 writer, before
    format 2 existed; the generator must not change)."""
    rng = np.random.default_rng(20261128)
    n = 500
    e = np.zeros(n, dtype=EVENT_DTYPE)
    e["key"] = rng.integers(0, 2**64, n, dtype=np.uint64)
    start = np.uint64(1_795_000_000_000_000_000)
    e["timestamp_ns"] = start + np.cumsum(rng.integers(0, 10_000, n, dtype=np.uint64))
    e["timestamp_ns"][-3:] = [0, U64, 5]
    e["value_size"] = rng.integers(0, 2**32, n, dtype=np.uint32)
    e["op"] = rng.integers(0, 4, n)
    e["hit"] = rng.integers(0, 2, n)
    e["key_kind"] = rng.integers(0, 3, n)
    return e


def fixture_keys() -> KeyRing:
    # A public test key, derived rather than written down: the fixture is not a secret.
    return KeyRing([("fixture", hashlib.sha256(b"predis segment format 1 fixture").digest())])


def sealed_segment(path: Path, header: dict, payload: bytes, keys: KeyRing) -> Path:
    """A segment whose header and payload are whatever the caller says, properly sealed:
    what a writer holding the key (compromised, or buggy) could put on disk."""
    head = json.dumps(header, sort_keys=True).encode()
    path.write_bytes(b"PSEG" + struct.pack("<I", len(head)) + head + keys.seal(payload, head))
    return path


def v2_header(count: int, **changes: object) -> dict:
    header = {
        "format": 2,
        "customer": "acme",
        "count": count,
        "t_min": 0,
        "t_max": 0,
        "compression": "zstd",
        "filter": FILTER,
        "key_id": "k1",
    }
    header.update(changes)
    return header


def rle_frame(blocks: int, declared: int | None = None) -> bytes:
    """A zstd frame of ``blocks`` RLE blocks of 128 KiB zeros (4 bytes each: 32768:1),
    declaring ``declared`` bytes of content, or no size at all."""
    head = b"\x28\xb5\x2f\xfd"  # magic
    # Frame header descriptor (8-byte content size or none), window 128 KiB.
    head += b"\x00\x38" if declared is None else b"\xc0\x38" + declared.to_bytes(8, "little")
    body = b"".join(
        ((BLOCK << 3) | (1 << 1) | (i == blocks - 1)).to_bytes(3, "little") + b"\x00"
        for i in range(blocks)
    )
    return head + body


# ---- format 2 round trip ----------------------------------------------------------------

timestamps = st.one_of(st.integers(0, U64), st.sampled_from(EDGE_TIMES))


@st.composite
def event_arrays(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.integers(0, 300))
    e = np.zeros(n, dtype=EVENT_DTYPE)
    for name in EVENT_DTYPE.names or ():
        dt = EVENT_DTYPE[name]
        elements = timestamps if name == "timestamp_ns" else None
        e[name] = draw(hnp.arrays(dt, n, elements=elements))
    if draw(st.booleans()):  # a real clock: sorted, small steps, maybe near the wrap
        e["timestamp_ns"] = np.sort(e["timestamp_ns"])
    return e


@settings(max_examples=150, deadline=None)
@given(events=event_arrays(), level=st.sampled_from([-5, 1, 3]))
def test_format2_round_trips_any_events(events, level):
    keys = KeyRing.parse(generate_key_line("k1"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.pseg"
        write_segment(path, "acme", events, keys, level)
        header, back = read_segment(path, keys)
    assert back.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(back, events)
    assert (header["format"], header["compression"], header["filter"]) == (2, "zstd", FILTER)
    assert header["count"] == len(events)
    ts = [int(t) for t in events["timestamp_ns"]]
    assert (header["t_min"], header["t_max"]) == ((min(ts), max(ts)) if ts else (0, 0))
    assert "sha256" not in header


@settings(max_examples=150, deadline=None)
@given(events=event_arrays(), data=st.data())
def test_format2_payload_is_the_documented_layout(events, data):
    """The on-disk layout, built the slow obvious way: field by field, the timestamp deltas
    modulo 2**64, then byte 0 of every value, byte 1 of every value, ... The native filter
    reads the events in parts (as a collector's drained batches) as one sequence."""
    cuts = sorted(data.draw(st.lists(st.integers(0, len(events)), max_size=5)))
    parts = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    payload, described = encode(parts if data.draw(st.booleans()) else events)
    ts = [int(t) for t in events["timestamp_ns"]]
    assert described == {
        "compression": "zstd",
        "filter": FILTER,
        "count": len(events),
        "t_min": min(ts, default=0),
        "t_max": max(ts, default=0),
    }
    expected = bytearray()
    previous = 0
    deltas = []
    for t in (int(t) for t in events["timestamp_ns"]):
        deltas.append((t - previous) % 2**64)
        previous = t
    for name in EVENT_DTYPE.names or ():
        size = EVENT_DTYPE[name].itemsize
        values = deltas if name == "timestamp_ns" else [int(v) for v in events[name]]
        for byte in range(size):
            expected.extend((v >> (8 * byte)) & 0xFF for v in values)
    assert zstandard.ZstdDecompressor().decompress(payload) == bytes(expected)


def test_format2_decreasing_and_wrapping_clock(tmp_path, keys):
    e = np.zeros(6, dtype=EVENT_DTYPE)
    e["timestamp_ns"] = [U64 - 1, U64, 0, 3, 2, 2**63]
    write_segment(tmp_path / "s.pseg", "acme", e, keys)
    header, back = read_segment(tmp_path / "s.pseg", keys)
    np.testing.assert_array_equal(back, e)
    assert (header["t_min"], header["t_max"]) == (0, U64)


def test_format2_compresses_a_real_clock_better_than_format1(tmp_path, keys):
    rng = np.random.default_rng(1)
    n = 50_000
    e = np.zeros(n, dtype=EVENT_DTYPE)
    e["key"] = rng.zipf(1.2, n) % 100_000
    e["timestamp_ns"] = 1_795_000_000_000_000_000 + np.cumsum(rng.integers(50, 5_000, n))
    e["value_size"] = rng.integers(0, 300, n)
    e["op"] = rng.integers(0, 2, n)
    e["hit"] = rng.integers(0, 2, n)
    v1 = write_segment(tmp_path / "v1.pseg", "acme", e, keys, segment_format=1)
    v2 = write_segment(tmp_path / "v2.pseg", "acme", e, keys)
    assert v2 < v1
    np.testing.assert_array_equal(read_segment(tmp_path / "v2.pseg", keys)[1], e)


# ---- format 1 still reads ---------------------------------------------------------------


def test_format1_file_from_the_previous_writer_reads():
    path = DATA / "segment_format1.pseg"
    header, back = read_segment(path, fixture_keys())
    np.testing.assert_array_equal(back, fixture_events())
    assert (header["format"], header["compression"], header["count"]) == (1, "zlib", 500)
    assert (header["t_min"], header["t_max"]) == (0, U64)
    assert segment_info(path)["format"] == 1


def test_format1_can_still_be_written_for_older_readers(tmp_path, keys):
    e = fixture_events()
    write_segment(tmp_path / "s.pseg", "acme", e, keys, 6, segment_format=1)
    header, back = read_segment(tmp_path / "s.pseg", keys)
    np.testing.assert_array_equal(back, e)
    assert (header["format"], header["compression"]) == (1, "zlib")
    assert "filter" not in header


def test_format1_checksum_is_still_checked(tmp_path, keys):
    e = fixture_events()
    columns = b"".join(np.ascontiguousarray(e[n]).tobytes() for n in EVENT_DTYPE.names or ())
    header = v2_header(len(e), format=1, compression="zlib", sha256="0" * 64)
    del header["filter"]
    path = sealed_segment(tmp_path / "s.pseg", header, zlib.compress(columns), keys)
    with pytest.raises(SegmentError, match="checksum mismatch"):
        read_segment(path, keys)


def test_format1_zlib_bomb_is_bounded(tmp_path, keys):
    bomb = zlib.compress(bytes(64 << 20), 9)  # 64 MiB of zeros in ~64 KiB
    header = v2_header(100, format=1, compression="zlib", sha256="0" * 64)
    del header["filter"]
    path = sealed_segment(tmp_path / "s.pseg", header, bomb, keys)
    tracemalloc.start()
    try:
        with pytest.raises(SegmentError, match="count does not match"):
            read_segment(path, keys)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


# ---- hostile input ----------------------------------------------------------------------


def test_every_flipped_byte_is_refused(tmp_path, keys):
    path = tmp_path / "s.pseg"
    write_segment(path, "acme", fixture_events(), keys)
    data = path.read_bytes()
    for i in range(0, len(data), 7):
        bad = bytearray(data)
        bad[i] ^= 0x01
        path.write_bytes(bytes(bad))
        with pytest.raises(SegmentError, match=str(path)):
            read_segment(path, keys)


@pytest.mark.parametrize("keep", [0.0, 0.25, 0.5, 0.99])
def test_truncated_payload_is_refused(tmp_path, keys, keep):
    path = tmp_path / "s.pseg"
    write_segment(path, "acme", fixture_events(), keys)
    data = path.read_bytes()
    (n,) = struct.unpack("<I", data[4:8])
    start = 8 + n
    path.write_bytes(data[: start + int((len(data) - start) * keep)])
    with pytest.raises(SegmentError, match=str(path)):
        read_segment(path, keys)


@pytest.mark.parametrize("payload_kind", ["truncated frame", "not zstd", "empty"])
def test_sealed_garbage_payload_is_refused(tmp_path, keys, payload_kind):
    good, _ = encode(fixture_events())
    payload = {"truncated frame": good[:-9], "not zstd": b"\x00" * 64, "empty": b""}
    path = sealed_segment(tmp_path / "s.pseg", v2_header(500), payload[payload_kind], keys)
    with pytest.raises(SegmentError, match=str(path)):
        read_segment(path, keys)


def test_forged_header_count_without_the_key_is_refused(tmp_path, keys):
    path = tmp_path / "s.pseg"
    write_segment(path, "acme", fixture_events(), keys)
    path.write_bytes(path.read_bytes().replace(b'"count": 500', b'"count": 999'))
    with pytest.raises(SegmentError, match="altered"):
        read_segment(path, keys)


@pytest.mark.parametrize("count", [2**40, 2**62, 10**30])
def test_huge_count_is_refused_before_allocating(tmp_path, keys, count):
    payload, _ = encode(fixture_events())
    path = sealed_segment(tmp_path / "s.pseg", v2_header(count), payload, keys)
    tracemalloc.start()
    try:
        with pytest.raises(SegmentError, match="cannot fit"):
            read_segment(path, keys)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


@pytest.mark.parametrize(
    "declared",
    [
        2048 * BLOCK,  # declares its true 256 MiB
        None,  # declares nothing
        10 * EVENT_DTYPE.itemsize,  # declares the header's count, expands far beyond it
    ],
)
def test_zstd_bomb_is_refused_without_expanding(tmp_path, keys, declared):
    bomb = rle_frame(2048, declared)  # 8 KiB that decompress to 256 MiB
    assert len(bomb) < 9 << 10
    path = sealed_segment(tmp_path / "s.pseg", v2_header(10), bomb, keys)
    tracemalloc.start()
    try:
        with pytest.raises(SegmentError, match=str(path)):
            read_segment(path, keys)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_rle_frame_helper_really_is_a_bomb():
    # Guards the test above: the frame must be valid zstd that expands 32768-fold.
    out = zstandard.ZstdDecompressor().decompress(rle_frame(8, 8 * BLOCK))
    assert out == bytes(8 * BLOCK)


def test_extra_frame_after_the_payload_is_refused(tmp_path, keys):
    payload, _ = encode(fixture_events())
    extra = zstandard.ZstdCompressor().compress(b"more")
    path = sealed_segment(tmp_path / "s.pseg", v2_header(500), payload + extra, keys)
    with pytest.raises(SegmentError, match="unused data"):
        read_segment(path, keys)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": 3}, "unsupported segment format 3"),
        ({"format": True}, "unsupported segment format True"),
        ({"format": "2"}, "unsupported segment format '2'"),
        ({"format": 2.0}, "unsupported segment format 2.0"),
        ({"format": None}, "unsupported segment format None"),
        ({"compression": "lz4"}, "unsupported compression 'lz4'"),
        ({"compression": "zlib"}, "unsupported compression 'zlib' for format 2"),
        ({"filter": "shuffle"}, "unsupported filter 'shuffle'"),
        ({"filter": None}, "unsupported filter None"),
        ({"count": -1}, "event count -1"),
        ({"count": "10"}, "event count '10'"),
        ({"count": 1.5}, "event count 1.5"),
        ({"count": True}, "event count True"),
    ],
)
def test_unknown_or_bad_header_fields_name_the_file(tmp_path, keys, changes, message):
    payload, _ = encode(fixture_events()[:10])
    header = v2_header(10)
    header.update(changes)
    path = sealed_segment(tmp_path / "s.pseg", header, payload, keys)
    for read in (lambda: read_segment(path, keys), lambda: segment_info(path)):
        with pytest.raises(SegmentError, match=str(path)) as info:
            read()
        assert message in str(info.value)


def test_count_that_disagrees_with_the_payload_is_refused(tmp_path, keys):
    payload, _ = encode(fixture_events())
    for count in (0, 499, 501):
        path = sealed_segment(tmp_path / f"c{count}.pseg", v2_header(count), payload, keys)
        with pytest.raises(SegmentError, match="count does not match"):
            read_segment(path, keys)


def test_wrong_key_is_refused(tmp_path, keys):
    path = tmp_path / "s.pseg"
    write_segment(path, "acme", fixture_events(), keys)
    with pytest.raises(SegmentError, match="altered"):
        read_segment(path, KeyRing.parse(generate_key_line("k1")))
    with pytest.raises(SegmentError, match="lacks"):
        read_segment(DATA / "segment_format1.pseg", keys)


# ---- levels -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "segment_format"),
    [
        (23, 2),
        (-(1 << 17) - 1, 2),
        (True, 2),
        (1.0, 2),
        ("1", 2),
        (10, 1),
        (-1, 1),
        (1, 3),
        (1, True),
        (1, 2.0),
    ],
)
def test_bad_level_or_format_is_refused(tmp_path, keys, level, segment_format):
    path = tmp_path / "s.pseg"
    with pytest.raises(InvalidArgumentError, match=r"compression level|segment format"):
        write_segment(path, "acme", fixture_events(), keys, level, segment_format=segment_format)
    assert not path.exists()


def test_decode_is_exact_at_every_level():
    e = fixture_events()
    for level in (-100, -1, 0, 1, 9, 19):
        payload, described = encode(e, 2, level)
        back = decode({"format": 2, "count": len(e), **described}, payload)
        np.testing.assert_array_equal(back, e)


@pytest.mark.parametrize(
    ("parts", "out_bytes", "message"),
    [
        ([np.zeros(3, dtype=np.uint64)], 24, "24-byte access events"),
        ([np.zeros(2, dtype="S24")], 48, "24-byte access events"),
        ([np.zeros(2, dtype=EVENT_DTYPE.newbyteorder(">"))], 48, "EVENT_DTYPE"),
        ([np.zeros(2, dtype=[("a", "V24")])], 48, "EVENT_DTYPE"),
        ([np.zeros((2, 2), dtype=EVENT_DTYPE)], 96, "24-byte access events"),
        ([np.zeros(4, dtype=EVENT_DTYPE)[::2]], 48, "C-contiguous"),
        (["not an array"], 0, "numpy arrays"),
        ([np.zeros(2, dtype=EVENT_DTYPE)], 47, "24 bytes per event"),
    ],
)
def test_native_filter_refuses_bad_buffers(parts, out_bytes, message):
    """The filter writes into ``out`` with the GIL released: every size and layout is
    checked first, so a wrong buffer is an error, not a write past its end."""
    from predis import _core

    with pytest.raises(InvalidArgumentError, match=message):
        _core.shuffle_events(parts, np.zeros(out_bytes, dtype=np.uint8))
    read_only = np.zeros(48, dtype=np.uint8)
    read_only.flags.writeable = False
    with pytest.raises(InvalidArgumentError, match="writeable"):
        _core.shuffle_events([np.zeros(2, dtype=EVENT_DTYPE)], read_only)
    events = np.zeros(2, dtype=EVENT_DTYPE)
    with pytest.raises(InvalidArgumentError, match="overlap"):
        _core.shuffle_events([events], events.view(np.uint8))


def test_unaligned_and_strided_events_encode_like_aligned_ones():
    """A view into a byte buffer (unaligned) and a strided slice (copied first) give the
    same payload as the plain array."""
    e = fixture_events()
    raw = bytearray(1) + bytearray(e.tobytes())
    unaligned = np.frombuffer(raw, dtype=EVENT_DTYPE, offset=1)
    doubled = np.repeat(e, 2)[::2]
    plain = encode(e)
    assert encode(unaligned) == plain
    assert encode([doubled[:7], doubled[7:]]) == plain


def test_write_segment_refuses_a_part_of_another_dtype(tmp_path, keys):
    path = tmp_path / "s.pseg"
    with pytest.raises(SegmentError, match="EVENT_DTYPE"):
        write_segment(path, "acme", [fixture_events(), np.zeros(2, dtype=np.uint64)], keys)
    assert not path.exists()

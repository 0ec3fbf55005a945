"""Segment files: exact round trip; truncation, tampering and wrong keys are refused."""

from __future__ import annotations

import numpy as np
import pytest

from predis import EVENT_DTYPE
from predis.mlops import SegmentError, read_segment, segment_info, write_segment
from predis.security.crypto import KeyRing, generate_key_line


@pytest.fixture
def keys() -> KeyRing:
    return KeyRing.parse(generate_key_line("k1"))


def events(n: int, start: int = 0) -> np.ndarray:
    e = np.zeros(n, dtype=EVENT_DTYPE)
    e["key"] = np.arange(n, dtype=np.uint64) * 7
    e["timestamp_ns"] = start + np.arange(n, dtype=np.uint64) * 10
    e["value_size"] = np.arange(n) % 300
    e["op"] = np.arange(n) % 3
    e["hit"] = np.arange(n) % 2
    e["key_kind"] = (np.arange(n) // 5) % 2
    return e


def test_round_trip_is_exact(tmp_path, keys):
    e = events(1000, start=5_000)
    size = write_segment(tmp_path / "s.pseg", "acme", e, keys)
    assert size == (tmp_path / "s.pseg").stat().st_size
    header, back = read_segment(tmp_path / "s.pseg", keys)
    np.testing.assert_array_equal(back, e)
    assert (header["count"], header["t_min"], header["t_max"]) == (1000, 5_000, 5_000 + 9_990)
    assert header["customer"] == "acme"
    assert (header["format"], header["compression"]) == (2, "zstd")
    assert segment_info(tmp_path / "s.pseg")["count"] == 1000
    assert (tmp_path / "s.pseg").stat().st_mode & 0o777 == 0o600


def test_empty_segment(tmp_path, keys):
    write_segment(tmp_path / "e.pseg", "acme", events(0), keys)
    assert len(read_segment(tmp_path / "e.pseg", keys)[1]) == 0


def test_payload_is_encrypted(tmp_path, keys):
    e = events(1)
    e["key"] = 0x4142434445464748
    write_segment(tmp_path / "s.pseg", "acme", e, keys)
    assert b"HGFEDCBA" not in (tmp_path / "s.pseg").read_bytes()


@pytest.mark.parametrize("where", ["magic", "header", "payload", "tail"])
def test_tampering_is_detected(tmp_path, keys, where):
    path = tmp_path / "s.pseg"
    write_segment(path, "acme", events(200), keys)
    data = bytearray(path.read_bytes())
    index = {"magic": 0, "header": 20, "payload": len(data) // 2, "tail": len(data) - 1}[where]
    data[index] ^= 0x20
    path.write_bytes(bytes(data))
    with pytest.raises(SegmentError, match=str(path)):
        read_segment(path, keys)


def test_header_edit_that_stays_valid_json_is_detected(tmp_path, keys):
    path = tmp_path / "s.pseg"
    write_segment(path, "acme", events(10), keys)
    path.write_bytes(path.read_bytes().replace(b'"acme"', b'"acmf"'))
    with pytest.raises(SegmentError, match="altered"):
        read_segment(path, keys)


@pytest.mark.parametrize("cut", [0, 3, 7, 40, -1])
def test_truncation_is_detected(tmp_path, keys, cut):
    path = tmp_path / "s.pseg"
    write_segment(path, "acme", events(100), keys)
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut >= 0 else data[:-1])
    with pytest.raises(SegmentError):
        read_segment(path, keys)


def test_wrong_key_is_refused(tmp_path, keys):
    path = tmp_path / "s.pseg"
    write_segment(path, "acme", events(10), keys)
    with pytest.raises(SegmentError, match="altered"):
        read_segment(path, KeyRing.parse(generate_key_line("k1")))
    with pytest.raises(SegmentError, match="lacks"):
        read_segment(path, KeyRing.parse(generate_key_line("k2")))


def test_bad_inputs(tmp_path, keys):
    with pytest.raises(SegmentError, match="EVENT_DTYPE"):
        write_segment(tmp_path / "x.pseg", "acme", np.zeros(3, dtype=np.uint64), keys)
    with pytest.raises(Exception, match="customer id"):
        write_segment(tmp_path / "x.pseg", "../acme", events(3), keys)

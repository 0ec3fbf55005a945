"""Segment payload codecs: event columns to compressed bytes and back, with bounded output.

Format 2 (written by default) lays the events out column by column (``EVENT_DTYPE`` field
order), with the ``timestamp_ns`` column delta-coded (the first value kept, then each value
minus the one before, modulo 2**64, so every input round-trips exactly, decreasing or
wrapping clocks included) and every column byte-shuffled: byte 0 of each value, then byte 1,
and so on, as blosc's shuffle filter does. Neighbouring events share their high bytes, so
the shuffled columns hold long runs that zstd compresses quickly and well.

Format 1 (written by earlier versions, still read, and written on request) is the plain
columns compressed with zlib.

Decoding never allocates more than the segment header's count of events: the count is
first checked against the most the payload can expand to, and decompression is bounded by
the count times the event size.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import zstandard

from predis import _core
from predis.access_log import EVENT_DTYPE
from predis.errors import InvalidArgumentError, PredisError

__all__ = [
    "FILTER",
    "FORMATS",
    "CodecError",
    "check_header",
    "check_level",
    "decode",
    "encode",
]

FORMATS = (1, 2)
FILTER = "shuffle+delta-ts"
# What a header of each format says about its payload.
_COMPRESSION = {1: "zlib", 2: "zstd"}
_FILTERS: dict[int, str | None] = {1: None, 2: FILTER}
_LEVELS = {1: (0, 9), 2: (-(1 << 17), zstandard.MAX_COMPRESSION_LEVEL)}
# The most a payload byte can expand to: deflate's limit is 1032:1; zstd's densest block is
# an RLE block, 3 header bytes and 1 content byte for up to 128 KiB of output.
_MAX_RATIO = {1: 1032, 2: (128 << 10) // 4}
_FIELDS: list[tuple[str, np.dtype]] = [(n, EVENT_DTYPE[n]) for n in EVENT_DTYPE.names or ()]


class CodecError(PredisError, ValueError):
    """A payload does not decode to its header's events (the caller names the file)."""


def check_level(level: object, segment_format: int = 2) -> int:
    """``level`` if it is a compression level of ``segment_format``'s codec, else an
    :class:`InvalidArgumentError` that gives the range."""
    if type(segment_format) is not int or segment_format not in FORMATS:
        raise InvalidArgumentError(
            f"segment format must be one of {FORMATS}, got {segment_format!r}"
        )
    low, high = _LEVELS[segment_format]
    if isinstance(level, bool) or not isinstance(level, int) or not low <= level <= high:
        codec = _COMPRESSION[segment_format]
        raise InvalidArgumentError(
            f"{codec} compression level must be an int from {low} to {high}, got {level!r}"
        )
    return level


def encode(
    events: np.ndarray | Sequence[np.ndarray], segment_format: int = 2, level: int = 1
) -> tuple[bytes, dict[str, Any]]:
    """(compressed payload, header fields that describe it: codec, ``count``, ``t_min``,
    ``t_max``) of ``EVENT_DTYPE`` events: one array, or several read as one sequence
    (format 2 never joins them). Anything else is a :class:`CodecError`."""
    check_level(level, segment_format)
    parts = [events] if isinstance(events, np.ndarray) else list(events)
    for part in parts:
        if not isinstance(part, np.ndarray) or part.dtype != EVENT_DTYPE:
            got = getattr(part, "dtype", type(part).__name__)
            raise CodecError(f"events must be EVENT_DTYPE, got {got}")
    count = sum(len(part) for part in parts)
    if segment_format == 1:
        joined = np.concatenate(parts) if parts else np.empty(0, dtype=EVENT_DTYPE)
        columns = b"".join(np.ascontiguousarray(joined[name]).tobytes() for name, _ in _FIELDS)
        ts = joined["timestamp_ns"]
        return zlib.compress(columns, level), {
            "compression": "zlib",
            "sha256": hashlib.sha256(columns).hexdigest(),
            "count": count,
            "t_min": int(ts.min()) if count else 0,
            "t_max": int(ts.max()) if count else 0,
        }
    # Format 2 keeps no checksum of the plain columns: a sha256 would add 15 ns an event
    # (40-50% of this codec's cost on the dev VM), and it would catch nothing the rest does
    # not. The AES-GCM tag authenticates the header and the exact compressed bytes, decoding
    # them is deterministic, and the frame's content size must equal the header's count;
    # what is left is a decoder bug, which the round-trip property tests are there to catch.
    shuffled = np.empty(count * EVENT_DTYPE.itemsize, dtype=np.uint8)
    # Native, with the GIL released: a collector's thread then holds the interpreter for
    # neither the filter nor (zstandard releases it too) the compression.
    t_min, t_max = _core.shuffle_events([np.ascontiguousarray(p) for p in parts], shuffled)
    # The frame records its content size: the reader requires it to equal the header's count.
    cctx = zstandard.ZstdCompressor(level=level, write_content_size=True)
    return cctx.compress(shuffled.data), {
        "compression": "zstd",
        "filter": FILTER,
        "count": count,
        "t_min": int(t_min),
        "t_max": int(t_max),
    }


def check_header(header: dict[str, Any]) -> int:
    """The event count of a header whose format, compression and filter this module reads;
    :class:`CodecError` otherwise."""
    fmt = header.get("format")
    if type(fmt) is not int or fmt not in FORMATS:  # not True, not 2.0
        raise CodecError(f"unsupported segment format {fmt!r} (this version reads {FORMATS})")
    if header.get("compression") != _COMPRESSION[fmt]:
        raise CodecError(
            f"unsupported compression {header.get('compression')!r} for format {fmt}"
            f" (expected {_COMPRESSION[fmt]!r})"
        )
    if header.get("filter") != _FILTERS[fmt]:
        raise CodecError(
            f"unsupported filter {header.get('filter')!r} for format {fmt}"
            f" (expected {_FILTERS[fmt]!r})"
        )
    count = header.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise CodecError(f"event count {count!r} is not a non-negative integer")
    return count


def decode(header: dict[str, Any], payload: bytes) -> np.ndarray:
    """The events of an authenticated payload; :class:`CodecError` unless it decodes to
    exactly the header's count of events."""
    count = check_header(header)
    fmt = header["format"]
    expected = count * EVENT_DTYPE.itemsize
    # Before anything is allocated: a payload cannot hold more than its codec's densest
    # encoding, so a count beyond that is a lie (and must not size an allocation).
    if expected > len(payload) * _MAX_RATIO[fmt]:
        raise CodecError(
            f"event count {count} cannot fit in a {len(payload)}-byte {_COMPRESSION[fmt]} payload"
        )
    if fmt == 1:
        columns = _inflate(payload, expected)
        if hashlib.sha256(columns).hexdigest() != header.get("sha256"):
            raise CodecError("checksum mismatch")
        return _from_columns(columns, count)
    return _unshuffle(_zstd_decompress(payload, expected), count)


def _inflate(payload: bytes, expected: int) -> bytes:
    d = zlib.decompressobj()
    try:
        # One byte of room beyond the count so that a longer stream shows itself.
        columns = d.decompress(payload, expected + 1)
    except zlib.error as exc:
        raise CodecError(f"payload does not decompress: {exc}") from exc
    if len(columns) != expected or not d.eof or d.unused_data:
        raise CodecError("event count does not match the payload")
    return columns


def _zstd_decompress(payload: bytes, expected: int) -> bytes:
    try:
        declared = zstandard.frame_content_size(payload)
    except zstandard.ZstdError as exc:
        raise CodecError(f"payload is not a zstd frame: {exc}") from exc
    # zstandard allocates the size a frame declares, whatever max_output_size says, so the
    # declared size is checked first; the writer always records it.
    if declared != expected:
        raise CodecError("event count does not match the payload")
    try:
        raw = zstandard.ZstdDecompressor().decompress(
            payload, max_output_size=expected, allow_extra_data=False
        )
    except zstandard.ZstdError as exc:
        raise CodecError(f"payload does not decompress: {exc}") from exc
    if len(raw) != expected:
        raise CodecError("event count does not match the payload")
    return raw


def _from_columns(raw: bytes, count: int) -> np.ndarray:
    out = np.empty(count, dtype=EVENT_DTYPE)
    offset = 0
    for name, dt in _FIELDS:
        out[name] = np.frombuffer(raw, dtype=dt, count=count, offset=offset)
        offset += dt.itemsize * count
    return out


def _unshuffle(raw: bytes, count: int) -> np.ndarray:
    buf = np.frombuffer(raw, dtype=np.uint8)
    out = np.empty(count, dtype=EVENT_DTYPE)
    offset = 0
    for name, dt in _FIELDS:
        size = dt.itemsize
        rows = buf[offset : offset + count * size].reshape(size, count)
        column = np.ascontiguousarray(rows.T).view(dt).reshape(count)
        if name == "timestamp_ns":
            column = np.cumsum(column, dtype=np.uint64)  # undoes the deltas, modulo 2**64
        out[name] = column
        offset += count * size
    return out

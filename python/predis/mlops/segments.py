"""Segment files: the collector's training data at rest.

A segment holds a batch of access events, column by column, compressed and sealed:

    b"PSEG" | u32 header length | header (JSON) | sealed payload

The header says the format version, customer id, time range, event count, compression, the
sha256 of the uncompressed columns and the key id; it is authenticated as the AEAD's
associated data, so neither it nor the payload can be altered without the read failing.
The payload is the event columns (``EVENT_DTYPE`` field by field) concatenated, compressed,
then sealed with :class:`predis.security.crypto.KeyRing`. Files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from predis.access_log import EVENT_DTYPE
from predis.errors import PredisError
from predis.fileio import atomic_write_bytes
from predis.security.crypto import DecryptionError, KeyRing
from predis.security.validation import validate_customer_id

__all__ = ["SEGMENT_SUFFIX", "SegmentError", "read_segment", "segment_info", "write_segment"]

SEGMENT_SUFFIX = ".pseg"
_MAGIC = b"PSEG"
_FORMAT = 1
_MAX_HEADER = 1 << 16


class SegmentError(PredisError, ValueError):
    """A segment file is truncated, tampered with, or not a segment; the message names it."""


_FIELDS: list[tuple[str, np.dtype]] = [(n, EVENT_DTYPE[n]) for n in EVENT_DTYPE.names or ()]


def _columns(events: np.ndarray) -> bytes:
    return b"".join(np.ascontiguousarray(events[name]).tobytes() for name, _ in _FIELDS)


def _events(raw: bytes, count: int) -> np.ndarray:
    out = np.empty(count, dtype=EVENT_DTYPE)
    offset = 0
    for name, dt in _FIELDS:
        n = dt.itemsize * count
        out[name] = np.frombuffer(raw, dtype=dt, count=count, offset=offset)
        offset += n
    return out


def write_segment(
    path: str | os.PathLike[str],
    customer: str,
    events: np.ndarray,
    keys: KeyRing,
    level: int = 1,
) -> int:
    """Write ``events`` (an ``EVENT_DTYPE`` array) as a sealed segment; return its size."""
    customer = validate_customer_id(customer)
    if events.dtype != EVENT_DTYPE:
        raise SegmentError(f"events must be EVENT_DTYPE, got {events.dtype}")
    columns = _columns(events)
    header = {
        "format": _FORMAT,
        "customer": customer,
        "count": len(events),
        "t_min": int(events["timestamp_ns"].min()) if len(events) else 0,
        "t_max": int(events["timestamp_ns"].max()) if len(events) else 0,
        "compression": "zlib",
        "sha256": hashlib.sha256(columns).hexdigest(),
        "key_id": keys.current,
    }
    head = json.dumps(header, sort_keys=True).encode()
    sealed = keys.seal(zlib.compress(columns, level), head)
    data = _MAGIC + struct.pack("<I", len(head)) + head + sealed
    atomic_write_bytes(path, data, mode=0o600)
    return len(data)


def _split(path: Path, data: bytes) -> tuple[dict[str, Any], bytes, bytes]:
    if len(data) < 8 or data[:4] != _MAGIC:
        raise SegmentError(f"{path}: not a predis segment (bad magic)")
    (n,) = struct.unpack("<I", data[4:8])
    if n > _MAX_HEADER or len(data) < 8 + n:
        raise SegmentError(f"{path}: truncated header")
    head = data[8 : 8 + n]
    try:
        header = json.loads(head)
    except ValueError as exc:
        raise SegmentError(f"{path}: header is not JSON") from exc
    if not isinstance(header, dict):
        raise SegmentError(f"{path}: header is not a JSON object")
    if header.get("format") != _FORMAT:
        raise SegmentError(f"{path}: unsupported segment format {header.get('format')!r}")
    return header, head, data[8 + n :]


def segment_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The header of a segment (not yet authenticated: use :func:`read_segment` to trust it)."""
    p = Path(path)
    with open(p, "rb") as f:
        prefix = f.read(8 + _MAX_HEADER)
    return _split(p, prefix)[0]


def read_segment(path: str | os.PathLike[str], keys: KeyRing) -> tuple[dict[str, Any], np.ndarray]:
    """(header, events) of a segment, after checking its tag, checksum and count."""
    p = Path(path)
    data = p.read_bytes()
    header, head, sealed = _split(p, data)
    try:
        compressed = keys.open(sealed, head)
    except DecryptionError as exc:
        raise SegmentError(f"{p}: {exc}") from exc
    try:
        columns = zlib.decompress(compressed)
    except zlib.error as exc:
        raise SegmentError(f"{p}: payload does not decompress: {exc}") from exc
    if hashlib.sha256(columns).hexdigest() != header.get("sha256"):
        raise SegmentError(f"{p}: checksum mismatch")
    count = header.get("count")
    if not isinstance(count, int) or count < 0 or len(columns) != count * EVENT_DTYPE.itemsize:
        raise SegmentError(f"{p}: event count does not match the payload")
    return header, _events(columns, count)

"""Segment files: the collector's training data at rest.

A segment holds a batch of access events, column by column, compressed and sealed:

    b"PSEG" | u32 header length | header (JSON) | sealed payload

The header says the format version, customer id, time range, event count, compression,
filter and key id; it is authenticated as the AEAD's associated data, so neither it nor the
payload can be altered without the read failing. The payload (see
:mod:`predis.mlops.segment_codec`) is, in format 2, the event columns with the timestamps
delta-coded and every column byte-shuffled, compressed with zstd; format 1 segments (plain
columns, zlib, and the sha256 of the columns in the header) from earlier versions still
read. The payload is sealed with :class:`predis.security.crypto.KeyRing`. Files are written
atomically.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from predis.errors import PredisError
from predis.fileio import atomic_write_bytes
from predis.mlops.segment_codec import CodecError, check_header, decode, encode
from predis.security.crypto import DecryptionError, KeyRing
from predis.security.validation import validate_customer_id

__all__ = ["SEGMENT_SUFFIX", "SegmentError", "read_segment", "segment_info", "write_segment"]

SEGMENT_SUFFIX = ".pseg"
_MAGIC = b"PSEG"
_MAX_HEADER = 1 << 16


class SegmentError(PredisError, ValueError):
    """A segment file is truncated, tampered with, or not a segment; the message names it."""


def write_segment(
    path: str | os.PathLike[str],
    customer: str,
    events: np.ndarray | Sequence[np.ndarray],
    keys: KeyRing,
    level: int = 1,
    *,
    segment_format: int = 2,
) -> int:
    """Write ``events`` (an ``EVENT_DTYPE`` array, or several read as one sequence) as a
    sealed segment; return its size.

    ``level`` is the zstd level (-131072 to 22; format 2) or the zlib level (0 to 9;
    format 1). Format 1 is for readers running a version before format 2. A level or
    format out of range is an :class:`~predis.errors.InvalidArgumentError`, raised before
    anything is written.
    """
    customer = validate_customer_id(customer)
    try:
        payload, described = encode(events, segment_format, level)
    except CodecError as exc:  # events of another kind: nothing was written
        raise SegmentError(str(exc)) from None
    header = {
        "format": segment_format,
        "customer": customer,
        "key_id": keys.current,
        **described,
    }
    head = json.dumps(header, sort_keys=True).encode()
    sealed = keys.seal(payload, head)
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
    try:
        check_header(header)
    except CodecError as exc:
        raise SegmentError(f"{path}: {exc}") from exc
    return header, head, data[8 + n :]


def segment_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The header of a segment (not yet authenticated: use :func:`read_segment` to trust it)."""
    p = Path(path)
    with open(p, "rb") as f:
        prefix = f.read(8 + _MAX_HEADER)
    return _split(p, prefix)[0]


def read_segment(path: str | os.PathLike[str], keys: KeyRing) -> tuple[dict[str, Any], np.ndarray]:
    """(header, events) of a segment, after checking its tag, its codec and its count.

    Decompression is bounded by the header's count, so a hostile payload cannot expand
    beyond it; anything wrong is a :class:`SegmentError` that names the file.
    """
    p = Path(path)
    data = p.read_bytes()
    header, head, sealed = _split(p, data)
    try:
        payload = keys.open(sealed, head)
    except DecryptionError as exc:
        raise SegmentError(f"{p}: {exc}") from exc
    try:
        events = decode(header, payload)
    except CodecError as exc:
        raise SegmentError(f"{p}: {exc}") from exc
    return header, events

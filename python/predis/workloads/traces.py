"""Streaming readers of public cache traces, and a writer of libCacheSim's oracleGeneral format.

Every reader yields numpy arrays of :data:`REQUEST_DTYPE`, at most ``chunk`` requests each,
so a trace of any length is replayed in bounded memory:

- ``time``: the trace's own timestamp, or the request's index in the trace (0, 1, 2, ...)
  when the format has no timestamps;
- ``key``: the object id, as uint64;
- ``size``: the object size in bytes, or 1 when the format has no sizes.

Compression is chosen by the file name: ``.gz`` is gzip, ``.xz`` is xz, anything else is
read as is. zstd (``.zst``, libCacheSim's usual choice) is not supported; decompress such
files with ``zstd -d`` first. A malformed file raises :class:`TraceFormatError`, whose
message names the file and the line (text formats) or the byte offset in the decompressed
data (binary formats). A missing file raises :class:`FileNotFoundError`.
"""

from __future__ import annotations

import csv
import gzip
import lzma
import os
import zlib
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, cast

import numpy as np

from predis import _core
from predis.errors import InvalidArgumentError, PredisError
from predis.fileio import atomic_write_bytes

__all__ = [
    "ORACLE_GENERAL_DTYPE",
    "REQUEST_DTYPE",
    "TraceFormatError",
    "key_hash",
    "next_access_indices",
    "open_trace",
    "read_cache2k",
    "read_cloudphysics",
    "read_csv",
    "read_lirs",
    "read_oracle_general",
    "read_oracle_general_with_next",
    "write_oracle_general",
]

REQUEST_DTYPE = np.dtype([("time", "<u8"), ("key", "<u8"), ("size", "<u4")])
"""One request: ``time`` (timestamp or request index), ``key`` (object id), ``size`` (bytes)."""

ORACLE_GENERAL_DTYPE = np.dtype(
    [("time", "<u4"), ("id", "<u8"), ("size", "<u4"), ("next_access_vtime", "<i8")]
)
"""One 24-byte record of libCacheSim's oracleGeneral format (packed, little-endian)."""

_DEFAULT_CHUNK = 65536
_U32_MAX = (1 << 32) - 1
_U64_MAX = (1 << 64) - 1
_I64_MAX = (1 << 63) - 1
_CACHE2K_RECORD = 4
_ORACLE_RECORD = ORACLE_GENERAL_DTYPE.itemsize
_CLOUDPHYSICS_COLUMNS = ("time", "op", "size", "lbn")
_CLOUDPHYSICS_READ = 0x28
_MAX_SHOWN = 60
_HEX_DIGITS = frozenset("0123456789abcdef")

# Errors a truncated or corrupt compressed stream raises while it is read.
_DECOMPRESSION_ERRORS = (gzip.BadGzipFile, lzma.LZMAError, zlib.error, EOFError)


class TraceFormatError(PredisError, ValueError):
    """A trace file is malformed: its message names the file, where, and what was expected.

    Attributes:
        path: the trace file.
        line: the 1-based line number in a text trace, or None.
        offset: the byte offset in the (decompressed) data of a binary trace, or None.
    """

    def __init__(
        self,
        path: Path,
        message: str,
        *,
        line: int | None = None,
        offset: int | None = None,
    ) -> None:
        where = ""
        if line is not None:
            where = f" line {line}:"
        elif offset is not None:
            where = f" byte offset {offset}:"
        super().__init__(f"{path}:{where} {message}")
        self.path = path
        self.line = line
        self.offset = offset


# ---------------------------------------------------------------------------------------
# The documented key hash
# ---------------------------------------------------------------------------------------


def key_hash(key: str | bytes) -> int:
    """Predis's documented hash of a str or bytes key: ``fmix64(fnv1a64(utf8_bytes))``.

    It is the 64-bit key a :class:`predis.Cache` uses for the same str or bytes key (the
    ``key`` field of its access events), so trace keys and cache keys line up.

    Example:
        >>> key_hash(b"") == key_hash("")
        True
        >>> hex(key_hash("user:1")) == hex(key_hash(b"user:1"))
        True
        >>> 0 <= key_hash("user:1") < 2**64
        True
    """
    if isinstance(key, str):
        return int(_core.key_hash(key))
    if isinstance(key, (bytes, bytearray, memoryview)):
        return int(_core.key_hash(bytes(key)))
    raise InvalidArgumentError(f"key_hash takes str or bytes, got {type(key).__name__}")


# ---------------------------------------------------------------------------------------
# Shared plumbing
# ---------------------------------------------------------------------------------------


def _check_chunk(chunk: object) -> int:
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise InvalidArgumentError(f"chunk must be a positive int, got {chunk!r}")
    return chunk


def _resolve(path: object, *, must_exist: bool = True) -> Path:
    """``path`` as a resolved Path; a missing file or a directory is refused."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"a trace path must be a str or os.PathLike, got {type(path).__name__}"
        )
    resolved = Path(path).resolve()
    if resolved.is_dir():
        raise InvalidArgumentError(f"{resolved} is a directory; expected a trace file")
    if must_exist and not resolved.exists():
        raise FileNotFoundError(2, "trace file not found", str(resolved))
    return resolved


def _compression(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".zst"):
        raise InvalidArgumentError(
            f"{path}: zstd-compressed traces are not supported; decompress with `zstd -d` first"
        )
    if name.endswith(".gz"):
        return "gzip"
    if name.endswith(".xz"):
        return "xz"
    return None


def _open_binary(path: Path) -> IO[bytes]:
    kind = _compression(path)
    if kind == "gzip":
        return cast(IO[bytes], gzip.open(path, "rb"))
    if kind == "xz":
        return lzma.open(path, "rb")
    return open(path, "rb")  # the caller closes it


@contextmanager
def _decompression_errors(path: Path) -> Iterator[None]:
    """Turn a corrupt or truncated compressed stream into a :class:`TraceFormatError`."""
    try:
        yield
    except _DECOMPRESSION_ERRORS as exc:
        kind = _compression(path) or "compressed"
        raise TraceFormatError(
            path, f"not a valid, complete {kind} stream ({type(exc).__name__}: {exc})"
        ) from exc


def _read_exact(f: IO[bytes], n: int) -> bytes:
    """Up to ``n`` bytes; fewer only at the end of the data."""
    parts = []
    want = n
    while want > 0:
        part = f.read(want)
        if not part:
            break
        parts.append(part)
        want -= len(part)
    return b"".join(parts)


def _shown(text: str | bytes) -> str:
    """A short, unambiguous rendering of a bad field or line for an error message."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="backslashreplace")
    if len(text) > _MAX_SHOWN:
        text = text[:_MAX_SHOWN] + "..."
    return repr(text)


def _parse_uint(text: str | bytes, limit: int) -> int | None:
    """``text`` as an integer in [0, limit], or None when it is not one."""
    s = text.strip()
    if not s or not s.isascii() or not s.isdigit():
        return None
    value = int(s)
    return value if value <= limit else None


def _requests(times: np.ndarray | list[int], keys: list[int], sizes: list[int] | int) -> np.ndarray:
    out = np.empty(len(keys), dtype=REQUEST_DTYPE)
    out["time"] = np.asarray(times, dtype=np.uint64)
    out["key"] = np.array(keys, dtype=np.uint64)
    out["size"] = sizes if isinstance(sizes, int) else np.array(sizes, dtype=np.uint32)
    return out


def _index_times(start: int, n: int) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.uint64)


def _check_record_size(path: Path, record: int, what: str) -> None:
    """For an uncompressed file, refuse a length that is not a whole number of records."""
    if _compression(path) is not None:
        return
    size = path.stat().st_size
    if size % record:
        raise TraceFormatError(
            path,
            f"the file is {size} bytes, not a multiple of {record} (one {what}); "
            f"the last record is truncated",
            offset=size - size % record,
        )


# ---------------------------------------------------------------------------------------
# LIRS: text, one integer block id per line
# ---------------------------------------------------------------------------------------


def read_lirs(path: str | os.PathLike[str], chunk: int = _DEFAULT_CHUNK) -> Iterator[np.ndarray]:
    """Requests of a LIRS-style text trace: one non-negative integer block id per line.

    The file is gzip-compressed when its name ends in ``.gz``, else plain text. Lines that
    are empty or ``*`` after stripping whitespace (CRLF included) are skipped. The format
    has no timestamps and no sizes: ``time`` is the request's index in the trace and
    ``size`` is 1.

    Args:
        path: the trace file.
        chunk: the most requests per yielded array.

    Yields:
        arrays of :data:`REQUEST_DTYPE`, each of ``chunk`` requests except the last.

    Raises:
        TraceFormatError: a line is not a non-negative integer below 2**64 (the message
            names the file and the line), or the gzip stream is corrupt.
        FileNotFoundError: ``path`` does not exist.
        InvalidArgumentError: ``path`` is a directory, or ``chunk`` is not a positive int.
    """
    resolved = _resolve(path)
    return _iter_lirs(resolved, _check_chunk(chunk))


def _iter_lirs(path: Path, chunk: int) -> Iterator[np.ndarray]:
    keys: list[int] = []
    done = 0
    with _open_binary(path) as f, _decompression_errors(path):
        for line_no, raw in enumerate(f, start=1):
            s = raw.strip()
            if not s or s == b"*":
                continue
            value = _parse_uint(s, _U64_MAX)
            if value is None:
                raise TraceFormatError(
                    path,
                    f"expected a non-negative integer block id below 2**64 (or '*'), "
                    f"got {_shown(s)}",
                    line=line_no,
                )
            keys.append(value)
            if len(keys) == chunk:
                yield _requests(_index_times(done, chunk), keys, 1)
                done += chunk
                keys = []
    if keys:
        yield _requests(_index_times(done, len(keys)), keys, 1)


# ---------------------------------------------------------------------------------------
# cache2k: raw big-endian int32 ids
# ---------------------------------------------------------------------------------------


def read_cache2k(path: str | os.PathLike[str], chunk: int = _DEFAULT_CHUNK) -> Iterator[np.ndarray]:
    """Requests of a cache2k trace: raw big-endian 32-bit ids, no header.

    The file is xz-compressed when its name ends in ``.xz`` (gzip for ``.gz``), else raw.
    Ids are read as unsigned 32-bit (Java's negative ints become values >= 2**31). The
    format has no timestamps and no sizes: ``time`` is the request's index in the trace and
    ``size`` is 1.

    Args:
        path: the trace file.
        chunk: the most requests per yielded array.

    Yields:
        arrays of :data:`REQUEST_DTYPE`, each of ``chunk`` requests except the last.

    Raises:
        TraceFormatError: the (decompressed) length is not a multiple of 4 (the message
            gives the byte offset of the truncated id), or the xz stream is corrupt.
        FileNotFoundError: ``path`` does not exist.
        InvalidArgumentError: ``path`` is a directory, or ``chunk`` is not a positive int.
    """
    resolved = _resolve(path)
    chunk = _check_chunk(chunk)
    _check_record_size(resolved, _CACHE2K_RECORD, "big-endian int32 id")
    return _iter_cache2k(resolved, chunk)


def _iter_cache2k(path: Path, chunk: int) -> Iterator[np.ndarray]:
    done = 0
    with _open_binary(path) as f, _decompression_errors(path):
        while True:
            buf = _read_exact(f, chunk * _CACHE2K_RECORD)
            whole = len(buf) - len(buf) % _CACHE2K_RECORD
            if whole:
                ids = np.frombuffer(buf, dtype=">u4", count=whole // _CACHE2K_RECORD)
                out = np.empty(ids.size, dtype=REQUEST_DTYPE)
                out["time"] = _index_times(done, ids.size)
                out["key"] = ids
                out["size"] = 1
                yield out
                done += ids.size
            if whole != len(buf):
                offset = done * _CACHE2K_RECORD
                raise TraceFormatError(
                    path,
                    f"the data ends {len(buf) - whole} byte(s) into a 4-byte big-endian id; "
                    f"expected a length that is a multiple of 4",
                    offset=offset,
                )
            if len(buf) < chunk * _CACHE2K_RECORD:
                return


# ---------------------------------------------------------------------------------------
# CSV: CloudPhysics block I/O and generic columns
# ---------------------------------------------------------------------------------------


def _decoded_lines(f: IO[bytes], path: Path) -> Iterator[str]:
    """The lines of ``f`` as text; a line that is not UTF-8 is an error naming it."""
    for line_no, raw in enumerate(f, start=1):
        try:
            yield raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise TraceFormatError(path, f"expected UTF-8 text ({exc})", line=line_no) from exc


def _iter_csv_rows(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for every non-blank row; CSV errors name the line."""
    with _open_binary(path) as f, _decompression_errors(path):
        reader = csv.reader(_decoded_lines(f, path), delimiter=delimiter)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise TraceFormatError(
                    path, f"malformed CSV ({exc})", line=reader.line_num
                ) from exc
            if row:
                yield reader.line_num, row


def _field_uint(path: Path, line_no: int, row: list[str], i: int, name: str, bits: int) -> int:
    """Field ``i`` of ``row`` as an integer in [0, 2**bits), or an error naming the line."""
    value = _parse_uint(row[i], (1 << bits) - 1)
    if value is None:
        raise TraceFormatError(
            path,
            f"{name}: expected a non-negative integer below 2**{bits}, got {_shown(row[i])}",
            line=line_no,
        )
    return value


def _parse_op(op: object) -> int | None:
    if isinstance(op, int) and not isinstance(op, bool):
        return op if 0 <= op <= 0xFF else None
    if isinstance(op, str):
        s = op.strip().lower().removeprefix("0x")
        if s and len(s) <= 2 and all(c in _HEX_DIGITS for c in s):
            return int(s, 16)
    return None


def _parse_ops(ops: object) -> frozenset[int] | None:
    if ops is None:
        return None
    items = [ops] if isinstance(ops, (str, int)) else ops
    if not isinstance(items, Iterable):
        raise InvalidArgumentError(f"ops must be None, an opcode or a collection, got {ops!r}")
    parsed: set[int] = set()
    for op in items:
        value = _parse_op(op)
        if value is None:
            raise InvalidArgumentError(
                f"ops must hold SCSI opcodes as ints in [0, 255] or hex strings like '28', "
                f"got {op!r}"
            )
        parsed.add(value)
    if not parsed:
        raise InvalidArgumentError("ops is empty, so no request would be kept; pass None for all")
    return frozenset(parsed)


def read_cloudphysics(
    path: str | os.PathLike[str],
    chunk: int = _DEFAULT_CHUNK,
    ops: Collection[int | str] | int | str | None = (_CLOUDPHYSICS_READ,),
) -> Iterator[np.ndarray]:
    """Requests of a CloudPhysics block-I/O CSV trace (libCacheSim's ``cloudPhysicsIO.csv``).

    The file is xz-compressed when its name ends in ``.xz`` (gzip for ``.gz``), else plain.
    Its first line is the header ``version,time,op,size,lbn``; columns are found by name,
    and ``time``, ``op``, ``size`` and ``lbn`` must be present. ``op`` is a SCSI opcode in
    hex (``28`` read, ``2a`` write). Each kept row gives ``time`` = time, ``key`` = lbn
    (the block number) and ``size`` = size in bytes.

    Args:
        path: the trace file.
        chunk: the most requests per yielded array.
        ops: the opcodes to keep, as ints (``0x28``) or hex strings (``"28"``); the default
            keeps reads only, None keeps every row.

    Yields:
        arrays of :data:`REQUEST_DTYPE`, each of ``chunk`` requests except the last.

    Raises:
        TraceFormatError: the header lacks a column, a row is short, or a value is not a
            non-negative integer (hex for ``op``) in range; the message names the file and
            the line.
        FileNotFoundError: ``path`` does not exist.
        InvalidArgumentError: ``path`` is a directory, or ``chunk`` or ``ops`` is invalid.
    """
    resolved = _resolve(path)
    return _iter_cloudphysics(resolved, _check_chunk(chunk), _parse_ops(ops))


def _iter_cloudphysics(path: Path, chunk: int, ops: frozenset[int] | None) -> Iterator[np.ndarray]:
    rows = _iter_csv_rows(path, ",")
    first = next(rows, None)
    if first is None:
        raise TraceFormatError(
            path, "the file is empty; expected the header version,time,op,size,lbn", line=1
        )
    header_line, header = first
    names = [name.strip().lower() for name in header]
    missing = [c for c in _CLOUDPHYSICS_COLUMNS if c not in names]
    if missing:
        raise TraceFormatError(
            path,
            f"the header lacks column(s) {', '.join(missing)}; expected "
            f"version,time,op,size,lbn, got {_shown(','.join(header))}",
            line=header_line,
        )
    i_time, i_op, i_size, i_lbn = (names.index(c) for c in _CLOUDPHYSICS_COLUMNS)
    width = max(i_time, i_op, i_size, i_lbn) + 1
    times: list[int] = []
    keys: list[int] = []
    sizes: list[int] = []
    for line_no, row in rows:
        if len(row) < width:
            raise TraceFormatError(
                path,
                f"expected {len(header)} fields like the header, got {len(row)}: "
                f"{_shown(','.join(row))}",
                line=line_no,
            )
        op = row[i_op].strip()
        if not op or not all(c in _HEX_DIGITS for c in op.lower()):
            raise TraceFormatError(
                path,
                f"op: expected a hex SCSI opcode like 28 or 2a, got {_shown(row[i_op])}",
                line=line_no,
            )
        time = _field_uint(path, line_no, row, i_time, "time", 64)
        size = _field_uint(path, line_no, row, i_size, "size", 32)
        lbn = _field_uint(path, line_no, row, i_lbn, "lbn", 64)
        if ops is not None and int(op, 16) not in ops:
            continue
        times.append(time)
        keys.append(lbn)
        sizes.append(size)
        if len(keys) == chunk:
            yield _requests(times, keys, sizes)
            times, keys, sizes = [], [], []
    if keys:
        yield _requests(times, keys, sizes)


def _column_index(
    path: Path, header: list[str] | None, header_line: int, role: str, column: str | int
) -> int:
    if isinstance(column, int) or header is None:
        return int(column)  # a name without a header was refused by _check_column
    names = [name.strip() for name in header]
    if column not in names:
        raise TraceFormatError(
            path,
            f"{role}: the header has no column {column!r}; its columns are "
            f"{', '.join(repr(n) for n in names)}",
            line=header_line,
        )
    return names.index(column)


def _check_column(role: str, column: object, has_header: bool, *, optional: bool) -> None:
    if column is None and optional:
        return
    if isinstance(column, int) and not isinstance(column, bool):
        if column < 0:
            raise InvalidArgumentError(f"{role} must be a non-negative index, got {column}")
        return
    if isinstance(column, str):
        if not has_header:
            raise InvalidArgumentError(
                f"{role}={column!r} names a column, but has_header=False; "
                f"give a 0-based column index instead"
            )
        return
    raise InvalidArgumentError(
        f"{role} must be a column name (str) or a 0-based index (int), got {column!r}"
    )


def read_csv(
    path: str | os.PathLike[str],
    key_column: str | int,
    time_column: str | int | None = None,
    size_column: str | int | None = None,
    delimiter: str = ",",
    has_header: bool = True,
    chunk: int = _DEFAULT_CHUNK,
    hash_keys: bool | None = None,
) -> Iterator[np.ndarray]:
    """Requests of a generic CSV trace, one request per row, from the columns you choose.

    The file is gzip- or xz-compressed when its name ends in ``.gz`` or ``.xz``, else plain
    UTF-8 text; blank lines are skipped. Columns are chosen by name when the file has a
    header line (a 0-based index works too), and by 0-based index otherwise.

    Keys: with ``hash_keys=None`` (the default) a key that is a decimal integer in
    [0, 2**64) is used as is, and any other key (a string) is hashed with :func:`key_hash`,
    the hash :class:`predis.Cache` uses for str keys. ``hash_keys=True`` hashes every key,
    numeric or not; ``hash_keys=False`` makes a non-integer key an error.

    Without ``time_column``, ``time`` is the request's index in the trace; without
    ``size_column``, ``size`` is 1. Times must be integers in [0, 2**64) and sizes integers
    in [0, 2**32).

    Args:
        path: the trace file.
        key_column: the column of object ids.
        time_column: the column of integer timestamps, or None.
        size_column: the column of object sizes in bytes, or None.
        delimiter: the one-character field separator.
        has_header: whether the first non-blank line is a header of column names.
        chunk: the most requests per yielded array.
        hash_keys: None (hash non-integer keys only), True (hash all) or False (hash none).

    Yields:
        arrays of :data:`REQUEST_DTYPE`, each of ``chunk`` requests except the last.

    Raises:
        TraceFormatError: a named column is not in the header, a row is too short, or a
            value is invalid; the message names the file and the line.
        FileNotFoundError: ``path`` does not exist.
        InvalidArgumentError: ``path`` is a directory, or another argument is invalid.
    """
    resolved = _resolve(path)
    chunk = _check_chunk(chunk)
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise InvalidArgumentError(f"delimiter must be one character, got {delimiter!r}")
    if not isinstance(has_header, bool):
        raise InvalidArgumentError(f"has_header must be a bool, got {has_header!r}")
    if hash_keys is not None and not isinstance(hash_keys, bool):
        raise InvalidArgumentError(f"hash_keys must be None, True or False, got {hash_keys!r}")
    _check_column("key_column", key_column, has_header, optional=False)
    _check_column("time_column", time_column, has_header, optional=True)
    _check_column("size_column", size_column, has_header, optional=True)
    return _iter_csv(
        resolved,
        (key_column, time_column, size_column),
        delimiter,
        has_header,
        chunk,
        hash_keys,
    )


def _iter_csv(
    path: Path,
    columns: tuple[str | int, str | int | None, str | int | None],
    delimiter: str,
    has_header: bool,
    chunk: int,
    hash_keys: bool | None,
) -> Iterator[np.ndarray]:
    rows = _iter_csv_rows(path, delimiter)
    header: list[str] | None = None
    header_line = 0
    if has_header:
        first = next(rows, None)
        if first is None:
            raise TraceFormatError(path, "the file is empty; expected a header line", line=1)
        header_line, header = first
    key_col, time_col, size_col = columns
    i_key = _column_index(path, header, header_line, "key_column", key_col)
    i_time = (
        None
        if time_col is None
        else _column_index(path, header, header_line, "time_column", time_col)
    )
    i_size = (
        None
        if size_col is None
        else _column_index(path, header, header_line, "size_column", size_col)
    )
    width = max(i for i in (i_key, i_time, i_size) if i is not None) + 1
    times: list[int] = []
    keys: list[int] = []
    sizes: list[int] = []
    done = 0
    for line_no, row in rows:
        if len(row) < width:
            raise TraceFormatError(
                path,
                f"expected at least {width} fields (up to column {width - 1}), got {len(row)}",
                line=line_no,
            )
        field = row[i_key]
        key = None if hash_keys else _parse_uint(field, _U64_MAX)
        if key is None:
            if hash_keys is False:
                raise TraceFormatError(
                    path,
                    f"key: expected a non-negative integer below 2**64 (hash_keys=False), "
                    f"got {_shown(field)}",
                    line=line_no,
                )
            key = key_hash(field)
        keys.append(key)
        if i_time is not None:
            times.append(_field_uint(path, line_no, row, i_time, "time", 64))
        if i_size is not None:
            sizes.append(_field_uint(path, line_no, row, i_size, "size", 32))
        if len(keys) == chunk:
            yield _csv_chunk(done, times, keys, sizes, i_time, i_size)
            done += len(keys)
            times, keys, sizes = [], [], []
    if keys:
        yield _csv_chunk(done, times, keys, sizes, i_time, i_size)


def _csv_chunk(
    done: int,
    times: list[int],
    keys: list[int],
    sizes: list[int],
    i_time: int | None,
    i_size: int | None,
) -> np.ndarray:
    return _requests(
        _index_times(done, len(keys)) if i_time is None else times,
        keys,
        1 if i_size is None else sizes,
    )


# ---------------------------------------------------------------------------------------
# libCacheSim oracleGeneral: 24-byte binary records with the next access
# ---------------------------------------------------------------------------------------


def next_access_indices(keys: np.ndarray) -> np.ndarray:
    """For each request, the index of the next request for the same key, or -1 if none.

    Vectorised: a stable argsort groups equal keys in trace order, and each position in a
    group points at the one after it.

    Args:
        keys: (n,) integer array of keys, in trace order.

    Returns:
        (n,) int64 array.

    Example:
        >>> next_access_indices(np.array([1, 2, 1, 3, 2, 1], dtype=np.uint64)).tolist()
        [2, 4, 5, -1, -1, -1]
    """
    keys = np.asarray(keys)
    if keys.ndim != 1:
        raise InvalidArgumentError(f"keys must be a 1-D array, got shape {keys.shape}")
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    same = sorted_keys[1:] == sorted_keys[:-1]
    nxt = np.full(keys.shape[0], -1, dtype=np.int64)
    nxt[order[:-1][same]] = order[1:][same]
    return nxt


def read_oracle_general(
    path: str | os.PathLike[str], chunk: int = _DEFAULT_CHUNK
) -> Iterator[np.ndarray]:
    """Requests of a libCacheSim oracleGeneral trace: little-endian 24-byte records.

    Each record is ``u32 time, u64 id, u32 size, i64 next_access_vtime``; this reader keeps
    time, id (as ``key``) and size, and ignores the next access (see
    :func:`read_oracle_general_with_next`). The file is read raw unless its name ends in
    ``.gz`` or ``.xz``; zstd is not supported.

    Args:
        path: the trace file.
        chunk: the most requests per yielded array.

    Yields:
        arrays of :data:`REQUEST_DTYPE`, each of ``chunk`` requests except the last.

    Raises:
        TraceFormatError: the (decompressed) length is not a multiple of 24 (the message
            gives the byte offset of the truncated record), or the stream is corrupt.
        FileNotFoundError: ``path`` does not exist.
        InvalidArgumentError: ``path`` is a directory, or ``chunk`` is not a positive int.
    """
    resolved = _resolve(path)
    chunk = _check_chunk(chunk)
    _check_record_size(resolved, _ORACLE_RECORD, "oracleGeneral record")
    return (requests for requests, _ in _iter_oracle(resolved, chunk, with_next=False))


def read_oracle_general_with_next(
    path: str | os.PathLike[str], chunk: int = _DEFAULT_CHUNK
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Like :func:`read_oracle_general`, with each request's next-access index.

    The next-access array holds, for each request, the 0-based index in the whole trace of
    the next request for the same key, or -1 if there is none. On disk, libCacheSim stores
    it 1-based (``next_access_vtime`` = index + 1) with -1 or INT64_MAX for never; this
    reader converts, and :func:`write_oracle_general` writes that convention.

    Args:
        path: the trace file.
        chunk: the most requests per yielded pair of arrays.

    Yields:
        ``(requests, next_access)``: an array of :data:`REQUEST_DTYPE` and an int64 array
        of the same length.

    Raises:
        TraceFormatError: as :func:`read_oracle_general`, and when a next access is not
            -1, INT64_MAX or a 1-based position after the record's own.
        FileNotFoundError: ``path`` does not exist.
        InvalidArgumentError: ``path`` is a directory, or ``chunk`` is not a positive int.
    """
    resolved = _resolve(path)
    chunk = _check_chunk(chunk)
    _check_record_size(resolved, _ORACLE_RECORD, "oracleGeneral record")
    return _iter_oracle(resolved, chunk, with_next=True)


def _iter_oracle(
    path: Path, chunk: int, *, with_next: bool
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    done = 0
    empty = np.empty(0, dtype=np.int64)
    with _open_binary(path) as f, _decompression_errors(path):
        while True:
            buf = _read_exact(f, chunk * _ORACLE_RECORD)
            whole = len(buf) - len(buf) % _ORACLE_RECORD
            if whole:
                records = np.frombuffer(
                    buf, dtype=ORACLE_GENERAL_DTYPE, count=whole // _ORACLE_RECORD
                )
                out = np.empty(records.size, dtype=REQUEST_DTYPE)
                out["time"] = records["time"]
                out["key"] = records["id"]
                out["size"] = records["size"]
                nxt = _next_from_disk(path, records, done) if with_next else empty
                yield out, nxt
                done += records.size
            if whole != len(buf):
                raise TraceFormatError(
                    path,
                    f"the data ends {len(buf) - whole} byte(s) into a 24-byte oracleGeneral "
                    f"record; expected a length that is a multiple of 24",
                    offset=done * _ORACLE_RECORD,
                )
            if len(buf) < chunk * _ORACLE_RECORD:
                return


def _next_from_disk(path: Path, records: np.ndarray, done: int) -> np.ndarray:
    raw = records["next_access_vtime"].astype(np.int64)
    never = (raw == -1) | (raw == _I64_MAX)
    # 1-based vtime of this record is done + i + 1; the next access must come after it.
    own_vtime = np.arange(done + 1, done + 1 + raw.size, dtype=np.int64)
    bad = ~never & (raw <= own_vtime)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise TraceFormatError(
            path,
            f"next_access_vtime {int(raw[i])} of record {done + i} is not -1, INT64_MAX or a "
            f"1-based position after the record's own ({done + i + 1})",
            offset=(done + i) * _ORACLE_RECORD + 16,
        )
    return np.where(never, np.int64(-1), raw - 1)


def _collect_requests(requests: np.ndarray | Iterable[np.ndarray]) -> np.ndarray:
    parts = [requests] if isinstance(requests, np.ndarray) else list(requests)
    for i, part in enumerate(parts):
        if not isinstance(part, np.ndarray) or part.dtype != REQUEST_DTYPE or part.ndim != 1:
            what = (
                f"a {part.ndim}-D array of {part.dtype}"
                if isinstance(part, np.ndarray)
                else type(part).__name__
            )
            raise InvalidArgumentError(
                f"requests must be a 1-D REQUEST_DTYPE array or an iterable of them; "
                f"item {i} is {what}"
            )
    if not parts:
        return np.empty(0, dtype=REQUEST_DTYPE)
    return np.concatenate(parts)


def write_oracle_general(
    path: str | os.PathLike[str], requests: np.ndarray | Iterable[np.ndarray]
) -> int:
    """Write requests as a libCacheSim oracleGeneral trace, atomically.

    Each request's next access (the position of the next request for the same key in the
    whole trace) is computed with :func:`next_access_indices` and stored as libCacheSim
    does: 1-based (index + 1), or -1 when the key is never requested again. The whole trace
    is held in memory, since the last request can be the next access of the first. The
    file is written through :func:`predis.fileio.atomic_write_bytes`, gzip- or
    xz-compressed when the name ends in ``.gz`` or ``.xz``.

    Args:
        path: the file to write (its directory must exist).
        requests: one array of :data:`REQUEST_DTYPE`, or an iterable of them (for example
            a reader of this module).

    Returns:
        the number of requests written.

    Raises:
        InvalidArgumentError: ``path`` is a directory, an item is not a 1-D array of
            :data:`REQUEST_DTYPE`, or a time exceeds 2**32 - 1 (the format's u32 time).
    """
    resolved = _resolve(path, must_exist=False)
    kind = _compression(resolved)
    trace = _collect_requests(requests)
    if trace.size and int(trace["time"].max()) > _U32_MAX:
        i = int(np.flatnonzero(trace["time"] > _U32_MAX)[0])
        raise InvalidArgumentError(
            f"request {i} has time {int(trace['time'][i])}, above 2**32 - 1; oracleGeneral "
            f"stores time as u32 (rebase or rescale the times first)"
        )
    records = np.empty(trace.size, dtype=ORACLE_GENERAL_DTYPE)
    records["time"] = trace["time"]
    records["id"] = trace["key"]
    records["size"] = trace["size"]
    nxt = next_access_indices(trace["key"])
    records["next_access_vtime"] = np.where(nxt >= 0, nxt + 1, -1)
    data = records.tobytes()
    if kind == "gzip":
        data = gzip.compress(data, mtime=0)
    elif kind == "xz":
        data = lzma.compress(data)
    atomic_write_bytes(resolved, data)
    return int(trace.size)


# ---------------------------------------------------------------------------------------
# Dispatch by file name
# ---------------------------------------------------------------------------------------

_KNOWN_FORMATS = (
    "*.trace.gz or *.trace: LIRS text, one block id per line (read_lirs)",
    "*.trace.xz: cache2k raw big-endian int32 ids (read_cache2k)",
    "*cloudphysics*.csv or *cloudphysics*.csv.xz: CloudPhysics block I/O CSV, reads only "
    "(read_cloudphysics)",
    "*.oracleGeneral* or *.oracle.bin: libCacheSim oracleGeneral binary (read_oracle_general)",
)


def open_trace(path: str | os.PathLike[str], chunk: int = _DEFAULT_CHUNK) -> Iterator[np.ndarray]:
    """Requests of a trace file, with the reader chosen by its name.

    - ``*.oracleGeneral*`` or ``*.oracle.bin``: :func:`read_oracle_general`;
    - names containing ``cloudphysics`` that end in ``.csv`` or ``.csv.xz``:
      :func:`read_cloudphysics` with its default (reads only);
    - ``*.trace.xz``: :func:`read_cache2k`;
    - ``*.trace.gz`` or ``*.trace``: :func:`read_lirs`.

    For other names, or other options, call a reader (or :func:`read_csv`) directly.

    Args:
        path: the trace file.
        chunk: the most requests per yielded array.

    Yields:
        arrays of :data:`REQUEST_DTYPE`, each of ``chunk`` requests except the last.

    Raises:
        InvalidArgumentError: the name matches no known format (the message lists them),
            or ``path`` is a directory.
        FileNotFoundError: ``path`` does not exist.
        TraceFormatError: as the chosen reader.
    """
    resolved = _resolve(path)
    name = resolved.name.lower()
    if ".oraclegeneral" in name or name.endswith(".oracle.bin"):
        return read_oracle_general(resolved, chunk)
    if "cloudphysics" in name and name.endswith((".csv", ".csv.xz")):
        return read_cloudphysics(resolved, chunk)
    if name.endswith(".trace.xz"):
        return read_cache2k(resolved, chunk)
    if name.endswith((".trace.gz", ".trace")):
        return read_lirs(resolved, chunk)
    known = "\n  ".join(_KNOWN_FORMATS)
    raise InvalidArgumentError(
        f"{resolved}: cannot tell the trace format from the file name; known formats:\n"
        f"  {known}\nor call read_csv for another CSV layout"
    )

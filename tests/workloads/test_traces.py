"""Trace readers and the oracleGeneral writer, on small hand-written files with exact answers.

Every file is built in ``tmp_path``; only the last test reads the real traces in
``../shared/traces`` and skips, with its reason, when they are absent.
"""

from __future__ import annotations

import doctest
import gzip
import lzma
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import predis
import predis.workloads.traces as traces_module
from predis import InvalidArgumentError, PredisError
from predis.workloads.traces import (
    ORACLE_GENERAL_DTYPE,
    REQUEST_DTYPE,
    TraceFormatError,
    key_hash,
    next_access_indices,
    open_trace,
    read_cache2k,
    read_cloudphysics,
    read_csv,
    read_lirs,
    read_oracle_general,
    read_oracle_general_with_next,
    write_oracle_general,
)

SHARED_TRACES = Path(__file__).resolve().parents[2].parent / "shared" / "traces"
CLOUDPHYSICS_HEADER = "version,time,op,size,lbn\n"


def collect(chunks: Iterator[np.ndarray]) -> np.ndarray:
    """All chunks of a reader as one array, checking each chunk's dtype on the way."""
    parts = list(chunks)
    for part in parts:
        assert part.dtype == REQUEST_DTYPE
        assert part.ndim == 1
    return np.concatenate(parts) if parts else np.empty(0, dtype=REQUEST_DTYPE)


def requests(times: list[int], keys: list[int], sizes: list[int]) -> np.ndarray:
    out = np.empty(len(keys), dtype=REQUEST_DTYPE)
    out["time"] = times
    out["key"] = keys
    out["size"] = sizes
    return out


def assert_requests(got: np.ndarray, times: list[int], keys: list[int], sizes: list[int]) -> None:
    assert got.dtype == REQUEST_DTYPE
    assert got["time"].tolist() == times
    assert got["key"].tolist() == keys
    assert got["size"].tolist() == sizes


def write(path: Path, data: bytes) -> Path:
    """``data`` at ``path``, compressed as the name says (.gz gzip, .xz xz)."""
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    elif path.name.endswith(".xz"):
        data = lzma.compress(data)
    path.write_bytes(data)
    return path


def be32(*ids: int) -> bytes:
    return b"".join(struct.pack(">I", i) for i in ids)


def oracle_records(*records: tuple[int, int, int, int]) -> bytes:
    return b"".join(struct.pack("<IQIq", *r) for r in records)


def format_error(path: Path, where: str) -> re.Pattern[str]:
    """A pattern that a TraceFormatError message names ``path`` and ``where``."""
    return re.compile(re.escape(f"{path.resolve()}: {where}:"))


# ---------------------------------------------------------------------------------------
# Dtypes, the key hash, the error class
# ---------------------------------------------------------------------------------------


def test_request_and_oracle_dtypes() -> None:
    assert REQUEST_DTYPE.names == ("time", "key", "size")
    assert [REQUEST_DTYPE[n].str for n in REQUEST_DTYPE.names] == ["<u8", "<u8", "<u4"]
    assert ORACLE_GENERAL_DTYPE.itemsize == 24
    assert [ORACLE_GENERAL_DTYPE.fields[n][1] for n in ORACLE_GENERAL_DTYPE.names] == [
        0,
        4,
        12,
        16,
    ]


def test_trace_format_error_is_a_predis_value_error() -> None:
    assert issubclass(TraceFormatError, PredisError)
    assert issubclass(TraceFormatError, ValueError)
    err = TraceFormatError(Path("/x/t.trace"), "bad", line=3)
    assert str(err) == "/x/t.trace: line 3: bad"
    assert (err.path, err.line, err.offset) == (Path("/x/t.trace"), 3, None)
    assert str(TraceFormatError(Path("/x/t.bin"), "short", offset=48)) == (
        "/x/t.bin: byte offset 48: short"
    )


def test_key_hash_published_vectors() -> None:
    # FNV-1a 64 of b"" is the offset basis; the finalizer then mixes it.
    mask = (1 << 64) - 1
    k = 0xCBF29CE484222325
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & mask
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & mask
    k ^= k >> 33
    assert key_hash(b"") == k
    assert key_hash("user:1") == key_hash(b"user:1")
    assert key_hash("ключ") == key_hash("ключ".encode())
    with pytest.raises(InvalidArgumentError, match="str or bytes"):
        key_hash(5)  # type: ignore[arg-type]


def test_key_hash_matches_the_cache() -> None:
    """The cache's access events carry the same 64-bit key for str and bytes keys."""
    cache = predis.Cache(1 << 20, clock="manual")
    keys: list[str | bytes] = ["user:1", "ключ", "", b"\x00\xff", "a" * 300]
    for k in keys:
        cache.get(k)
    assert cache.drain_events()["key"].tolist() == [key_hash(k) for k in keys]


def test_docstring_examples() -> None:
    result = doctest.testmod(traces_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


# ---------------------------------------------------------------------------------------
# LIRS
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["t.trace", "t.trace.gz"])
def test_lirs_parses_ids_and_skips_stars_and_blank_lines(tmp_path: Path, name: str) -> None:
    text = b"5\n*\n 7 \n\n5\r\n18446744073709551615\n*\n0"
    path = write(tmp_path / name, text)
    got = collect(read_lirs(path))
    assert_requests(got, [0, 1, 2, 3, 4], [5, 7, 5, 2**64 - 1, 0], [1] * 5)


def test_lirs_accepts_str_and_pathlike(tmp_path: Path) -> None:
    path = write(tmp_path / "t.trace", b"1\n2\n")
    assert collect(read_lirs(str(path)))["key"].tolist() == [1, 2]
    assert collect(read_lirs(path))["key"].tolist() == [1, 2]


def test_lirs_empty_file_yields_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "t.trace.gz", b"")
    assert list(read_lirs(path)) == []


def test_lirs_chunking(tmp_path: Path) -> None:
    path = write(tmp_path / "t.trace.gz", b"10\n11\n*\n12\n13\n14\n")
    chunks = list(read_lirs(path, chunk=2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert [c["key"].tolist() for c in chunks] == [[10, 11], [12, 13], [14]]
    # Index times continue across chunks.
    assert [c["time"].tolist() for c in chunks] == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize(
    ("text", "line", "shown"),
    [
        (b"1\n2\nabc\n", 3, "'abc'"),
        (b"1\n-4\n", 2, "'-4'"),
        (b"1.5\n", 1, "'1.5'"),
        (b"1\n\n*\n18446744073709551616\n", 4, "'18446744073709551616'"),
        (b"3 4\n", 1, "'3 4'"),
    ],
)
def test_lirs_bad_line_names_file_and_line(
    tmp_path: Path, text: bytes, line: int, shown: str
) -> None:
    path = write(tmp_path / "bad.trace.gz", text)
    with pytest.raises(TraceFormatError, match=format_error(path, f"line {line}")) as info:
        collect(read_lirs(path))
    assert shown in str(info.value)
    assert "non-negative integer" in str(info.value)
    assert info.value.line == line


def test_lirs_corrupt_gzip_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "t.trace.gz"
    path.write_bytes(gzip.compress(b"1\n2\n3\n" * 100)[:-10])
    with pytest.raises(TraceFormatError, match=re.escape(str(path.resolve()))):
        collect(read_lirs(path))
    (tmp_path / "plain.trace.gz").write_bytes(b"1\n2\n")
    with pytest.raises(TraceFormatError, match="gzip"):
        collect(read_lirs(tmp_path / "plain.trace.gz"))


# ---------------------------------------------------------------------------------------
# cache2k
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["w.trace", "w.trace.xz"])
def test_cache2k_big_endian_unsigned(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, be32(0, 1, 0x01020304, 0xFFFFFFFF, 1))
    got = collect(read_cache2k(path))
    assert_requests(got, [0, 1, 2, 3, 4], [0, 1, 0x01020304, 2**32 - 1, 1], [1] * 5)


def test_cache2k_chunking(tmp_path: Path) -> None:
    path = write(tmp_path / "w.trace.xz", be32(9, 8, 7, 6, 5))
    chunks = list(read_cache2k(path, chunk=2))
    assert [c["key"].tolist() for c in chunks] == [[9, 8], [7, 6], [5]]
    assert [c["time"].tolist() for c in chunks] == [[0, 1], [2, 3], [4]]
    # An exact multiple of the chunk ends cleanly.
    path4 = write(tmp_path / "w4.trace.xz", be32(1, 2, 3, 4))
    assert [len(c) for c in read_cache2k(path4, chunk=2)] == [2, 2]


@pytest.mark.parametrize("name", ["w.trace", "w.trace.xz"])
def test_cache2k_truncated_names_file_and_offset(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, be32(1, 2, 3) + b"\x00\x01")
    with pytest.raises(TraceFormatError, match=format_error(path, "byte offset 12")) as info:
        collect(read_cache2k(path, chunk=2))
    assert "multiple of 4" in str(info.value)
    assert info.value.offset == 12


def test_cache2k_corrupt_xz_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "w.trace.xz"
    path.write_bytes(lzma.compress(be32(*range(1000)))[:-20])
    with pytest.raises(TraceFormatError, match="xz"):
        collect(read_cache2k(path))


# ---------------------------------------------------------------------------------------
# CloudPhysics
# ---------------------------------------------------------------------------------------

CLOUDPHYSICS_ROWS = (
    CLOUDPHYSICS_HEADER + "1,100,2a,512,42\n"
    "1,100,28,4096,7\n"
    "1,101,28,512,42\n"
    "1,105,2A,8192,9\n"
    "1,107,28,65536,18446744073709551615\n"
)


@pytest.mark.parametrize("name", ["cloudphysics_io.csv", "cloudphysics_io.csv.xz"])
def test_cloudphysics_reads_only_by_default(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, CLOUDPHYSICS_ROWS.encode())
    got = collect(read_cloudphysics(path))
    assert_requests(got, [100, 101, 107], [7, 42, 2**64 - 1], [4096, 512, 65536])


def test_cloudphysics_ops_choice(tmp_path: Path) -> None:
    path = write(tmp_path / "cloudphysics.csv", CLOUDPHYSICS_ROWS.encode())
    everything = collect(read_cloudphysics(path, ops=None))
    assert_requests(
        everything,
        [100, 100, 101, 105, 107],
        [42, 7, 42, 9, 2**64 - 1],
        [512, 4096, 512, 8192, 65536],
    )
    for writes in (["2a"], [0x2A], "2A", 0x2A, ("0x2a",)):
        assert collect(read_cloudphysics(path, ops=writes))["key"].tolist() == [42, 9]
    assert len(collect(read_cloudphysics(path, ops={"28", "2a"}))) == 5
    for bad in ([], ["zz"], [256], [-1], [True], "0x123"):
        with pytest.raises(InvalidArgumentError, match="ops"):
            read_cloudphysics(path, ops=bad)  # type: ignore[arg-type]


def test_cloudphysics_columns_by_name_in_any_order(tmp_path: Path) -> None:
    text = "lbn,op,time,size\n5,28,9,512\n"
    path = write(tmp_path / "cloudphysics.csv", text.encode())
    assert_requests(collect(read_cloudphysics(path)), [9], [5], [512])


def test_cloudphysics_chunking(tmp_path: Path) -> None:
    rows = "".join(f"1,{t},28,512,{t * 10}\n" for t in range(5))
    path = write(tmp_path / "cloudphysics.csv.xz", (CLOUDPHYSICS_HEADER + rows).encode())
    chunks = list(read_cloudphysics(path, chunk=2))
    assert [c["key"].tolist() for c in chunks] == [[0, 10], [20, 30], [40]]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("version,time,op,size\n1,2,28,512\n", 1, "lbn"),
        ("a,b,c\n", 1, "time, op, size, lbn"),
        ("", 1, "empty"),
        (CLOUDPHYSICS_HEADER + "1,2,28,512,3\n1,2,28,512\n", 3, "expected 5 fields"),
        (CLOUDPHYSICS_HEADER + "1,2,28,512,3\n1,x,28,512,3\n", 3, "time"),
        (CLOUDPHYSICS_HEADER + "1,2,zz,512,3\n", 2, "op"),
        (CLOUDPHYSICS_HEADER + "1,2,28,4294967296,3\n", 2, "size"),
        (CLOUDPHYSICS_HEADER + "1,2,2a,512,-3\n", 2, "lbn"),
    ],
)
def test_cloudphysics_malformed_names_file_and_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = write(tmp_path / "cloudphysics.csv.xz", text.encode())
    with pytest.raises(TraceFormatError, match=format_error(path, f"line {line}")) as info:
        collect(read_cloudphysics(path))
    assert words in str(info.value)


def test_cloudphysics_bad_value_in_a_filtered_row_is_still_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "cloudphysics.csv", (CLOUDPHYSICS_HEADER + "1,2,2a,x,3\n").encode())
    with pytest.raises(TraceFormatError, match="line 2: size"):
        collect(read_cloudphysics(path))


# ---------------------------------------------------------------------------------------
# Generic CSV
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.csv.xz"])
def test_csv_by_name_with_string_keys_hashed(tmp_path: Path, name: str) -> None:
    text = "ts,obj,bytes\n10,7,100\n11,user:1,200\n\n12,ключ,300\n13,7,400\n"
    path = write(tmp_path / name, text.encode())
    got = collect(read_csv(path, "obj", time_column="ts", size_column="bytes"))
    assert_requests(
        got,
        [10, 11, 12, 13],
        [7, key_hash("user:1"), key_hash("ключ"), 7],
        [100, 200, 300, 400],
    )


def test_csv_by_index_without_header(tmp_path: Path) -> None:
    path = write(tmp_path / "t.tsv", b"a\t5\t1\nb\t6\t2\na\t7\t3\n")
    got = collect(read_csv(path, 0, size_column=2, delimiter="\t", has_header=False))
    assert_requests(got, [0, 1, 2], [key_hash("a"), key_hash("b"), key_hash("a")], [1, 2, 3])
    # Without time and size columns: index times and unit sizes.
    got = collect(read_csv(path, 1, delimiter="\t", has_header=False))
    assert_requests(got, [0, 1, 2], [5, 6, 7], [1, 1, 1])


def test_csv_index_with_header_and_bom(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "\ufeffk,t\n3,30\n4,40\n".encode())
    assert_requests(collect(read_csv(path, "k", time_column=1)), [30, 40], [3, 4], [1, 1])


def test_csv_hash_keys_modes(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", b"k\n12\nabc\n")
    assert collect(read_csv(path, "k"))["key"].tolist() == [12, key_hash("abc")]
    assert collect(read_csv(path, "k", hash_keys=True))["key"].tolist() == [
        key_hash("12"),
        key_hash("abc"),
    ]
    with pytest.raises(TraceFormatError, match=format_error(path, "line 3")):
        collect(read_csv(path, "k", hash_keys=False))


def test_csv_chunking(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", b"k\n1\n2\n3\n4\n5\n")
    chunks = list(read_csv(path, "k", chunk=2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert [c["time"].tolist() for c in chunks] == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize(
    ("text", "kwargs", "line", "words"),
    [
        (b"a,b\n1,2\n", {"key_column": "c"}, 1, "no column 'c'"),
        (b"a,b\n1,2\n3\n", {"key_column": "b"}, 3, "at least 2 fields"),
        (b"a,b\n1,2\n3,x\n", {"key_column": "a", "time_column": "b"}, 3, "time"),
        (b"a,b\n1,-2\n", {"key_column": "a", "size_column": "b"}, 2, "size"),
        (b"a,b\n1,\xff\xfe\n", {"key_column": "a"}, 2, "UTF-8"),
        (b"", {"key_column": "a"}, 1, "empty"),
    ],
)
def test_csv_malformed_names_file_and_line(
    tmp_path: Path, text: bytes, kwargs: dict[str, object], line: int, words: str
) -> None:
    path = write(tmp_path / "t.csv.gz", text)
    with pytest.raises(TraceFormatError, match=format_error(path, f"line {line}")) as info:
        collect(read_csv(path, **kwargs))  # type: ignore[arg-type]
    assert words in str(info.value)


def test_csv_bad_arguments(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", b"a\n1\n")
    cases: list[dict[str, object]] = [
        {"key_column": "a", "has_header": False},
        {"key_column": -1},
        {"key_column": 1.5},
        {"key_column": "a", "delimiter": ",,"},
        {"key_column": "a", "chunk": 0},
        {"key_column": "a", "hash_keys": "yes"},
        {"key_column": "a", "time_column": True},
    ]
    for kwargs in cases:
        with pytest.raises(InvalidArgumentError):
            read_csv(path, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# oracleGeneral
# ---------------------------------------------------------------------------------------


def test_next_access_indices_hand_computed() -> None:
    keys = np.array([1, 2, 1, 3, 2, 1], dtype=np.uint64)
    assert next_access_indices(keys).tolist() == [2, 4, 5, -1, -1, -1]
    assert next_access_indices(np.array([], dtype=np.uint64)).tolist() == []
    assert next_access_indices(np.array([7, 7, 7], dtype=np.uint64)).tolist() == [1, 2, -1]
    big = np.array([2**64 - 1, 0, 2**64 - 1], dtype=np.uint64)
    assert next_access_indices(big).tolist() == [2, -1, -1]
    with pytest.raises(InvalidArgumentError, match="1-D"):
        next_access_indices(np.zeros((2, 2), dtype=np.uint64))


def test_next_access_indices_match_a_dictionary_scan() -> None:
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 50, size=2000).astype(np.uint64)
    expected = [-1] * len(keys)
    last: dict[int, int] = {}
    for i in range(len(keys) - 1, -1, -1):
        expected[i] = last.get(int(keys[i]), -1)
        last[int(keys[i])] = i
    assert next_access_indices(keys).tolist() == expected


def test_oracle_writer_next_access_and_round_trip(tmp_path: Path) -> None:
    trace = requests([0, 1, 1, 5, 2**32 - 1, 9], [1, 2, 1, 3, 2, 1], [10, 20, 10, 30, 20, 10])
    path = tmp_path / "t.oracleGeneral.bin"
    assert write_oracle_general(path, [trace[:4], trace[4:]]) == 6
    assert path.stat().st_size == 6 * 24
    raw = np.frombuffer(path.read_bytes(), dtype=ORACLE_GENERAL_DTYPE)
    # On disk, libCacheSim's convention: next_access_vtime is 1-based, -1 for never.
    assert raw["next_access_vtime"].tolist() == [3, 5, 6, -1, -1, -1]
    assert raw["id"].tolist() == [1, 2, 1, 3, 2, 1]

    np.testing.assert_array_equal(collect(read_oracle_general(path)), trace)
    pairs = list(read_oracle_general_with_next(path, chunk=4))
    assert [len(r) for r, _ in pairs] == [4, 2]
    nxt = np.concatenate([n for _, n in pairs])
    assert nxt.dtype == np.int64
    assert nxt.tolist() == [2, 4, 5, -1, -1, -1]
    np.testing.assert_array_equal(np.concatenate([r for r, _ in pairs]), trace)


def test_oracle_hand_written_file(tmp_path: Path) -> None:
    data = oracle_records(
        (7, 2**64 - 1, 4096, 3),
        (8, 5, 0, -1),
        (9, 2**64 - 1, 4096, 2**63 - 1),
    )
    path = write(tmp_path / "h.oracleGeneral", data)
    assert_requests(
        collect(read_oracle_general(path)),
        [7, 8, 9],
        [2**64 - 1, 5, 2**64 - 1],
        [
            4096,
            0,
            4096,
        ],
    )
    ((_, nxt),) = read_oracle_general_with_next(path)
    assert nxt.tolist() == [2, -1, -1]


@pytest.mark.parametrize("name", ["t.oracleGeneral.bin.xz", "t.oracleGeneral.gz"])
def test_oracle_compressed_round_trip(tmp_path: Path, name: str) -> None:
    trace = requests([1, 2, 3], [5, 5, 6], [1, 1, 1])
    path = tmp_path / name
    write_oracle_general(path, trace)
    np.testing.assert_array_equal(collect(read_oracle_general(path)), trace)


def test_oracle_writer_accepts_a_reader_and_empty_input(tmp_path: Path) -> None:
    lirs = write(tmp_path / "t.trace", b"1\n2\n1\n")
    out = tmp_path / "t.oracle.bin"
    assert write_oracle_general(out, read_lirs(lirs, chunk=2)) == 3
    ((got, nxt),) = read_oracle_general_with_next(out)
    assert_requests(got, [0, 1, 2], [1, 2, 1], [1, 1, 1])
    assert nxt.tolist() == [2, -1, -1]
    empty = tmp_path / "e.oracle.bin"
    assert write_oracle_general(empty, []) == 0
    assert empty.read_bytes() == b""
    assert list(read_oracle_general(empty)) == []


def test_oracle_writer_refuses_bad_input_and_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "t.oracle.bin"
    with pytest.raises(InvalidArgumentError, match=r"request 1 has time 4294967296.*u32"):
        write_oracle_general(path, requests([0, 2**32], [1, 2], [1, 1]))
    with pytest.raises(InvalidArgumentError, match="REQUEST_DTYPE"):
        write_oracle_general(path, np.arange(3, dtype=np.uint64))
    with pytest.raises(InvalidArgumentError, match="REQUEST_DTYPE"):
        write_oracle_general(path, [requests([0], [1], [1]), [1, 2, 3]])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError, match="directory"):
        write_oracle_general(tmp_path, requests([0], [1], [1]))
    assert list(tmp_path.iterdir()) == []


def test_oracle_writer_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "t.oracle.bin"
    write_oracle_general(path, requests([0, 1], [1, 2], [1, 1]))
    write_oracle_general(path, requests([0], [9], [1]))
    assert collect(read_oracle_general(path))["key"].tolist() == [9]
    assert [p.name for p in tmp_path.iterdir()] == ["t.oracle.bin"]


@pytest.mark.parametrize("extra", [1, 23])
def test_oracle_truncated_plain_file_fails_at_once(tmp_path: Path, extra: int) -> None:
    data = oracle_records((1, 1, 1, -1), (2, 2, 1, -1)) + b"\x00" * extra
    path = write(tmp_path / "t.oracleGeneral.bin", data)
    with pytest.raises(TraceFormatError, match=format_error(path, "byte offset 48")) as info:
        read_oracle_general(path)
    assert "not a multiple of 24" in str(info.value)
    with pytest.raises(TraceFormatError, match="byte offset 48"):
        read_oracle_general_with_next(path)


def test_oracle_truncated_compressed_file_fails_at_its_end(tmp_path: Path) -> None:
    data = oracle_records((1, 1, 1, -1), (2, 2, 1, -1), (3, 3, 1, -1)) + b"\x01" * 5
    path = write(tmp_path / "t.oracleGeneral.xz", data)
    chunks = read_oracle_general(path, chunk=2)
    assert next(chunks)["key"].tolist() == [1, 2]
    assert next(chunks)["key"].tolist() == [3]  # the whole records come first
    with pytest.raises(TraceFormatError, match=format_error(path, "byte offset 72")) as info:
        next(chunks)
    assert "multiple of 24" in str(info.value)


@pytest.mark.parametrize(
    ("next_vtimes", "record"),
    [
        ((0, -1), 0),  # 0 is no 1-based position
        ((1, -1), 0),  # points at itself
        ((-1, 1), 1),  # points backwards
        ((-5, -1), 0),
    ],
)
def test_oracle_bad_next_access_is_a_format_error(
    tmp_path: Path, next_vtimes: tuple[int, int], record: int
) -> None:
    data = oracle_records((0, 1, 1, next_vtimes[0]), (1, 1, 1, next_vtimes[1]))
    path = write(tmp_path / "t.oracleGeneral", data)
    assert len(collect(read_oracle_general(path))) == 2  # requests alone ignore the field
    with pytest.raises(
        TraceFormatError, match=format_error(path, f"byte offset {record * 24 + 16}")
    ) as info:
        list(read_oracle_general_with_next(path))
    assert f"record {record}" in str(info.value)


# ---------------------------------------------------------------------------------------
# open_trace, paths and arguments
# ---------------------------------------------------------------------------------------


def test_open_trace_dispatch(tmp_path: Path) -> None:
    lirs_gz = write(tmp_path / "a.trace.gz", b"3\n4\n")
    lirs = write(tmp_path / "a.trace", b"5\n")
    c2k = write(tmp_path / "a.trace.xz", be32(6, 7))
    cp_xz = write(tmp_path / "my_cloudphysics.csv.xz", CLOUDPHYSICS_ROWS.encode())
    cp = write(tmp_path / "CloudPhysics_IO.csv", CLOUDPHYSICS_ROWS.encode())
    og = write(tmp_path / "x.oracleGeneral.bin", oracle_records((1, 8, 2, -1)))
    og2 = write(tmp_path / "x.oracleGeneral", oracle_records((1, 9, 2, -1)))
    ob = write(tmp_path / "x.oracle.bin", oracle_records((1, 10, 2, -1)))
    assert collect(open_trace(lirs_gz))["key"].tolist() == [3, 4]
    assert collect(open_trace(str(lirs)))["key"].tolist() == [5]
    assert collect(open_trace(c2k))["key"].tolist() == [6, 7]
    assert collect(open_trace(cp_xz))["key"].tolist() == [7, 42, 2**64 - 1]  # reads only
    assert collect(open_trace(cp))["key"].tolist() == [7, 42, 2**64 - 1]
    assert collect(open_trace(og))["key"].tolist() == [8]
    assert collect(open_trace(og2))["key"].tolist() == [9]
    assert collect(open_trace(ob))["key"].tolist() == [10]
    assert [len(c) for c in open_trace(lirs_gz, chunk=1)] == [1, 1]


@pytest.mark.parametrize("name", ["data.csv", "t.bin", "trace.txt", "t.trace.bz2", "x"])
def test_open_trace_unknown_name_lists_formats(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, b"1\n")
    with pytest.raises(InvalidArgumentError, match="known formats") as info:
        open_trace(path)
    for hint in (".trace.gz", ".trace.xz", "cloudphysics", "oracleGeneral", "read_csv"):
        assert hint in str(info.value)


def test_zstd_is_refused_with_advice(tmp_path: Path) -> None:
    path = write(tmp_path / "x.oracleGeneral.zst", b"")
    with pytest.raises(InvalidArgumentError, match="zstd -d"):
        open_trace(path)


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.trace.gz"
    readers = [
        lambda: read_lirs(missing),
        lambda: read_cache2k(missing),
        lambda: read_cloudphysics(missing),
        lambda: read_csv(missing, 0, has_header=False),
        lambda: read_oracle_general(missing),
        lambda: read_oracle_general_with_next(missing),
        lambda: open_trace(missing),
    ]
    for call in readers:
        with pytest.raises(FileNotFoundError) as info:
            call()
        assert info.value.filename == str(missing.resolve())
        assert not isinstance(info.value, PredisError)


def test_directory_is_refused_clearly(tmp_path: Path) -> None:
    folder = tmp_path / "d.trace.gz"
    folder.mkdir()
    readers = [
        lambda: read_lirs(folder),
        lambda: read_cache2k(folder),
        lambda: read_cloudphysics(folder),
        lambda: read_csv(folder, 0, has_header=False),
        lambda: read_oracle_general(folder),
        lambda: read_oracle_general_with_next(folder),
        lambda: open_trace(folder),
    ]
    for call in readers:
        with pytest.raises(InvalidArgumentError, match=r"is a directory; expected a trace file"):
            call()


def test_paths_are_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "t.trace", b"1\nx\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TraceFormatError) as info:
        collect(read_lirs("t.trace"))
    assert info.value.path == (tmp_path / "t.trace").resolve()
    assert str(info.value).startswith(f"{(tmp_path / 't.trace').resolve()}: line 2:")


def test_bad_path_and_chunk_arguments(tmp_path: Path) -> None:
    path = write(tmp_path / "t.trace", b"1\n")
    for bad_chunk in (0, -1, 1.5, True, "2"):
        with pytest.raises(InvalidArgumentError, match="chunk"):
            read_lirs(path, chunk=bad_chunk)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"str or os\.PathLike"):
        read_lirs(3)  # type: ignore[arg-type]


def test_abandoned_reader_closes_its_file(tmp_path: Path) -> None:
    """Dropping a half-read reader closes the file (a ResourceWarning would fail the run)."""
    path = write(tmp_path / "t.trace.gz", b"1\n2\n3\n")
    chunks = read_lirs(path, chunk=1)
    assert next(chunks)["key"].tolist() == [1]
    chunks.close()
    csv_chunks = read_csv(write(tmp_path / "t.csv", b"k\n1\n2\n"), "k", chunk=1)
    assert next(csv_chunks)["key"].tolist() == [1]
    del csv_chunks


# ---------------------------------------------------------------------------------------
# The real traces, when ../shared/traces is present
# ---------------------------------------------------------------------------------------


def readme_counts(readme: Path) -> dict[str, tuple[int, bool]]:
    """{file: (requests, exact)} from the README's table: '26,311' exact, '~133k' approximate."""
    counts: dict[str, tuple[int, bool]] = {}
    for m in re.finditer(r"^\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|", readme.read_text(), re.M):
        name, text = m.group(1), m.group(2).replace(",", "")
        approx = text.startswith("~")
        number = re.fullmatch(r"~?(\d+(?:\.\d+)?)([kKmM]?)", text)
        assert number is not None, f"unparsed request count {m.group(2)!r} for {name}"
        scale = {"": 1, "k": 1_000, "m": 1_000_000}[number.group(2).lower()]
        counts[name] = (round(float(number.group(1)) * scale), approx)
    return counts


def test_real_traces_match_the_readme_counts() -> None:
    if not (SHARED_TRACES / "README.md").is_file():
        pytest.skip(f"the shared real traces are not present at {SHARED_TRACES}")
    counts = readme_counts(SHARED_TRACES / "README.md")
    assert {"lirs_multi2.trace.gz", "cache2k_web07.trace.xz", "cloudphysics_io.csv.xz"} <= set(
        counts
    )
    for name, (expected, approx) in counts.items():
        path = SHARED_TRACES / name
        got = sum(len(c) for c in open_trace(path))
        if "cloudphysics" in name:
            # The README counts every row; open_trace keeps reads only.
            reads = got
            got = sum(len(c) for c in read_cloudphysics(path, ops=None))
            writes = sum(len(c) for c in read_cloudphysics(path, ops=["2a"]))
            assert 0 < reads < got
            assert reads + writes == got, name
        if approx:
            assert abs(got - expected) <= 0.05 * expected, (name, got, expected)
        else:
            assert got == expected, (name, got, expected)

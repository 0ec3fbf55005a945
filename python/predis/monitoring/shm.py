"""The shared-memory stats block: a host process publishes its cache's counters into a
POSIX shared-memory segment, and the exporter sidecar reads them from another process.

**Why a publisher thread and not counters in shared memory.** The native core keeps its
counters in padded per-shard cache lines and sums them on read (``Cache.stats()``). A small
thread in the host copies that sum into the segment once per ``interval`` (default 1 s):
a few microseconds a second, nothing on the request path, and the core and its bindings stay
as they are. A scrape every 15 s or so never needs fresher numbers than one second old.

**Layout, version 2** (little-endian, 4096 bytes; the file is ``/dev/shm/predis-stats.<name>``,
mode 0600)::

    off  size  field
      0     8  magic            b"PRDSSTAT"
      8     4  version          u32 = 2
     12     4  block_size       u32 = 4096
     16     8  seq              u64, odd while the host writes (a seqlock)
     24     4  state            u32: 1 running, 2 closed (the host shut down cleanly)
     28     4  crc32            u32 over bytes [32, 4096)
     32     8  pid              u64, the host's pid
     40     8  pid_ns           u64, inode of the host's pid namespace
     48     8  start_ticks      u64, the host process's start time (/proc/<pid>/stat field 22)
     56     8  heartbeat_unix   i64 ns, wall clock of the last publish
     64     8  heartbeat_mono   i64 ns, CLOCK_MONOTONIC of the last publish
     72     8  interval_ns      u64, the publish period
     80    64  name             UTF-8, NUL-padded (the cache's label)
    144    16  backend          ASCII, NUL-padded
    160    16  policy           ASCII, NUL-padded
    176    16  predis_version   ASCII, NUL-padded
    192   136  counters         17 x u64 in the order of CACHE_FIELDS
    328     8  prefetch_present u64: 0 (no prefetcher) or 1
    336    48  prefetch         6 x u64 in the order of PREFETCH_FIELDS
    384     8  inference_seconds_total  f64
    392     8  n_buckets        u64, at most 16
    400   256  buckets          16 x (f64 upper bound, u64 cumulative count)
    656     8  latency_period   u64, 1 cache call in this many is timed (0: off)
    664  1944  op_latency       9 ops in the order of predis.op_latency.OPS, each 26 x u64
                                per-bucket counts (not cumulative; bounds in
                                predis.op_latency) then u64 sum of the timed durations, ns
   2608  1488  reserved         zero

Version 1 (1024 bytes, without the latency fields) is refused like any other version: the
host and the exporter must run the same layout.

A reader copies the whole block with one ``pread`` and accepts it only if the magic, version
and size match, ``seq`` is even, the CRC matches and every field is in range; a copy torn by
a concurrent publish fails the CRC and is read again.

**Is the host alive?** ``state`` says closed after a clean shutdown. Otherwise, when the
reader shares the host's pid namespace, the pid must exist with the same start time (so a
reused pid is not mistaken for the host); in any namespace the heartbeat must be younger
than three publish periods (at least 2 s).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import mmap
import os
import re
import stat
import struct
import threading
import time
import weakref
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from predis.errors import InvalidArgumentError, PredisError
from predis.op_latency import LATENCY_BOUNDS_S, OPS, OpLatency

if TYPE_CHECKING:
    from predis.cache import Cache

__all__ = [
    "BLOCK_SIZE",
    "CACHE_FIELDS",
    "MAGIC",
    "PREFETCH_FIELDS",
    "VERSION",
    "BlockReading",
    "PrefetchSnapshot",
    "StatsBlockError",
    "StatsPublisher",
    "list_blocks",
    "read_block",
    "segment_path",
    "shm_dir",
    "validate_block_name",
]

log = logging.getLogger("predis.monitoring")

MAGIC = b"PRDSSTAT"
VERSION = 2
BLOCK_SIZE = 4096
PREFIX = "predis-stats."
MAX_BUCKETS = 16
STATE_RUNNING = 1
STATE_CLOSED = 2

CACHE_FIELDS = (
    "hits",
    "misses",
    "inserts",
    "updates",
    "deletes",
    "evictions",
    "expirations",
    "items",
    "bytes_used",
    "capacity_bytes",
    "max_items",
    "bytes_reserved",
    "table_bytes",
    "events_logged",
    "events_dropped",
    "events_pending",
    "log_capacity",
)
PREFETCH_FIELDS = ("issued", "used", "wasted", "errors", "dropped", "inference_batches")

_HEAD = struct.Struct("<8sIIQII")  # magic, version, block_size, seq, state, crc
_BODY = struct.Struct(
    "<QQQqqQ64s16s16s16s" + "Q" * len(CACHE_FIELDS) + "Q" + "Q" * len(PREFETCH_FIELDS) + "dQ"
)
_BUCKET = struct.Struct("<dQ")
_BODY_OFF = 32
_BUCKETS_OFF = _BODY_OFF + _BODY.size
_LATENCY_OFF = _BUCKETS_OFF + MAX_BUCKETS * _BUCKET.size
_N_LAT = len(LATENCY_BOUNDS_S) + 1  # buckets per op, +Inf included
_LATENCY = struct.Struct("<Q" + ("Q" * _N_LAT + "Q") * len(OPS))
_END = _LATENCY_OFF + _LATENCY.size
if (
    _HEAD.size != _BODY_OFF
    or _BUCKETS_OFF != 400
    or _LATENCY_OFF != 656
    or _END != 2608
    or _END > BLOCK_SIZE
):
    raise ImportError("the stats block layout does not match its documentation")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_U64_MAX = 2**64 - 1


class StatsBlockError(PredisError):
    """A stats block is missing, unreadable, of another format, or corrupt."""


def validate_block_name(name: object) -> str:
    """A stats-block name: 1-63 characters of letters, digits, ``_`` and ``-``, starting
    with a letter or digit. It names the segment file and is the ``cache`` label."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = name[:80] if isinstance(name, str) else type(name).__name__
        raise InvalidArgumentError(
            f"invalid stats_shm name {shown!r}: use 1-63 characters of A-Z, a-z, 0-9, '_' "
            "and '-', starting with a letter or digit"
        )
    return name


def shm_dir() -> Path:
    """Where segments live: ``$PREDIS_SHM_DIR`` if set, else ``/dev/shm`` (POSIX shared
    memory on Linux)."""
    env = os.environ.get("PREDIS_SHM_DIR")
    # The POSIX shared-memory mount, not a temporary folder.
    path = Path(env) if env else Path("/dev/shm")  # noqa: S108  # nosec B108
    if not path.is_dir():
        raise StatsBlockError(
            f"shared-memory folder {path} does not exist; set PREDIS_SHM_DIR to a tmpfs "
            "folder both processes can reach"
        )
    return path


def segment_path(name: str) -> Path:
    """The segment file of stats block ``name``."""
    return shm_dir() / f"{PREFIX}{validate_block_name(name)}"


def _pid_ns() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _start_ticks(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), or 0 if unknown."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return 0
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return 0


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.rstrip(b"\0").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StatsBlockError(f"stats block field {what} is not UTF-8") from exc


def _pad(text: str, size: int) -> bytes:
    raw = text.encode("utf-8")[:size]
    return raw + b"\0" * (size - len(raw))


@dataclass(frozen=True)
class PrefetchSnapshot:
    """The prefetcher's counters as read from a stats block (the fields of the
    prefetcher's ``PrefetchStats``)."""

    issued: int
    used: int
    wasted: int
    errors: int
    dropped: int
    inference_batches: int
    inference_seconds_total: float
    inference_latency_buckets: tuple[tuple[float, int], ...]


@dataclass(frozen=True)
class BlockReading:
    """One validated copy of a stats block."""

    name: str
    state: int
    pid: int
    pid_ns: int
    start_ticks: int
    heartbeat_unix_ns: int
    heartbeat_monotonic_ns: int
    interval_ns: int
    backend: str
    policy: str
    predis_version: str
    stats: dict[str, int]
    prefetch: PrefetchSnapshot | None
    latency_period: int
    op_latency: dict[str, OpLatency]

    @property
    def stale_after_s(self) -> float:
        """Seconds without a heartbeat after which the host counts as gone."""
        return max(3 * self.interval_ns / 1e9, 2.0)

    def age_s(self) -> float:
        """Seconds since the last heartbeat (CLOCK_MONOTONIC is shared by all processes)."""
        return max(0.0, (time.monotonic_ns() - self.heartbeat_monotonic_ns) / 1e9)

    def host_alive(self) -> bool:
        """Whether the host that wrote the block still runs (see the module docs)."""
        if self.state != STATE_RUNNING:
            return False
        if self.pid_ns != 0 and self.pid_ns == _pid_ns():
            ticks = _start_ticks(self.pid)
            if ticks == 0 or ticks != self.start_ticks:
                return False
        return self.age_s() <= self.stale_after_s


def _encode(
    name: str,
    state: int,
    seq: int,
    ident: tuple[int, int, int],
    interval_ns: int,
    meta: tuple[str, str, str],
    stats: Any,
) -> bytes:
    counters = [min(max(int(getattr(stats, f)), 0), _U64_MAX) for f in CACHE_FIELDS]
    prefetch = getattr(stats, "prefetch", None)
    buckets: tuple[tuple[float, int], ...]
    if prefetch is None:
        pf_present, pf, pf_seconds, buckets = 0, [0] * len(PREFETCH_FIELDS), 0.0, ()
    else:
        pf_present = 1
        pf = [min(max(int(getattr(prefetch, f)), 0), _U64_MAX) for f in PREFETCH_FIELDS]
        pf_seconds = float(prefetch.inference_seconds_total)
        # More than MAX_BUCKETS: keep the highest bounds and +Inf (cumulative counts stay
        # right; the lowest bounds merge into the first kept bucket).
        buckets = tuple(prefetch.inference_latency_buckets)[-MAX_BUCKETS:]
    body = bytearray(BLOCK_SIZE - _BODY_OFF)
    _BODY.pack_into(
        body,
        0,
        ident[0],
        ident[1],
        ident[2],
        time.time_ns(),
        time.monotonic_ns(),
        interval_ns,
        _pad(name, 64),
        _pad(meta[0], 16),
        _pad(meta[1], 16),
        _pad(meta[2], 16),
        *counters,
        pf_present,
        *pf,
        pf_seconds,
        len(buckets),
    )
    for i, pair in enumerate(buckets):
        off = _BUCKETS_OFF - _BODY_OFF + i * _BUCKET.size
        _BUCKET.pack_into(body, off, float(pair[0]), int(pair[1]))
    latency = getattr(stats, "op_latency", None) or {}
    words = [min(max(int(getattr(stats, "latency_period", 0)), 0), _U64_MAX)]
    for op in OPS:
        h = latency.get(op)
        if h is None:
            words += [0] * (_N_LAT + 1)
        else:
            words += [min(max(int(c), 0), _U64_MAX) for c in h.counts]
            words.append(min(max(round(h.sum_seconds * 1e9), 0), _U64_MAX))
    _LATENCY.pack_into(body, _LATENCY_OFF - _BODY_OFF, *words)
    crc = zlib.crc32(body)
    return _HEAD.pack(MAGIC, VERSION, BLOCK_SIZE, seq, state, crc) + bytes(body)


def decode_block(raw: bytes, expected_name: str | None = None) -> BlockReading:
    """Validate and decode one copy of a block; :class:`StatsBlockError` if it is not a
    whole, consistent block of this version."""
    if len(raw) < BLOCK_SIZE:
        raise StatsBlockError(f"stats block is {len(raw)} bytes; version {VERSION} is {BLOCK_SIZE}")
    magic, version, size, seq, state, crc = _HEAD.unpack_from(raw, 0)
    if magic != MAGIC:
        raise StatsBlockError("not a predis stats block (bad magic)")
    if version != VERSION:
        raise StatsBlockError(
            f"stats block version {version} is not supported (this predis reads {VERSION}); "
            "run the same predis version in the host and the exporter"
        )
    if size != BLOCK_SIZE:
        raise StatsBlockError(
            f"stats block declares {size} bytes; version {VERSION} is {BLOCK_SIZE}"
        )
    if seq % 2:
        raise StatsBlockError("stats block is being written (odd sequence)")
    if zlib.crc32(raw[_BODY_OFF:BLOCK_SIZE]) != crc:
        raise StatsBlockError("stats block checksum mismatch (torn or corrupt)")
    if state not in (STATE_RUNNING, STATE_CLOSED):
        raise StatsBlockError(f"stats block has an unknown state {state}")
    v = _BODY.unpack_from(raw, _BODY_OFF)
    pid, pid_ns, ticks, hb_unix, hb_mono, interval_ns = v[:6]
    name = _text(v[6], "name")
    if not _NAME.fullmatch(name):
        raise StatsBlockError(f"stats block holds an invalid name {name[:80]!r}")
    if expected_name is not None and name != expected_name:
        raise StatsBlockError(f"stats block names {name!r}, expected {expected_name!r}")
    backend, policy, pversion = (
        _text(v[i], f) for i, f in ((7, "backend"), (8, "policy"), (9, "version"))
    )
    n = len(CACHE_FIELDS)
    stats = dict(zip(CACHE_FIELDS, v[10 : 10 + n], strict=True))
    pf_present = v[10 + n]
    pf_counts = v[11 + n : 11 + n + len(PREFETCH_FIELDS)]
    pf_seconds, n_buckets = v[-2], v[-1]
    if not 0 < interval_ns <= 3600 * 10**9:
        raise StatsBlockError(f"stats block has an invalid publish interval {interval_ns} ns")
    prefetch = None
    if pf_present not in (0, 1):
        raise StatsBlockError("stats block has an invalid prefetch flag")
    if pf_present:
        if n_buckets > MAX_BUCKETS:
            raise StatsBlockError(f"stats block declares {n_buckets} buckets (max {MAX_BUCKETS})")
        buckets = tuple(
            _BUCKET.unpack_from(raw, _BUCKETS_OFF + i * _BUCKET.size) for i in range(n_buckets)
        )
        bounds = [b for b, _ in buckets]
        counts = [c for _, c in buckets]
        if (
            bounds != sorted(bounds)
            or counts != sorted(counts)
            or any(math.isnan(b) for b in bounds)
        ):
            raise StatsBlockError("stats block's latency buckets are not cumulative")
        if not math.isfinite(pf_seconds) or pf_seconds < 0:
            raise StatsBlockError("stats block's inference seconds are invalid")
        counts_by_field = dict(zip(PREFETCH_FIELDS, (int(x) for x in pf_counts), strict=True))
        prefetch = PrefetchSnapshot(
            **counts_by_field,
            inference_seconds_total=float(pf_seconds),
            inference_latency_buckets=tuple((float(b), int(c)) for b, c in buckets),
        )
    words = _LATENCY.unpack_from(raw, _LATENCY_OFF)
    latency_period = int(words[0])
    if latency_period > 1 << 30 or latency_period & (latency_period - 1):
        raise StatsBlockError(f"stats block has an invalid latency period {latency_period}")
    op_latency = {}
    for i, op in enumerate(OPS):
        chunk = words[1 + i * (_N_LAT + 1) : 1 + (i + 1) * (_N_LAT + 1)]
        op_latency[op] = OpLatency(tuple(int(c) for c in chunk[:-1]), chunk[-1] / 1e9)
    return BlockReading(
        name=name,
        state=state,
        pid=pid,
        pid_ns=pid_ns,
        start_ticks=ticks,
        heartbeat_unix_ns=hb_unix,
        heartbeat_monotonic_ns=hb_mono,
        interval_ns=interval_ns,
        backend=backend,
        policy=policy,
        predis_version=pversion,
        stats=stats,
        prefetch=prefetch,
        latency_period=latency_period,
        op_latency=op_latency,
    )


def read_block(name: str, retries: int = 8) -> BlockReading:
    """Read and validate stats block ``name``; :class:`StatsBlockError` if it is missing or
    invalid. Copies torn by a concurrent publish are read again up to ``retries`` times."""
    path = segment_path(name)
    try:
        # O_NONBLOCK: opening a FIFO planted under the name must not hang the reader.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise StatsBlockError(f"no stats block {name!r} ({path} does not exist)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StatsBlockError(f"{path} is a symbolic link; refused") from None
        raise StatsBlockError(f"stats block {name!r} cannot be opened: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StatsBlockError(f"{path} is not a regular file")
        last: StatsBlockError | None = None
        for _ in range(max(1, retries)):
            raw = os.pread(fd, BLOCK_SIZE, 0)
            try:
                return decode_block(raw, expected_name=name)
            except StatsBlockError as exc:
                last = exc
                if "sequence" not in str(exc) and "checksum" not in str(exc):
                    raise
                time.sleep(0.0005)
        raise last if last is not None else StatsBlockError(f"stats block {name!r} unread")
    finally:
        os.close(fd)


def list_blocks() -> list[str]:
    """Names of the stats blocks present in the shared-memory folder, sorted."""
    names = []
    for entry in os.scandir(shm_dir()):
        if entry.name.startswith(PREFIX):
            name = entry.name[len(PREFIX) :]
            if _NAME.fullmatch(name) and entry.is_file(follow_symlinks=False):
                names.append(name)
    return sorted(names)


class StatsPublisher:
    """Copies a cache's ``stats()`` into stats block ``name`` every ``interval`` seconds.

    Created by ``Cache(..., stats_shm=name)``. The thread holds the cache only weakly: when
    the cache is collected, or at interpreter exit, the block is marked closed and its
    segment removed. A block left by a host that died is taken over; one whose host still
    runs is refused.
    """

    def __init__(self, cache: Cache, name: str, interval: float = 1.0) -> None:
        self.name = validate_block_name(name)
        if isinstance(interval, bool) or not isinstance(interval, (int, float)):
            raise InvalidArgumentError("stats_shm interval must be a number of seconds")
        if not 0.01 <= interval <= 3600:
            raise InvalidArgumentError(
                f"stats_shm interval must be in [0.01, 3600] seconds, got {interval}"
            )
        self.interval = float(interval)
        self.path = segment_path(self.name)
        self._ident = (os.getpid(), _pid_ns(), _start_ticks(os.getpid()))
        self._meta = (str(cache.backend), str(cache.policy), _predis_version())
        self._seq = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.publish_errors = 0
        self._map = self._open()
        self._cache_ref = weakref.ref(cache)
        self.publish(cache)
        self._thread = threading.Thread(
            target=self._run, name=f"predis-stats-{self.name}", daemon=True
        )
        self._thread.start()
        self._finalizer = weakref.finalize(cache, StatsPublisher._shutdown, self._stop, self)

    def _open(self) -> mmap.mmap:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags | os.O_EXCL, 0o600)
        except FileExistsError:
            self._check_takeover()
            try:
                fd = os.open(self.path, flags & ~os.O_CREAT)
            except OSError as exc:
                raise StatsBlockError(f"cannot open {self.path}: {exc.strerror}") from None
        except OSError as exc:
            raise StatsBlockError(f"cannot create {self.path}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                raise StatsBlockError(f"{self.path} is not a regular file owned by this user")
            os.fchmod(fd, 0o600)
            os.ftruncate(fd, BLOCK_SIZE)
            return mmap.mmap(fd, BLOCK_SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)

    def _check_takeover(self) -> None:
        try:
            old = read_block(self.name)
        except StatsBlockError:
            return  # unreadable or half-written: nobody can be using it
        if old.host_alive():
            raise InvalidArgumentError(
                f"stats_shm name {self.name!r} is in use by process {old.pid}; pick another name"
            )

    def publish(self, cache: Cache | None = None) -> None:
        """Write the cache's current counters into the block now."""
        cache = cache if cache is not None else self._cache_ref()
        if cache is None:
            return
        # The snapshot is taken under the lock: two publishers (the interval thread and a
        # caller) must write in the order they read, or a reader sees counters go back.
        with self._lock:
            if self._map.closed:
                return
            self._write(STATE_RUNNING, cache.stats())

    def _write(self, state: int, stats: Any) -> None:
        interval_ns = round(self.interval * 1e9)
        # seqlock: odd while the body changes; readers also check the CRC.
        self._seq += 1
        struct.pack_into("<Q", self._map, 16, self._seq)
        block = _encode(
            self.name, state, self._seq + 1, self._ident, interval_ns, self._meta, stats
        )
        self._map[_BODY_OFF:BLOCK_SIZE] = block[_BODY_OFF:]
        self._map[24:32] = block[24:32]
        self._map[0:16] = block[0:16]
        self._seq += 1
        struct.pack_into("<Q", self._map, 16, self._seq)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            cache = self._cache_ref()
            if cache is None:
                break
            try:
                self.publish(cache)
            except Exception:  # never let a publish error kill the thread or reach the host
                self.publish_errors += 1
                if self.publish_errors in (1, 10, 100, 1000):
                    log.exception("predis: publishing stats block %s failed", self.name)
            del cache

    @staticmethod
    def _shutdown(stop: threading.Event, publisher: StatsPublisher) -> None:
        stop.set()
        publisher._close()

    def _close(self) -> None:
        with self._lock:
            if self._map.closed:
                return
            with contextlib.suppress(Exception):
                # Mark closed first, so a reader that still has the file open sees up = 0.
                struct.pack_into("<I", self._map, 24, STATE_CLOSED)
                raw = bytes(self._map[:BLOCK_SIZE])
                crc = zlib.crc32(raw[_BODY_OFF:])
                struct.pack_into("<I", self._map, 28, crc)
            self._map.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def close(self) -> None:
        """Stop publishing, mark the block closed and remove its segment."""
        self._finalizer()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


def _predis_version() -> str:
    from predis import _core  # noqa: PLC0415 - avoids a cycle with predis/__init__

    return str(_core.build_info()["version"])

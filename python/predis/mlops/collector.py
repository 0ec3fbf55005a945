"""The production data collector: drains a cache's access-event ring into encrypted segments.

A background thread drains the ring in batches, hands each batch to subscribers (rolling
features, drift statistics) and buffers it; the buffer becomes a segment file
(:mod:`predis.mlops.segments`) when it holds ``segment_events`` events or its oldest event
has waited ``segment_age_s``. Retention deletes the oldest segments beyond
``retention_bytes`` or ``retention_age_s``. Before each write the free disk space is checked:
below ``min_free_bytes`` the batch is skipped and counted, never silently. Write errors are
logged with context and counted, and the batch is kept for the next attempt (up to four
segments' worth; beyond that the oldest events are dropped and counted). Nothing here can
raise into the host application's threads: the hot path only pushes into the ring.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from predis.access_log import EVENT_DTYPE
from predis.cache import Cache
from predis.errors import InvalidArgumentError, PredisError
from predis.mlops.segment_codec import check_level
from predis.mlops.segments import SEGMENT_SUFFIX, SegmentError, segment_info, write_segment
from predis.security.crypto import KeyRing
from predis.security.tokens import TokenStore
from predis.security.validation import safe_path, validate_customer_id

__all__ = ["Collector", "CollectorStats"]

log = logging.getLogger("predis.collector")

Subscriber = Callable[[np.ndarray], object]


@dataclass
class CollectorStats:
    """Counters since the collector was created."""

    events_drained: int = 0
    events_written: int = 0
    events_skipped_low_disk: int = 0
    events_dropped_after_errors: int = 0
    segments_written: int = 0
    bytes_written: int = 0
    segments_deleted: int = 0
    write_errors: int = 0
    subscriber_errors: int = 0
    temp_files_removed: int = 0
    events_unwritten_at_stop: int = 0
    ring_events_dropped: int = 0  # dropped by the cache's ring before the collector saw them


class Collector:
    """Drains ``cache``'s access log into sealed segment files under ``directory``.

    Example (synchronous use; :meth:`start` runs the same steps on a thread)::

        collector = Collector(cache, "/var/lib/predis/acme", "acme", KeyRing.from_environment())
        collector.drain_once()
        collector.flush()
    """

    def __init__(
        self,
        cache: Cache,
        directory: str | Path,
        customer: str,
        keys: KeyRing,
        *,
        segment_events: int = 1_000_000,
        segment_age_s: float = 60.0,
        retention_bytes: int | None = None,
        retention_age_s: float | None = None,
        min_free_bytes: int = 64 << 20,
        drain_batch: int = 1 << 16,
        interval_s: float = 0.05,
        compression_level: int = 1,
    ) -> None:
        self.customer = validate_customer_id(customer)
        # Checked here: a bad level would otherwise fail every write, counted but unseen.
        self.compression_level = check_level(compression_level)
        if segment_events < 1 or drain_batch < 1 or interval_s <= 0 or segment_age_s <= 0:
            raise InvalidArgumentError(
                "segment_events and drain_batch must be >= 1, segment_age_s and interval_s > 0"
            )
        if min_free_bytes < 0 or (retention_bytes is not None and retention_bytes < 1):
            raise InvalidArgumentError("min_free_bytes must be >= 0 and retention_bytes >= 1")
        self.cache = cache
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._name = re.compile(re.escape(self.customer) + r"-(\d{10})" + re.escape(SEGMENT_SUFFIX))
        # One collector per folder: two would number segments independently and overwrite
        # each other, and one's recovery would delete the other's files in progress.
        fd = os.open(self.directory / ".collector.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InvalidArgumentError(
                f"another collector is using {self.directory}; give each its own folder"
            ) from None
        # Released by close()/stop(), or when the collector is garbage-collected.
        self._release = weakref.finalize(self, os.close, fd)
        self._ring_dropped_at_start = cache.stats().events_dropped
        self.keys = keys
        self.segment_events = segment_events
        self.segment_age_s = segment_age_s
        self.retention_bytes = retention_bytes
        self.retention_age_s = retention_age_s
        self.min_free_bytes = min_free_bytes
        self.drain_batch = drain_batch
        self.interval_s = interval_s
        self._stats = CollectorStats()
        self._subscribers: list[Subscriber] = []
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._oldest: float | None = None  # monotonic time the oldest buffered event arrived
        self._lock = threading.RLock()
        # Held across drain-and-append: two drains racing for _lock would swap batches.
        self._drain_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = self._recover()

    # ---- life cycle ----

    def _recover(self) -> int:
        """Remove temporary files a crash left behind; continue the segment numbering."""
        seq = 0
        for p in self.directory.iterdir():
            if p.name.startswith(".") and p.name.endswith(".tmp"):
                p.unlink(missing_ok=True)
                self._stats.temp_files_removed += 1
                log.warning("removed a partial file left by a crash: %s", p)
            else:
                m = self._name.fullmatch(p.name)
                if m:
                    seq = max(seq, int(m.group(1)) + 1)
        return seq

    def start(self) -> Collector:
        """Start the background drain thread."""
        if self._thread is not None:
            raise InvalidArgumentError("collector already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="predis-collector", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread, drain what is left, write it, and release the folder. Events
        that still cannot be written are counted in ``events_unwritten_at_stop``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise PredisError(f"the collector thread did not stop within {timeout} s")
            self._thread = None
        while self.drain_once():
            pass
        self.flush()
        with self._lock:
            if self._buffered:
                self._stats.events_unwritten_at_stop += self._buffered
                log.error("%d events could not be written before stopping", self._buffered)
                self._buffer, self._buffered = [], 0
        self.close()

    def close(self) -> None:
        """Release the folder without draining (``stop()`` drains first)."""
        self._release()

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                drained = self.drain_once()
                self._maybe_rotate()
            except Exception:  # a bug here must not kill collection silently
                log.exception("collector step failed; continuing")
                drained = 0
            if drained < self.drain_batch:
                self._stop.wait(self.interval_s)

    # ---- subscribers ----

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(events)`` with every drained batch (an ``EVENT_DTYPE`` array).
        A callback that raises is logged and counted; collection goes on."""
        if not callable(callback):
            raise InvalidArgumentError("a subscriber must be callable(events)")
        with self._lock:
            self._subscribers.append(callback)

    def rotate_keys(self, keys: KeyRing) -> None:
        """Seal the segments written from now on with ``keys.current``.

        Rotation without a restart: give a ring whose first key is the new one and which
        still holds the old ones (readers need them until retention has removed every
        segment sealed with them). A segment being written keeps the key it started with.
        """
        if not isinstance(keys, KeyRing):
            raise InvalidArgumentError("rotate_keys needs a KeyRing")
        with self._lock:
            old = self.keys.current
            self.keys = keys
        log.info(
            "collector for %s: segments now sealed with key %r (was %r)",
            self.customer,
            keys.current,
            old,
        )

    # ---- draining and writing ----

    def drain_once(self) -> int:
        """Drain one batch from the ring; return how many events it held. Safe to call
        beside the background thread: drains are serialised, so batches keep their order."""
        with self._drain_lock:
            return self._drain_locked()

    def _drain_locked(self) -> int:
        events = self.cache.drain_events(self.drain_batch)
        if len(events) == 0:
            return 0
        with self._lock:
            self._stats.events_drained += len(events)
            for callback in self._subscribers:
                try:
                    callback(events)
                except Exception:
                    self._stats.subscriber_errors += 1
                    log.exception(
                        "subscriber %r failed on a batch of %d events", callback, len(events)
                    )
            if self._oldest is None:
                self._oldest = time.monotonic()
            self._buffer.append(events)
            self._buffered += len(events)
            if self._buffered >= self.segment_events:
                self._write_buffer(full_only=True)
        return len(events)

    def _maybe_rotate(self) -> None:
        with self._lock:
            if self._oldest is not None and time.monotonic() - self._oldest >= self.segment_age_s:
                self._write_buffer()

    def flush(self) -> None:
        """Write whatever is buffered now, as one or more segments."""
        with self._lock:
            self._write_buffer()

    def _write_buffer(self, full_only: bool = False) -> None:
        """Write the buffer as segments; with ``full_only``, keep a partial remainder."""
        while self._buffered and (not full_only or self._buffered >= self.segment_events):
            # The drained batches go to the encoder as they are: joining them would copy
            # every event once more, with the interpreter held.
            batch, rest = _split_parts(self._buffer, self.segment_events)
            if not self._write(batch):
                self._keep_for_retry()
                return
            self._buffer = rest
            self._buffered = sum(len(part) for part in rest)
        if not self._buffered:
            self._oldest = None
        self._apply_retention()

    def _keep_for_retry(self) -> None:
        limit = 4 * self.segment_events
        if self._buffered > limit:
            dropped = self._buffered - limit
            self._stats.events_dropped_after_errors += dropped
            log.error("dropping the %d oldest events after repeated write failures", dropped)
            self._buffer = _split_parts(self._buffer, dropped)[1]
            self._buffered = limit

    def _write(self, parts: list[np.ndarray]) -> bool:
        """True when the batch is done with: written, or skipped for low disk (and counted)."""
        count = sum(len(part) for part in parts)
        estimate = count * EVENT_DTYPE.itemsize + 4096
        try:
            free = shutil.disk_usage(self.directory).free
        except OSError as exc:
            self._stats.write_errors += 1
            log.error("cannot stat %s: %s", self.directory, exc)
            return False
        if free - estimate < self.min_free_bytes:
            self._stats.events_skipped_low_disk += count
            log.warning(
                "skipped %d events: %d bytes free in %s, below the %d-byte reserve",
                count,
                free,
                self.directory,
                self.min_free_bytes,
            )
            return True
        path = self.directory / f"{self.customer}-{self._seq:010d}{SEGMENT_SUFFIX}"
        try:
            size = write_segment(path, self.customer, parts, self.keys, self.compression_level)
        except Exception as exc:  # I/O, compression or encryption: count, log, retry later
            self._stats.write_errors += 1
            log.error("writing %d events to %s failed: %r", count, path, exc)
            return False
        self._seq += 1
        self._stats.segments_written += 1
        self._stats.events_written += count
        self._stats.bytes_written += size
        return True

    def _apply_retention(self) -> None:
        if self.retention_bytes is None and self.retention_age_s is None:
            return
        stats: dict[Path, os.stat_result] = {}
        for p in self.segments():
            try:
                stats[p] = p.stat()
            except FileNotFoundError:
                continue
        segments = sorted(stats)
        total = sum(st.st_size for st in stats.values())
        now = time.time()
        for p in segments[:-1]:  # never the newest
            too_big = self.retention_bytes is not None and total > self.retention_bytes
            age = now - stats[p].st_mtime
            too_old = self.retention_age_s is not None and age > self.retention_age_s
            if not (too_big or too_old):
                break
            p.unlink(missing_ok=True)
            total -= stats[p].st_size
            self._stats.segments_deleted += 1

    # ---- reading and export ----

    def segments(self) -> list[Path]:
        """This customer's segment files, oldest first."""
        # An exact name match: customer "acme" must never pick up "acme-eu"'s files.
        return sorted(
            p for p in self.directory.iterdir() if self._name.fullmatch(p.name) and p.is_file()
        )

    def stats(self) -> CollectorStats:
        """A copy of the counters."""
        with self._lock:
            self._stats.ring_events_dropped = (
                self.cache.stats().events_dropped - self._ring_dropped_at_start
            )
            return CollectorStats(
                **{f.name: getattr(self._stats, f.name) for f in fields(self._stats)}
            )

    def export(
        self,
        dest: str,
        start_ns: int,
        end_ns: int,
        *,
        token: str,
        tokens: TokenStore,
        export_root: str | Path,
    ) -> list[Path]:
        """Copy the sealed segments overlapping [start_ns, end_ns] into ``dest``.

        ``token`` must grant ``export`` for this customer. ``dest`` is resolved under
        ``export_root`` (no ``..``, no absolute escape, no symbolic link out, no device).
        Segments stay encrypted; whoever reads them needs the data key.
        """
        tokens.verify(token, "export", customer=self.customer)
        if start_ns > end_ns:
            raise InvalidArgumentError("export window: start_ns must not be after end_ns")
        root = safe_path(export_root, ".")
        target = safe_path(root, dest)
        copied = []
        with _contained_dir(root, target.relative_to(root)) as dir_fd:
            for p in self.segments():
                try:
                    info = segment_info(p)
                    t_min, t_max = int(info["t_min"]), int(info["t_max"])
                    if info.get("customer") != self.customer:
                        raise SegmentError(f"{p}: belongs to {info.get('customer')!r}")
                    if t_max < start_ns or t_min > end_ns:
                        continue
                    data = p.read_bytes()
                except FileNotFoundError:
                    continue  # retention removed it meanwhile
                except (SegmentError, KeyError, TypeError, ValueError) as exc:
                    log.error("export skips %s: %s", p, exc)
                    continue
                _write_at(dir_fd, p.name, data)
                copied.append(target / p.name)
        return copied


def _split_parts(parts: list[np.ndarray], n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(the first ``n`` events of ``parts``, the rest), as lists of arrays and views:
    nothing is copied. A view of a part's tail keeps the whole part alive until it is
    written; drained parts fill at least half their buffer (``Cache._drain_native``
    copies shorter ones), so that costs at most twice the buffered events."""
    head: list[np.ndarray] = []
    for i, part in enumerate(parts):
        if n <= 0:
            return head, parts[i:]
        if len(part) > n:
            head.append(part[:n])
            return head, [part[n:], *parts[i + 1 :]]
        head.append(part)
        n -= len(part)
    return head, []


@contextmanager
def _contained_dir(root: Path, rel: Path) -> Iterator[int]:
    """A handle on root/rel, opened one component at a time without following symbolic
    links, so a folder swapped for a link after the path check cannot redirect the writes."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    fd = os.open(root, flags)
    try:
        for part in rel.parts:
            with suppress(FileExistsError):
                os.mkdir(part, 0o700, dir_fd=fd)
            try:
                nxt = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                raise InvalidArgumentError(
                    f"export folder component {part!r} is not a plain folder"
                ) from exc
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def _write_at(dir_fd: int, name: str, data: bytes) -> None:
    """Atomically write ``name`` inside the folder ``dir_fd`` (temporary, fsync, rename)."""
    tmp = f".{name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.fsync(dir_fd)

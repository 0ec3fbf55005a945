"""`Cache`: the façade that host applications use.

The native table (``predis._core``) stores, evicts and validates; this class adds the
Pythonic surface, argument checks that are easier in Python, and the read-through loader.
"""

from __future__ import annotations

import logging
import math
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from predis import _core
from predis.access_log import EVENT_DTYPE
from predis.errors import (
    BackendFallbackWarning,
    BackendUnavailable,
    InvalidArgumentError,
    InvalidValueError,
    LoaderError,
)
from predis.gpu_stats import device_stats
from predis.op_latency import OpLatency, op_latencies
from predis.prefetch.base import Prefetcher
from predis.prefetch.learned import LearnedPrefetcher
from predis.prefetch.runtime import PrefetchRuntime
from predis.prefetch.stats import PrefetchStats

__all__ = ["BACKENDS", "POLICIES", "Cache", "CacheStats", "Key"]

log = logging.getLogger("predis")

Key = int | bytes | str
BytesLike = bytes | bytearray | memoryview
Keys = Sequence[Key] | np.ndarray

POLICIES = ("lru", "lfu")
BACKENDS = ("auto", "cpu", "cuda")
CLOCKS = ("monotonic", "manual")

_NS_PER_S = 1_000_000_000
_MAX_TTL_S = 100 * 365 * 24 * 3600  # a century; far beyond any sane TTL, far below 2**63 ns
_DEFAULT_MAX_VALUE = 1 << 20


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of a cache's counters. Counters are cumulative since creation."""

    hits: int
    misses: int
    inserts: int
    updates: int
    deletes: int
    evictions: int
    expirations: int
    items: int
    bytes_used: int
    capacity_bytes: int
    max_items: int
    bytes_reserved: int
    table_bytes: int
    events_logged: int
    events_dropped: int
    events_pending: int
    log_capacity: int
    prefetch: PrefetchStats | None = None  # None when the cache does not prefetch
    # Sampled call durations per operation type (see predis.op_latency); 1 call in
    # latency_period was timed (0: timing off).
    latency_period: int = 0
    op_latency: Mapping[str, OpLatency] = field(default_factory=dict)
    # backend "cuda" with NVML (the gpu extra): gpu_memory_used_bytes, gpu_memory_total_bytes,
    # gpu_utilization_percent, gpu_memory_utilization_percent. None otherwise (never zeros).
    gpu: dict[str, int] | None = None

    @property
    def hit_ratio(self) -> float:
        """hits / (hits + misses), or 0.0 before the first lookup."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


def _create_core(
    backend: str,
    capacity: int,
    items: int,
    max_value: int,
    policy: str,
    manual_clock: bool,
    log_capacity: int,
    sample_rate: float,
) -> _core.CoreCache:
    """The native table for ``backend``; ``"auto"`` tries CUDA, then falls back to the CPU."""
    args = (capacity, items, max_value, policy, manual_clock, log_capacity, sample_rate)
    if backend not in BACKENDS:
        raise InvalidArgumentError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        core = _core.CoreCache(backend, *args)  # "cuda" raises BackendUnavailable with why
        log.info("predis: using backend %r", backend)
        return core
    reason = _cuda_unusable_reason()
    if reason is None:
        try:
            core = _core.CoreCache("cuda", *args)
        except BackendUnavailable as exc:
            reason = str(exc)
        else:
            log.info("predis: backend 'auto' chose 'cuda'")
            return core
    message = f"predis: backend 'auto' fell back to 'cpu': {reason}"
    # Logged as a warning once per reason and process: a program that makes many caches
    # (a test suite, the demo's training) must not repeat the same line each time.
    with _fallback_lock:
        first = reason not in _fallbacks_logged
        _fallbacks_logged.add(str(reason))
    log.log(logging.WARNING if first else logging.DEBUG, message)
    warnings.warn(message, BackendFallbackWarning, stacklevel=3)
    return _core.CoreCache("cpu", *args)


_fallback_lock = threading.Lock()
_fallbacks_logged: set[str] = set()


def _cuda_unusable_reason() -> str | None:
    """Why CUDA cannot be used here (no CUDA in this build, no driver, no device), or None."""
    if not _core.build_info()["cuda"]:
        return (
            "this build of predis has no CUDA backend (built with PREDIS_CUDA=OFF or without nvcc)"
        )
    report = _core.cuda_devices()
    if not report["devices"]:
        return f"no usable CUDA device: {report['error']}"
    return None


def _bus_id(core: _core.CoreCache) -> str | None:
    """The PCI bus id of the cache's GPU (for NVML), or None for host backends."""
    index = int(core.device_index)
    if index < 0:
        return None
    for dev in _core.cuda_devices()["devices"]:
        if dev["index"] == index:
            return str(dev["pci_bus_id"])
    return None


class _Flight:
    """One in-progress load, shared by every caller that misses on the same key."""

    __slots__ = ("done", "error", "prefetch", "value")

    def __init__(self, prefetch: bool = False) -> None:
        self.prefetch = prefetch  # a prefetch's failure is not the waiting caller's
        self.done = threading.Event()
        self.value: bytes | None = None
        self.error: BaseException | None = None


def _check_int(name: str, value: object, minimum: int, maximum: int = 2**64 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgumentError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be at least {minimum}, got {value}")
    if value > maximum:
        raise InvalidArgumentError(f"{name} must be at most {maximum}, got {value}")
    return int(value)


def _ttl_ns(ttl: object, name: str = "ttl") -> int:
    """Seconds (int or float, > 0) to nanoseconds; None means no expiry (0)."""
    if ttl is None:
        return 0
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError(f"{name} must be a number of seconds, got {type(ttl).__name__}")
    seconds = float(ttl)
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidArgumentError(
            f"{name} must be a positive, finite number of seconds, got {ttl}"
        )
    if seconds > _MAX_TTL_S:
        raise InvalidArgumentError(f"{name} must be at most {_MAX_TTL_S} seconds (100 years)")
    return max(1, round(seconds * _NS_PER_S))


def _identity(key: Key) -> Key:
    """The key as the table sees it: str and its UTF-8 bytes are the same key."""
    return key.encode("utf-8") if isinstance(key, str) else key


class Cache:
    """An in-process key-value cache with byte-counted capacity.

    Args:
        capacity_bytes: the most bytes of entries kept (values, bytes keys and a small
            header, rounded up to the arena's size class). At least 1024.
        max_items: the most entries kept. Defaults to ``capacity_bytes // 128``; raise it
            for small values. The table is sized from it.
        policy: ``"lru"`` or ``"lfu"``: which entry leaves first when space runs out.
        ttl: default time-to-live in seconds for entries put without one; None: no expiry.
        loader: called as ``loader(key)`` on a miss in :meth:`get` and :meth:`mget`; its
            bytes-like result is stored and returned (None means "no such key"). Concurrent
            misses on one key call it once. Its exceptions reach the caller as
            :class:`~predis.LoaderError`.
        backend: ``"cuda"`` (the table and values in GPU memory; raises
            :class:`~predis.BackendUnavailable` with the reason where no CUDA device can be
            used), ``"cpu"``, or ``"auto"``: CUDA when a device is usable, else the CPU with
            a :class:`~predis.BackendFallbackWarning`. :attr:`backend` says which it is.
        max_value_size: the longest value accepted, in bytes. Default: 1 MiB, or half the
            capacity if that is smaller.
        clock: ``"monotonic"`` (real time) or ``"manual"`` (time moves only through
            :meth:`advance_time`; for trace replay and tests).
        access_log_capacity: slots in the access-event ring (rounded up to a power of two).
        sample_rate: fraction of accesses logged to the ring, in [0, 1]. Prefetching
            needs every access: with ``prefetch`` it must be 1.
        prefetch: turn on the learned prefetcher with its defaults (it watches the first
            50,000 requests, trains its model in the background, then prefetches through
            ``loader``). Needs a ``loader``. Only int keys are learned and prefetched.
        prefetcher: a configured :class:`~predis.prefetch.Prefetcher` (for example a
            :class:`~predis.prefetch.LearnedPrefetcher` with a trained model); implies
            ``prefetch``.
        prefetch_options: keyword arguments for the
            :class:`~predis.prefetch.runtime.PrefetchRuntime` (workers, queue_size,
            max_loads_per_s, interval_s, train_after, train_config, ...).
        stats_shm: publish the counters once a second into the shared-memory stats block of
            this name (1-63 letters, digits, ``_``, ``-``), for ``predis exporter`` to read
            from another process; see ``docs/monitoring.md``. None: no block.
        latency_sampling: time 1 call in this many (per counter shard) into the per-operation
            latency histograms of :meth:`stats` (``predis.op_latency``): 0 (off) or a power
            of two up to 2**30. Settable later.

    Example:
        >>> import predis
        >>> cache = predis.Cache(capacity_bytes=1 << 20)
        >>> cache.put(1, b"one")
        >>> cache.get(1)
        b'one'
        >>> cache.mget([1, 2])
        [b'one', None]
    """

    def __init__(
        self,
        capacity_bytes: int,
        max_items: int | None = None,
        policy: str = "lru",
        ttl: float | None = None,
        loader: Callable[[Key], BytesLike | None] | None = None,
        backend: str = "auto",
        *,
        max_value_size: int | None = None,
        clock: str = "monotonic",
        access_log_capacity: int = 1 << 16,
        sample_rate: float = 1.0,
        prefetch: bool = False,
        prefetcher: Prefetcher | None = None,
        prefetch_options: dict[str, Any] | None = None,
        stats_shm: str | None = None,
        latency_sampling: int = _core.DEFAULT_LATENCY_PERIOD,
    ) -> None:
        capacity = _check_int("capacity_bytes", capacity_bytes, 1024)
        if max_items is None:
            items = max(16, capacity // 128)
        else:
            items = _check_int("max_items", max_items, 1)
        if policy not in POLICIES:
            raise InvalidArgumentError(f"policy must be one of {POLICIES}, got {policy!r}")
        if clock not in CLOCKS:
            raise InvalidArgumentError(f"clock must be one of {CLOCKS}, got {clock!r}")
        if loader is not None and not callable(loader):
            raise InvalidArgumentError("loader must be callable (key) -> bytes-like or None")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)):
            raise InvalidArgumentError("sample_rate must be a number in [0, 1]")
        if max_value_size is None:
            max_value = min(_DEFAULT_MAX_VALUE, capacity // 2)
        else:
            max_value = _check_int("max_value_size", max_value_size, 0)
        self._default_ttl_ns = _ttl_ns(ttl)
        self._loader = loader
        self._inflight: dict[Key, _Flight] = {}
        self._inflight_lock = threading.Lock()
        self._core = _create_core(
            backend,
            capacity,
            items,
            max_value,
            policy,
            clock == "manual",
            _check_int("access_log_capacity", access_log_capacity, 2),
            float(sample_rate),
        )
        self.latency_sampling = latency_sampling
        # Fixed for the table's life; kept here so the drain paths (the collector, the
        # prefetch loop) need not build a whole stats() dict to read them.
        fixed = self._core.stats()
        self._capacity_bytes = int(fixed["capacity_bytes"])
        self._max_items = int(fixed["max_items"])
        self._log_capacity = int(fixed["log_capacity"])
        self._gpu_bus_id = _bus_id(self._core)
        self.policy = policy
        self.default_ttl = ttl
        self._prefetch: PrefetchRuntime | None = None  # set before the publisher reads stats
        self._leftover_events = np.empty(0, dtype=EVENT_DTYPE)
        self._stats_publisher: object | None = None
        if stats_shm is not None:
            from predis.monitoring.shm import StatsPublisher  # noqa: PLC0415 - only when asked

            self._stats_publisher = StatsPublisher(self, stats_shm)
        if prefetch or prefetcher is not None:
            self._start_prefetch(prefetcher, sample_rate, prefetch_options or {})

    def _start_prefetch(
        self, prefetcher: Prefetcher | None, sample_rate: float, options: dict[str, Any]
    ) -> None:
        if self._loader is None:
            raise InvalidArgumentError("prefetching loads through the loader: pass loader=")
        if sample_rate != 1.0:
            raise InvalidArgumentError(
                "the prefetcher must see every access: sample_rate must be 1"
            )
        if prefetcher is not None and not isinstance(prefetcher, Prefetcher):
            raise InvalidArgumentError("prefetcher must be a predis.prefetch.Prefetcher")
        if not isinstance(options, dict):
            raise InvalidArgumentError("prefetch_options must be a dict")
        chosen = prefetcher if prefetcher is not None else LearnedPrefetcher()
        try:
            self._prefetch = PrefetchRuntime(self, chosen, **options)
        except TypeError as exc:
            raise InvalidArgumentError(f"bad prefetch_options: {exc}") from exc
        log.info("predis: prefetching with %s", type(chosen).__name__)

    @property
    def prefetch_runtime(self) -> PrefetchRuntime | None:
        """The live prefetch loop, or None when the cache does not prefetch."""
        return self._prefetch

    def close(self) -> None:
        """Stop background work (the prefetch loop and its loads, the stats-block
        publisher). The cache stays usable as a plain cache."""
        runtime = self._prefetch
        if runtime is not None:
            runtime.close()
            self._prefetch = None
            # Events its loop drained and nobody took yet stay available to drain_events.
            self._leftover_events = runtime.take_events(1 << 62)
        publisher = self._stats_publisher
        if publisher is not None:
            self._stats_publisher = None
            publisher.close()  # type: ignore[attr-defined]

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- properties ----

    @property
    def backend(self) -> str:
        """The backend in use: ``"cpu"`` or ``"cuda"`` (what ``"auto"`` chose)."""
        return str(self._core.backend)

    @property
    def capacity_bytes(self) -> int:
        """The capacity in bytes."""
        return self._capacity_bytes

    @property
    def max_items(self) -> int:
        """The most entries kept."""
        return self._max_items

    @property
    def sample_rate(self) -> float:
        """Fraction of accesses logged to the access-event ring; settable."""
        return float(self._core.sample_rate)

    @sample_rate.setter
    def sample_rate(self, rate: float) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise InvalidArgumentError("sample_rate must be a number in [0, 1]")
        if self._prefetch is not None and rate != 1.0:
            raise InvalidArgumentError(
                "the prefetcher must see every access: close() it before lowering sample_rate"
            )
        self._core.sample_rate = float(rate)

    @property
    def latency_sampling(self) -> int:
        """1 call in this many is timed into the latency histograms (0: off); settable."""
        return int(self._core.latency_period)

    @latency_sampling.setter
    def latency_sampling(self, period: int) -> None:
        if isinstance(period, bool) or not isinstance(period, int):
            raise InvalidArgumentError(
                f"latency_sampling must be an int (0 or a power of two), got {period!r}"
            )
        if period < 0 or period > 1 << 30 or period & (period - 1):
            raise InvalidArgumentError(
                f"latency_sampling must be 0 (off) or a power of two up to 2**30, got {period}"
            )
        self._core.latency_period = period

    # ---- single keys ----

    def get(self, key: Key, default: Any = None) -> Any:
        """The value for ``key`` as bytes, or ``default`` on a miss (after the loader, if any)."""
        value = self._core.get(key)
        if value is not None:
            return value
        if self._loader is None:
            return default
        loaded = self._load(key)
        return default if loaded is None else loaded

    def put(self, key: Key, value: BytesLike, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``; ``ttl`` seconds overrides the cache's default."""
        ttl_ns = self._default_ttl_ns if ttl is None else _ttl_ns(ttl)
        self._core.put(key, value, ttl_ns)

    def put_prefetched(
        self, key: Key, value: BytesLike, confidence: float, ttl: float | None = None
    ) -> None:
        """Store a value loaded ahead of demand, with the loader's ``confidence`` in [0, 1]
        that it will be asked for. It ranks for eviction as if last used
        ``(1 - confidence) * (len(cache) + 1)`` operations ago (under LFU, as a fresh entry
        with that older tick), so a weak guess leaves first. It never replaces a live entry
        (the host may have stored a newer value while the loader ran): then nothing is
        stored. A stored value is logged as a ``PREFETCH`` access event.
        """
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
            raise InvalidArgumentError(f"confidence must be a number in [0, 1], got {confidence!r}")
        ttl_ns = self._default_ttl_ns if ttl is None else _ttl_ns(ttl)
        self._core.put_prefetched(key, value, ttl_ns, float(confidence))

    def delete(self, key: Key) -> bool:
        """Remove ``key``; True if it was present."""
        return bool(self._core.erase(key))

    def contains(self, key: Key) -> bool:
        """Whether ``key`` is present (and not expired). Does not count as an access."""
        return bool(self._core.contains(key))

    def clear(self) -> None:
        """Remove every entry. Counters are kept."""
        self._core.clear()

    def __contains__(self, key: object) -> bool:
        return bool(self._core.contains(key))

    def __len__(self) -> int:
        return len(self._core)

    def __getitem__(self, key: Key) -> bytes:
        value: bytes | None = self.get(key, None)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: Key, value: BytesLike) -> None:
        self.put(key, value)

    def __delitem__(self, key: Key) -> None:
        if not self._core.erase(key):
            raise KeyError(key)

    def __repr__(self) -> str:
        s = self._core.stats()
        return (
            f"Cache(backend={self.backend!r}, policy={self.policy!r}, items={s['items']}, "
            f"bytes_used={s['bytes_used']}, capacity_bytes={s['capacity_bytes']})"
        )

    # ---- batches ----

    def mget(self, keys: Keys) -> list[bytes | None]:
        """Values for ``keys`` (a sequence, or a 1-D uint64/int64 array); None for misses.

        With a loader, misses are loaded (and stored) before returning.
        """
        values: list[bytes | None] = self._core.mget(keys)
        if self._loader is not None:
            for i, value in enumerate(values):
                if value is None:
                    key = keys[i]
                    values[i] = self._load(int(key) if isinstance(key, np.integer) else key)
        return values

    def mget_arrays(self, keys: Keys) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Values for ``keys`` as ``(offsets, data, found)`` arrays; the loader is not called.

        ``offsets`` (n+1, int64): value i is ``data[offsets[i]:offsets[i+1]]``.
        ``data`` (uint8): found values back to back. ``found`` (n, bool).
        """
        return self._core.mget_arrays(keys)

    def get_into(self, keys: Keys, out: np.ndarray) -> np.ndarray:
        """Copy values for ``keys`` into rows of ``out`` (n, width) uint8; return ``found``.

        Shorter values are zero-padded; rows of misses are zeroed. A value longer than
        ``width`` raises :class:`~predis.ValueTooLargeError` once the batch has run: no
        entry is added, changed or removed by it, but its lookups count as accesses (hits,
        misses, recency, access events) and ``out`` holds the rows that fit. Lengths are
        only known by looking up, so checking first would cost a second pass on every call.
        The loader is not called.
        """
        return self._core.get_into(keys, out)

    def mput(
        self, keys: Keys, values: Sequence[BytesLike] | np.ndarray, ttl: float | None = None
    ) -> None:
        """Store many entries: ``values`` is a sequence of bytes-like objects, or a 2-D
        C-contiguous uint8 array with one row per key. Every key and value is checked
        before anything is stored."""
        ttl_ns = self._default_ttl_ns if ttl is None else _ttl_ns(ttl)
        self._core.mput(keys, values, ttl_ns)

    def mdelete(self, keys: Keys) -> np.ndarray:
        """Remove ``keys``; return a bool array, True where the key was present."""
        return self._core.mdelete(keys)

    def mcontains(self, keys: Keys) -> np.ndarray:
        """A bool array: which of ``keys`` are present. Does not count as accesses."""
        return self._core.contains_many(keys)

    # ---- stats, access log, clock ----

    def stats(self) -> CacheStats:
        """A snapshot of the counters (with ``prefetch`` counters when prefetching)."""
        runtime = self._prefetch
        raw = self._core.stats()
        latency = op_latencies(raw.pop("latency"))
        gpu = device_stats(self._gpu_bus_id) if self._gpu_bus_id else None
        return CacheStats(
            **raw,
            prefetch=None if runtime is None else runtime.stats(),
            op_latency=latency,
            gpu=gpu,
        )

    def drain_events(self, max_events: int | None = None) -> np.ndarray:
        """Pop up to ``max_events`` logged access events (default: the ring's capacity)
        as a structured array of :data:`predis.access_log.EVENT_DTYPE`, oldest first."""
        capacity = self._log_capacity
        # The ring never holds more than its capacity, so a larger request changes nothing.
        limit = capacity if max_events is None else _check_int("max_events", max_events, 0)
        limit = min(limit, capacity)
        runtime = self._prefetch
        if runtime is not None:  # its loop drains the ring and keeps the events for us
            return runtime.take_events(limit)
        leftover = self._leftover_events
        if len(leftover):  # drained by a closed prefetch loop: oldest first
            self._leftover_events = leftover[limit:]
            if len(leftover) >= limit:
                return leftover[:limit]
            return np.concatenate([leftover, self._drain_native(limit - len(leftover))])
        return self._drain_native(limit)

    def _drain_native(self, limit: int | None = None) -> np.ndarray:
        if limit is None:
            limit = self._log_capacity
        out = np.empty(limit, dtype=EVENT_DTYPE)
        n = self._core.drain_events_into(out)
        # A short view would keep the whole buffer alive while its events wait in a queue
        # (the prefetch loop's, a collector's segment buffer): copy it out instead.
        return out[:n] if 2 * n >= limit else out[:n].copy()

    def advance_time(self, seconds: float) -> None:
        """Move a ``clock="manual"`` cache's clock forward by ``seconds`` (> 0)."""
        if seconds is None:
            raise InvalidArgumentError("seconds must be a positive, finite number of seconds")
        self._core.advance_time(_ttl_ns(seconds, "seconds"))

    def footprint(self, key: Key, value_len: int) -> int:
        """Bytes of capacity that ``key`` with a value of ``value_len`` bytes takes.

        Int keys with values of at most 8 bytes are stored inline in the table and take 16;
        other entries take their record (8-byte header, bytes key, value) rounded up to the
        arena's size class.
        """
        return int(self._core.footprint(key, _check_int("value_len", value_len, 0, 2**32 - 1)))

    # ---- read-through ----

    def _prefetch_load(self, key: Key, confidence: float) -> bool:
        """Load ``key`` ahead of demand and store it as prefetched; True if stored. A key
        already cached or already being loaded (by a demand miss) is left alone."""
        ident = _identity(key)
        with self._inflight_lock:
            if ident in self._inflight:
                return False
            flight = _Flight(prefetch=True)
            self._inflight[ident] = flight
        try:
            if self._core.contains(key):
                return False
            loaded = self._loader(key)  # type: ignore[misc]
            if loaded is None:
                return False
            if not isinstance(loaded, (bytes, bytearray, memoryview)):
                raise InvalidValueError(
                    f"loader returned {type(loaded).__name__}; it must return bytes-like or None"
                )
            value = bytes(loaded)
            self.put_prefetched(key, value, confidence)
            flight.value = value
            return True
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._inflight_lock:
                del self._inflight[ident]
            flight.done.set()

    def _load(self, key: Key) -> bytes | None:
        ident = _identity(key)
        with self._inflight_lock:
            flight = self._inflight.get(ident)
            leader = flight is None
            if flight is None:
                flight = _Flight()
                self._inflight[ident] = flight
        if not leader:
            flight.done.wait()
            if flight.prefetch and (flight.error is not None or flight.value is None):
                # The prefetch failed, or stored nothing (the key was cached meanwhile, or
                # the loader said "no such key"): load on our own account.
                return self._load(key)
            if flight.error is not None:
                raise LoaderError(
                    key, f"loader failed for key {key!r}: {flight.error!r}"
                ) from flight.error
            return flight.value
        try:
            # Another leader may have stored it between our miss and taking the flight; check
            # without counting, so that one miss is not counted (and logged) twice.
            value = self._core.get(key) if self._core.contains(key) else None
            if value is None:
                loaded = self._loader(key)  # type: ignore[misc]
                if loaded is not None:
                    if not isinstance(loaded, (bytes, bytearray, memoryview)):
                        kind = type(loaded).__name__
                        raise InvalidValueError(
                            f"loader returned {kind}; it must return bytes-like or None"
                        )
                    value = bytes(loaded)
                    self.put(key, value)
            flight.value = value
            return value
        except BaseException as exc:
            flight.error = exc
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise LoaderError(key, f"loader failed for key {key!r}: {exc!r}") from exc
        finally:
            with self._inflight_lock:
                del self._inflight[ident]
            flight.done.set()

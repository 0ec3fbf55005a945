"""Training data for the prefetch model: demand keys from access events or segments.

The model learns from the sequence of demand requests. The access log carries more (puts,
deletes, the prefetcher's own stores, bytes keys as hashes); only demand ``get`` events of
int keys describe what the application asked for, in order.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from predis.access_log import EVENT_DTYPE, GET, INT_KEY
from predis.errors import InvalidArgumentError
from predis.mlops.segments import read_segment
from predis.security.crypto import KeyRing

__all__ = ["demand_keys", "keys_from_segments"]


def demand_keys(events: np.ndarray) -> np.ndarray:
    """The keys of the demand ``get`` events of int keys, oldest first.

    Example:
        >>> from predis.access_log import AccessOp
        >>> ev = np.zeros(3, dtype=EVENT_DTYPE)
        >>> ev["key"] = [5, 6, 7]
        >>> ev["op"] = [AccessOp.GET, AccessOp.PREFETCH, AccessOp.GET]
        >>> demand_keys(ev).tolist()
        [5, 7]
    """
    if not isinstance(events, np.ndarray) or events.dtype != EVENT_DTYPE:
        raise InvalidArgumentError("events must be an EVENT_DTYPE array (Cache.drain_events())")
    mask = (events["op"] == GET) & (events["key_kind"] == INT_KEY)
    return np.ascontiguousarray(events["key"][mask])


def keys_from_segments(paths: Iterable[str | os.PathLike[str]], keys: KeyRing) -> np.ndarray:
    """Demand keys from the collector's sealed segments, in time order.

    Each segment is authenticated and checked (see :func:`predis.mlops.segments.read_segment`);
    a damaged or foreign one raises :class:`~predis.mlops.segments.SegmentError`.
    """
    parts: list[tuple[int, int, np.ndarray]] = []
    for i, path in enumerate(paths):
        header, events = read_segment(path, keys)
        parts.append((int(header.get("t_min", 0)), i, demand_keys(events)))
    parts.sort(key=lambda t: (t[0], t[1]))
    if not parts:
        return np.empty(0, dtype=np.uint64)
    return np.concatenate([p[2] for p in parts])

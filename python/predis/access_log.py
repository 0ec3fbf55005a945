"""The access-event record that the cache logs, as a numpy structured dtype.

The layout mirrors ``predis::AccessEvent`` in ``csrc/predis/access_log.hpp`` (24 bytes).
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = ["EVENT_DTYPE", "GET", "INT_KEY", "PREFETCH", "AccessOp", "KeyKind"]

EVENT_DTYPE = np.dtype(
    [
        ("key", "<u8"),  # the int key, or the 64-bit hash of a bytes/str key
        ("timestamp_ns", "<u8"),  # the cache's clock
        ("value_size", "<u4"),  # bytes read or written; 0 on a miss
        ("op", "u1"),  # AccessOp
        ("hit", "u1"),  # 1 when the key was present (get, delete) or replaced (put)
        ("key_kind", "u1"),  # KeyKind
        ("reserved", "u1"),
    ]
)
if EVENT_DTYPE.itemsize != 24:  # must match predis::AccessEvent in csrc/predis/access_log.hpp
    raise ImportError(f"EVENT_DTYPE is {EVENT_DTYPE.itemsize} bytes; the native event is 24")


class AccessOp(enum.IntEnum):
    """The ``op`` field of an access event."""

    GET = 0
    PUT = 1
    DELETE = 2
    PREFETCH = 3  # a prefetched value stored by the prefetcher, not asked for by the host


class KeyKind(enum.IntEnum):
    """The ``key_kind`` field of an access event."""

    INT = 0
    BYTES = 1


# The codes to compare event fields with, as numpy scalars: numpy compares an array with an
# IntEnum member through a slow generic conversion (about 7 us against under 1 us for a
# uint8 on a batch of 16), and the prefetch runtime compares on every drain.
GET = np.uint8(AccessOp.GET)
PREFETCH = np.uint8(AccessOp.PREFETCH)
INT_KEY = np.uint8(KeyKind.INT)

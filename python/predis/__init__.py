"""Predis: an in-process key-value cache with a native core.

Quick start::

    import predis
    cache = predis.Cache(capacity_bytes=64 << 20)
    cache.put("user:1", b"...")
    cache.get("user:1")

See ``docs/api.md`` for the whole API.
"""

from __future__ import annotations

from predis import _core
from predis.access_log import EVENT_DTYPE, AccessOp, KeyKind
from predis.cache import Cache, CacheStats
from predis.errors import (
    BackendFallbackWarning,
    BackendUnavailable,
    DeviceError,
    InvalidArgumentError,
    InvalidKeyError,
    InvalidValueError,
    LoaderError,
    OutOfMemoryError,
    PredisError,
    ValueTooLargeError,
)

__version__: str = _core.build_info()["version"]

__all__ = [
    "EVENT_DTYPE",
    "AccessOp",
    "BackendFallbackWarning",
    "BackendUnavailable",
    "Cache",
    "CacheStats",
    "DeviceError",
    "InvalidArgumentError",
    "InvalidKeyError",
    "InvalidValueError",
    "KeyKind",
    "LoaderError",
    "OutOfMemoryError",
    "PredisError",
    "ValueTooLargeError",
    "__version__",
    "build_info",
    "cuda_devices",
]


def build_info() -> dict[str, object]:
    """What the native core was compiled with: version, compiler, CUDA, sanitizers, layout."""
    return dict(_core.build_info())


def cuda_devices() -> dict[str, object]:
    """CUDA devices this build can see, and the reason when it sees none."""
    return dict(_core.cuda_devices())

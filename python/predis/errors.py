"""Predis's exceptions. Every error Predis raises on purpose is a :class:`PredisError`.

Each class also derives from the built-in exception that fits it, so code that catches
``TypeError`` or ``ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "BackendFallbackWarning",
    "BackendUnavailable",
    "DeviceError",
    "InvalidArgumentError",
    "InvalidKeyError",
    "InvalidValueError",
    "LoaderError",
    "OutOfMemoryError",
    "PredisError",
    "ValueTooLargeError",
]


class PredisError(Exception):
    """Base class of every error Predis raises on purpose."""


class InvalidKeyError(PredisError, TypeError):
    """A key is not an int in [0, 2**64), bytes or str, or is too long."""


class InvalidValueError(PredisError, TypeError):
    """A value is not a C-contiguous bytes-like object."""


class ValueTooLargeError(PredisError, ValueError):
    """A value is longer than ``max_value_size``, or an entry cannot fit in the cache."""


class InvalidArgumentError(PredisError, ValueError):
    """An argument other than a key or value is invalid (ttl, capacity, array shape, ...)."""


class LoaderError(PredisError):
    """The read-through loader raised; the original exception is ``__cause__``.

    Attributes:
        key: the key whose load failed.
    """

    def __init__(self, key: object, message: str) -> None:
        super().__init__(message)
        self.key = key


class BackendUnavailable(PredisError):
    """The requested backend cannot be used on this machine or in this build."""


class BackendFallbackWarning(RuntimeWarning):
    """``backend="auto"`` could not use CUDA and chose the CPU; the message says why."""


class OutOfMemoryError(PredisError, MemoryError):
    """The host (or, for ``backend="cuda"``, the device) ran out of memory while the cache
    stored a value. The cache is unchanged."""


class DeviceError(PredisError, RuntimeError):
    """A CUDA call failed while the cache worked (a kernel fault, a lost device). The
    message names the call and the CUDA error."""

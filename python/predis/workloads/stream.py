"""The base class of synthetic key streams."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator

import numpy as np

from predis.errors import InvalidArgumentError

__all__ = ["KeyStream", "check_count", "iter_chunks"]


def check_count(name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``, or InvalidArgumentError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def iter_chunks(
    sample: Callable[[int], np.ndarray], total: int, chunk: int
) -> Iterator[np.ndarray]:
    """``sample(n)`` called for ``total`` items in all, at most ``chunk`` at a time."""
    total = check_count("total", total, 0)
    chunk = check_count("chunk", chunk)

    def generate() -> Iterator[np.ndarray]:
        done = 0
        while done < total:
            n = min(chunk, total - done)
            yield sample(n)
            done += n

    return generate()


class KeyStream(abc.ABC):
    """An endless, seeded stream of uint64 keys, drawn in numpy chunks.

    Subclasses implement :meth:`sample`; the stream keeps its position, so consecutive
    calls continue it. Two streams built with the same arguments yield the same keys.
    """

    @abc.abstractmethod
    def sample(self, n: int) -> np.ndarray:
        """The next ``n`` keys, as a uint64 array."""

    def chunks(self, total: int, chunk: int) -> Iterator[np.ndarray]:
        """``total`` keys in arrays of at most ``chunk``."""
        return iter_chunks(self.sample, total, chunk)

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` keys in one array."""
        return self.sample(check_count("n", n, 0))

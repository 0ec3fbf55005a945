"""A simulated back end (database, object store) behind the cache: latency and cost model."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from predis.errors import InvalidArgumentError

__all__ = ["BackendModel", "SimulatedBackend"]


@dataclass(frozen=True)
class BackendModel:
    """What one fetch costs. All figures are inputs, chosen by the caller.

    Attributes:
        latency_s: seconds per fetch (added to the simulated clock, never slept).
        cost_per_fetch: money per fetch (e.g. a request fee).
        cost_per_gb: money per GB transferred.
    """

    latency_s: float = 0.002
    cost_per_fetch: float = 0.0
    cost_per_gb: float = 0.0

    def __post_init__(self) -> None:
        for name in ("latency_s", "cost_per_fetch", "cost_per_gb"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
                raise InvalidArgumentError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass
class SimulatedBackend:
    """Serves any key with a deterministic value and counts what it was asked for.

    The value of key k is its 8 little-endian bytes repeated to ``value_size`` (or the
    request's own size, when the trace has sizes), so a test can check what a cache returns.
    """

    model: BackendModel = field(default_factory=BackendModel)
    value_size: int = 8
    fetches: int = 0
    prefetch_fetches: int = 0
    bytes_fetched: int = 0
    busy_s: float = 0.0

    def value(self, key: int, size: int | None = None) -> bytes:
        """The value stored under ``key`` in the back end."""
        n = self.value_size if size is None else size
        raw = int(key).to_bytes(8, "little")
        return (raw * (n // 8 + 1))[:n]

    def fetch(self, key: int, size: int | None = None, prefetch: bool = False) -> bytes:
        """Fetch one value, counting it (as a prefetch when ``prefetch``)."""
        value = self.value(key, size)
        self.fetches += 1
        self.prefetch_fetches += int(prefetch)
        self.bytes_fetched += len(value)
        self.busy_s += self.model.latency_s
        return value

    @property
    def cost(self) -> float:
        """Money spent on fetches so far, by the model."""
        return (
            self.fetches * self.model.cost_per_fetch
            + self.bytes_fetched / 1e9 * self.model.cost_per_gb
        )

"""The CUDA backend against the CPU backend: long seeded random operation sequences run on
both, and every result must be identical (return values, output arrays, errors, len(),
the counters and the logged access events).

The sequences stay within max_items, where both backends are specified to agree exactly.
Two documented differences are kept out: keys repeated within one put or delete batch (the
device applies a batch's keys concurrently), and capacity eviction (the CPU evicts after each
insert, the GPU after each batch); test_cuda_backend.py checks eviction's invariants.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import predis
from predis import PredisError

pytestmark = pytest.mark.gpu

MAX_ITEMS = 2000
INT_KEYS = [*range(700), *(2**64 - 1 - i for i in range(50))]
BYTES_KEYS = [f"k{i}".encode() for i in range(250)] + [b"", b"\x00" * 40]
STR_KEYS = [f"s{i}" for i in range(150)] + ["\u00e9t\u00e9"]
ALL_KEYS: list[Any] = [*INT_KEYS, *BYTES_KEYS, *STR_KEYS]  # < MAX_ITEMS: no capacity eviction
COUNTERS = ("hits", "misses", "inserts", "updates", "deletes", "evictions", "expirations")
LEVELS = ("items", "bytes_used", "events_logged", "events_dropped")


def make(backend: str, policy: str) -> predis.Cache:
    return predis.Cache(
        8 << 20,
        max_items=MAX_ITEMS,
        policy=policy,
        backend=backend,
        clock="manual",
        max_value_size=300,
        access_log_capacity=1 << 17,
    )


def value(rng: random.Random) -> bytes:
    size = rng.choice([0, rng.randint(1, 8), rng.randint(9, 64), rng.randint(65, 300)])
    return rng.randbytes(size)


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", normalise(fn()))
    except PredisError as exc:
        return ("error", (type(exc).__name__, str(exc)))


def normalise(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return ("array", x.dtype.str, x.shape, x.tobytes())
    if isinstance(x, tuple):
        return tuple(normalise(v) for v in x)
    if isinstance(x, list):
        return [normalise(v) for v in x]
    return x


def random_op(rng: random.Random) -> tuple[str, Callable[[predis.Cache], Any]]:
    kind = rng.choices(
        [
            "put",
            "mput",
            "mput_array",
            "get",
            "mget",
            "mget_arrays",
            "get_into",
            "contains",
            "mcontains",
            "delete",
            "mdelete",
            "advance",
            "prefetch",
            "clear",
        ],
        weights=[12, 8, 6, 12, 10, 8, 8, 4, 6, 5, 4, 3, 3, 0.2],
    )[0]
    if kind == "put":
        k, v = rng.choice(ALL_KEYS), value(rng)
        ttl = rng.choice([None, None, rng.uniform(0.5, 5.0)])
        return kind, lambda c: c.put(k, v, ttl=ttl)
    if kind == "mput":
        keys = rng.sample(ALL_KEYS, rng.randint(1, 80))  # distinct within the batch
        vals = [value(rng) for _ in keys]
        ttl = rng.choice([None, rng.uniform(0.5, 5.0)])
        return kind, lambda c: c.mput(keys, vals, ttl=ttl)
    if kind == "mput_array":
        ks = np.array(rng.sample(INT_KEYS, rng.randint(1, 120)), dtype=np.uint64)
        width = rng.choice([0, 3, 8, 9, 40])
        rows = np.frombuffer(rng.randbytes(len(ks) * width), dtype=np.uint8).reshape(len(ks), width)
        return kind, lambda c: c.mput(ks, rows.copy())
    if kind == "get":
        k = rng.choice(ALL_KEYS)
        return kind, lambda c: c.get(k)
    if kind == "mget":
        keys = [rng.choice(ALL_KEYS) for _ in range(rng.randint(0, 100))]  # repeats allowed
        return kind, lambda c: c.mget(keys)
    if kind == "mget_arrays":
        ks = np.array([rng.choice(INT_KEYS) for _ in range(rng.randint(0, 200))], dtype=np.uint64)
        return kind, lambda c: c.mget_arrays(ks)
    if kind == "get_into":
        ks = np.array([rng.choice(INT_KEYS) for _ in range(rng.randint(0, 200))], dtype=np.uint64)
        width = rng.choice([0, 8, 16, 64, 300])

        def get_into(c: predis.Cache) -> Any:
            out = np.full((len(ks), width), 0xAB, dtype=np.uint8)
            res = outcome(lambda: c.get_into(ks, out))
            return res, out

        return kind, get_into
    if kind == "contains":
        k = rng.choice(ALL_KEYS)
        return kind, lambda c: c.contains(k)
    if kind == "mcontains":
        keys = [rng.choice(ALL_KEYS) for _ in range(rng.randint(0, 100))]
        return kind, lambda c: c.mcontains(keys)
    if kind == "delete":
        k = rng.choice(ALL_KEYS)
        return kind, lambda c: c.delete(k)
    if kind == "mdelete":
        keys = rng.sample(ALL_KEYS, rng.randint(1, 30))
        return kind, lambda c: c.mdelete(keys)
    if kind == "advance":
        s = rng.uniform(0.2, 2.0)
        return kind, lambda c: c.advance_time(s)
    if kind == "prefetch":
        k, v, conf = rng.choice(ALL_KEYS), value(rng), rng.random()
        return kind, lambda c: c.put_prefetched(k, v, conf)
    return kind, lambda c: c.clear()


def state(c: predis.Cache) -> tuple[Any, ...]:
    s = c.stats()
    return (len(c), *(getattr(s, f) for f in COUNTERS + LEVELS))


@pytest.mark.parametrize(("seed", "policy"), [(1, "lru"), (2, "lfu"), (3, "lru"), (4, "lfu")])
def test_random_sequences_give_identical_results(seed: int, policy: str) -> None:
    rng = random.Random(seed)  # noqa: S311 - a reproducible test sequence
    cpu, gpu = make("cpu", policy), make("cuda", policy)
    assert (cpu.backend, gpu.backend) == ("cpu", "cuda")
    for step in range(2500):
        kind, op = random_op(rng)
        expected = outcome(lambda op=op: op(cpu))
        got = outcome(lambda op=op: op(gpu))
        assert got == expected, f"seed {seed} step {step}: {kind} differs"
        assert state(gpu) == state(cpu), f"seed {seed} step {step}: state after {kind} differs"
        if step % 250 == 249:
            e_cpu, e_gpu = cpu.drain_events(), gpu.drain_events()
            assert e_gpu.tobytes() == e_cpu.tobytes(), f"seed {seed} step {step}: events differ"
    # Every key, one last time, through each read path.
    assert gpu.mget(ALL_KEYS) == cpu.mget(ALL_KEYS)
    assert np.array_equal(gpu.mcontains(ALL_KEYS), cpu.mcontains(ALL_KEYS))
    assert state(gpu) == state(cpu)

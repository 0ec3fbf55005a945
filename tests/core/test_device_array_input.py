"""Device arrays (``__cuda_array_interface__``) as batch input: validation on any machine.

Every interface is read and checked before the backend is asked to do anything, so these
run on the CPU backend: a malformed or unsupported interface gets an InvalidArgumentError
naming the problem and the fix, a well-formed one is refused because the CPU backend cannot
read device memory, and the cache is unchanged either way. The pointers are never
dereferenced here (the CPU backend refuses before any device work).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import predis
from predis import InvalidArgumentError, PredisError

FAKE_PTR = 0x7F00_0000_0000  # never read: validation and the CPU backend refuse first


class DeviceArrayLike:
    """An object that exposes exactly the given ``__cuda_array_interface__``."""

    def __init__(self, interface: Any) -> None:
        self.__cuda_array_interface__ = interface


def keys_iface(n: int = 4, **over: Any) -> dict[str, Any]:
    iface: dict[str, Any] = {
        "shape": (n,),
        "typestr": "<u8",
        "data": (FAKE_PTR, True),
        "version": 3,
        "strides": None,
    }
    iface.update(over)
    return iface


def rows_iface(n: int = 4, width: int = 8, **over: Any) -> dict[str, Any]:
    iface: dict[str, Any] = {
        "shape": (n, width),
        "typestr": "|u1",
        "data": (FAKE_PTR + 4096, False),
        "version": 3,
    }
    iface.update(over)
    return iface


@pytest.fixture
def cache() -> predis.Cache:
    c = predis.Cache(1 << 16, backend="cpu")
    c.mput(np.arange(4, dtype=np.uint64), [b"a", b"b", b"c", b"d"])
    return c


def unchanged(cache: predis.Cache) -> None:
    s = cache.stats()
    assert (s.items, s.inserts, s.deletes, s.hits, s.misses) == (4, 4, 0, 0, 0)
    assert cache.mget(list(range(4))) == [b"a", b"b", b"c", b"d"]


BAD_KEYS = [
    (keys_iface(typestr="<i8"), r"dtype must be uint64.*'<i8'.*view\('uint64'\)"),
    (keys_iface(typestr="<f8"), r"dtype must be uint64.*'<f8'"),
    (keys_iface(typestr=">u8"), r"dtype must be uint64.*'>u8'"),
    (keys_iface(shape=(2, 2)), r"must be 1-D, got 2-D"),
    (keys_iface(strides=(16,)), r"must be C-contiguous"),
    (keys_iface(mask=(FAKE_PTR, True)), r"masked device arrays are not supported"),
    (keys_iface(stream=0), r"stream 0 is disallowed"),
    (keys_iface(data=(0, True)), r"data pointer is null"),
    (keys_iface(data=(FAKE_PTR,)), r"'data' must be a \(pointer, read_only\) tuple"),
    (keys_iface(shape=(-1,)), r"negative extent"),
    (keys_iface(version=4), r"version 4 is not supported"),
    (keys_iface(shape="four"), r"wrong type"),
    ({"shape": (4,), "typestr": "<u8", "version": 3}, r"lacks the required 'data' entry"),
    ([("shape", (4,))], r"must be a dict"),
]


@pytest.mark.parametrize(("iface", "message"), BAD_KEYS)
def test_malformed_key_interfaces_are_refused(
    cache: predis.Cache, iface: Any, message: str
) -> None:
    keys = DeviceArrayLike(iface)
    for call in (cache.mcontains, cache.mdelete):
        with pytest.raises(InvalidArgumentError, match=message) as info:
            call(keys)
        assert isinstance(info.value, PredisError)
        assert str(info.value).startswith("keys: ")
    unchanged(cache)


def test_an_interface_that_raises_is_reported(cache: predis.Cache) -> None:
    class Broken:
        @property
        def __cuda_array_interface__(self) -> Any:
            raise RuntimeError("device lost")

    with pytest.raises(InvalidArgumentError, match="reading __cuda_array_interface__ failed"):
        cache.mcontains(Broken())
    unchanged(cache)


def test_well_formed_device_arrays_need_the_cuda_backend(cache: predis.Cache) -> None:
    keys = DeviceArrayLike(keys_iface())
    out = DeviceArrayLike(rows_iface())
    values = DeviceArrayLike(rows_iface(data=(FAKE_PTR, True)))
    calls = [
        lambda: cache.mcontains(keys),
        lambda: cache.mdelete(keys),
        lambda: cache.get_into(keys, out),
        lambda: cache.mput(keys, values),
    ]
    for call in calls:
        with pytest.raises(InvalidArgumentError, match=r"need backend='cuda'.*uses 'cpu'"):
            call()
    unchanged(cache)


def test_get_into_checks_out_before_anything_runs(cache: predis.Cache) -> None:
    keys = DeviceArrayLike(keys_iface())
    cases = [
        (DeviceArrayLike(rows_iface(data=(FAKE_PTR, True))), r"out: is read-only"),
        (DeviceArrayLike(rows_iface(n=3)), r"out has 3 rows for 4 keys"),
        (DeviceArrayLike(rows_iface(typestr="<u2")), r"out: dtype must be uint8"),
        (DeviceArrayLike(rows_iface(shape=(4,))), r"out: must be 2-D"),
        (DeviceArrayLike(rows_iface(strides=(1, 4))), r"out: must be C-contiguous"),
        (np.zeros((4, 8), dtype=np.uint8), r"both be device arrays or both host arrays"),
    ]
    for out, message in cases:
        with pytest.raises(InvalidArgumentError, match=message):
            cache.get_into(keys, out)
    # Host keys with a device out are refused the same way.
    with pytest.raises(InvalidArgumentError, match="both be device arrays"):
        cache.get_into(np.arange(4, dtype=np.uint64), DeviceArrayLike(rows_iface()))
    unchanged(cache)


def test_mput_checks_values_before_anything_runs(cache: predis.Cache) -> None:
    keys = DeviceArrayLike(keys_iface())
    cases = [
        (DeviceArrayLike(rows_iface(n=5)), r"values has 5 rows for 4 keys"),
        (DeviceArrayLike(rows_iface(width=1 << 16)), r"exceeds max_value_size"),
        ([b"a", b"b", b"c", b"d"], r"both be device arrays"),
    ]
    for values, message in cases:
        with pytest.raises(PredisError, match=message):
            cache.mput(keys, values)
    unchanged(cache)


def test_contiguous_strides_and_size_one_extents_are_accepted(cache: predis.Cache) -> None:
    # Explicit C-contiguous strides, and any stride on an extent of 1, are contiguous: these
    # pass validation and reach the backend check.
    for iface in (
        keys_iface(strides=(8,)),
        keys_iface(n=1, strides=(64,)),
        keys_iface(n=0, data=(0, True)),
        keys_iface(stream=1),
        keys_iface(typestr="|u8", version=2),
    ):
        with pytest.raises(InvalidArgumentError, match="need backend='cuda'"):
            cache.mcontains(DeviceArrayLike(iface))
    unchanged(cache)

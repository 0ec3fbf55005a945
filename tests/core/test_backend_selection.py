"""Backend selection without a usable GPU (this is what CPU machines and CI see).

``backend="cuda"`` must raise BackendUnavailable with the reason, ``"auto"`` must fall back
to the CPU with a BackendFallbackWarning and a log line carrying the same reason, and the
choice must be visible in ``Cache.backend``. On a machine with a usable device these tests
skip; tests/gpu/test_cuda_backend.py checks the other side there.
"""

from __future__ import annotations

import logging
import warnings

import pytest

import predis
from predis import BackendFallbackWarning, BackendUnavailable, InvalidArgumentError, PredisError

CUDA_BUILT = bool(predis.build_info()["cuda"])
DEVICES = predis.cuda_devices()
NO_DEVICE = not DEVICES["devices"]

needs_no_device = pytest.mark.skipif(
    not NO_DEVICE, reason="a usable CUDA device is present (tests/gpu covers this machine)"
)


def expected_reason() -> str:
    """The part of the message that says why CUDA cannot be used here."""
    if not CUDA_BUILT:
        return "no CUDA backend"
    return str(DEVICES["error"])


@needs_no_device
def test_cuda_backend_raises_backend_unavailable_with_the_reason() -> None:
    with pytest.raises(BackendUnavailable) as info:
        predis.Cache(1 << 20, backend="cuda")
    message = str(info.value)
    assert isinstance(info.value, PredisError)
    assert expected_reason() in message
    if CUDA_BUILT:
        assert message.startswith("no usable CUDA device: ")
    else:
        assert "backend='cpu'" in message  # says what to do instead


@needs_no_device
def test_auto_falls_back_to_cpu_with_a_warning_and_a_log_line(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import predis.cache

    monkeypatch.setattr(predis.cache, "_fallbacks_logged", set())  # as in a fresh process
    caplog.set_level(logging.INFO, logger="predis")
    with pytest.warns(BackendFallbackWarning) as record:
        cache = predis.Cache(1 << 20, backend="auto")
    assert cache.backend == "cpu"
    assert len(record) == 1
    warning = str(record[0].message)
    assert "fell back to 'cpu'" in warning
    assert expected_reason() in warning
    # The warning points at the caller's line, not at predis internals.
    assert record[0].filename == __file__
    logged = [r for r in caplog.records if r.name == "predis" and r.levelno == logging.WARNING]
    assert [r.getMessage() for r in logged] == [warning]


@needs_no_device
def test_the_same_fallback_is_logged_as_a_warning_once_per_process(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import predis.cache

    monkeypatch.setattr(predis.cache, "_fallbacks_logged", set())
    caplog.set_level(logging.DEBUG, logger="predis")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BackendFallbackWarning)
        for _ in range(3):
            assert predis.Cache(1 << 20).backend == "cpu"
    levels = [r.levelno for r in caplog.records if "fell back" in r.getMessage()]
    assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG]


@needs_no_device
def test_the_fallback_cache_works_and_reports_no_gpu_stats() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BackendFallbackWarning)
        cache = predis.Cache(1 << 20)  # "auto" is the default
    assert cache.backend == "cpu"
    cache.put(1, b"one")
    cache.mput([2, b"two"], [b"2", b"zwei"])
    assert cache.mget([1, 2, b"two", 3]) == [b"one", b"2", b"zwei", None]
    stats = cache.stats()
    assert stats.gpu is None  # absent, never zeros
    assert stats.items == 3


def test_cpu_backend_is_chosen_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="predis")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache = predis.Cache(1 << 20, backend="cpu")
    assert cache.backend == "cpu"
    assert "using backend 'cpu'" in caplog.text
    assert cache.stats().gpu is None
    assert "backend='cpu'" in repr(cache)


# (not "gpu": a parameter id becomes a keyword, and conftest skips "gpu" tests here)
@pytest.mark.parametrize("backend", ["opencl", "CUDA", "", "tpu"])
def test_unknown_backends_are_refused_with_the_list(backend: str) -> None:
    with pytest.raises(
        InvalidArgumentError, match=r"backend must be one of \('auto', 'cpu', 'cuda'\)"
    ):
        predis.Cache(1 << 20, backend=backend)


def test_build_info_lists_the_backends_this_build_has() -> None:
    backends = predis.build_info()["backends"]
    assert backends == (("cpu", "cuda") if CUDA_BUILT else ("cpu",))


@pytest.mark.skipif(not CUDA_BUILT, reason="this build has no CUDA backend")
def test_cuda_devices_report_bus_ids_or_the_reason() -> None:
    if NO_DEVICE:
        assert DEVICES["error"]
    for dev in DEVICES["devices"]:  # type: ignore[attr-defined]
        assert dev["pci_bus_id"]

"""Test-wide fixtures and the two kinds of GPU skip."""

from __future__ import annotations

import pytest

import predis


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `gpu` tests with the precise reason: no CUDA in this build, or no device."""
    del config
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    reason = None
    if not predis.build_info()["cuda"]:
        reason = "predis was built without CUDA (PREDIS_CUDA=OFF, or no nvcc at build time)"
    else:
        report = predis.cuda_devices()
        if not report["devices"]:
            reason = f"no usable CUDA device: {report['error']}"
    if reason is not None:
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason=reason))

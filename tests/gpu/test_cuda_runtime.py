"""The CUDA plumbing on a machine with a GPU: the sm_90 build loads and sees the device."""

from __future__ import annotations

import pytest

import predis

pytestmark = pytest.mark.gpu


def test_devices_are_listed_with_their_properties():
    report = predis.cuda_devices()
    assert report["error"] is None
    assert report["runtime_version"] >= 12000
    for index, dev in enumerate(report["devices"]):
        assert dev["index"] == index
        assert dev["name"]
        assert dev["total_memory"] > 1 << 30
        major, minor = dev["compute_capability"]
        assert major >= 5
        assert minor >= 0


def test_build_reports_cuda():
    info = predis.build_info()
    assert info["cuda"] is True
    assert info["cuda_version"]

"""What the extension reports about its own build."""

from __future__ import annotations

import os

import predis


def test_build_info_keys_and_types():
    info = predis.build_info()
    assert info["version"] == predis.__version__
    assert isinstance(info["cuda"], bool)
    assert info["backends"] == (("cpu", "cuda") if info["cuda"] else ("cpu",))
    assert info["slots_per_bucket"] == 16
    assert info["bucket_bytes"] == 64 + 16 * 32
    assert info["false_sharing_range"] == 128


def test_sanitized_build_is_the_one_under_test():
    # .ci/run sets PREDIS_EXPECT_SANITIZED when it runs the tests on the ASan/UBSan build,
    # so a mix-up that tested the plain build instead fails loudly.
    sanitizers = predis.build_info()["sanitizers"]
    if os.environ.get("PREDIS_EXPECT_SANITIZED") == "1":
        assert sanitizers == ("address", "undefined")
    else:
        assert sanitizers == ()


def test_cuda_devices_explains_absence():
    report = predis.cuda_devices()
    assert isinstance(report["devices"], list)
    if not report["devices"]:
        assert isinstance(report["error"], str)
        assert report["error"]


def test_shipped_build_has_no_deliberate_slowdown():
    # PREDIS_BENCH_SLOWDOWN exists only to prove the benchmark checks catch a regression
    # (docs/benchmarks.md); a build under test must never carry it.
    assert predis.build_info()["bench_slowdown"] == 0

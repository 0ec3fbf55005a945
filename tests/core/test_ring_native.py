"""Build tests/cpp/ring_test.cpp under sanitizers and run it.

The C++ program tests ``predis::SpscRing`` directly: object lifetimes counted through every
push/pop path, capacity and full/empty bounds, and a two-thread fuzz. It is built twice,
with AddressSanitizer + UndefinedBehaviorSanitizer and with ThreadSanitizer, since a missing
memory order shows up only under TSan and a leaked or doubly destroyed slot only under ASan.

Environment:
    PREDIS_RING_FUZZ_ITEMS: items in the main two-thread fuzz (default 300000).
    PREDIS_RING_FUZZ_SEED: fix the fuzz seed (default: the program picks one and prints it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tests" / "cpp" / "ring_test.cpp"
COMMON_FLAGS = ["-O1", "-g", "-std=c++17", "-pthread", f"-I{REPO / 'csrc'}"]
WARNING_FLAGS = ["-Wall", "-Wextra", "-Wpedantic", "-Werror"]
SANITIZERS = {
    "asan-ubsan": (
        ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"],
        {
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:strict_string_checks=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        },
    ),
    "tsan": (
        ["-fsanitize=thread"],
        {"TSAN_OPTIONS": "halt_on_error=1:second_deadlock_stack=1"},
    ),
}
COMPILE_TIMEOUT_S = 300
RUN_TIMEOUT_S = 180

TRIVIAL_PROGRAM = """
#include <atomic>
#include <thread>
int main() {
  std::atomic<int> x{0};
  std::thread t([&] { x.store(1); });
  t.join();
  return x.load() == 1 ? 0 : 1;
}
"""


def _describe(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"exit code {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n"
        f"--- stderr ---\n{result.stderr}"
    )


def _compile(
    gxx: str, flags: list[str], source: Path, out: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [gxx, *COMMON_FLAGS, *flags, str(source), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=COMPILE_TIMEOUT_S,
        check=False,
    )


def _run(exe: Path, args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [str(exe), *args],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
            env={**os.environ, **env_extra},
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{exe.name} {' '.join(args)} still running after {RUN_TIMEOUT_S} s (a lost item "
            f"or a livelock in the ring?)\n--- stdout ---\n{exc.stdout!r}\n"
            f"--- stderr ---\n{exc.stderr!r}"
        )


@pytest.fixture(scope="module")
def gxx() -> str:
    path = shutil.which("g++")
    if path is None:
        pytest.skip("g++ not found on PATH: cannot build tests/cpp/ring_test.cpp")
    return path


@pytest.mark.parametrize("sanitizer", sorted(SANITIZERS))
def test_ring_under_sanitizer(gxx: str, sanitizer: str, tmp_path: Path) -> None:
    flags, env_extra = SANITIZERS[sanitizer]

    # Probe: can this toolchain link the sanitizer runtime, and can it run here? (TSan, for
    # one, refuses some kernels' address-space layouts; LSan refuses to run under ptrace.)
    probe_src = tmp_path / "probe.cpp"
    probe_src.write_text(TRIVIAL_PROGRAM)
    probe = tmp_path / "probe"
    built = _compile(gxx, flags, probe_src, probe)
    if built.returncode != 0:
        pytest.skip(f"{sanitizer} runtime cannot link with {gxx}: {built.stderr.strip()[-500:]}")
    ran = _run(probe, [], env_extra)
    if ran.returncode != 0 and sanitizer == "asan-ubsan" and "LeakSanitizer" in ran.stderr:
        env_extra = {**env_extra, "ASAN_OPTIONS": "detect_leaks=0"}
        ran = _run(probe, [], env_extra)
    if ran.returncode != 0:
        pytest.skip(f"{sanitizer} programs cannot run here: {_describe(ran)[-500:]}")

    exe = tmp_path / f"ring_test_{sanitizer}"
    built = _compile(gxx, [*WARNING_FLAGS, *flags], SOURCE, exe)
    assert built.returncode == 0, f"compiling {SOURCE.name} with {sanitizer} failed:\n" + (
        _describe(built)
    )

    args = [os.environ.get("PREDIS_RING_FUZZ_ITEMS", "300000")]
    seed = os.environ.get("PREDIS_RING_FUZZ_SEED")
    if seed is not None:
        args.append(seed)
    result = _run(exe, args, env_extra)
    assert result.returncode == 0, f"ring_test under {sanitizer} failed:\n{_describe(result)}"
    assert "ring_test: all passed" in result.stdout, _describe(result)

"""Chaos: the process running the retraining worker is killed while it registers a model,
and a training job dies inside the worker thread.

Must hold: the registry is never torn (every listed version loads and matches its checksum;
the aliases parse; a half-built version folder is invisible and the next registration
numbers past it); a new process carries on; inside a live process a failing job leaves the
loop serving and the next trigger trains normally.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import numpy as np

from predis.mlops import LoopConfig, MLOpsLoop, ModelRegistry, RetrainConfig
from predis.prefetch import FEATURE_NAMES, TrainConfig
from predis.workloads import CorrelatedSessions

CACHE = 150
TRAIN = TrainConfig(num_trees=20, threads=1, batch_size=16, max_rows=40_000, time_budget_s=20.0)

# Registers model after model; the fsync of the 4th version's model file never returns
# (the test kills the process there: mid-publication, the worst moment).
CHILD = textwrap.dedent(
    """
    import os, sys, time
    from predis.mlops import ModelRegistry
    from predis.prefetch import FEATURE_NAMES

    reg = ModelRegistry(sys.argv[1], "acme")
    real_fsync = os.fsync

    def fsync(fd):
        path = os.readlink(f"/proc/self/fd/{fd}")
        if "/.staging-4-" in path and os.path.basename(path).startswith(".model.ubj."):
            print("stuck", flush=True)
            time.sleep(3600)
        real_fsync(fd)

    os.fsync = fsync
    for i in range(10):
        meta = reg.register(bytes([i + 1]) * 4096, feature_schema=FEATURE_NAMES,
                            training_window=(0, 1))
        if i == 0:
            reg.promote(meta.version, actor="child", reason="first")
        print("registered", meta.version, flush=True)
    """
)


def test_kill_during_registration_leaves_a_consistent_registry(tmp_path):
    root = tmp_path / "models"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    registered = []
    for line in proc.stdout:
        if line.startswith("registered"):
            registered.append(int(line.split()[1]))
        else:
            assert line.strip() == "stuck"
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()

    reg = ModelRegistry(root, "acme")
    assert registered == [1, 2, 3]
    assert reg.list_versions() == [1, 2, 3]  # version 4 was never published
    for v in registered:
        meta, model = reg.get(v, expected_schema=FEATURE_NAMES)
        assert model == bytes([v]) * 4096
        assert meta.version == v
    assert reg.aliases()["champion"] == 1
    staging = list((reg.dir / "versions").glob(".staging-4-*"))
    assert len(staging) == 1  # the half-built version, invisible to readers
    assert reg.gc(keep_latest=10) == []
    assert not staging[0].exists()  # cleared by gc, which holds the registry's lock
    # The next process numbers past the version that was being built, and publishes whole.
    meta = reg.register(b"\x09" * 10, feature_schema=FEATURE_NAMES, training_window=(0, 1))
    assert meta.version == 5
    assert reg.get(5)[1] == b"\x09" * 10
    assert [h["version"] for h in reg.history() if h["action"] == "register"] == [1, 2, 3, 5]


class ExplodingWindow:
    """The recent-keys window whose read fails once, as a dying data source would."""

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = keys
        self.fail = True

    def extend(self, keys: np.ndarray) -> None:
        del keys

    def latest(self, n: int) -> np.ndarray:
        if self.fail:
            self.fail = False
            raise MemoryError("the worker ran out of memory reading its window")
        return self.keys[-n:]


def test_a_job_that_dies_leaves_the_loop_serving_and_the_next_one_runs(tmp_path):
    keys = CorrelatedSessions(1_000_000, 300, 12, alpha=0.8, noise=0.05, seed=3).take(20_000)
    window = ExplodingWindow(keys)
    config = LoopConfig(
        retrain=RetrainConfig(train=TRAIN, cache_items=CACHE, window=16_000, min_window=8_000)
    )
    with MLOpsLoop(ModelRegistry(tmp_path / "models", "acme"), config, window=window) as loop:
        assert loop.trigger("first")
        assert loop.wait_idle(timeout=300)
        assert loop.state == "serving"
        kinds = loop.events.kinds()
        assert "error" in kinds
        assert "MemoryError" in loop.events.events()[-1].message
        # The worker thread survived the job; the next trigger trains to a verdict.
        assert loop.trigger("second")
        assert loop.wait_idle(timeout=300)
        after = loop.events.kinds()[len(kinds) :]
        assert "retrain-started" in after
        assert after[-1] in ("challenger-registered", "validation-failed", "ab-started"), after

"""The Flower transport: the strategy's aggregation on its own (malformed, oversized and
missing replies), and a real deployment on loopback: a SuperLink and three SuperNodes as
separate processes, one killed in the middle of round one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr")
psutil = pytest.importorskip("psutil")

from flwr.app import ArrayRecord, RecordDict  # noqa: E402

from predis.mlops.federated import (  # noqa: E402
    FederatedSite,
    FederationSecret,
    FederationSpec,
    initial_model,
)
from predis.mlops.federated.flower import (  # noqa: E402
    MODEL_FILE,
    SUMMARY_FILE,
    PredisTreeStrategy,
    model_bytes,
    model_record,
)
from predis.prefetch import PrefetchModel  # noqa: E402
from predis.security.crypto import generate_key_line  # noqa: E402
from predis.workloads import CorrelatedSessions, LoopKeys, ZipfKeys  # noqa: E402

SPEC = FederationSpec(trees_per_round=3, learning_rate=0.3)
SECRET_LINE = generate_key_line("federation")
KEYS = {
    0: lambda: CorrelatedSessions(20_000, 200, 10, noise=0.1, seed=1).take(10_000),
    1: lambda: LoopKeys(3_000, offset=10**6).take(10_000),
    2: lambda: ZipfKeys(5_000, 1.1, seed=2).take(10_000),
}


# ---- the strategy, without a network ----


def test_strategy_bags_good_updates_and_rejects_the_rest():
    secret = FederationSecret.parse(SECRET_LINE)
    base = initial_model(SPEC)
    good = [FederatedSite(KEYS[i](), SPEC, secret).train_round(base) for i in (0, 1)]
    strategy = PredisTreeStrategy(SPEC, min_nodes=1)
    strategy.start_round(base, [11, 12, 13, 14, 15, 16])
    huge = np.zeros(SPEC.max_update_bytes + 1, dtype=np.uint8)
    replies = [
        (11, RecordDict({"arrays": model_record(good[0])})),
        (12, RecordDict({"arrays": model_record(good[1])})),
        (13, RecordDict({"arrays": ArrayRecord([huge])})),  # oversized
        (14, RecordDict({"arrays": model_record(b"not a model at all")})),  # malformed
        (15, "ClientApp raised: site data missing"),  # an error reply
        # 16 never answers: it disconnected
    ]
    new = strategy.aggregate_updates(1, replies)
    assert new is not None
    assert PrefetchModel.from_bytes(new).booster.num_boosted_rounds() == 2 * SPEC.trees_per_round
    record = strategy.rounds[-1]
    assert record["accepted"] == 2
    reasons = {r["node"]: r["reason"] for r in record["rejected"]}
    assert "over the federation's limit" in reasons[13]
    assert "malformed" in reasons[14]
    assert sorted(record["lost"]) == [15, 16]
    assert strategy.lost == {15, 16}
    assert strategy.model == new


def test_strategy_keeps_the_model_when_nothing_is_accepted():
    base = initial_model(SPEC)
    strategy = PredisTreeStrategy(SPEC, mode="cyclic")
    strategy.start_round(base, [1])
    assert strategy.aggregate_updates(1, [(1, RecordDict({}))]) is None
    assert strategy.model == base
    assert "no model" in strategy.rounds[-1]["rejected"][0]["reason"]


def test_model_records_round_trip_and_are_bounded():
    data = initial_model(SPEC)
    assert model_bytes(RecordDict({"arrays": model_record(data)}), 1 << 20) == data
    two = RecordDict({"arrays": ArrayRecord([np.zeros(3, np.uint8), np.zeros(3, np.uint8)])})
    with pytest.raises(Exception, match="one array"):
        model_bytes(two, 1 << 20)
    floats = RecordDict({"arrays": ArrayRecord([np.zeros(3, np.float64)])})
    with pytest.raises(Exception, match="uint8"):
        model_bytes(floats, 1 << 20)


# ---- a real deployment on loopback ----


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def tool(name: str) -> str:
    """Flower's command, beside this interpreter or on PATH (flwr installs it)."""
    path = Path(sys.executable).with_name(name)
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is missing although flwr imports: reinstall flwr"
    return found


def commands(pid: int) -> list[str]:
    """The command lines of a process's descendants (those still alive)."""
    out = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            out.append(" ".join(child.cmdline()))
        except psutil.Error:  # it ended meanwhile
            continue
    return out


APP_TOML = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "predis-federation-test"
version = "1.0.0"
description = "Predis federated prefetch model (test deployment)"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "predis"

[tool.flwr.app.components]
serverapp = "predis.mlops.federated.flower:server_app"
clientapp = "predis.mlops.federated.flower:client_app"

[tool.flwr.app.config]
num-rounds = 2
trees-per-round = 3
mode = "bagging"
min-nodes = 3
round-timeout = {timeout}
output-dir = "{out}"
"""


def test_deployment_on_loopback_survives_a_site_killed_mid_round(tmp_path):
    home, app, out = tmp_path / "flwr", tmp_path / "app", tmp_path / "out"
    for d in (home, app, out):
        d.mkdir()
    port = free_port()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "test"\n\n[superlink.test]\naddress = "127.0.0.1:{port}"\n'
        "insecure = true\n"
    )
    (app / "pyproject.toml").write_text(APP_TOML.format(timeout=90.0, out=out))
    secret = tmp_path / "secret"
    secret.write_text(SECRET_LINE + "\n")
    secret.chmod(0o600)
    env = {
        **os.environ,
        "FLWR_HOME": str(home),
        "PREDIS_FEDERATION_SECRET_FILE": str(secret),
        # The SuperLink and SuperNodes start flower-superexec, flwr-serverapp and
        # flwr-clientapp by name: this interpreter's scripts come first.
        "PATH": os.pathsep.join(
            [str(Path(tool("flower-superexec")).parent), os.environ.get("PATH", "")]
        ),
    }
    env.pop("PREDIS_FEDERATION_SECRET", None)
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(args: list[str], log: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / log, "wb") as f:
            p = subprocess.Popen(
                args,
                env=env,
                cwd=tmp_path,
                stdout=f,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed with its children
            )
        procs.append(p)
        return p

    try:
        spawn(
            [
                tool("flower-superlink"),
                "--insecure",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--disable-runtime-dependency-installation",
            ],
            "superlink.log",
        )
        wait_port(port, 60)
        nodes = []
        for i, make in KEYS.items():
            np.save(tmp_path / f"keys{i}.npy", make())
            nodes.append(
                spawn(
                    [
                        tool("flower-supernode"),
                        "--insecure",
                        "--superlink",
                        f"127.0.0.1:{port}",
                        "--port",
                        str(free_port()),
                        "--node-config",
                        f'keys-file="{tmp_path / f"keys{i}.npy"}" cache-items=500',
                    ],
                    f"supernode{i}.log",
                )
            )
        started = subprocess.run(
            [tool("flwr"), "run", str(app), "test", "--format", "json"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            timeout=120,
            check=False,
        )
        # flwr exits 0 even when it refuses the app; its JSON says whether the run started.
        answer = json.loads(started.stdout.decode() or "{}")
        assert started.returncode == 0, started.stdout + started.stderr
        assert answer.get("success") is True, answer
        # Kill site 2 while it trains in round one: its SuperNode and the ClientApp
        # process it started, at once (no goodbye to the SuperLink).
        victim = nodes[2]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if any("flwr-clientapp" in cmd for cmd in commands(victim.pid)):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("site 2 never started its ClientApp")
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(10)

        summary_path = out / SUMMARY_FILE
        deadline = time.monotonic() + 420
        while not summary_path.exists() and time.monotonic() < deadline:
            time.sleep(1)
        assert summary_path.exists(), (tmp_path / "superlink.log").read_text()[-3000:]
        summary = json.loads(summary_path.read_text())
    finally:
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(15)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(5)

    first, second = summary["rounds"]
    assert first["sent"] == 3
    assert first["accepted"] == 2  # the two live sites' updates were bagged
    assert len(first["lost"]) == 1  # the killed one was tolerated, and recorded
    assert first["rejected"] == []
    assert second["sent"] == 2  # it sat out round two
    assert second["accepted"] == 2
    model = PrefetchModel.from_bytes((out / MODEL_FILE).read_bytes())
    assert model.booster.num_boosted_rounds() == 2 * 2 * 3
    assert second["evaluation"]["valid_logloss"] < first["evaluation"]["valid_logloss"]

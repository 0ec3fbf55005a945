"""A real build of deploy/Dockerfile with buildah, and commands run inside the images.

No Docker engine runs here and no registry for base images is reachable, so the test makes
its own base image: a minimal Debian with python3, g++ and cmake (debootstrap, cached as a
tarball between runs), plus this host's CA bundle so pip can reach the package index
through the same proxy the host uses. It is passed as every base-image build argument.

Runs only with PREDIS_CONTAINER_TESTS=1, as root, with buildah and debootstrap installed
(.ci/run sets this up). The first run takes several minutes (debootstrap, the wheel build,
dependency downloads); later runs reuse the base image and buildah's layer and pip caches.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from deploy_helpers import REPO

pytestmark = pytest.mark.container

CACHE = Path(os.environ.get("PREDIS_CONTAINER_CACHE", "/var/cache/predis-container"))
SUITE = "bookworm"
# A storage root of the test's own, kept in the cache: the base image survives between runs,
# and cleaning up touches nothing else on the machine.
BUILDAH = [
    "buildah",
    "--storage-driver",
    "vfs",
    "--root",
    str(CACHE / "storage"),
    "--runroot",
    str(CACHE / "run"),
]


def _why_not() -> str | None:
    if os.environ.get("PREDIS_CONTAINER_TESTS") != "1":
        return "set PREDIS_CONTAINER_TESTS=1 to build images (.ci/run does when buildah works)"
    if os.geteuid() != 0:
        return "buildah with the vfs driver and chroot isolation needs root here"
    missing = [t for t in ("buildah", "debootstrap") if shutil.which(t) is None]
    if missing:
        return f"missing {', '.join(missing)} (apt-get install -y buildah debootstrap)"
    return None


def _run(cmd: list[str], timeout: int = 1800, **kw: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-4000:]
        pytest.fail(f"{' '.join(cmd[:6])}... exited {result.returncode}:\n{tail}")
    return result


def _image_exists(name: str) -> bool:
    probe = subprocess.run(
        [*BUILDAH, "inspect", "--type", "image", name],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.returncode == 0


@pytest.fixture(scope="module")
def base_image() -> str:
    """The debootstrapped base with this host's CA bundle, imported once per cache."""
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"debian-{SUITE}-base.tar"
    _run(["bash", str(REPO / "tests/deploy/make_base_image.sh"), str(tarball), SUITE])
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    stamp = hashlib.sha256(
        f"{tarball.stat().st_size}:{tarball.stat().st_mtime_ns}".encode()
        + (ca.read_bytes() if ca.exists() else b"")
    ).hexdigest()[:12]
    name = f"localhost/predis-test-base:{SUITE}-{stamp}"
    if _image_exists(name):
        return name
    ctr = _run([*BUILDAH, "from", "scratch"]).stdout.strip()
    try:
        _run([*BUILDAH, "add", ctr, str(tarball), "/"])
        if ca.exists():
            _run([*BUILDAH, "copy", ctr, str(ca), str(ca)])
            pip_conf = CACHE / "pip.conf"
            pip_conf.write_text(f"[global]\ncert = {ca}\n")
            _run([*BUILDAH, "copy", ctr, str(pip_conf), "/etc/pip.conf"])
        _run([*BUILDAH, "commit", "--format", "docker", ctr, name])
    finally:
        subprocess.run([*BUILDAH, "rm", ctr], capture_output=True, check=False)
    return name


def _build(base: str, target: str) -> str:
    tag = f"localhost/predis-{target}:test"
    args = [f"--build-arg={a}_BASE={base}" for a in ("BUILD", "RUNTIME", "EXPORTER")]
    _run(
        [
            *BUILDAH,
            "build",
            "--isolation",
            "chroot",
            "--format",
            "docker",
            "-f",
            "deploy/Dockerfile",
            "--target",
            target,
            *args,
            "-t",
            tag,
            ".",
        ],
        timeout=2400,
        cwd=REPO,
    )
    return tag


def _inside(image: str, script: str) -> str:
    """Run a shell script in a container of image, as the image's user; its stdout."""
    ctr = _run([*BUILDAH, "from", "--pull-never", image]).stdout.strip()
    try:
        return _run(
            [*BUILDAH, "run", "--isolation", "chroot", ctr, "--", "sh", "-euc", script],
            timeout=600,
        ).stdout
    finally:
        subprocess.run([*BUILDAH, "rm", ctr], capture_output=True, check=False)


def _config(image: str) -> dict:
    out = _run([*BUILDAH, "inspect", "--type", "image", image]).stdout
    return json.loads(out)["Docker"]["config"]


def _tree_has_exporter() -> bool:
    """Whether this tree's CLI has `predis exporter` (the monitoring issue adds it)."""
    return "exporter" in (REPO / "python/predis/cli.py").read_text()


def _remove(tag: str) -> None:
    """Drop a built image and the build stage's leftovers; the base image stays cached."""
    subprocess.run([*BUILDAH, "rmi", tag], capture_output=True, check=False)
    subprocess.run([*BUILDAH, "rmi", "--prune"], capture_output=True, check=False)


@pytest.fixture(scope="module")
def runtime_image(base_image: str):
    tag = _build(base_image, "runtime")
    yield tag
    _remove(tag)


@pytest.fixture(scope="module")
def exporter_image(base_image: str):
    tag = _build(base_image, "exporter")
    yield tag
    _remove(tag)


def test_runtime_image_runs_predis_as_non_root(runtime_image):
    check = textwrap.dedent(
        """
        import json, predis
        cache = predis.Cache(capacity_bytes=1 << 20)
        cache.mput([1, 2, 3], [b"a", b"bb", b"ccc"])
        assert cache.mget([1, 2, 3, 4]) == [b"a", b"bb", b"ccc", None]
        print(json.dumps({"version": predis.__version__, "hits": cache.stats().hits}))
        """
    )
    out = _inside(
        runtime_image,
        f"id -u; id -g; python3 -c '{check}'; predis --help; predis info; "
        "touch /opt/predis/probe 2>/dev/null && echo WRITABLE || echo READONLY",
    )
    lines = out.splitlines()
    assert lines[:2] == ["10001", "10001"]
    assert json.loads(lines[2]) == {"version": "0.1.0", "hits": 3}
    assert "usage: predis" in out
    info = json.loads(out[out.index("{\n") : out.rindex("}") + 1])
    assert info["build"]["version"] == "0.1.0"
    assert lines[-1] == "READONLY"  # the package is not writable by the user it runs as


def test_runtime_image_config(runtime_image):
    config = _config(runtime_image)
    assert config["User"] == "10001:10001"
    assert config["Healthcheck"]["Test"] == ["CMD", "predis", "info"]
    assert config["Cmd"] == ["python3", "/opt/predis-app/host_app.py"]
    assert any(e.startswith("PATH=/opt/predis/bin:") for e in config["Env"])


def test_runtime_image_runs_the_example_host_app(runtime_image):
    if "stats_shm" not in (REPO / "python/predis/cache.py").read_text():
        pytest.skip(
            "the host app publishes a stats block: Cache(stats_shm=...) is not in this tree"
        )
    out = _inside(
        runtime_image,
        "PREDIS_SHM_DIR=/tmp PREDIS_APP_REQUESTS=5000 PREDIS_APP_RATE=100000 "
        "python3 /opt/predis-app/host_app.py",
    )
    assert "served 5000 requests" in out


def test_exporter_image(exporter_image):
    config = _config(exporter_image)
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["predis", "exporter"]
    assert "9100/tcp" in config["ExposedPorts"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    # The exporter command comes from the monitoring work; without it, the package itself.
    probe = "predis exporter --help" if _tree_has_exporter() else "predis info"
    out = _inside(exporter_image, f"id -u; {probe}")
    lines = out.splitlines()
    assert lines[0] == "10001"
    if _tree_has_exporter():
        assert "--port" in out
    else:
        assert json.loads(out[out.index("{\n") : out.rindex("}") + 1])["build"]["version"]

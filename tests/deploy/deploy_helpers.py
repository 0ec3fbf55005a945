"""Running deploy_customer.sh and finding the validators the deploy tests use."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "deploy_customer.sh"
AWS_ARGS = [
    "--region",
    "eu-west-1",
    "--vpc-id",
    "vpc-0a1b2c3d",
    "--subnet-id",
    "subnet-0a1b2c3d",
    "--bucket",
    "acme-predis-bundles",
]


def run_script(
    args: list[str], root: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """deploy_customer.sh ARGS with $PREDIS_DEPLOY_ROOT=root and this interpreter's predis."""
    full_env = {
        k: v for k, v in os.environ.items() if k not in ("CUSTOMER_ID", "PREDIS_TOKEN_FILE")
    }
    full_env.update(
        PREDIS_DEPLOY_ROOT=str(root),
        PREDIS_PYTHON=sys.executable,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{full_env.get('PATH', '')}",
    )
    full_env.update(env or {})
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env=full_env,
        cwd=cwd or root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def compose_command() -> list[str] | None:
    """`docker compose` when the Docker CLI has the plugin, else a standalone Compose v2."""
    candidates: list[list[str]] = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    for folder in (Path(sys.executable).parent, None):
        found = shutil.which("docker-compose", path=None if folder is None else str(folder))
        if found:
            candidates.append([found])
    for cmd in candidates:
        try:
            probe = subprocess.run(
                [*cmd, "version"], capture_output=True, text=True, timeout=60, check=False
            )
        except OSError:
            continue
        if probe.returncode == 0 and "v2." in probe.stdout:
            return cmd
    return None


def tree_files(root: Path) -> dict[str, bytes]:
    """Every regular file under root, by relative path."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }

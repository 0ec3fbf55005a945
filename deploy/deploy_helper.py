"""The Python half of deploy_customer.sh: validates every input with predis.security's
validators and renders a platform's files. The shell script keeps the parts that drive
other programs (secrets via `predis token create`, docker, kubectl, aws).

    deploy_helper.py check  ARGS...   validate; print the resolved settings as KEY=VALUE
    deploy_helper.py render ARGS...   validate, then write the platform's files

Every value printed or written has passed a validator whose pattern admits no shell or
YAML metacharacter, so the script can use the values without quoting tricks and the
templates cannot be broken out of. Secrets are read from the 0600 files the script made
and written only into files of mode 0600; they are never printed.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import io
import ipaddress
import json
import os
import re
import stat
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

from predis.errors import InvalidArgumentError, PredisError
from predis.fileio import atomic_write_bytes, atomic_write_text
from predis.security.validation import (
    parse_size,
    safe_path,
    validate_customer_id,
    validate_host,
    validate_image_ref,
    validate_name,
    validate_port,
)

DEPLOY = Path(__file__).resolve().parent
PLATFORMS = ("docker", "kubernetes", "aws")
DEFAULT_IMAGE = "predis/runtime:0.1.0"
DEFAULT_EXPORTER_IMAGE = "predis/exporter:0.1.0"
SECRET_NAMES = ("metrics-token", "grafana-admin-password", "customer-token")
# Token-like secrets the script generates: URL-safe base64, nothing to escape anywhere.
_SECRET = re.compile(r"[A-Za-z0-9_-]{20,200}")
_PLACEHOLDER = re.compile(r"__[A-Z][A-Z0-9_]*__")
_REGION = re.compile(r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}")
_VPC = re.compile(r"vpc-[0-9a-f]{8,17}")
_SUBNET = re.compile(r"subnet-[0-9a-f]{8,17}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]*\.[0-9a-z]{3,12}")
_INT = re.compile(r"[0-9]{1,6}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise InvalidArgumentError(f"{message} (see deploy_customer.sh --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="deploy_customer.sh", add_help=False, allow_abbrev=False)
    p.add_argument("--platform", required=True)
    p.add_argument("--customer-id", default=os.environ.get("CUSTOMER_ID"))
    p.add_argument("--output-dir")
    p.add_argument("--image", default=DEFAULT_IMAGE)
    p.add_argument("--exporter-image", default=DEFAULT_EXPORTER_IMAGE)
    p.add_argument("--cache-bytes", default="256MiB")
    p.add_argument("--token-scopes", default="read")
    p.add_argument("--gpu", action="store_true")
    p.add_argument("--dry-run", action="store_true")
    # docker
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--exporter-port", default="9100")
    p.add_argument("--prometheus-port", default="9090")
    p.add_argument("--grafana-port", default="3000")
    # kubernetes
    p.add_argument("--namespace")
    p.add_argument("--app-memory")
    p.add_argument("--gpus", default="0")
    p.add_argument("--prometheus-namespace", default="monitoring")
    p.add_argument("--prometheus-release", default="kube-prometheus-stack")
    # aws
    p.add_argument("--region")
    p.add_argument("--vpc-id")
    p.add_argument("--subnet-id")
    p.add_argument("--bucket")
    p.add_argument("--instance-type", default="g5.xlarge")
    return p


def _port(text: str, what: str) -> int:
    if not _INT.fullmatch(text):
        raise InvalidArgumentError(f"{what} must be a port number 1-65535, got {text[:40]!r}")
    try:
        return validate_port(int(text))
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{what}: {exc}") from exc


def _match(pattern: re.Pattern[str], text: str | None, what: str, example: str) -> str:
    if text is None:
        raise InvalidArgumentError(f"{what} is required on this platform (e.g. {example})")
    if not pattern.fullmatch(text):
        raise InvalidArgumentError(f"invalid {what} {text[:80]!r} (expected e.g. {example})")
    return text


def _dns_label(text: str, what: str) -> str:
    try:
        return validate_customer_id(text)
    except InvalidArgumentError:
        raise InvalidArgumentError(
            f"invalid {what} {text[:80]!r}: use 3-63 characters of a-z, 0-9 and '-' "
            "(not first or last)"
        ) from None


def _output_dir(customer: str, given: str | None) -> Path:
    """The output folder: under $PREDIS_DEPLOY_ROOT (default ./predis-deployments),
    resolved, contained, and never a symbolic link out."""
    root = Path(os.environ.get("PREDIS_DEPLOY_ROOT") or "predis-deployments").absolute()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    out = safe_path(root, given if given is not None else customer)
    if out == root.resolve():
        raise InvalidArgumentError("the output folder must be below the deployment root")
    text = str(out)
    if any(c in text for c in "\n\r'\"$`\\") or not text.isprintable():
        raise InvalidArgumentError(f"output folder {text[:200]!r} holds characters not allowed")
    return out


def settings(argv: Sequence[str]) -> dict[str, str]:
    """Every input validated; the resolved settings as strings."""
    a = _parser().parse_args(list(argv))
    if a.platform not in PLATFORMS:
        raise InvalidArgumentError(f"--platform must be one of {', '.join(PLATFORMS)}")
    if a.customer_id is None:
        raise InvalidArgumentError("--customer-id is required (or set CUSTOMER_ID)")
    customer = validate_customer_id(a.customer_id)
    scopes = [s for s in a.token_scopes.split(",") if s]
    if not scopes or any(s not in ("read", "export", "admin") for s in scopes):
        raise InvalidArgumentError("--token-scopes must list read, export and/or admin")
    cache_bytes = parse_size(a.cache_bytes, maximum=2**40)
    if cache_bytes < 1 << 20:
        raise InvalidArgumentError("--cache-bytes must be at least 1MiB")
    s = {
        "platform": a.platform,
        "customer_id": customer,
        "output_dir": str(_output_dir(customer, a.output_dir)),
        "image": validate_image_ref(a.image),
        "exporter_image": validate_image_ref(a.exporter_image),
        "cache_bytes": str(cache_bytes),
        "token_scopes": ",".join(sorted(set(scopes))),
        "gpu": "1" if a.gpu or a.platform == "aws" else "0",
        "dry_run": "1" if a.dry_run else "0",
    }
    if a.platform in ("docker", "aws"):
        bind = validate_host(a.bind_address)
        try:
            ip = ipaddress.ip_address(bind)
        except ValueError:
            raise InvalidArgumentError(
                f"--bind-address must be an IP address, got {bind!r}"
            ) from None
        ports = {
            "exporter_port": _port(a.exporter_port, "--exporter-port"),
            "prometheus_port": _port(a.prometheus_port, "--prometheus-port"),
            "grafana_port": _port(a.grafana_port, "--grafana-port"),
        }
        if len(set(ports.values())) != len(ports):
            raise InvalidArgumentError(
                "--exporter-port, --prometheus-port and --grafana-port differ"
            )
        s["bind_address"] = str(ip)
        s.update({k: str(v) for k, v in ports.items()})
        s["warn_exposed"] = "0" if ip.is_loopback else "1"
    if a.platform == "kubernetes":
        namespace = a.namespace if a.namespace is not None else f"predis-{customer}"
        s["namespace"] = _dns_label(namespace, "--namespace")
        s["prometheus_namespace"] = _dns_label(a.prometheus_namespace, "--prometheus-namespace")
        s["prometheus_release"] = validate_name(a.prometheus_release, "--prometheus-release")
        memory = (
            parse_size(a.app_memory, maximum=2**44)
            if a.app_memory is not None
            else cache_bytes + (1 << 30)
        )
        if memory <= cache_bytes:
            raise InvalidArgumentError("--app-memory must exceed --cache-bytes")
        s["app_memory"] = str(memory)
        if not _INT.fullmatch(a.gpus) or int(a.gpus) > 16:
            raise InvalidArgumentError(f"--gpus must be an integer 0-16, got {a.gpus[:20]!r}")
        s["gpus"] = str(int(a.gpus))
    if a.platform == "aws":
        s["region"] = _match(_REGION, a.region, "--region", "eu-west-1")
        s["vpc_id"] = _match(_VPC, a.vpc_id, "--vpc-id", "vpc-0a1b2c3d")
        s["subnet_id"] = _match(_SUBNET, a.subnet_id, "--subnet-id", "subnet-0a1b2c3d")
        bucket = _match(_BUCKET, a.bucket, "--bucket", "acme-predis-bundles")
        if ".." in bucket or ".-" in bucket or "-." in bucket:
            raise InvalidArgumentError(f"invalid --bucket {bucket!r}")
        s["bucket"] = bucket
        s["instance_type"] = _match(_INSTANCE_TYPE, a.instance_type, "--instance-type", "g5.xlarge")
        s["stack_name"] = f"predis-{customer}"
        s["bundle_key"] = f"predis/{customer}/bundle.tar.gz"
    return s


# ---------------------------------------------------------------------------- render --


def read_secret(out: Path, name: str) -> str:
    """A secret the script generated: a regular 0600 file of ours, token-shaped."""
    path = out / "secrets" / name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise InvalidArgumentError(f"secret file {path} cannot be opened: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077:
            raise InvalidArgumentError(f"secret file {path} must be a regular file of mode 0600")
        value = f.read(4096).decode("ascii", "replace").strip()
    if not _SECRET.fullmatch(value):
        raise InvalidArgumentError(f"secret file {path} does not hold a generated secret")
    return value


def fill(template: str, values: dict[str, str]) -> str:
    """``template`` with every ``__NAME__`` replaced; a marker without a value is an error."""

    def one(m: re.Match[str]) -> str:
        key = m.group(0)[2:-2].lower()
        if key not in values:
            raise InvalidArgumentError(f"template marker {m.group(0)} has no value")
        return values[key]

    return _PLACEHOLDER.sub(one, template)


def _write(out: Path, rel: str | Path, text: str, mode: int = 0o644) -> None:
    """Write ``out/rel`` atomically; a symbolic link that would lead out of ``out`` (on any
    component, before or after the folders are made) is refused."""
    safe_path(out, rel)
    (out / rel).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write_text(safe_path(out, rel), text, mode=mode)


def _env_file(s: dict[str, str], source_dir: Path) -> str:
    if any(c in str(source_dir) for c in "\n\r'\"$`\\#") or not str(source_dir).isprintable():
        raise InvalidArgumentError(
            f"the checkout's path {str(source_dir)[:200]!r} holds characters a .env file "
            "cannot carry; move the checkout"
        )
    files = "compose.yaml:compose.gpu.yaml" if s["gpu"] == "1" else "compose.yaml"
    lines = [
        "# Rendered by deploy_customer.sh; no secrets here (they come from secrets/ at start).",
        f"COMPOSE_PROJECT_NAME=predis-{s['customer_id']}",
        f"COMPOSE_FILE={files}",
        f"PREDIS_SOURCE_DIR='{source_dir}'",
        f"PREDIS_CUSTOMER_ID={s['customer_id']}",
        f"PREDIS_IMAGE={s['image']}",
        f"PREDIS_EXPORTER_IMAGE={s['exporter_image']}",
        f"PREDIS_CACHE_BYTES={s['cache_bytes']}",
        f"PREDIS_BIND_ADDRESS={s['bind_address']}",
        f"PREDIS_EXPORTER_PORT={s['exporter_port']}",
        f"PREDIS_PROMETHEUS_PORT={s['prometheus_port']}",
        f"PREDIS_GRAFANA_PORT={s['grafana_port']}",
    ]
    return "\n".join(lines) + "\n"


def render_docker(s: dict[str, str], out: Path, source_dir: Path) -> Path:
    """compose.yaml, compose.gpu.yaml, .env, Prometheus and Grafana files under out/docker."""
    dest = out / "docker"
    for rel in (
        "compose.yaml",
        "compose.gpu.yaml",
        "prometheus/prometheus.yml",
        "grafana/provisioning/datasources/prometheus.yaml",
        "grafana/provisioning/dashboards/predis.yaml",
    ):
        _write(out, f"docker/{rel}", (DEPLOY / rel).read_text(encoding="utf-8"))
    safe_path(out, "docker/grafana/dashboards").mkdir(mode=0o700, parents=True, exist_ok=True)
    for board in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        try:
            doc = json.loads(board.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidArgumentError(f"dashboard {board.name} is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict) or "panels" not in doc:
            raise InvalidArgumentError(f"dashboard {board.name} is not a Grafana dashboard")
        name = validate_name(board.name, "dashboard file")
        _write(out, f"docker/grafana/dashboards/{name}", json.dumps(doc, indent=1))
    _write(out, "docker/.env", _env_file(s, source_dir))
    return dest


def render_kubernetes(s: dict[str, str], out: Path) -> Path:
    """The manifests, and the Secret (mode 0600) from the generated metrics token."""
    dest = out / "kubernetes"
    values = {
        "customer_id": s["customer_id"],
        "namespace": s["namespace"],
        "image": s["image"],
        "exporter_image": s["exporter_image"],
        "cache_bytes": s["cache_bytes"],
        "app_memory": s["app_memory"],
        "gpus": s["gpus"],
        "prometheus_namespace": s["prometheus_namespace"],
        "prometheus_release": s["prometheus_release"],
    }
    for template in sorted((DEPLOY / "kubernetes").glob("*.yaml.tmpl")):
        name = template.name.removesuffix(".tmpl")
        _write(out, f"kubernetes/{name}", fill(template.read_text(encoding="utf-8"), values))
    token = read_secret(out, "metrics-token")
    secret = (
        "# Rendered by deploy_customer.sh from secrets/metrics-token; never commit it.\n"
        "apiVersion: v1\n"
        "kind: Secret\n"
        "metadata:\n"
        "  name: predis-metrics-token\n"
        f"  namespace: {s['namespace']}\n"
        "  labels:\n"
        "    app.kubernetes.io/name: predis\n"
        f"    predis.io/customer: {s['customer_id']}\n"
        "type: Opaque\n"
        "data:\n"
        f"  token: {base64.b64encode(token.encode('ascii')).decode('ascii')}\n"
    )
    _write(out, "kubernetes/secret.yaml", secret, mode=0o600)
    return dest


def _bundle(src: Path, dest: Path) -> None:
    """A reproducible tar.gz of the docker folder (sorted, zeroed times and owners)."""

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        info.mode = 0o755 if info.isdir() else 0o644
        return info

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = sorted([src, *src.rglob("*")])
        for path in paths:
            tar.add(
                path,
                arcname=str(Path("docker") / path.relative_to(src)),
                recursive=False,
                filter=clean,
            )
    atomic_write_bytes(dest, gzip.compress(raw.getvalue(), mtime=0), mode=0o644)


def render_aws(s: dict[str, str], out: Path, source_dir: Path) -> Path:
    """The CloudFormation template, its parameters, and the compose bundle to upload."""
    docker = render_docker(s, out, source_dir)
    dest = out / "aws"
    template = (DEPLOY / "aws" / "predis-gpu.yaml").read_text("utf-8")
    _write(out, "aws/predis-gpu.yaml", template)
    params = {
        "CustomerId": s["customer_id"],
        "InstanceType": s["instance_type"],
        "VpcId": s["vpc_id"],
        "SubnetId": s["subnet_id"],
        "BundleBucket": s["bucket"],
        "BundleKey": s["bundle_key"],
    }
    _write(out, "aws/parameters.json", json.dumps(params, indent=2, sort_keys=True) + "\n")
    _bundle(docker, safe_path(out, "aws/bundle.tar.gz"))
    return dest


def main(argv: Sequence[str]) -> int:
    """``check`` or ``render``, then the deploy_customer.sh arguments."""
    if not argv or argv[0] not in ("check", "render"):
        print("usage: deploy_helper.py check|render ARGS...", file=sys.stderr)
        return 2
    try:
        s = settings(argv[1:])
        if argv[0] == "check":
            for key, value in s.items():
                print(f"{key}={value}")
            return 0
        out = Path(s["output_dir"])
        source_dir = DEPLOY.parent
        if s["platform"] == "docker":
            dest = render_docker(s, out, source_dir)
        elif s["platform"] == "kubernetes":
            dest = render_kubernetes(s, out)
        else:
            dest = render_aws(s, out, source_dir)
        print(dest)
        return 0
    except (PredisError, OSError) as exc:
        print(f"deploy_customer.sh: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

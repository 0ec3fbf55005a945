"""deploy_customer.sh run as a subprocess with --dry-run on each platform: the rendered
files validate (compose with Compose itself and the compose-spec schema, Kubernetes YAML
against the API schemas, CloudFormation with cfn-lint), secrets are 0600 and never
printed, a second run changes nothing, and hostile input is refused with nothing written.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from deploy_helpers import AWS_ARGS, REPO, compose_command, run_script, tree_files

CUSTOMER = "acme-eu-1"
# cfn-lint's console entry point, run by this interpreter (the package has no __main__).
CFN_LINT = [sys.executable, "-c", "import sys; from cfnlint.runner import main; sys.exit(main())"]


def _secrets(out: Path) -> dict[str, str]:
    folder = out / "secrets"
    return {
        p.name: p.read_text().strip()
        for p in folder.iterdir()
        if p.name in ("metrics-token", "grafana-admin-password", "customer-token")
    }


def _assert_private(out: Path) -> None:
    for path in [out, out / "secrets"]:
        assert path.stat().st_mode & 0o777 == 0o700, path
    for path in (out / "secrets").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path


def _assert_no_secret_leaked(out: Path, result: subprocess.CompletedProcess[str]) -> None:
    """No secret in the script's output, nor in any rendered file but the 0600 ones."""
    values = _secrets(out)
    assert values, "no secrets were generated"
    for name, value in values.items():
        assert len(value) >= 20, name
        assert value not in result.stdout, name
        assert value not in result.stderr, name
        for path in out.rglob("*"):
            if path.is_file() and "secrets" not in path.parts and path.name != "secret.yaml":
                assert value.encode() not in path.read_bytes(), (name, path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "deployments"
    folder.mkdir()
    return folder


def _dry_run(root: Path, platform: str, *extra: str) -> Path:
    result = run_script(
        ["--platform", platform, "--customer-id", CUSTOMER, "--dry-run", *extra], root
    )
    assert result.returncode == 0, result.stderr
    assert "dry run: nothing applied" in result.stdout
    out = root / CUSTOMER
    _assert_private(out)
    _assert_no_secret_leaked(out, result)
    return out


# ----------------------------------------------------------------------------- docker --


def _compose_config(folder: Path, secrets: dict[str, str]) -> dict:
    cmd = compose_command()
    if cmd is None:
        pytest.skip("no Docker Compose v2 here (docker compose plugin or docker-compose)")
    env = dict(os.environ)
    env.update(
        PREDIS_METRICS_TOKEN=secrets["metrics-token"],
        PREDIS_GRAFANA_ADMIN_PASSWORD=secrets["grafana-admin-password"],
    )
    result = subprocess.run(
        [*cmd, "config", "--format", "json"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_docker_dry_run_renders_a_valid_compose_project(root):
    out = _dry_run(root, "docker")
    folder = out / "docker"
    schema = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(folder / "compose.yaml"),
            str(folder / "compose.gpu.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    env = (folder / ".env").read_text()
    assert f"COMPOSE_PROJECT_NAME=predis-{CUSTOMER}\n" in env
    assert "COMPOSE_FILE=compose.yaml\n" in env

    config = _compose_config(folder, _secrets(out))
    assert config["name"] == f"predis-{CUSTOMER}"
    services = config["services"]
    # The ROI dashboard (predis dashboard) is not deployed yet, so it has no service.
    assert set(services) == {"app", "exporter", "prometheus", "grafana"}
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert published, "nothing is published"
    assert all(p["host_ip"] == "127.0.0.1" for p in published), published
    assert {int(p["published"]) for p in published} == {9100, 9090, 3000}
    # Secrets come from the environment only, and reach each reader as its own user.
    assert set(config["secrets"]) == {"metrics_token", "grafana_admin_password"}
    assert all("environment" in s and "file" not in s for s in config["secrets"].values())
    uids = {
        name: {s["source"]: s["uid"] for s in svc.get("secrets", [])}
        for name, svc in services.items()
    }
    assert uids["exporter"] == {"metrics_token": "10001"}
    assert uids["prometheus"] == {"metrics_token": "65534"}
    assert uids["grafana"] == {"grafana_admin_password": "472"}
    for name, svc in services.items():
        assert svc["read_only"] is True, name
        assert svc["cap_drop"] == ["ALL"], name
        env_values = " ".join(str(v) for v in (svc.get("environment") or {}).values())
        for secret in _secrets(out).values():
            assert secret not in env_values, name
    # The exporter shares the app's IPC namespace, hence its /dev/shm and stats block.
    assert services["exporter"]["ipc"] == "service:app"
    assert services["app"]["ipc"] == "shareable"


def test_prometheus_and_grafana_point_at_the_compose_services(root):
    folder = _dry_run(root, "docker") / "docker"
    compose = yaml.safe_load((folder / "compose.yaml").read_text())
    prom = yaml.safe_load((folder / "prometheus" / "prometheus.yml").read_text())
    (job,) = prom["scrape_configs"]
    assert job["static_configs"] == [{"targets": ["exporter:9100"]}]
    assert compose["services"]["exporter"]["command"][-3:] == ["--port", "9100", "--all"]
    secret_target = compose["services"]["prometheus"]["secrets"][0]["target"]
    assert job["authorization"]["credentials_file"] == f"/run/secrets/{secret_target}"
    exporter_env = compose["services"]["exporter"]["environment"]
    assert exporter_env["PREDIS_METRICS_TOKEN_FILE"] == f"/run/secrets/{secret_target}"
    source = yaml.safe_load(
        (folder / "grafana/provisioning/datasources/prometheus.yaml").read_text()
    )
    (ds,) = source["datasources"]
    assert ds["url"] == "http://prometheus:9090"
    assert ds["type"] == "prometheus"
    boards = yaml.safe_load((folder / "grafana/provisioning/dashboards/predis.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{boards['providers'][0]['options']['path']}:ro" in mounts
    shipped = sorted(p.name for p in (REPO / "deploy/grafana/dashboards").glob("*.json"))
    assert sorted(p.name for p in (folder / "grafana/dashboards").glob("*.json")) == shipped


def test_gpu_option_adds_the_device_reservation(root):
    out = _dry_run(root, "docker", "--gpu")
    folder = out / "docker"
    assert "COMPOSE_FILE=compose.yaml:compose.gpu.yaml\n" in (folder / ".env").read_text()
    config = _compose_config(folder, _secrets(out))
    devices = config["services"]["app"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


@pytest.mark.parametrize("platform", ["docker", "kubernetes", "aws"])
def test_a_second_run_changes_nothing(root, platform):
    extra = AWS_ARGS if platform == "aws" else []
    out = _dry_run(root, platform, *extra)
    before, secrets = tree_files(out), _secrets(out)
    out2 = _dry_run(root, platform, *extra)
    assert out2 == out
    assert _secrets(out) == secrets
    assert tree_files(out) == before
    listed = subprocess.run(
        [sys.executable, "-m", "predis.cli", "token", "list"],
        env={**os.environ, "PREDIS_TOKEN_FILE": str(out / "secrets" / "tokens.json")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(listed.stdout.strip().splitlines()) == 1
    assert CUSTOMER in listed.stdout


def test_the_customer_token_verifies_against_its_store(root):
    from predis.security.tokens import TokenStore

    out = _dry_run(root, "docker", "--token-scopes", "read,export")
    store = TokenStore(out / "secrets" / "tokens.json")
    info = store.verify(_secrets(out)["customer-token"], "export", customer=CUSTOMER)
    assert info.scopes == ("export", "read")


# ------------------------------------------------------------------------- kubernetes --


def _k8s_docs(folder: Path) -> dict[str, dict]:
    docs = {}
    for path in sorted(folder.glob("*.yaml")):
        (doc,) = list(yaml.safe_load_all(path.read_text()))
        docs[doc["kind"]] = doc
    return docs


def test_kubernetes_dry_run_renders_manifests_that_match_the_schemas(root):
    out = _dry_run(root, "kubernetes")
    folder = out / "kubernetes"
    docs = _k8s_docs(folder)
    assert set(docs) == {
        "Namespace",
        "Deployment",
        "Service",
        "ServiceMonitor",
        "NetworkPolicy",
        "Secret",
    }
    for kind, doc in docs.items():
        if kind == "ServiceMonitor":  # a CRD: checked against the Service below
            continue
        kubernetes_validate.validate(doc, "1.30.0", strict=True)
        assert doc["metadata"].get("namespace", doc["metadata"]["name"]) == f"predis-{CUSTOMER}"
    assert (folder / "secret.yaml").stat().st_mode & 0o777 == 0o600


def test_kubernetes_validation_catches_a_broken_manifest(root):
    """The schema check is not a rubber stamp: a wrong type fails it."""
    docs = _k8s_docs(_dry_run(root, "kubernetes") / "kubernetes")
    broken = docs["Deployment"]
    broken["spec"]["template"]["spec"]["containers"][0]["env"][1]["value"] = 268435456
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.30.0", strict=True)


def test_kubernetes_sidecar_shares_the_stats_block_in_memory(root):
    out = _dry_run(root, "kubernetes")
    docs = _k8s_docs(out / "kubernetes")
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (stats,) = [v for v in pod["volumes"] if v["name"] == "stats"]
    assert stats["emptyDir"]["medium"] == "Memory"
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"app", "exporter"}
    for c in containers.values():
        (mount,) = [m for m in c["volumeMounts"] if m["name"] == "stats"]
        assert mount["mountPath"] == "/dev/shm"  # noqa: S108 - the POSIX shm mount
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["automountServiceAccountToken"] is False
    # The exporter's token and the Secret agree, and the Secret holds the generated one.
    ref = containers["exporter"]["env"][0]["valueFrom"]["secretKeyRef"]
    secret = docs["Secret"]
    assert ref["name"] == secret["metadata"]["name"]
    token = base64.b64decode(secret["data"][ref["key"]]).decode()
    assert token == _secrets(out)["metrics-token"]


def test_service_monitor_and_network_policy_select_the_exporter(root):
    docs = _k8s_docs(_dry_run(root, "kubernetes") / "kubernetes")
    pod_labels = docs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    service = docs["Service"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (svc_port,) = service["spec"]["ports"]
    exporter = next(
        c
        for c in docs["Deployment"]["spec"]["template"]["spec"]["containers"]
        if c["name"] == "exporter"
    )
    assert svc_port["targetPort"] in {p["name"] for p in exporter["ports"]}
    monitor = docs["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == svc_port["name"]
    creds = endpoint["authorization"]["credentials"]
    assert creds["name"] == docs["Secret"]["metadata"]["name"]
    assert creds["key"] in docs["Secret"]["data"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    policy = docs["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    (rule,) = policy["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]


# -------------------------------------------------------------------------------- aws --


def test_aws_dry_run_renders_a_template_that_cfn_lint_passes(root):
    out = _dry_run(root, "aws", *AWS_ARGS)
    folder = out / "aws"
    lint = subprocess.run(
        [*CFN_LINT, str(folder / "predis-gpu.yaml")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # A SafeLoader subclass that also reads CloudFormation's !Ref/!Sub tags.
    text = (folder / "predis-gpu.yaml").read_text()
    template = yaml.load(text, Loader=_CfnLoader)  # noqa: S506
    params = json.loads((folder / "parameters.json").read_text())
    declared = template["Parameters"]
    required = {k for k, v in declared.items() if "Default" not in v}
    assert required <= set(params) <= set(declared)
    assert params["CustomerId"] == CUSTOMER
    assert params["BundleKey"] == f"predis/{CUSTOMER}/bundle.tar.gz"
    with tarfile.open(folder / "bundle.tar.gz") as tar:
        names = tar.getnames()
        assert {"docker/compose.yaml", "docker/.env"} <= set(names)
        assert not any("secrets" in n for n in names)
        blob = b""
        for member in tar.getmembers():
            f = tar.extractfile(member)
            if f is not None:
                blob += f.read()
    for value in _secrets(out).values():
        assert value.encode() not in blob


def test_cfn_lint_rejects_a_broken_template(tmp_path):
    """cfn-lint is really checking: an instance type outside the template's list fails."""
    source = (REPO / "deploy/aws/predis-gpu.yaml").read_text()
    broken = tmp_path / "broken.yaml"
    broken.write_text(source.replace("Default: g5.xlarge", "Default: t2.micro-not-a-type"))
    lint = subprocess.run(
        [*CFN_LINT, str(broken)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert lint.returncode != 0


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation's short-form intrinsic tags as plain values."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> object:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node)}
    return {suffix: loader.construct_mapping(node)}  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _cfn_tag)


# ---------------------------------------------------------------------------- hostile --


@pytest.mark.parametrize(
    "customer",
    [
        "x; rm -rf /",
        "x; touch CANARY",
        "$(touch CANARY)",
        "`touch CANARY`",
        "../../etc",
        "acme\nx",
        "ACME",
        "a",
        "-acme",
        "acme-",
        "a" * 64,
        "",
    ],
)
def test_hostile_customer_ids_are_refused_with_nothing_written(root, customer):
    for how in ("option", "environment"):
        args = ["--platform", "docker", "--dry-run"]
        env = {}
        if how == "option":
            args += ["--customer-id", customer]
        else:
            env["CUSTOMER_ID"] = customer
        result = run_script(args, root, env=env)
        assert result.returncode == 2, (how, result.stdout, result.stderr)
        # ("-acme" reads as an option to the parser, which refuses it as a missing value.)
        assert "customer id" in result.stderr or "--customer-id" in result.stderr
        assert list(root.iterdir()) == [], how
        assert not (root / "CANARY").exists()
        assert not Path("CANARY").exists()


@pytest.mark.parametrize(
    "output_dir",
    ["../outside", "/tmp/predis-elsewhere", "a/../../outside", "link/inner"],  # noqa: S108
)
def test_output_dirs_outside_the_root_are_refused(root, output_dir):
    outside = root.parent / "outside"
    outside.mkdir(exist_ok=True)
    (root / "link").symlink_to(outside)
    result = run_script(
        [
            "--platform",
            "docker",
            "--customer-id",
            CUSTOMER,
            "--dry-run",
            "--output-dir",
            output_dir,
        ],
        root,
    )
    assert result.returncode == 2, result.stdout
    assert "leaves" in result.stderr
    assert list(outside.iterdir()) == []
    assert not Path("/tmp/predis-elsewhere").exists()  # noqa: S108 - the hostile input


def test_a_symlinked_output_subfolder_is_refused(root):
    """A rendered folder swapped for a link out of the root is not written through."""
    _dry_run(root, "docker")
    outside = root.parent / "outside"
    outside.mkdir()
    docker = root / CUSTOMER / "docker"
    for path in sorted(docker.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    docker.rmdir()
    docker.symlink_to(outside)
    result = run_script(["--platform", "docker", "--customer-id", CUSTOMER, "--dry-run"], root)
    assert result.returncode == 2
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--exporter-port", "0", "port"),
        ("--exporter-port", "65536", "port"),
        ("--grafana-port", "80; id", "port"),
        ("--grafana-port", "-1", "port"),
        ("--prometheus-port", "1e3", "port"),
        ("--prometheus-port", "9100", "differ"),
        ("--bind-address", "0.0.0.0; id", "host"),
        ("--bind-address", "example.com", "IP address"),
        ("--image", "predis/runtime:1; rm -rf /", "image reference"),
        ("--exporter-image", "$(id)", "image reference"),
        ("--cache-bytes", "lots", "size"),
        ("--token-scopes", "read,root", "scopes"),
        ("--platform", "bare-metal", "platform"),
        ("--no-such-option", "x", "unrecognized"),
    ],
)
def test_bad_docker_inputs_are_refused(root, option, value, message):
    args = ["--platform", "docker", "--customer-id", CUSTOMER, "--dry-run", option, value]
    if option == "--platform":
        args = ["--platform", value, "--customer-id", CUSTOMER, "--dry-run"]
    result = run_script(args, root)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert list(root.iterdir()) == []


@pytest.mark.parametrize(
    ("platform", "extra", "message"),
    [
        ("kubernetes", ["--namespace", "Bad_NS"], "--namespace"),
        ("kubernetes", ["--namespace", "ns; kubectl delete ns kube-system"], "--namespace"),
        ("kubernetes", ["--gpus", "99"], "--gpus"),
        ("kubernetes", ["--prometheus-release", "../x"], "--prometheus-release"),
        ("kubernetes", ["--app-memory", "1MiB"], "--app-memory"),
        ("aws", [], "--region is required"),
        ("aws", [*AWS_ARGS[:2], "--vpc-id", "vpc-XYZ", *AWS_ARGS[4:]], "--vpc-id"),
        ("aws", [*AWS_ARGS[:6], "--bucket", "a..b"], "--bucket"),
        ("aws", [*AWS_ARGS, "--instance-type", "g5.xlarge; id"], "--instance-type"),
    ],
)
def test_bad_platform_inputs_are_refused(root, platform, extra, message):
    result = run_script(
        ["--platform", platform, "--customer-id", CUSTOMER, "--dry-run", *extra], root
    )
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert list(root.iterdir()) == []


def test_tampered_secret_files_are_refused(root):
    out = _dry_run(root, "docker")
    token = out / "secrets" / "metrics-token"
    token.chmod(0o644)
    result = run_script(["--platform", "docker", "--customer-id", CUSTOMER, "--dry-run"], root)
    assert result.returncode == 2
    assert "mode 644" in result.stderr
    token.chmod(0o600)
    stolen = root.parent / "elsewhere"
    stolen.write_text("x" * 43)
    token.unlink()
    token.symlink_to(stolen)
    result = run_script(["--platform", "docker", "--customer-id", CUSTOMER, "--dry-run"], root)
    assert result.returncode == 2
    assert "symbolic link" in result.stderr


def test_exposed_bind_address_is_allowed_with_a_warning(root):
    result = run_script(
        [
            "--platform",
            "docker",
            "--customer-id",
            CUSTOMER,
            "--dry-run",
            "--bind-address",
            "0.0.0.0",  # noqa: S104 - the point of the test
        ],
        root,
    )
    assert result.returncode == 0, result.stderr
    assert "warning: ports will bind 0.0.0.0" in result.stderr
    assert "PREDIS_BIND_ADDRESS=0.0.0.0\n" in (root / CUSTOMER / "docker/.env").read_text()


def test_help_lists_the_platforms():
    result = subprocess.run(
        ["bash", str(REPO / "deploy/deploy_customer.sh"), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "--platform docker|kubernetes|aws" in result.stdout

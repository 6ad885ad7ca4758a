"""deploy/ checked statically: no Docker engine, cluster or systemd runs here.

Where a real validator is on the machine it runs too (`docker compose config`, or the
older `docker-compose config`; `kubectl kustomize`; `systemd-analyze verify`).
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

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
def test_dockerfile_runs_unprivileged_with_a_readiness_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*", text, re.M | re.S)
    assert "/readyz" in text.split("HEALTHCHECK", 1)[1]
    assert re.search(r'^ENTRYPOINT \["motionledger"\]', text, re.M)
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for part in source.split():
            assert (ROOT / part).exists(), part
    assert "FROM python:${PYTHON_VERSION}-slim" in text


# -- kubernetes ----------------------------------------------------------------------------
def _manifests() -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
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


def test_kubernetes_servicemonitor_scrapes_the_service() -> None:
    docs = _manifests()
    service, monitor = docs["Service"], docs["ServiceMonitor"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    port_names = {p["name"] for p in service["spec"]["ports"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in port_names
    assert endpoint["path"] == "/metrics"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kustomize_builds() -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY / "kubernetes")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    kinds = {doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc}
    assert {"Deployment", "Service", "ConfigMap", "Secret", "ServiceMonitor"} <= kinds


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

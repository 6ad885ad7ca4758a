"""The alert rules and the Grafana dashboard read only metrics the daemon exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from motionledger import metrics
from tests.deploy.promql import exported_series, metric_names, unknown_names

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULE_FILES = sorted((DEPLOY / "prometheus").glob("*.yml"))
RUNBOOK = ROOT / "docs" / "runbook.md"
DASHBOARDS = sorted((DEPLOY / "grafana").glob("*.json"))
EXPORTED = exported_series(metrics.REGISTRY)
# series Prometheus makes itself for every target
SCRAPE = frozenset({"up"})
SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)(\{[^{}]*\})?")
PROMTOOL = shutil.which("promtool")


def _rules() -> list[dict[str, Any]]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(group["rules"])
    return rules


def _dashboard_targets() -> list[tuple[str, str]]:
    found = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                found.append((panel["title"], target["expr"]))
    return found


# -- the name extraction itself ------------------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('sum by (lane) (rate(a_total{outcome="accepted", x=~"y|z"}[1m]))', {"a_total"}),
        ("histogram_quantile(0.99, sum by (le, lane) (rate(h_bucket[5m])))", {"h_bucket"}),
        ("(sum(g) or vector(0)) < 1", {"g"}),
        ("max(p) > 0 and max(changes(s[5m])) == 0", {"p", "s"}),
        ("x / on(instance) group_left(role) y offset 5m", {"x", "y"}),
        ('label_replace(m, "dst", "$1", "src", "(.*)") > 1e3', {"m"}),
        ("rate(c[5m:1m]) unless ignoring (a, b) d", {"c", "d"}),
    ],
)
def test_metric_names_are_read_out_of_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_exported_series_expand_counters_and_histograms() -> None:
    assert "motionledger_events_total" in EXPORTED
    assert "motionledger_publish_to_commit_seconds_bucket" in EXPORTED
    assert "motionledger_publish_to_commit_seconds" not in EXPORTED
    assert "motionledger_ingest_active" in EXPORTED
    assert unknown_names("rate(motionledger_events[1m])", EXPORTED) == {"motionledger_events"}


# -- alert rules ---------------------------------------------------------------------------
def test_alert_rules_read_only_exported_metrics() -> None:
    rules = _rules()
    assert rules
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, f"{rule['alert']} reads no metric"
        known = EXPORTED | SCRAPE
        assert names <= known, f"{rule['alert']} reads unknown {names - known}"


def test_alert_rules_cover_the_operational_failures() -> None:
    alerts = {rule["alert"]: rule for rule in _rules()}
    for needed in (
        "MotionledgerIngestStalled",
        "MotionledgerMessagesMissing",
        "MotionledgerTargetDown",
        "MotionledgerConsumerBacklogGrowing",
        "MotionledgerProjectionLag",
        "MotionledgerDeadLettersArriving",
        "MotionledgerNotReady",
        "MotionledgerNoActiveWriter",
    ):
        assert needed in alerts
    for rule in alerts.values():
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"]
    assert "motionledger_ingest_stalled_seconds" in alerts["MotionledgerIngestStalled"]["expr"]
    assert (
        "motionledger_stream_missing_messages_total"
        in (alerts["MotionledgerMessagesMissing"]["expr"])
    )
    assert metric_names(alerts["MotionledgerTargetDown"]["expr"]) == {"up"}
    # a rate over a window, not "any increase": one rejected event does not page
    assert "rate(" in alerts["MotionledgerDeadLettersArriving"]["expr"]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_links_its_runbook_section() -> None:
    anchors = {
        _anchor(line.lstrip("#"))
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    for rule in _rules():
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert (ROOT / path).resolve() == RUNBOOK, url
        assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in docs/runbook.md"
    assert len(anchors) == len(_rules())  # one section per alert, none left over


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian: prometheus)")
def test_promtool_accepts_the_rules_and_their_unit_tests() -> None:
    assert PROMTOOL is not None
    for path in RULE_FILES:
        checked = subprocess.run(
            [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    unit = Path(__file__).with_name("alerts_test.yml")
    tested = subprocess.run([PROMTOOL, "test", "rules", str(unit)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    config = DEPLOY / "compose" / "prometheus.yml"
    checked = subprocess.run(
        [PROMTOOL, "check", "config", str(config)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# -- the dashboard -------------------------------------------------------------------------
def test_every_dashboard_query_reads_exported_metrics() -> None:
    targets = _dashboard_targets()
    assert len(targets) >= 10
    for title, expr in targets:
        names = metric_names(expr)
        assert names, f"{title!r}: {expr} reads no metric"
        assert names <= EXPORTED, f"{title!r} reads unknown {names - EXPORTED}"


def test_every_dashboard_query_is_scoped_by_job_and_instance() -> None:
    """Several ledgers in one Prometheus: the `job` and `instance` variables pick one."""
    for title, expr in _dashboard_targets():
        for match in SELECTOR.finditer(expr):
            if match.group(1) in EXPORTED:
                matchers = match.group(2) or ""
                assert 'job=~"$job"' in matchers, (title, expr)
                assert 'instance=~"$instance"' in matchers, (title, expr)
    for path in DASHBOARDS:
        variables = {v["name"]: v for v in json.loads(path.read_text())["templating"]["list"]}
        assert variables["job"]["type"] == variables["instance"]["type"] == "query"
        assert "$job" in variables["instance"]["definition"]
        for name in ("job", "instance"):
            assert metric_names(variables[name]["definition"].split("(", 1)[1].split(",")[0])


def test_the_dashboard_shows_what_operators_watch() -> None:
    exprs = " ".join(expr for _, expr in _dashboard_targets())
    titles = " ".join(title for title, _ in _dashboard_targets()).lower()
    assert 'motionledger_events_total{outcome="accepted"' in exprs
    assert "by (lane)" in exprs
    assert "histogram_quantile(0.99" in exprs
    for name in (
        "motionledger_publish_to_commit_seconds_bucket",
        "motionledger_publish_to_visible_seconds_bucket",
        "motionledger_projection_lag_seconds",
        "motionledger_dead_letters_total",
        "motionledger_consumer_pending_messages",
        "motionledger_stream_missing_messages_total",
        "motionledger_ingest_stalled_seconds",
        "motionledger_live_streams_open",
        "motionledger_live_events_sent_total",
        "motionledger_live_clients_dropped_total",
        "process_resident_memory_bytes",
    ):
        assert name in exprs
    assert 'motionledger_http_request_duration_seconds_count{status=~"5..' in exprs
    assert "by reason" in titles
    assert "by lane" in titles


def test_the_dashboard_uses_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert provisioned["type"] == "prometheus"
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["query"] == "prometheus"
        for panel in dashboard["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


# -- the exported names themselves --------------------------------------------------------
def test_metric_names_carry_their_units() -> None:
    for family in metrics.REGISTRY.collect():
        if not family.name.startswith("motionledger_"):
            continue
        if family.type == "histogram":
            assert family.name.endswith(("_seconds", "_messages", "_bytes")), family.name
        assert "_size" not in family.name, family.name
    assert "motionledger_build_info" in EXPORTED
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds"):
        assert name in EXPORTED


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian: prometheus)")
def test_promtool_accepts_the_exported_metrics() -> None:
    assert PROMTOOL is not None
    text = generate_latest(metrics.REGISTRY)
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr

"""Prometheus: configs and rules pass promtool, every alert has a runbook and promtool unit tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from tests.deploy_support import ROOT, image_services, load_script, run, tool

PROM = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
render_tests = load_script("deploy/prometheus/tests/render_alert_tests.py")

REQUIRED_ALERTS = {
    "IsseimailDeadLetterQueueNotEmpty",
    "IsseimailOutboxBacklogGrowing",
    "IsseimailNoMailSent",
    "IsseimailHardBounceRateHigh",
    "IsseimailRetryBacklogGrowing",
    "IsseimailServiceNotReady",
    "IsseimailSmtpLatencyHigh",
    "IsseimailFailedLoginsSpiking",
}


def promtool() -> str:
    return tool("promtool", "prometheus")


def test_promtool_check_rules() -> None:
    """promtool accepts every rule file (syntax, PromQL, templates)."""
    result = run([promtool(), "check", "rules", *map(str, RULE_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_of_every_alert_pass() -> None:
    """The generated alerts_test.yml is current, and `promtool test rules` passes on it."""
    assert render_tests.OUTPUT.read_text(encoding="utf-8") == render_tests.render(), "run render_alert_tests.py"
    result = run([promtool(), "test", "rules", "alerts_test.yml"], cwd=PROM / "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_required_alerts_exist_with_runbooks_and_tests_both_ways() -> None:
    """Each alert the issue lists exists, has severity, summary, description and runbook, and is tested
    both firing and quiet."""
    rules = render_tests.alert_rules()
    assert set(rules) >= REQUIRED_ALERTS
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook"} <= set(annotations), name
        assert len(annotations["runbook"]) > 150, name
        assert any(ord(c) > 0x3000 for c in annotations["summary"]), f"{name}: summary in Japanese"
        cases = [c for c in render_tests.CASES if c.alert == name]
        assert any(c.fires for c in cases), f"{name} has no firing test"
        assert any(not c.fires for c in cases), f"{name} has no quiet test"


def test_compose_scrape_config_passes_promtool_with_the_rules(tmp_path: Path) -> None:
    """The Compose Prometheus config is valid and loads the repository's rule files."""
    config: dict[str, Any] = yaml.safe_load((PROM / "prometheus-compose.yml").read_text(encoding="utf-8"))
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    config["rule_files"] = [str(PROM / "rules" / "*.yml")]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = run([promtool(), "check", "config", str(copy)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for f in RULE_FILES for g in yaml.safe_load(f.read_text())['groups'])}" in (
        result.stdout + result.stderr
    )
    targets = [t for job in config["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]]
    assert sorted(targets) == sorted(f"{s.name}:{s.port}" for s in image_services())


def test_kubernetes_scrape_config_discovers_annotated_isseimail_pods() -> None:
    """The in-cluster config keeps pods of isseimail that ask to be scraped and honours their port and path.

    Structural check only: Debian's promtool is built without Kubernetes service discovery.
    """
    config = yaml.safe_load((PROM / "prometheus-kubernetes.yml").read_text(encoding="utf-8"))
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "isseimail"
    assert job["kubernetes_sd_configs"][0]["role"] == "pod"
    relabel = {tuple(r.get("source_labels", [])): r for r in job["relabel_configs"]}
    assert relabel[("__meta_kubernetes_pod_label_app_kubernetes_io_part_of",)]["action"] == "keep"
    assert relabel[("__meta_kubernetes_pod_annotation_prometheus_io_scrape",)]["regex"] == "true"
    assert relabel[("__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port")]["target_label"] == (
        "__address__"
    )
    assert relabel[("__meta_kubernetes_pod_label_app_kubernetes_io_component",)]["target_label"] == "component"
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]


def test_kubernetes_discovery_rbac_is_valid_and_read_only() -> None:
    """The Role for pod discovery passes the Kubernetes schemas and only reads pods."""
    docs = list(yaml.safe_load_all((PROM / "kubernetes-rbac.yaml").read_text(encoding="utf-8")))
    for doc in docs:
        kubernetes_validate.validate(doc, "1.31.0", strict=True)
    role = next(d for d in docs if d["kind"] == "Role")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]

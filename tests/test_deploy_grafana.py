"""Grafana: the dashboard JSON is current, covers what the issue asks, its queries pass promtool, and it is
provisioned in Compose."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml
from tests.deploy_support import ROOT, load_script, run, tool

build = load_script("deploy/grafana/build_dashboard.py")
GRAFANA = ROOT / "deploy" / "grafana"


def test_dashboard_json_is_current() -> None:
    """dashboards/isseimail.json is exactly what build_dashboard.py renders."""
    assert build.OUTPUT.read_text(encoding="utf-8") == build.render()


def test_dashboard_has_the_panels_operators_need() -> None:
    """Campaigns in flight, messages/s, bytes/s, per-domain outcomes, queues, retries, bounces, SMTP latency,
    service health: each a panel with at least one query."""
    data = json.loads(build.OUTPUT.read_text(encoding="utf-8"))
    titles = {p["title"]: p for p in data["panels"]}
    for needed in (
        "Campaigns in flight",
        "Messages sent / s",
        "Bytes sent / s",
        "Per-domain outcomes / s",
        "Queue depths",
        "Retry backlog",
        "Bounce reasons (1 h)",
        "SMTP latency",
        "Service health",
    ):
        assert titles[needed]["targets"], needed
        assert all(t["expr"] and t["datasource"]["uid"] == "prometheus" for t in titles[needed]["targets"])
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    assert data["uid"] == "isseimail-overview"


def test_provisioning_points_at_the_dashboard_and_prometheus() -> None:
    """The datasource uid matches the panels' and the dashboard provider reads the mounted folder."""
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["uid"] == build.DATASOURCE["uid"]
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "isseimail.yml").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"] if v.startswith("./"))
    assert mounts["./deploy/grafana/dashboards"] == provider["providers"][0]["options"]["path"]


def test_every_dashboard_query_parses_with_promtool(tmp_path: Path) -> None:
    """Every panel's PromQL passes promtool, as the expressions of recording rules in a scratch rule file
    (`promtool check rules` parses each one); a broken expression fails it."""
    data = json.loads(build.OUTPUT.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in data["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 9

    def check(expressions: list[str]) -> subprocess.CompletedProcess[str]:
        rules = [{"record": f"dashboard:query_{n}", "expr": e} for n, e in enumerate(expressions)]
        path = tmp_path / "dashboard-rules.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
        return run([tool("promtool", "prometheus"), "check", "rules", str(path)])

    result = check(exprs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout + result.stderr
    assert check([*exprs, "sum(rate(isseimail_messages_sent_total[5m]) by"]).returncode != 0

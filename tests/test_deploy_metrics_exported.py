"""Every metric the alerts and the dashboard read is one that some service exports (no silent empty panel)."""

from __future__ import annotations

import json
import re

import yaml
from tests.deploy_support import ROOT

RULE_FILES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "isseimail.json"

# Metrics Prometheus itself makes: `up` per scrape target.
BUILTIN = {"up"}


DEFINITION = re.compile(r"""\b(?:Counter|Gauge|Histogram|Summary|Info|Enum)\(\s*["'](isseimail_\w+)["']""")
METRIC = re.compile(r"(?<![\w:])(isseimail_\w+|up)(?=\s*[{\[)\s]|$)")
RECORDED = re.compile(r"(?<![\w:])(isseimail:[\w:]+)")


def exported_metrics() -> set[str]:
    """Metric names defined with prometheus_client in the shared library and the services' sources."""
    sources = [*(ROOT / "shared" / "src").rglob("*.py"), *(ROOT / "services").glob("*/src/**/*.py")]
    found: set[str] = set()
    for path in sources:
        found |= set(DEFINITION.findall(path.read_text(encoding="utf-8")))
    return found


def rule_exprs() -> tuple[list[str], set[str]]:
    exprs: list[str] = []
    recorded: set[str] = set()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                exprs.append(rule["expr"])
                if "record" in rule:
                    recorded.add(rule["record"])
    return exprs, recorded


def dashboard_exprs() -> list[str]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for panel in data["panels"] for t in panel["targets"]]


def base_name(sample: str) -> str:
    """isseimail_x_bucket → isseimail_x: what the histogram was defined as."""
    return re.sub(r"_(bucket|sum|count)$", "", sample)


def is_exported(name: str, exported: set[str]) -> bool:
    base = base_name(name)
    # prometheus_client accepts a counter defined with or without the _total suffix
    return bool({name, base, name.removesuffix("_total"), f"{name}_total"} & exported) or base in BUILTIN


def test_the_metric_scan_finds_the_shared_metrics() -> None:
    """The source scan sees the shared library's metrics (else the main check would prove nothing)."""
    exported = exported_metrics()
    assert {"isseimail_http_requests_total", "isseimail_outbox_backlog", "isseimail_ready"} <= exported
    assert METRIC.findall('sum(rate(isseimail_a_total{x="y"}[5m])) / isseimail:b:c + isseimail_d') == [
        "isseimail_a_total",
        "isseimail_d",
    ]


def test_every_metric_in_alerts_and_dashboard_is_exported() -> None:
    """Each raw metric in a rule or panel is defined by some service."""
    exported = exported_metrics()
    exprs, _ = rule_exprs()
    used = {m for expr in [*exprs, *dashboard_exprs()] for m in METRIC.findall(expr)}
    missing = sorted(m for m in used if not is_exported(m, exported))
    assert not missing, f"not exported by any service: {missing}"


def test_every_recorded_series_used_is_defined() -> None:
    """Recording-rule names (isseimail:...) used by alerts or panels are recorded by some rule."""
    exprs, recorded = rule_exprs()
    used = {m for expr in [*exprs, *dashboard_exprs()] for m in RECORDED.findall(expr)}
    assert used
    assert used <= recorded, sorted(used - recorded)

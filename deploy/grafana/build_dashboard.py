"""Writes dashboards/isseimail.json, the Grafana dashboard, from the panel list below.

The panel list is also what bench/plot_metrics.py draws (it runs these same queries against Prometheus's
HTTP API), so the README's picture and the dashboard cannot disagree. Run
`uv run python deploy/grafana/build_dashboard.py`; tests/test_deploy_grafana.py fails on a stale JSON.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "dashboards" / "isseimail.json"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    queries: tuple[Query, ...]
    kind: str = "timeseries"  # or "stat"
    main: bool = False  # drawn by bench/plot_metrics.py for the README


PANELS = (
    Panel("Campaigns in flight", "short", (Query("isseimail:campaigns_in_flight:max", "dispatching"),), "stat", True),
    Panel("Messages sent / s", "ops", (Query("isseimail:messages_sent:rate1m", "messages/s"),), main=True),
    Panel("Bytes sent / s", "Bps", (Query("isseimail:smtp_bytes_sent:rate1m", "bytes/s"),), main=True),
    Panel(
        "Per-domain outcomes / s",
        "ops",
        (Query("topk(10, isseimail:deliveries:rate5m)", "{{domain}} {{outcome}}"),),
        main=True,
    ),
    Panel("Queue depths", "short", (Query("isseimail:queue_messages:max", "{{queue}}"),), main=True),
    Panel("Retry backlog", "short", (Query("isseimail:retry_backlog:sum", "waiting for retry"),), main=True),
    Panel(
        "Bounce reasons (1 h)",
        "short",
        (
            Query(
                "sum by (kind, reason) (increase(isseimail_notifier_bounced_recipients_total[1h]))",
                "{{kind}} {{reason}}",
            ),
        ),
    ),
    Panel(
        "SMTP latency",
        "s",
        (
            Query("isseimail:smtp_transaction_seconds:p95_5m", "p95"),
            Query(
                "histogram_quantile(0.5, sum by (le) (rate(isseimail_dispatch_smtp_transaction_seconds_bucket[5m])))",
                "p50",
            ),
        ),
        main=True,
    ),
    Panel(
        "Service health",
        "short",
        (
            Query('min by (component) (up{job=~"isseimail.*"})', "{{component}} up"),
            Query("min by (service) (isseimail_ready)", "{{service}} ready"),
        ),
        main=True,
    ),
    Panel(
        "HTTP requests / s",
        "reqps",
        (Query("sum by (service, status) (rate(isseimail_http_requests_total[5m]))", "{{service}} {{status}}"),),
    ),
    Panel("Outbox backlog", "short", (Query("isseimail:outbox_backlog:sum", "{{service}}"),)),
    Panel(
        "Events consumed / s",
        "ops",
        (
            Query(
                "sum by (queue, outcome) (rate(isseimail_events_consumed_total[5m]))",
                "{{queue}} {{outcome}}",
            ),
        ),
    ),
    Panel(
        "Work messages consumed / s",
        "ops",
        (Query("sum by (queue, outcome) (rate(isseimail_work_messages_total[5m]))", "{{queue}} {{outcome}}"),),
    ),
    Panel(
        "System mails / s",
        "ops",
        (
            Query(
                "sum by (kind, outcome) (rate(isseimail_notifier_system_mails_total[5m]))",
                "{{kind}} {{outcome}}",
            ),
        ),
    ),
    Panel(
        "Shaped rate per domain (messages / min)",
        "short",
        (Query("max by (domain) (isseimail_dispatch_domain_rate_per_minute)", "{{domain}}"),),
    ),
    Panel(
        "Rate-limit replies (15 min)",
        "short",
        (
            Query(
                "sum by (domain, action) (increase(isseimail_dispatch_throttle_events_total[15m]))",
                "{{domain}} {{action}}",
            ),
        ),
    ),
    Panel(
        "Complaint rate per campaign (alert > 0.1%)",
        "percentunit",
        (Query("max by (campaign) (isseimail_campaign_complaint_rate)", "{{campaign}}"),),
    ),
    Panel(
        "Unsubscribes and feedback reports (1 h)",
        "short",
        (
            Query(
                "sum by (channel, outcome) (increase(isseimail_notifier_unsubscribes_total[1h]))",
                "unsubscribe {{channel}} {{outcome}}",
            ),
            Query(
                "sum by (feedback_type, outcome) (increase(isseimail_notifier_complaints_total[1h]))",
                "report {{feedback_type}} {{outcome}}",
            ),
        ),
    ),
    Panel(
        "Failed logins (5 min)",
        "short",
        (Query("isseimail:login_failures:increase5m", "failed logins"),),
    ),
)

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}


def panel_json(panel: Panel, panel_id: int) -> dict[str, Any]:
    width = 8
    x = ((panel_id - 1) % 3) * width
    y = ((panel_id - 1) // 3) * 8
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": q.expr, "legendFormat": q.legend}
            for i, q in enumerate(panel.queries)
        ],
    }


def build() -> dict[str, Any]:
    return {
        "uid": "isseimail-overview",
        "title": "isseimail",
        "tags": ["isseimail"],
        "timezone": "Asia/Tokyo",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "15s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": [panel_json(p, i) for i, p in enumerate(PANELS, start=1)],
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

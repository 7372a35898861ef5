"""Writes alerts_test.yml, the promtool unit tests of every alert, from the cases below.

promtool compares annotations verbatim, so the expected annotations are rendered here from the rules file
itself ({{ $labels.x }} from the expected labels, {{ $value ... }} from the case's `value`, written the way
Prometheus formats it). A case's summary is thus checked, and the long runbooks are written only once.
Run `uv run python deploy/prometheus/tests/render_alert_tests.py`; tests/test_deploy_prometheus.py fails
when the checked-in file is stale, and runs `promtool test rules` on it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES = sorted((HERE.parent / "rules").glob("*.yml"))
OUTPUT = HERE / "alerts_test.yml"


@dataclass
class Case:
    alert: str
    series: dict[str, str]
    eval_time: str
    fires: list[dict[str, str]] = field(default_factory=list)  # expected labels of each firing alert
    value: str = ""  # {{ $value }} as Prometheus renders it (with the filter applied)
    note: str = ""


DLQ = 'isseimail_queue_messages{service="notifier",queue="isseimail_notifier_events.dlq"}'
WORK = 'isseimail_queue_messages{service="dispatcher",queue="dispatcher.batches"}'
SENT = 'isseimail_dispatch_messages_total{service="dispatcher",domain="example.jp",outcome="sent"}'
PERM = 'isseimail_dispatch_messages_total{service="dispatcher",domain="example.jp",outcome="failed"}'
HARD = 'isseimail_notifier_bounced_recipients_total{service="notifier",kind="hard",reason="user_unknown"}'
IN_FLIGHT = 'isseimail_dispatch_campaigns_in_flight{service="dispatcher"}'
LATENCY = "isseimail_dispatch_smtp_transaction_seconds_bucket"
LOGINS = 'isseimail_pass_logins_total{kind="pass",result="wrong_password"}'
UP = 'up{job="isseimail",component="composer",instance="composer:8083"}'
READY = 'isseimail_ready{job="isseimail",component="dispatcher",instance="dispatcher:8084",service="dispatcher"}'
CAMPAIGN = "6f1c2a9e-0d55-4a39-9a51-2f0c1d8e7b10"
RATE_A = f'isseimail_campaign_complaint_rate{{instance="notifier-a:8085",service="notifier",campaign="{CAMPAIGN}"}}'
RATE_B = f'isseimail_campaign_complaint_rate{{instance="notifier-b:8085",service="notifier",campaign="{CAMPAIGN}"}}'

CASES = [
    Case(
        "IsseimailDeadLetterQueueNotEmpty",
        {DLQ: "0 0 3x10", WORK: "500x12"},
        "5m",
        [{"queue": "isseimail_notifier_events.dlq", "severity": "warning"}],
        "3",
        "a DLQ with messages fires; a busy work queue does not",
    ),
    Case("IsseimailDeadLetterQueueNotEmpty", {DLQ: "0 0 3x10"}, "2m", note="not before it has lasted 1m"),
    Case("IsseimailDeadLetterQueueNotEmpty", {DLQ: "0x10", WORK: "5000x10"}, "8m", note="empty DLQ: quiet"),
    Case(
        "IsseimailOutboxBacklogGrowing",
        {'isseimail_outbox_backlog{service="composer"}': "0+10x30"},
        "25m",
        [{"service": "composer", "severity": "warning"}],
        "250",
    ),
    Case(
        "IsseimailOutboxBacklogGrowing",
        {'isseimail_outbox_backlog{service="composer"}': "80x30"},
        "25m",
        note="a steady backlog that does not grow is not this alert",
    ),
    Case(
        "IsseimailNoMailSent",
        {IN_FLIGHT: "1x30", SENT: "0+100x5 500x25"},
        "20m",
        [{"severity": "critical"}],
        note="sending stopped for 10 minutes while a campaign is dispatching",
    ),
    Case(
        "IsseimailNoMailSent",
        {IN_FLIGHT: "1x30"},
        "15m",
        [{"severity": "critical"}],
        note="nothing was ever sent (the counter does not even exist yet)",
    ),
    Case("IsseimailNoMailSent", {IN_FLIGHT: "1x30", SENT: "0+100x30"}, "20m", note="sending: quiet"),
    Case("IsseimailNoMailSent", {IN_FLIGHT: "0x30", SENT: "500x30"}, "20m", note="no campaign: quiet"),
    Case(
        "IsseimailHardBounceRateHigh",
        {SENT: "0+100x40", PERM: "0+2x40", HARD: "0+5x40"},
        "40m",
        [{"severity": "warning"}],
        "6.863%",
    ),
    Case(
        "IsseimailHardBounceRateHigh",
        {SENT: "0+100x40", HARD: "0+1x40"},
        "40m",
        note="1% hard bounces: quiet",
    ),
    Case(
        "IsseimailHardBounceRateHigh",
        {SENT: "0+1x40", HARD: "0+1x40"},
        "40m",
        note="a high rate on a handful of messages is noise: quiet",
    ),
    Case(
        "IsseimailRetryBacklogGrowing",
        {'isseimail_dispatch_retry_backlog{service="dispatcher"}': "0+20x40"},
        "35m",
        [{"severity": "warning"}],
        "700",
    ),
    Case(
        "IsseimailRetryBacklogGrowing",
        {'isseimail_dispatch_retry_backlog{service="dispatcher"}': "500x40"},
        "35m",
        note="a large but shrinking or flat backlog: quiet",
    ),
    Case(
        "IsseimailServiceNotReady",
        {UP: "1 1 0x10", READY: "1x12"},
        "6m",
        [{"job": "isseimail", "component": "composer", "instance": "composer:8083", "severity": "critical"}],
        note="a target that cannot be scraped",
    ),
    Case(
        "IsseimailServiceNotReady",
        {READY: "0x12"},
        "6m",
        [
            {
                "job": "isseimail",
                "component": "dispatcher",
                "instance": "dispatcher:8084",
                "service": "dispatcher",
                "severity": "critical",
            }
        ],
        note="scraped, but its database or broker does not answer",
    ),
    Case("IsseimailServiceNotReady", {UP: "1 0 1x10", READY: "1x12"}, "6m", note="a one-scrape blip: quiet"),
    Case(
        "IsseimailSmtpLatencyHigh",
        {
            f'{LATENCY}{{service="dispatcher",le="1"}}': "0+10x30",
            f'{LATENCY}{{service="dispatcher",le="5"}}': "0+10x30",
            f'{LATENCY}{{service="dispatcher",le="10"}}': "0+100x30",
            f'{LATENCY}{{service="dispatcher",le="+Inf"}}': "0+100x30",
        },
        "20m",
        [{"severity": "warning"}],
        "9.722s",
    ),
    Case(
        "IsseimailSmtpLatencyHigh",
        {
            f'{LATENCY}{{service="dispatcher",le="1"}}': "0+100x30",
            f'{LATENCY}{{service="dispatcher",le="+Inf"}}': "0+100x30",
        },
        "20m",
        note="fast SMTP: quiet",
    ),
    Case(
        "IsseimailFailedLoginsSpiking",
        {LOGINS: "0+20x20"},
        "10m",
        [{"severity": "warning"}],
        "100",
    ),
    Case("IsseimailFailedLoginsSpiking", {LOGINS: "0+2x20"}, "10m", note="a few typos: quiet"),
    Case(
        "IsseimailPasswordSpraying",
        {"isseimail_pass_failed_login_accounts_recent": "0 5 25x10"},
        "5m",
        [{"severity": "warning"}],
        "25",
        "failures over 25 accounts for minutes",
    ),
    Case(
        "IsseimailPasswordSpraying",
        {"isseimail_pass_failed_login_accounts_recent": "0 3 4x10"},
        "5m",
        note="a few users mistyping: quiet",
    ),
    Case(
        "IsseimailSystemMailGivenUp",
        {
            'isseimail_notifier_system_mails_total{kind="credentials",outcome="given_up"}': "0 0 0 1x10",
            'isseimail_notifier_system_mails_total{kind="credentials",outcome="sent"}': "0+5x13",
        },
        "5m",
        [{"kind": "credentials", "severity": "warning"}],
    ),
    Case(
        "IsseimailSystemMailGivenUp",
        {
            'isseimail_notifier_system_mails_total{kind="completion",outcome="retry"}': "0+3x20",
            'isseimail_notifier_system_mails_total{kind="completion",outcome="sent"}': "0+5x20",
        },
        "10m",
        note="retries that end in success: quiet",
    ),
    Case(
        "IsseimailFailedLoginsSpiking",
        {'isseimail_pass_logins_total{kind="pass",result="ok"}': "0+100x20"},
        "10m",
        note="many successful logins: quiet",
    ),
]


THROTTLED = 'isseimail_dispatch_throttle_events_total{service="dispatcher",domain="docomo.ne.jp",action="decreased"}'
HELD = 'isseimail_dispatch_throttle_events_total{service="dispatcher",domain="docomo.ne.jp",action="held"}'

CASES += [
    Case(
        "IsseimailDomainThrottling",
        {THROTTLED: "0 0 1 1 2 2 3 3 4x10"},
        "10m",
        [{"domain": "docomo.ne.jp", "severity": "warning"}],
        "4",
        "four rate decreases within 30 min",
    ),
    Case(
        "IsseimailDomainThrottling",
        {THROTTLED: "0 1 1 1 1 1 1 1 1 1 1", HELD: "0+20x10"},
        "10m",
        note="one decrease and a burst of replies within its hold: quiet",
    ),
]

CASES += [
    Case(
        "IsseimailComplaintRateHigh",
        {RATE_A: "0x3 0.002x20", RATE_B: "0x3 0.002x20"},
        "12m",
        [{"campaign": CAMPAIGN, "severity": "warning"}],
        "0.2%",
        "2 complaints per 1000 delivered, reported by two notifier replicas: one alert",
    ),
    Case(
        "IsseimailComplaintRateHigh",
        {RATE_A: "0.0005x20"},
        "12m",
        note="0.05% (1 in 2000): quiet",
    ),
    Case(
        "IsseimailComplaintRateHigh",
        {RATE_A: "0x3 0.002x20"},
        "6m",
        note="not before it has lasted 5m",
    ),
    Case(
        "IsseimailComplaintRateCritical",
        {RATE_A: "0x3 0.005x20"},
        "12m",
        [{"campaign": CAMPAIGN, "severity": "critical"}],
        "0.5%",
    ),
    Case("IsseimailComplaintRateCritical", {RATE_A: "0.002x20"}, "12m", note="0.2%: the warning only"),
]

SCAN_FAILED = 'isseimail_composer_attachments_scanned_total{outcome="failed"}'
SCAN_CLEAN = 'isseimail_composer_attachments_scanned_total{outcome="clean"}'
INFECTED = 'isseimail_composer_attachments_refused_total{reason="infected"}'
SCRIPTED = 'isseimail_composer_attachments_refused_total{reason="javascript"}'

CASES += [
    Case(
        "IsseimailAttachmentScannerFailing",
        {SCAN_FAILED: "0 0 0 2 2x10", SCAN_CLEAN: "0+4x14"},
        "5m",
        [{"severity": "warning"}],
        value="2",
    ),
    Case(
        "IsseimailAttachmentScannerFailing",
        {SCAN_CLEAN: "0+4x20", SCAN_FAILED: "0x20"},
        "10m",
        note="every scan clean: quiet",
    ),
    Case("IsseimailInfectedAttachment", {INFECTED: "0 0 1 1x10"}, "5m", [{"severity": "warning"}], value="1"),
    Case(
        "IsseimailInfectedAttachment",
        {SCRIPTED: "0 1 2 3x10", INFECTED: "0x15"},
        "10m",
        note="only scripted PDFs refused: quiet",
    ),
]


def alert_rules() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in RULES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found[rule["alert"]] = rule
    return found


def render_annotation(text: str, labels: dict[str, str], value: str) -> str:
    text = re.sub(r"\{\{ \$value( \| \w+)? \}\}", value, text)
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), text)


def build() -> dict[str, Any]:
    rules = alert_rules()
    tests = []
    for case in CASES:
        rule = rules[case.alert]
        expected = [
            {
                "exp_labels": labels,
                "exp_annotations": {
                    k: render_annotation(v, labels, case.value) for k, v in rule.get("annotations", {}).items()
                },
            }
            for labels in case.fires
        ]
        tests.append(
            {
                "name": f"{case.alert}: {case.note or ('fires' if case.fires else 'quiet')}",
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in case.series.items()],
                "alert_rule_test": [{"eval_time": case.eval_time, "alertname": case.alert, "exp_alerts": expected}],
            }
        )
    return {
        "rule_files": [f"../rules/{p.name}" for p in RULES],
        "evaluation_interval": "1m",
        "tests": tests,
    }


def render() -> str:
    header = "# GENERATED by render_alert_tests.py: edit the cases there. Run: promtool test rules alerts_test.yml\n"
    return header + yaml.safe_dump(build(), allow_unicode=True, sort_keys=False, width=100)


def main() -> int:
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

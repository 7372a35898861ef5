"""The pass-service's own Prometheus metrics (names prefixed isseimail_pass_)."""

from __future__ import annotations

from prometheus_client import Counter

LOGINS = Counter(
    "isseimail_pass_logins_total",
    "Login attempts by kind (pass, admin) and result (ok, unknown_user_id, wrong_password, wrong_day, "
    "consumed, expired, locked, unknown_email).",
    ["kind", "result"],
)
APPLICATIONS = Counter(
    "isseimail_pass_applications_total", "Application events (submitted, approved, rejected).", ["event"]
)
CONSUMPTIONS = Counter(
    "isseimail_pass_consumptions_total",
    "Consumption attempts: won, or refused (already consumed / not its day).",
    ["result"],
)

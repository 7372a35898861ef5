"""The pass-service's own Prometheus metrics (names prefixed isseimail_pass_)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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
# The spraying alarm: many failures over many accounts (from any number of clients) within the lockout window.
FAILED_RECENT = Gauge(
    "isseimail_pass_failed_logins_recent",
    "Failed logins (pass and admin, every client) within ISSEIMAIL_LOCKOUT_WINDOW_SECONDS, as of the latest failure.",
)
FAILED_ACCOUNTS = Gauge(
    "isseimail_pass_failed_login_accounts_recent",
    "Distinct user IDs and admin e-mails with failed logins within the lockout window (password spraying).",
)

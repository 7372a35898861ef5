"""Amazon SES event notifications (JSON, possibly wrapped in an SNS envelope) as bounce results.

SES reports bounces, deliveries, complaints and delays as JSON (`notificationType` or `eventType`): only a
"Bounce" is a failure; a "Delivery" is a success, a "Complaint" a feedback report, a "DeliveryDelay" a delay.
"""

from __future__ import annotations

import json
from typing import Any

from isseimail_notifier.reasons import SUCCESS_ACTIONS, better_status, classify, derived_status, find_reply_code

# (reason, is_bounce) -> the fields of BounceResult, built by the caller.
SesVerdict = tuple[bool, str | None, str | None, str, str, str, tuple[str, ...]]

_SUBTYPE_REASON = {
    "noemail": "userunknown",
    "mailboxfull": "mailboxfull",
    "messagetoolarge": "mesgtoobig",
    "contentrejected": "contenterror",
    "attachmentrejected": "contenterror",
    "suppressed": "suppressed",
    "onaccountsuppressionlist": "suppressed",
}


def _load(text: str) -> dict[str, Any] | None:
    start = text.find("{")
    if start < 0 or len(text) > 2_000_000:
        return None
    try:
        data = json.loads(text[start : text.rfind("}") + 1])
    except (ValueError, RecursionError):
        return None
    if isinstance(data, dict) and isinstance(data.get("Message"), str):  # an SNS envelope
        try:
            data = json.loads(data["Message"])
        except (ValueError, RecursionError):
            return None
    return data if isinstance(data, dict) else None


def ses_verdict(text: str) -> SesVerdict | None:
    """(is_bounce, recipient, status, reason, action, diagnostic, recipients), or None if not SES JSON."""
    if "notificationType" not in text and "eventType" not in text:
        return None
    data = _load(text)
    if data is None:
        return None
    kind = str(data.get("notificationType") or data.get("eventType") or "").lower()
    if kind == "delivery":
        mail = data.get("delivery") if isinstance(data.get("delivery"), dict) else {}
        recipients = [str(r).lower() for r in (mail or {}).get("recipients", []) if isinstance(r, str)]
        return False, recipients[0] if recipients else None, "2.0.0", "delivered", "delivered", "", ()
    if kind == "complaint":
        return False, None, None, "feedback", "", "", ()
    if kind == "deliverydelay":
        return False, None, None, "delayed", "delayed", "", ()
    if kind != "bounce" or not isinstance(data.get("bounce"), dict):
        return None
    bounce: dict[str, Any] = data["bounce"]
    listed = [r for r in bounce.get("bouncedRecipients", []) if isinstance(r, dict) and r.get("emailAddress")]
    if not listed:
        return None
    first = listed[0]
    recipient = str(first["emailAddress"]).strip().strip("<>").lower()
    action = str(first.get("action") or "failed").lower()
    diagnostic = str(first.get("diagnosticCode") or "")[:1000]
    status = better_status(str(first.get("status") or "") or None, diagnostic)
    if action in SUCCESS_ACTIONS or (status or "").startswith("2"):
        return False, recipient, status, "delivered", action, diagnostic, ()
    subtype = str(bounce.get("bounceSubType") or "").replace(" ", "").lower()
    transient = str(bounce.get("bounceType") or "").lower() == "transient"
    reason = classify(status, diagnostic, find_reply_code(diagnostic))
    if reason in ("undefined", "onhold", "rejected") and subtype in _SUBTYPE_REASON:
        reason = _SUBTYPE_REASON[subtype]
    if reason == "suppressed":
        reason = "userunknown" if not transient else "onhold"
    status = status or derived_status(reason, find_reply_code(diagnostic), transient)
    failed = tuple(str(r["emailAddress"]).strip().strip("<>").lower() for r in listed[:100])
    return True, recipient, status, reason, action, diagnostic, failed

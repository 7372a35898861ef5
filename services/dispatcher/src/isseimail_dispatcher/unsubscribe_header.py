"""The List-Unsubscribe header of one recipient's message (RFC 2369, RFC 8058).

A mailto: on the bounce domain, which the notifier's SMTP listener takes, and, when ISSEIMAIL_PUBLIC_URL is
an https URL, the gateway's one-click URL (the mailbox provider POSTs `List-Unsubscribe=One-Click` to it;
the stamp adds List-Unsubscribe-Post). Both carry the same token: it names the delivery and is bound by an
HMAC to the recipient address and the sender organisation (isseimail_shared.unsubscribe).
"""

from __future__ import annotations

import uuid

from isseimail_shared.unsubscribe import mailto_address, make_token, organisation_of


def list_unsubscribe(
    secret: bytes,
    *,
    bounce_domain: str,
    public_url: str | None,
    campaign_id: uuid.UUID,
    delivery_id: int,
    recipient: str,
    sender_email: str,
) -> str:
    token = make_token(secret, campaign_id, delivery_id, recipient, organisation_of(sender_email))
    uris = [f"mailto:{mailto_address(token, bounce_domain)}"]
    if public_url and public_url.lower().startswith("https://"):
        # RFC 8058 one-click needs HTTPS; an http:// URL (a test or demo set-up) gets the mailto only.
        uris.append(f"{public_url.rstrip('/')}/unsubscribe/{token}")
    return ", ".join(uris)

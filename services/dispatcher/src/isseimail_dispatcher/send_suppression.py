"""The suppression list re-checked at send time: an unsubscribe, complaint or hard bounce that arrives after
一斉送信 stops later mail to that address in the same campaign.

The list validator checked the list at upload, but a campaign takes minutes to hours. A worker asks the
notifier (POST /internal/suppressions/check, with the campaign's sender organisation) for the addresses of a
batch before sending it, and again for the rest of the batch every 10 seconds (worker.SUPPRESSION_RECHECK_SECONDS). A
suppressed recipient is recorded failed with SUPPRESSED_AT_SEND, which the notifier reports as "suppressed"
(in the sender's failure report and completion mail) without counting it as a bounce. If the notifier does
not answer, sending goes on (the upload-time check stands) and the miss is counted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client import Counter

from isseimail_shared.clients.base import Unavailable
from isseimail_shared.clients.notifier import NotifierClient
from isseimail_shared.unsubscribe import organisation_of

log = logging.getLogger(__name__)

CHECK_FAILED = Counter(
    "isseimail_dispatcher_suppression_check_failures_total",
    "Send-time suppression checks the notifier did not answer (sending went on).",
)
SKIPPED = Counter("isseimail_dispatcher_suppressed_at_send_total", "Recipients not sent: suppressed after 一斉送信.")


class SuppressionCheck:
    def __init__(self, client: NotifierClient) -> None:
        self.client = client

    async def suppressed(self, sender_email: str, addresses: Iterable[str]) -> set[str]:
        """The lower-cased addresses among `addresses` suppressed for this sender's organisation (or everyone)."""
        asked = sorted({a.lower() for a in addresses})
        if not asked:
            return set()
        try:
            found = await self.client.suppressed(asked, organisation_of(sender_email))
        except Unavailable as exc:
            CHECK_FAILED.inc()
            log.warning("send-time suppression check failed (%s); sending goes on", exc.__class__.__name__)
            return set()
        return {str(a).lower() for a in found}

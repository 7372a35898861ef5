"""A stand-in composer for dispatcher tests: serves GET /internal/campaigns/{id}/snapshot (NDJSON) on a
real loopback port, exactly as docs/internal-api.md describes it, with templates rendered by mailmerge."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from isseimail_shared.mailmerge import CampaignTemplate, Recipient, render_campaign

SENDER = "sender@corp.example.jp"


def make_recipients(count: int, domain: str = "example.jp", start: int = 1) -> list[Recipient]:
    return [
        Recipient(row=i, email=f"user{i}@{domain}", company="株式会社テスト", contact=f"担当 {i}")
        for i in range(start, start + count)
    ]


@dataclass
class SnapshotPeer:
    url: str = ""
    campaigns: dict[uuid.UUID, tuple[CampaignTemplate, list[Recipient]]] = field(default_factory=dict)
    requests: int = 0

    def add(
        self,
        recipients: list[Recipient],
        *,
        attachments: list[tuple[str, bytes]] | None = None,
        subject: str = "ご案内",
        body: str = "本文です。\n.先頭のドット",
    ) -> uuid.UUID:
        """Register a campaign (the sender's own copy is appended as row 0); returns its id."""
        campaign_id = uuid.uuid4()
        template = render_campaign(SENDER, "送信 太郎", subject, body, attachments=attachments)
        own = Recipient(row=0, email=SENDER, contact="送信 太郎")
        self.campaigns[campaign_id] = (template, [*recipients, own])
        return campaign_id

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/internal/campaigns/{campaign_id}/snapshot")
        async def snapshot(campaign_id: uuid.UUID) -> StreamingResponse:
            self.requests += 1
            template, rows = self.campaigns[campaign_id]

            async def lines() -> AsyncIterator[bytes]:
                head = {
                    "campaign": {
                        "campaign_id": str(campaign_id),
                        "sender_email": SENDER,
                        "sender_name": template.sender_name,
                        "subject": template.subject,
                        "recipient_count": len(rows) - 1,
                    },
                    "template": template.model_dump(mode="json"),
                }
                yield json.dumps(head, ensure_ascii=False).encode() + b"\n"
                for r in rows:
                    yield r.model_dump_json().encode() + b"\n"

            return StreamingResponse(lines(), media_type="application/x-ndjson")

        return app

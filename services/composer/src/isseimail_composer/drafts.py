"""Campaign drafts in the composer's schema: create, replace, reset, load; only while not frozen."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from isseimail_composer.errors import FROZEN, NOT_FOUND
from isseimail_composer.form import Attachment, Charset, Draft
from isseimail_shared.db import Conn
from isseimail_shared.errors import ApiError
from isseimail_shared.mailmerge import CampaignTemplate, render_campaign


@dataclass(frozen=True)
class StoredDraft:
    campaign_id: uuid.UUID
    pass_id: int
    user_id: str
    state: str
    draft: Draft

    def template(self) -> CampaignTemplate:
        d = self.draft
        files = [(a.filename, a.data) for a in d.attachments]
        return render_campaign(d.sender_email, d.sender_name, d.subject, d.body, d.charset, files)


async def _insert_attachments(conn: Conn, campaign_id: uuid.UUID, attachments: list[Attachment]) -> None:
    await conn.executemany(
        "INSERT INTO attachments (campaign_id, position, filename, content, size) VALUES ($1, $2, $3, $4, $5)",
        [(campaign_id, i, a.filename, a.data, len(a.data)) for i, a in enumerate(attachments, start=1)],
    )


async def create(conn: Conn, pass_id: int, user_id: str, draft: Draft) -> uuid.UUID:
    campaign_id = uuid.uuid4()
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO campaigns (id, pass_id, user_id, list_id, sender_email, sender_name, subject, body, charset)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            campaign_id,
            pass_id,
            user_id,
            draft.list_id,
            draft.sender_email,
            draft.sender_name,
            draft.subject,
            draft.body,
            draft.charset,
        )
        await _insert_attachments(conn, campaign_id, draft.attachments)
    return campaign_id


async def _lock_draft(conn: Conn, campaign_id: uuid.UUID, pass_id: int) -> None:
    state = await conn.fetchval(
        "SELECT state FROM campaigns WHERE id = $1 AND pass_id = $2 FOR UPDATE", campaign_id, pass_id
    )
    if state is None:
        raise ApiError(404, NOT_FOUND)
    if state != "draft":
        raise ApiError(409, FROZEN)


async def replace(conn: Conn, campaign_id: uuid.UUID, pass_id: int, draft: Draft) -> None:
    """Replace every field and the attachments (the caller passes the kept ones when none were sent)."""
    async with conn.transaction():
        await _lock_draft(conn, campaign_id, pass_id)
        await conn.execute(
            "UPDATE campaigns SET list_id = $2, sender_email = $3, sender_name = $4, subject = $5, body = $6,"
            " charset = $7, updated_at = now() WHERE id = $1",
            campaign_id,
            draft.list_id,
            draft.sender_email,
            draft.sender_name,
            draft.subject,
            draft.body,
            draft.charset,
        )
        await conn.execute("DELETE FROM attachments WHERE campaign_id = $1", campaign_id)
        await _insert_attachments(conn, campaign_id, draft.attachments)


async def delete(conn: Conn, campaign_id: uuid.UUID, pass_id: int) -> None:
    """The form's reset: the draft and its attachments are gone."""
    async with conn.transaction():
        await _lock_draft(conn, campaign_id, pass_id)
        await conn.execute("DELETE FROM campaigns WHERE id = $1", campaign_id)


async def attachments_of(conn: Conn, campaign_id: uuid.UUID) -> list[Attachment]:
    rows = await conn.fetch(
        "SELECT filename, content FROM attachments WHERE campaign_id = $1 ORDER BY position", campaign_id
    )
    return [Attachment(r["filename"], bytes(r["content"])) for r in rows]


async def load(
    conn: Conn, campaign_id: uuid.UUID, pass_id: int | None = None, *, for_update: bool = False
) -> StoredDraft | None:
    """The draft (with its attachments); None when unknown or owned by another pass."""
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT * FROM campaigns WHERE id = $1{lock}", campaign_id)
    if row is None or (pass_id is not None and row["pass_id"] != pass_id):
        return None
    charset: Charset = "iso-2022-jp" if row["charset"] == "iso-2022-jp" else "utf-8"
    draft = Draft(
        row["list_id"],
        row["sender_email"],
        row["sender_name"],
        row["subject"],
        row["body"],
        charset,
        await attachments_of(conn, campaign_id),
    )
    return StoredDraft(row["id"], row["pass_id"], row["user_id"], row["state"], draft)

"""GET /internal/campaigns/{id}/snapshot: the frozen campaign as NDJSON, streamed from a cursor.

First line: campaign facts and the template; then one recipient per line in CSV order; the sender's
own copy last with row 0. 50,000 rows are one response, read in pages from a server-side cursor so
memory stays flat.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import asyncpg

from isseimail_composer.freeze import campaign_header, sender_copy

PAGE = 1000


async def snapshot_lines(pool: asyncpg.Pool, campaign_id: uuid.UUID) -> AsyncIterator[bytes] | None:
    """The NDJSON body, or None when the campaign has no snapshot (not frozen, or unknown)."""
    record = await pool.fetchrow("SELECT * FROM snapshots WHERE campaign_id = $1", campaign_id)
    if record is None:
        return None
    header = (campaign_header(dict(record)).model_dump_json() + "\n").encode()
    sender = sender_copy(record["sender_email"], record["sender_name"])

    async def lines() -> AsyncIterator[bytes]:
        yield header
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            page: list[str] = []
            async for r in conn.cursor(
                "SELECT row_no, email, company, department1, department2, contact FROM snapshot_rows"
                " WHERE campaign_id = $1 ORDER BY row_no",
                campaign_id,
                prefetch=PAGE,
            ):
                # A SnapshotRow's fields as a plain dict: pydantic per row would triple the cost of a large snapshot.
                row = {
                    "row": r["row_no"],
                    "email": r["email"],
                    "company": r["company"],
                    "department1": r["department1"],
                    "department2": r["department2"],
                    "contact": r["contact"],
                }
                page.append(json.dumps(row, ensure_ascii=False))
                if len(page) >= PAGE:
                    yield ("\n".join(page) + "\n").encode()
                    page = []
            if page:
                yield ("\n".join(page) + "\n").encode()
        yield (sender.model_dump_json() + "\n").encode()

    return lines()

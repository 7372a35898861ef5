"""A list's recipients against one sender organisation's unsubscribes and complaints (and every bounce).

A list is uploaded before the sender address is written, so at upload only bounces (which hold for every
sender) can be checked. The composer knows the From address: its ready-check, right before the pass is
consumed, asks here with the sender organisation (the From domain), and any row it answers is refused with
its Japanese reason, named by CSV row, as the upload's own errors are.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Query

from isseimail_list_validator import reasons
from isseimail_list_validator.routes import ActingPass, SettingsDep, owned_list
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_list_validator.suppression import CHUNK, check_suppressed, reason_code
from isseimail_shared.app import Db
from isseimail_shared.contracts.list_validator import BadRow, SuppressedRows
from isseimail_shared.db import Conn
from isseimail_shared.errors import ApiError

router = APIRouter(prefix="/internal/lists", tags=["lists"])

UNAVAILABLE = "配信停止リストを確認できませんでした。しばらくしてから再度お試しください。"
DOMAIN = r"^[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?$"


@router.get("/{list_id}/suppressed")
async def suppressed_rows(
    list_id: uuid.UUID,
    pool: Db,
    settings: SettingsDep,
    organisation: Annotated[str, Query(min_length=1, max_length=253, pattern=DOMAIN)],
    x_isseimail_pass_id: ActingPass,
    limit: Annotated[int, Query(ge=0, le=10_000)] = 1000,
) -> SuppressedRows:
    """The rows suppressed for the organisation in row order (first `limit`, and the total); 503 when the
    notifier cannot be asked (under the "allow" policy: no rows, "unverified": true)."""
    await owned_list(pool, list_id, x_isseimail_pass_id)
    # The rows are read and asked about a chunk at a time (a million-row list is never held whole); only
    # the answered rows are kept, and of those only the first `limit`.
    rows: list[BadRow] = []
    total = 0
    unavailable = False
    async with pool.acquire() as conn, conn.transaction():
        async for chunk in _chunks(conn, list_id):
            answered = await _check(settings, organisation, chunk, rows, limit)
            if answered is None:
                unavailable = True
                break
            total += answered
    if unavailable:
        policy = await pool.fetchval("SELECT unverified_policy FROM lists WHERE list_id = $1", list_id)
        if policy != "allow":
            raise ApiError(503, UNAVAILABLE)
        # ISSEIMAIL_UNVERIFIED_POLICY=allow: what cannot be checked does not block, here as at upload.
        return SuppressedRows(list_id=list_id, organisation=organisation.lower(), total=0, rows=[], unverified=True)
    return SuppressedRows(list_id=list_id, organisation=organisation.lower(), total=total, rows=rows, unverified=False)


async def _chunks(conn: Conn, list_id: uuid.UUID) -> AsyncIterator[list[asyncpg.Record]]:
    """The list's rows that may be sent, in row order, CHUNK at a time (the notifier's maximum per ask)."""
    chunk: list[asyncpg.Record] = []
    cursor = conn.cursor(
        "SELECT row_no, address, email FROM list_rows WHERE list_id = $1 AND status IN ('ok', 'unverified') "
        "AND email IS NOT NULL ORDER BY row_no",
        list_id,
        prefetch=2000,
    )
    async for record in cursor:
        chunk.append(record)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _check(
    settings: ListValidatorSettings,
    organisation: str,
    records: list[asyncpg.Record],
    rows: list[BadRow],
    limit: int,
) -> int | None:
    """Ask about a chunk of rows; the answered ones are added to `rows` (up to `limit`). Returns how many
    were answered, None when the suppression list could not be read."""
    answer = await check_suppressed(
        settings.notifier_url,
        [r["email"] for r in records],
        timeout=settings.suppression_timeout_seconds,
        tokens=settings.internal_tokens,
        organisation=organisation.lower(),
    )
    if answer is None:
        return None
    count = 0
    for record in records:
        reason = answer.get(record["email"].lower())
        if reason is None:
            continue
        count += 1
        if len(rows) < limit:
            code = reason_code(reason)
            rows.append(
                BadRow(
                    row=record["row_no"],
                    address=record["address"],
                    status="invalid",
                    code=code,
                    message=reasons.message(code),
                )
            )
    return count

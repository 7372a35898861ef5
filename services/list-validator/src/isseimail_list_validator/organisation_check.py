"""A list's recipients against one sender organisation's unsubscribes and complaints (and every bounce).

A list is uploaded before the sender address is written, so at upload only bounces (which hold for every
sender) can be checked. The composer knows the From address: its ready-check, right before the pass is
consumed, asks here with the sender organisation (the From domain), and any row it answers is refused with
its Japanese reason, named by CSV row, as the upload's own errors are.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from isseimail_list_validator import reasons
from isseimail_list_validator.routes import ActingPass, SettingsDep, owned_list
from isseimail_list_validator.suppression import check_suppressed, reason_code
from isseimail_shared.app import Db

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
) -> dict[str, Any]:
    """{"total", "rows": [{"row", "address", "status": "invalid", "code", "message"}]} in row order (first
    `limit`); 503 when the notifier cannot be asked (under the "allow" policy: no rows, "unverified": true)."""
    await owned_list(pool, list_id, x_isseimail_pass_id)
    records = await pool.fetch(
        "SELECT row_no, address, email FROM list_rows WHERE list_id = $1 AND status IN ('ok', 'unverified') "
        "AND email IS NOT NULL ORDER BY row_no",
        list_id,
    )
    answer = await check_suppressed(
        settings.notifier_url,
        [r["email"] for r in records],
        timeout=settings.suppression_timeout_seconds,
        tokens=settings.internal_tokens,
        organisation=organisation.lower(),
    )
    if answer is None:
        policy = await pool.fetchval("SELECT unverified_policy FROM lists WHERE list_id = $1", list_id)
        if policy != "allow":
            raise HTTPException(503, UNAVAILABLE)
        # ISSEIMAIL_UNVERIFIED_POLICY=allow: what cannot be checked does not block, here as at upload.
        return {
            "list_id": str(list_id),
            "organisation": organisation.lower(),
            "total": 0,
            "rows": [],
            "unverified": True,
        }
    rows = []
    for record in records:
        reason = answer.get(record["email"].lower())
        if reason is not None:
            code = reason_code(reason)
            rows.append(
                {
                    "row": record["row_no"],
                    "address": record["address"],
                    "status": "invalid",
                    "code": code,
                    "message": reasons.message(code),
                }
            )
    return {
        "list_id": str(list_id),
        "organisation": organisation.lower(),
        "total": len(rows),
        "rows": rows[:limit],
        "unverified": False,
    }

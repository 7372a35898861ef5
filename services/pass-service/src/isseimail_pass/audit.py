"""The audit trail: applications, decisions, logins (success and failure), consumption."""

from __future__ import annotations

import json
from typing import Any

from isseimail_shared.db import Conn


async def audit(
    conn: Conn,
    *,
    actor: str,
    action: str,
    subject: str | None = None,
    client_ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, action, subject, client_ip, detail) VALUES ($1, $2, $3, $4::inet, $5::jsonb)",
        actor,
        action,
        subject,
        client_ip or None,
        json.dumps(detail or {}, ensure_ascii=False),
    )

"""The administrator's sender-domain page: each domain's DNS findings with the records to publish, and the
audited override of the send-time refusal (made and withdrawn here, recorded by the composer)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response

from isseimail_gateway.api.admin_domains import DOMAIN
from isseimail_gateway.web import apiclient
from isseimail_gateway.web.forms import read_form, text
from isseimail_gateway.web.render import WebError, redirect, render

router = APIRouter(prefix="/domains")

REASON_REQUIRED = "理由を入力してください。"
BACK = "/admin/domains"


@router.get("")
async def domains(request: Request, refresh: str = "") -> Response:
    """Every sender domain's readiness; ?refresh=1 asks DNS again."""
    params = {"refresh": "true"} if refresh else {}
    result = await apiclient.call(request, "GET", "/admin/domains", params=params)
    if result.status in (401, 403):
        return render(request, "admin/login.html", 401, message=result.detail)
    if not result.ok:
        raise WebError(result.status, result.detail, back="/admin")
    found: Any = result.body.get("domains", []) if isinstance(result.body, dict) else []
    items = [d for d in found if isinstance(d, dict)] if isinstance(found, list) else []
    return render(request, "admin/domains.html", domains=items, nav="domains")


async def _change(request: Request, method: str, domain: str, done: str) -> Response:
    form = await read_form(request, max_files=0)
    reason = text(form, "reason").strip()
    if not reason:
        raise WebError(422, REASON_REQUIRED, back=BACK)
    if not re.fullmatch(DOMAIN, domain):
        raise WebError(404, "指定されたドメインが見つかりません。", back=BACK)
    path = f"/admin/domains/{domain}/override"
    result = await apiclient.call(request, method, path, json={"reason": reason[:500]})
    if result.status == 401:
        return render(request, "admin/login.html", 401, message=result.detail)
    if not result.ok:
        raise WebError(result.status, result.detail, back=BACK)
    return redirect(f"{BACK}?done={done}")


@router.post("/{domain}/override")
async def override(request: Request, domain: str) -> Response:
    return await _change(request, "POST", domain, "overridden")


@router.post("/{domain}/withdraw")
async def withdraw(request: Request, domain: str) -> Response:
    return await _change(request, "DELETE", domain, "withdrawn")

"""The administrator's pages: login, applications to approve or reject, passes, campaigns, suppressions,
sender domains (admin_domains.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response

from isseimail_gateway.session import AdminSession, require_admin_session
from isseimail_gateway.upstream import Upstreams, get_upstreams, unavailable
from isseimail_gateway.web import admin_domains, apiclient
from isseimail_gateway.web.applicant import parse_id
from isseimail_gateway.web.forms import pick, read_form, text
from isseimail_gateway.web.render import WebError, redirect, render
from isseimail_shared.clients.base import Unavailable
from isseimail_shared.errors import ApiError
from isseimail_shared.paths import internal_path

router = APIRouter(prefix="/admin", include_in_schema=False)
router.include_router(admin_domains.router)  # /admin/domains: sender-domain readiness

REASON_REQUIRED = "理由を入力してください。"
MAX_QUERY = 254


def _items(body: Any, *keys: str) -> list[dict[str, Any]]:
    items = body if isinstance(body, list) else pick(body, *keys, "items", default=[])
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


async def _admin_get(request: Request, path: str, **kwargs: Any) -> apiclient.ApiResult | Response:
    """GET an admin API; a 401 leads to the admin login page."""
    result = await apiclient.call(request, "GET", path, **kwargs)
    if result.status in (401, 403):
        return render(request, "admin/login.html", 401, message=result.detail)
    if not result.ok:
        raise WebError(result.status, result.detail, back="/admin")
    return result


@router.get("/login")
async def login_form(request: Request) -> Response:
    return render(request, "admin/login.html")


@router.post("/login")
async def login_submit(request: Request) -> Response:
    form = await read_form(request, max_files=0)
    email = text(form, "email")
    credentials = {"email": email, "password": text(form, "password")}
    result = await apiclient.call(request, "POST", "/admin/session", json=credentials)
    if not result.ok:
        return render(
            request,
            "admin/login.html",
            result.status,
            values={"email": email},
            message=result.detail,
            errors=result.field_errors,
        )
    return result.apply_cookies(redirect("/admin"))


@router.post("/logout")
async def logout(request: Request) -> Response:
    await read_form(request, max_files=0)
    result = await apiclient.call(request, "DELETE", "/admin/session")  # ends the session on the server
    response = redirect("/admin/login")
    response.delete_cookie("isseimail_admin", path="/")
    return result.apply_cookies(response)


@router.get("")
async def applications(request: Request) -> Response:
    result = await _admin_get(request, "/admin/applications", params={"state": "pending", "limit": 200})
    if isinstance(result, Response):
        return result
    pending = _items(result.body, "applications")
    recent = await _admin_get(request, "/admin/applications", params={"limit": 30})
    if isinstance(recent, Response):
        return recent
    done = [a for a in _items(recent.body, "applications") if a.get("state", a.get("status")) != "pending"]
    return render(request, "admin/applications.html", pending=pending, done=done, nav="applications")


@router.post("/applications/{application_id}/approve")
async def approve(request: Request, application_id: str) -> Response:
    application_id = parse_id(application_id)
    await read_form(request, max_files=0)
    result = await apiclient.call(request, "POST", f"/admin/applications/{application_id}/approve")
    if result.status == 401:
        return render(request, "admin/login.html", 401, message=result.detail)
    if not result.ok:
        raise WebError(result.status, result.detail, back="/admin")
    return redirect("/admin?done=approved")


@router.post("/applications/{application_id}/reject")
async def reject(request: Request, application_id: str) -> Response:
    application_id = parse_id(application_id)
    form = await read_form(request, max_files=0)
    reason = text(form, "reason").strip()
    if not reason:
        raise WebError(422, REASON_REQUIRED, back="/admin")
    result = await apiclient.call(
        request, "POST", f"/admin/applications/{application_id}/reject", json={"reason": reason}
    )
    if result.status == 401:
        return render(request, "admin/login.html", 401, message=result.detail)
    if not result.ok:
        raise WebError(result.status, result.detail, back="/admin")
    return redirect("/admin?done=rejected")


async def _admin(request: Request) -> AdminSession | None:
    """The administrator's live session, or None (the page then shows the admin login)."""
    try:
        return await require_admin_session(request, get_upstreams(request))
    except ApiError as exc:
        if exc.status == 401:
            return None
        raise WebError(exc.status, apiclient.UNAVAILABLE, back="/admin") from None


@router.get("/passes")
async def passes(request: Request) -> Response:
    """Issued passes with their state today (unused, used, expired), newest first."""
    result = await _admin_get(request, "/admin/passes", params={"limit": 200})
    if isinstance(result, Response):
        return result
    return render(request, "admin/passes.html", passes=_items(result.body, "passes"), nav="passes")


async def _campaign_row(upstreams: Upstreams, spent: dict[str, Any]) -> dict[str, Any]:
    """One sent campaign: subject and sender from the composer (as its pass), counts from the dispatcher."""
    campaign_id = str(spent["campaign_id"])
    pass_id, user_id = int(spent["pass_id"]), str(spent["user_id"])
    try:
        draft, progress = await asyncio.gather(
            upstreams.composer.draft(campaign_id, pass_id, user_id),
            upstreams.dispatcher.progress(campaign_id, pass_id),
        )
    except Unavailable as exc:
        raise unavailable(exc) from exc
    row: dict[str, Any] = {"campaign_id": campaign_id, "user_id": user_id, "status": "accepted"}
    row["applicant_name"] = spent.get("applicant_name", "")
    row["consumed_at"] = spent.get("consumed_at") or ""
    if draft is not None:
        row.update(subject=draft.subject, sender_email=draft.sender_email)
    if progress is not None:
        row.update(progress.model_dump(mode="json"))  # the template's row
    return row


@router.get("/campaigns")
async def campaigns(request: Request) -> Response:
    """Sent campaigns (the passes that were used) with their progress and failures."""
    result = await _admin_get(request, "/admin/passes", params={"limit": 200})
    if isinstance(result, Response):
        return result
    spent = [p for p in _items(result.body, "passes") if p.get("campaign_id")][:50]
    upstreams = get_upstreams(request)
    rows = await asyncio.gather(*(_campaign_row(upstreams, p) for p in spent))
    return render(request, "admin/campaigns.html", campaigns=rows, nav="campaigns")


PAGE_SIZE = 50
CONTROL_DONE = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}


@router.post("/campaigns/{campaign_id}/{action}")
async def control_campaign(request: Request, campaign_id: str, action: str) -> Response:
    """Pause, resume or cancel a campaign with a reason (the dispatcher records who and why)."""
    form = await read_form(request, max_files=0)
    if action not in CONTROL_DONE:
        raise WebError(404, "見つかりません。", back="/admin/campaigns")
    reason = text(form, "reason").strip()[:500]
    if not reason:
        raise WebError(422, REASON_REQUIRED, back="/admin/campaigns")
    result = await apiclient.call(
        request, "POST", internal_path("/admin/campaigns", campaign_id, action), json={"reason": reason}
    )
    if result.status == 401:
        return render(request, "admin/login.html", 401, message=result.detail)
    if not result.ok:
        raise WebError(result.status, result.detail, back="/admin/campaigns")
    return redirect(f"/admin/campaigns?done={CONTROL_DONE[action]}")


@router.get("/campaigns/{campaign_id}/failures")
async def campaign_failures(request: Request, campaign_id: str, page: int = 1) -> Response:
    """A campaign's failed and bounced recipients with reasons, 50 to a page, and the CSV download."""
    page = max(1, min(page, 100_000))
    result = await _admin_get(
        request,
        internal_path("/admin/campaigns", campaign_id, "failures"),
        params={"limit": PAGE_SIZE, "offset": (page - 1) * PAGE_SIZE},
    )
    if isinstance(result, Response):
        return result
    total = int(result.body.get("total", 0))
    return render(
        request,
        "admin/failures.html",
        campaign_id=result.body["campaign_id"],
        items=_items(result.body),
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        nav="campaigns",
    )


@router.get("/suppressions")
async def suppressions(request: Request, q: str = "") -> Response:
    """The suppression list, searched by address (through the admin API, like any API client)."""
    q = q.strip()[:MAX_QUERY]
    result = await _admin_get(request, "/admin/suppressions", params={"q": q, "limit": 100})
    if isinstance(result, Response):
        return result
    return render(
        request,
        "admin/suppressions.html",
        entries=_items(result.body, "suppressions"),
        total=result.body.get("total", 0) if isinstance(result.body, dict) else 0,
        q=q,
        nav="suppressions",
    )


async def _suppression_change(request: Request, method: str, path: str, body: dict[str, str], done: str) -> Response:
    result = await apiclient.call(request, method, path, json=body)
    if result.status == 401:
        return render(request, "admin/login.html", 401, message=result.detail)
    if not result.ok:
        raise WebError(result.status, result.detail, back="/admin/suppressions")
    return redirect(f"/admin/suppressions?done={done}")


@router.post("/suppressions/add")
async def add_suppression(request: Request) -> Response:
    """Add an address with a reason; the notifier records who added it and why."""
    form = await read_form(request, max_files=0)
    address = text(form, "address").strip()[:MAX_QUERY]
    reason = text(form, "reason").strip()[:500]
    if not reason:
        raise WebError(422, REASON_REQUIRED, back="/admin/suppressions")
    if not address:
        raise WebError(422, "メールアドレスを指定してください。", back="/admin/suppressions")
    return await _suppression_change(
        request, "POST", "/admin/suppressions", {"address": address, "reason": reason}, "added"
    )


@router.post("/suppressions/remove")
async def remove_suppression(request: Request) -> Response:
    """Remove an address with a reason; the notifier audits who removed it and why."""
    form = await read_form(request, max_files=0)
    address = text(form, "address").strip()[:MAX_QUERY]
    reason = text(form, "reason").strip()[:500]
    if not reason:
        raise WebError(422, REASON_REQUIRED, back="/admin/suppressions")
    if not address or address in (".", ".."):
        raise WebError(422, "メールアドレスを指定してください。", back="/admin/suppressions")
    path = internal_path("/admin/suppressions", address)
    return await _suppression_change(request, "DELETE", path, {"reason": reason}, "removed")

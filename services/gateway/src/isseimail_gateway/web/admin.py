"""The administrator's pages: login, applications to approve or reject, passes, campaigns, suppressions."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from isseimail_gateway.web import apiclient
from isseimail_gateway.web.applicant import parse_id
from isseimail_gateway.web.forms import pick, read_form, text
from isseimail_gateway.web.render import WebError, redirect, render

router = APIRouter(prefix="/admin", include_in_schema=False)

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
    response = redirect("/admin/login")
    response.delete_cookie("isseimail_admin", path="/")
    return response


@router.get("")
async def applications(request: Request) -> Response:
    result = await _admin_get(request, "/admin/applications")
    if isinstance(result, Response):
        return result
    items = _items(result.body, "applications")
    pending = [a for a in items if str(a.get("status", a.get("state", "pending"))) == "pending"]
    done = [a for a in items if a not in pending]
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


@router.get("/passes")
async def passes(request: Request) -> Response:
    result = await _admin_get(request, "/admin/passes")
    if isinstance(result, Response):
        return result
    return render(request, "admin/passes.html", passes=_items(result.body, "passes"), nav="passes")


@router.get("/campaigns")
async def campaigns(request: Request) -> Response:
    result = await _admin_get(request, "/admin/campaigns")
    if isinstance(result, Response):
        return result
    return render(request, "admin/campaigns.html", campaigns=_items(result.body, "campaigns"), nav="campaigns")


@router.get("/suppressions")
async def suppressions(request: Request, q: str = "") -> Response:
    q = q.strip()[:MAX_QUERY]
    result = await _admin_get(request, "/admin/suppressions", params={"q": q, "limit": 100})
    if isinstance(result, Response):
        return result
    return render(
        request,
        "admin/suppressions.html",
        entries=_items(result.body, "suppressions", "entries"),
        q=q,
        nav="suppressions",
    )


@router.post("/suppressions/remove")
async def remove_suppression(request: Request) -> Response:
    form = await read_form(request, max_files=0)
    address = text(form, "address").strip()[:MAX_QUERY]
    reason = text(form, "reason").strip()
    if not reason:
        raise WebError(422, REASON_REQUIRED, back="/admin/suppressions")
    result = await apiclient.call(
        request, "DELETE", f"/admin/suppressions/{quote(address, safe='@')}", json={"reason": reason}
    )
    if result.status == 401:
        return render(request, "admin/login.html", 401, message=result.detail)
    if not result.ok:
        raise WebError(result.status, result.detail, back="/admin/suppressions")
    return redirect("/admin/suppressions?done=removed")

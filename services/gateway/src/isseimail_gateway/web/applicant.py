"""The applicant's pages, in the manual's order: 1DayPass application, login, CSV upload and check."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from isseimail_gateway.upstream import get_upstreams
from isseimail_gateway.web import apiclient, csrf
from isseimail_gateway.web.forms import BAD_FORM, pick, read_form, text, today
from isseimail_gateway.web.render import WebError, redirect, render
from isseimail_shared.clients.base import Unavailable

router = APIRouter(include_in_schema=False)

APPLICATION_FIELDS = ("applicant_name", "applicant_email", "department", "use_date", "purpose")
BAD_ID = "指定されたページは見つかりません。"


def parse_id(value: str) -> str:
    """Ids in URLs are UUIDs or numbers; anything else is a 404 page before any service is asked."""
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise WebError(404, BAD_ID) from None


@router.get("/")
async def home(request: Request) -> Response:
    return render(request, "home.html")


@router.get("/apply")
async def application_form(request: Request) -> Response:
    return render(request, "apply.html", values={"use_date": today(request)}, today=today(request))


@router.post("/apply")
async def application_submit(request: Request) -> Response:
    form = await read_form(request, max_files=0)
    values = {name: text(form, name) for name in APPLICATION_FIELDS}
    result = await apiclient.call(request, "POST", "/applications", json=values)
    if not result.ok:
        return render(
            request,
            "apply.html",
            status_code=result.status if result.status < 500 else 400,
            values=values,
            today=today(request),
            message=result.detail,
            errors=result.field_errors,
        )
    return render(
        request,
        "apply_done.html",
        values=values,
        application_id=pick(result.body, "application_id", "id", default=""),
    )


@router.get("/login")
async def login_form(request: Request) -> Response:
    return render(request, "login.html", values={"use_date": today(request)})


@router.post("/login")
async def login_submit(request: Request) -> Response:
    form = await read_form(request, max_files=0)
    values = {"user_id": text(form, "user_id"), "use_date": text(form, "use_date")}
    payload = {**values, "password": text(form, "password")}
    result = await apiclient.call(request, "POST", "/session", json=payload)
    if not result.ok:
        # the password is never sent back into the page
        return render(
            request,
            "login.html",
            status_code=result.status if result.status < 500 else 400,
            values=values,
            message=result.detail,
            errors=result.field_errors,
        )
    return result.apply_cookies(redirect("/lists/new"))


@router.get("/rules")
async def rules(request: Request) -> Response:
    """★1DayPassについて / ★ルール / ご利用方法: linked from every page's footer and from the credential mail."""
    return render(request, "rules.html")


@router.post("/logout")
async def logout(request: Request) -> Response:
    return await _end_session(request, "/login")


@router.post("/close")
async def close(request: Request) -> Response:
    """受付完了's 閉じる: the session ends and the user is back at the start."""
    return await _end_session(request, "/")


async def _end_session(request: Request, then: str) -> Response:
    await read_form(request, max_files=0)
    result = await apiclient.call(request, "DELETE", "/session")
    response = redirect(then)
    response.delete_cookie("isseimail_session", path="/")
    return result.apply_cookies(response)


@router.get("/lists/new")
async def list_form(request: Request) -> Response:
    session = await apiclient.call(request, "GET", "/session")
    if not session.ok:
        return login_again(request, session.detail)
    return render(request, "list_upload.html", limits=await list_limits(request))


@router.post("/lists")
async def list_submit(request: Request, csrf_token: str = "") -> Response:
    """Pass the browser's multipart body on to the lists API as a stream, never reading it whole here.

    The CSRF token comes in the query string (the body is not parsed by this page), so an oversized
    file is cut off by the API's own limit as it streams, not after it was spooled to disk.
    """
    csrf.verify(request, csrf_token)
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise WebError(400, BAD_FORM, back="/lists/new")
    headers = {"content-type": content_type}
    if request.headers.get("content-length", "").isdigit():
        headers["content-length"] = request.headers["content-length"]
    result = await apiclient.call(request, "POST", "/lists", content=request.stream(), headers=headers)
    if result.status == 401:
        return login_again(request, result.detail)
    if not result.ok:
        message = result.detail
        errors = result.field_errors or {"file": message}
        return render(
            request,
            "list_upload.html",
            status_code=result.status,
            errors=errors,
            message=message,
            limits=await list_limits(request),
        )
    list_id = pick(result.body, "list_id", "id")
    return redirect(f"/lists/{list_id}")


@router.get("/lists/{list_id}")
async def list_status(request: Request, list_id: str) -> Response:
    list_id = parse_id(list_id)
    result = await apiclient.call(request, "GET", f"/lists/{list_id}")
    if result.status == 401:
        return login_again(request, result.detail)
    if not result.ok:
        raise WebError(result.status, result.detail, back="/lists/new")
    data = result.body if isinstance(result.body, dict) else {}
    counts = list_counts(data)
    status = str(data.get("status", "validating"))
    if status == "validating":
        return render(request, "list_checking.html", list_id=list_id, counts=counts)
    bad_rows = pick(data, "bad_rows", "errors", "invalid_rows", default=[])
    return render(
        request,
        "list_result.html",
        list_id=list_id,
        status=status,
        counts=counts,
        bad_rows=bad_rows if isinstance(bad_rows, list) else [],
        encoding=pick(data, "encoding_label", "encoding", default=""),  # "Shift_JIS (CP932)", as the API says it
    )


async def list_limits(request: Request) -> dict[str, str]:
    """The validator's configured limits, as the user reads them ("10MB", "50,000"); defaults if it is down."""
    limits = {"max_bytes": 10 * 1024 * 1024, "max_rows": 50_000}
    try:
        found = await get_upstreams(request).lists.limits()
        limits = {"max_bytes": found.max_bytes, "max_rows": found.max_rows}
    except Unavailable:
        pass  # the page still explains the format; the API enforces the real limit on upload
    size = limits["max_bytes"] / 1024 / 1024
    shown = f"{size:g}MB" if size >= 1 else f"{limits['max_bytes'] // 1024}KB"
    return {"size": shown, "rows": f"{limits['max_rows']:,}"}


def list_counts(data: dict[str, object]) -> dict[str, int]:
    """Counts may come nested under `counts` or at the top level of the answer."""
    source = data.get("counts") if isinstance(data.get("counts"), dict) else data
    assert isinstance(source, dict)
    out: dict[str, int] = {}
    for key in ("rows", "checked", "ok", "invalid", "unverified"):
        value = source.get(key, 0)
        out[key] = value if isinstance(value, int) else 0
    return out


def login_again(request: Request, message: str) -> Response:
    return render(request, "login.html", status_code=401, values={"use_date": today(request)}, message=message)

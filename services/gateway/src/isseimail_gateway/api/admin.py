"""Gateway JSON API for administrators (under /api/v1/admin): session, applications to decide, passes,
sender-domain readiness (admin_domains.py), a campaign's failures and the suppression list (admin_console.py).

Every route but the login needs the signed admin cookie.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from isseimail_gateway.api import admin_console, admin_domains
from isseimail_gateway.api.passes import caller_ip, relay_error
from isseimail_gateway.session import (
    ADMIN_COOKIE,
    AdminSessionDep,
    UpstreamsDep,
    delete_cookie,
    revoke,
    session_id,
    set_cookie,
)
from isseimail_gateway.upstream import parsed
from isseimail_shared.contracts.pass_service import AdminLoginOut, ApplicationList, ApplicationOut, IssuedOut, PassList

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

router.include_router(admin_domains.router)  # /api/v1/admin/domains: sender-domain readiness
router.include_router(admin_console.router)  # failures of a campaign, suppression list

ApplicationId = Annotated[int, Path(ge=1, le=2**62, description="申請ID")]


class AdminLoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, Field(max_length=254, description="管理者メールアドレス")]
    password: Annotated[str, Field(max_length=256, description="パスワード")]


class AdminInfo(BaseModel):
    admin_id: int
    email: str


class RejectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(max_length=500, description="却下理由 (申請者にメールで通知されます)")]


@router.post("/session", response_model=AdminInfo, responses={401: {"description": "認証失敗"}, 429: {}})
async def admin_login(body: AdminLoginRequest, request: Request, upstreams: UpstreamsDep) -> Any:
    """Administrator login (intranet only); sets the signed admin cookie."""
    payload = {**body.model_dump(), "client_ip": caller_ip(request), "replaces": session_id(request, ADMIN_COOKIE)}
    response = await upstreams.call("pass", "POST", "/internal/admin/login", json=payload)
    if response.status_code != 200:
        return relay_error(response)
    found = parsed(response, AdminLoginOut)
    info = AdminInfo(admin_id=found.admin_id, email=found.email)
    answer = JSONResponse(info.model_dump())
    set_cookie(request, answer, ADMIN_COOKIE, found.session_id)
    return answer


@router.get("/session", response_model=AdminInfo)
async def admin_session(admin: AdminSessionDep) -> AdminInfo:
    return AdminInfo(admin_id=admin.admin_id, email=admin.email)


@router.delete("/session")
async def admin_logout(request: Request, upstreams: UpstreamsDep) -> Response:
    """Log out: the administrator's session ends on the server, the cookie is removed."""
    await revoke(request, upstreams, ADMIN_COOKIE)
    answer = JSONResponse({"detail": "ログアウトしました。"})
    delete_cookie(answer, ADMIN_COOKIE)
    return answer


@router.get("/applications", response_model=ApplicationList)
async def list_applications(
    admin: AdminSessionDep,
    upstreams: UpstreamsDep,
    state: Literal["pending", "approved", "rejected"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Any:
    """Applications, newest first: `{"items": [...], "total": n}`; approved ones carry their user ID."""
    params: dict[str, str | int] = {"limit": limit, "offset": offset}
    if state:
        params["state"] = state
    response = await upstreams.call("pass", "GET", "/internal/applications", params=params)
    if response.status_code != 200:
        return relay_error(response)
    return parsed(response, ApplicationList)


@router.get("/passes", response_model=PassList)
async def list_passes(
    admin: AdminSessionDep,
    upstreams: UpstreamsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Any:
    """Issued passes, newest first: `{"items": [...], "total": n}` with each pass's state today (no passwords)."""
    response = await upstreams.call("pass", "GET", "/internal/passes", params={"limit": limit, "offset": offset})
    if response.status_code != 200:
        return relay_error(response)
    return parsed(response, PassList)


@router.post("/applications/{application_id}/approve", status_code=201, response_model=IssuedOut)
async def approve(
    application_id: ApplicationId, admin: AdminSessionDep, request: Request, upstreams: UpstreamsDep
) -> Any:
    """Approve: the pass is issued once and its credentials are mailed to the applicant and to you."""
    response = await upstreams.call(
        "pass",
        "POST",
        f"/internal/applications/{application_id}/approve",
        json={"admin_id": admin.admin_id, "client_ip": caller_ip(request)},
    )
    if response.status_code != 201:
        return relay_error(response)
    return parsed(response, IssuedOut, ok=201)


@router.post("/applications/{application_id}/reject", response_model=ApplicationOut)
async def reject(
    application_id: ApplicationId,
    body: Annotated[RejectRequest, Body()],
    admin: AdminSessionDep,
    request: Request,
    upstreams: UpstreamsDep,
) -> Any:
    """Reject with a reason; the applicant is told by mail."""
    response = await upstreams.call(
        "pass",
        "POST",
        f"/internal/applications/{application_id}/reject",
        json={"admin_id": admin.admin_id, "reason": body.reason, "client_ip": caller_ip(request)},
    )
    if response.status_code != 200:
        return relay_error(response)
    return parsed(response, ApplicationOut)

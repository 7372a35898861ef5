"""Gateway JSON API for applicants (under /api/v1): apply for a 1DayPass, log in with it, log out.

The gateway checks shapes and sizes; the pass-service owns the rules and answers per field in
Japanese, and those answers are relayed as they are. The password never appears in an answer or a log.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from isseimail_gateway.session import (
    PASS_COOKIE,
    PassSessionDep,
    UpstreamsDep,
    delete_cookie,
    revoke,
    session_id,
    set_cookie,
)
from isseimail_gateway.upstream import client_ip, parsed, relayed
from isseimail_shared.contracts.pass_service import ApplicationOut, PassLoginOut

router = APIRouter(prefix="/api/v1", tags=["passes"])

LOGGED_OUT = "ログアウトしました。"


class ApplicationRequest(BaseModel):
    """An application for a 1DayPass; the day of use is a date in Asia/Tokyo (YYYY-MM-DD)."""

    model_config = ConfigDict(extra="forbid")

    applicant_name: Annotated[str, Field(max_length=100, description="申請者氏名")]
    applicant_email: Annotated[str, Field(max_length=254, description="申請者メールアドレス")]
    department: Annotated[str, Field(max_length=100, description="部署名")]
    use_date: Annotated[str, Field(max_length=10, description="利用日 (YYYY-MM-DD)", examples=["2026-12-03"])]
    purpose: Annotated[str, Field(max_length=1000, description="利用目的")]


class ApplicationAccepted(BaseModel):
    application_id: int
    state: str
    use_date: str


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Annotated[str, Field(max_length=6, description="ユーザーID (6桁の数字)", examples=["123456"])]
    password: Annotated[str, Field(max_length=128, description="パスワード")]
    use_date: Annotated[str, Field(max_length=10, description="利用日 (YYYY-MM-DD)", examples=["2026-12-03"])]


class SessionInfo(BaseModel):
    pass_id: int
    user_id: str
    use_date: str


def caller_ip(request: Request) -> str | None:
    """The client address for the pass-service's lockout and audit (None rather than an empty string)."""
    return client_ip(request) or None


def relay_error(response: httpx.Response) -> JSONResponse:
    """An upstream 4xx as the user's answer: its Japanese detail and per-field errors (see upstream.relayed)."""
    return relayed(response).response()


@router.post(
    "/applications",
    status_code=201,
    response_model=ApplicationAccepted,
    responses={422: {"description": "入力内容に誤りがあります (項目ごとのメッセージ付き)"}},
)
async def apply(body: ApplicationRequest, request: Request, upstreams: UpstreamsDep) -> Any:
    """Apply for a 1DayPass; an administrator approves or rejects it, and the result is mailed."""
    response = await upstreams.call(
        "pass", "POST", "/internal/applications", json={**body.model_dump(), "client_ip": caller_ip(request)}
    )
    if response.status_code != 201:
        return relay_error(response)
    out = parsed(response, ApplicationOut, ok=201)
    return ApplicationAccepted(application_id=out.application_id, state=out.state, use_date=str(out.use_date))


@router.post(
    "/session",
    response_model=SessionInfo,
    responses={
        401: {"description": "ユーザーID、パスワードまたは利用日が正しくありません"},
        403: {"description": "失効した1DayPass、または社内ネットワーク外からのアクセス"},
        429: {"description": "ログイン失敗が続いたため一時的にロック"},
    },
)
async def login(body: LoginRequest, request: Request, upstreams: UpstreamsDep) -> Any:
    """Log in with user ID, password and day of use; sets the signed session cookie."""
    payload = {**body.model_dump(), "client_ip": caller_ip(request), "replaces": session_id(request, PASS_COOKIE)}
    response = await upstreams.call("pass", "POST", "/internal/login", json=payload)
    if response.status_code != 200:
        return relay_error(response)
    found = parsed(response, PassLoginOut)
    info = SessionInfo(pass_id=found.pass_id, user_id=found.user_id, use_date=str(found.use_date))
    answer = JSONResponse(info.model_dump())
    set_cookie(request, answer, PASS_COOKIE, found.session_id)
    return answer


@router.get("/session", response_model=SessionInfo, responses={401: {"description": "未ログインまたは失効"}})
async def current_session(session: PassSessionDep) -> SessionInfo:
    """The logged-in pass, as long as it is neither consumed nor past its day."""
    return SessionInfo(pass_id=session.pass_id, user_id=session.user_id, use_date=session.use_date)


@router.delete("/session")
async def logout(request: Request, upstreams: UpstreamsDep) -> Response:
    """Log out: the session ends on the server and the cookie is removed (the pass stays valid for its day)."""
    await revoke(request, upstreams, PASS_COOKIE)
    answer = JSONResponse({"detail": LOGGED_OUT})
    delete_cookie(answer, PASS_COOKIE)
    return answer

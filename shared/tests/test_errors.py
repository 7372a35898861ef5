"""The one error shape: validation errors per field in Japanese, ApiError as raised, framework errors in Japanese."""

from __future__ import annotations

import datetime as dt

import httpx
from fastapi import FastAPI
from pydantic import BaseModel, EmailStr, Field

from isseimail_shared.errors import HTTP_MESSAGES, ApiError, install_error_handlers


class Form(BaseModel):
    email: EmailStr
    name: str = Field(max_length=5)
    day: dt.date
    count: int
    note: str = Field(min_length=1)


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/form")
    async def form(body: Form) -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/throttled")
    async def throttled() -> None:
        raise ApiError(429, "しばらくお待ちください。", code="throttled", headers={"Retry-After": "7"})

    @app.get("/fields")
    async def fields() -> None:
        raise ApiError.invalid({"use_date": "利用日が過ぎています。"})

    return app


async def test_every_field_gets_a_japanese_message() -> None:
    """Each broken field is named with a message in Japanese; nothing English leaks through."""
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post("/form", json={"email": "x", "name": "abcdefg", "day": "12/3", "count": "many"})
        missing = await client.post("/form", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json() == {
        "detail": "入力内容に誤りがあります。",
        "errors": {
            "email": "メールアドレスの形式が正しくありません。",
            "name": "5文字（件）以内で入力してください。",
            "day": "日付は YYYY-MM-DD の形式で入力してください。",
            "count": "数値で指定してください。",
            "note": "必須項目です。",
        },
    }
    assert missing.status_code == 422
    assert set(missing.json()["errors"].values()) == {"リクエストの形式が正しくありません。"}


async def test_api_error_answers_as_raised() -> None:
    """Status, detail, field messages, reason code and headers reach the caller; absent fields are left out."""
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        throttled = await client.get("/throttled")
        fields = await client.get("/fields")
        unknown = await client.get("/nowhere")
        wrong = await client.delete("/form")
    assert throttled.status_code == 429
    assert throttled.json() == {"detail": "しばらくお待ちください。", "code": "throttled"}
    assert throttled.headers["retry-after"] == "7"
    assert fields.status_code == 422
    assert fields.json() == {"detail": "入力内容に誤りがあります。", "errors": {"use_date": "利用日が過ぎています。"}}
    assert (unknown.status_code, unknown.json()) == (404, {"detail": HTTP_MESSAGES[404]})
    assert (wrong.status_code, wrong.json()) == (405, {"detail": HTTP_MESSAGES[405]})
    assert wrong.headers["allow"] == "POST"

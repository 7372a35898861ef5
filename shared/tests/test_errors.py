"""Validation errors answer 422 with a Japanese message per field, all fields at once."""

from __future__ import annotations

import datetime as dt

import httpx
from fastapi import FastAPI
from pydantic import BaseModel, EmailStr, Field

from isseimail_shared.errors import install_validation_handler


class Form(BaseModel):
    email: EmailStr
    name: str = Field(max_length=5)
    day: dt.date
    count: int
    note: str = Field(min_length=1)


def make_app() -> FastAPI:
    app = FastAPI()
    install_validation_handler(app)

    @app.post("/form")
    async def form(body: Form) -> dict[str, str]:
        return {"ok": "yes"}

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

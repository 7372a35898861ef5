"""Reading HTML form posts: the CSRF check first, then plain strings (never a 500 for odd input)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from isseimail_gateway.settings import GatewaySettings
from isseimail_gateway.web import csrf
from isseimail_gateway.web.render import WebError
from isseimail_shared.app import registered

BAD_FORM = "送信された内容を読み取れませんでした。画面を開き直してから操作してください。"
MAX_FIELD = 20_000  # longer than any field's own limit, so the API still names the field that is too long


async def read_form(request: Request, max_files: int = 5) -> FormData:
    """The posted form, CSRF-checked. Oversized or garbled posts are a 400 page, not a crash."""
    try:
        form = await request.form(max_files=max_files + 1, max_fields=50)
    except Exception as exc:  # starlette raises several kinds for a malformed multipart body
        raise WebError(400, BAD_FORM) from exc
    csrf.verify(request, form.get(csrf.CSRF_FIELD))
    return form


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    return value[:MAX_FIELD]


def files(form: FormData, name: str) -> list[UploadFile]:
    return [f for f in form.getlist(name) if isinstance(f, UploadFile) and f.filename]


def today(request: Request) -> str:
    zone = ZoneInfo(registered(request, GatewaySettings).timezone)
    return dt.datetime.now(zone).date().isoformat()


def pick(data: Any, *keys: str, default: Any = None) -> Any:
    """The first present key of an API answer (tolerates `id` vs `list_id` style differences)."""
    if isinstance(data, dict):
        for key in keys:
            if key in data and data[key] is not None:
                return data[key]
    return default

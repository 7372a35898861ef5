"""Read a draft form (multipart or urlencoded) with a hard cap on its size, before anything is parsed.

Starlette's parser alone would spool an arbitrarily large upload to disk; counting the bytes as they
arrive stops a hostile client early. The cap leaves room above the 2 MB attachment limit so that a
slightly-too-large upload still gets the precise per-field message from the form rules.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from fastapi import Request
from python_multipart.exceptions import FormParserError
from starlette.datastructures import UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

from isseimail_composer.form import MAX_ATTACHMENT_BYTES
from isseimail_shared.errors import ApiError

MAX_REQUEST_BYTES = MAX_ATTACHMENT_BYTES + 512 * 1024
MAX_FIELD_BYTES = 256 * 1024
TOO_LARGE = "送信内容が大きすぎます。添付ファイルは合計2MB（2,097,152バイト）までです。"
BAD_FORM = "フォームの送信形式が正しくありません。"
TEXT_FIELDS = ("list_id", "sender_email", "sender_name", "subject", "body", "charset", "clear_attachments")


class TooLarge(Exception):
    pass


@dataclass
class DraftForm:
    values: dict[str, str] = field(default_factory=dict)
    files: list[tuple[str, bytes]] = field(default_factory=list)


def _too_large() -> ApiError:
    return ApiError(413, TOO_LARGE, {"attachments": TOO_LARGE})


async def read_draft_form(request: Request) -> DraftForm:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise _too_large()
    content_type = request.headers.get("content-type", "").lower()

    async def limited() -> AsyncGenerator[bytes, None]:
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > MAX_REQUEST_BYTES:
                raise TooLarge
            yield chunk

    try:
        if content_type.startswith("multipart/form-data"):
            parser: MultiPartParser | FormParser = MultiPartParser(
                request.headers, limited(), max_files=20, max_fields=50, max_part_size=MAX_FIELD_BYTES
            )
        elif content_type.startswith("application/x-www-form-urlencoded"):
            parser = FormParser(request.headers, limited(), max_fields=50, max_part_size=MAX_FIELD_BYTES)
        else:
            raise ApiError(415, "multipart/form-data で送信してください。")
        form = await parser.parse()
    except TooLarge:
        raise _too_large() from None
    except MultiPartException as exc:
        detail = TOO_LARGE if "size" in exc.message.lower() else BAD_FORM
        raise ApiError(413 if detail == TOO_LARGE else 400, detail) from None
    except FormParserError:  # python-multipart's own refusals, e.g. a boundary over 256 characters
        raise ApiError(400, BAD_FORM) from None
    result = DraftForm()
    try:
        for key in TEXT_FIELDS:
            value = form.get(key)
            if isinstance(value, str):
                result.values[key] = value
        for item in form.getlist("attachments"):
            if not isinstance(item, UploadFile):
                continue
            data = await item.read()
            if not item.filename and not data:
                continue  # a browser's empty file input
            result.files.append((item.filename or "", data))
    finally:
        await form.close()
    return result

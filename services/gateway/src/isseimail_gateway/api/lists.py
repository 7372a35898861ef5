"""Gateway JSON API: recipient lists (under /api/v1).

The upload is parsed as a multipart stream and only the `file` part's bytes are passed on, chunk by
chunk, to the list-validator: the gateway never holds the file, and stops (413) the moment it passes the
list-validator's size limit, so a 1 GB stream costs neither memory nor disk here.
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from python_multipart.multipart import MultipartParser, parse_options_header

from isseimail_gateway.session import PassSession, PassSessionDep, UpstreamsDep, pass_headers
from isseimail_gateway.upstream import UNAVAILABLE, Upstreams, parsed, relayed
from isseimail_shared.app import registered
from isseimail_shared.contracts import list_validator as contract
from isseimail_shared.contracts.forms import multipart_body
from isseimail_shared.errors import ApiError

router = APIRouter(prefix="/api/v1", tags=["lists"])

NO_FILE = "送信先CSVファイルを選択してください。"
NOT_MULTIPART = "ファイルは multipart/form-data の file 項目で送信してください。"
TOO_LARGE = "ファイルが大きすぎます（最大{mb:g}MB）。"
NOT_FOUND = "送信先リストが見つかりません。"
MAX_BOUNDARY = 70  # RFC 2046: a multipart boundary has 1 to 70 characters (the parser refuses over 256)
BAD_BOUNDARY = "multipart/form-data の boundary が長すぎます（70文字まで）。ファイルを選び直して送信してください。"
MAX_PREAMBLE = 64 * 1024  # form fields and part headers before the file: small by nature
MULTIPART_OVERHEAD = 64 * 1024
LIMITS_TTL = 60.0

STATUS_TEXT = {"invalid": "送信不可", "unverified": "確認できず"}
CSV_HEADER = ["行", "メールアドレス", "状態", "理由コード", "理由"]


class ListAccepted(BaseModel):
    list_id: uuid.UUID
    status: str
    encoding: str  # the codec read: cp932, utf-8, utf-8-sig, utf-16
    encoding_label: str  # the same for people: "Shift_JIS (CP932)", "UTF-8 (BOM付き)", ...
    has_header: bool
    rows: int


class BadRow(BaseModel):
    row: int
    address: str
    status: str
    code: str
    message: str


class ListStatus(BaseModel):
    list_id: uuid.UUID
    status: str  # validating, valid, invalid
    filename: str
    encoding: str
    encoding_label: str
    rows: int
    checked: int
    ok: int
    invalid: int
    unverified: int
    bad_rows: list[BadRow]


class ListUploadForm(BaseModel):
    """The upload's multipart body (read as a stream, so declared for the OpenAPI document only)."""

    file: bytes = Field(description="送信先CSV（メールアドレス, 会社名, 部署名1, 部署名2, ご担当者名）")


class _TooLarge(Exception):
    pass


class _FilePart:
    """Pulls the `file` part out of a multipart request stream, one chunk at a time."""

    def __init__(self, request: Request, limit: int) -> None:
        self._request = request
        self._limit = limit
        self._source = request.stream().__aiter__()
        self._pending: list[bytes] = []
        self._header_field = b""
        self._headers: dict[bytes, bytes] = {}
        self._in_file = False
        self._file_done = False
        self._file_seen = False
        self._preamble = 0
        self.size = 0
        self.filename = ""
        content_type, params = parse_options_header(request.headers.get("content-type", ""))
        boundary = params.get(b"boundary")
        if content_type != b"multipart/form-data" or not boundary:
            raise ApiError(422, NOT_MULTIPART)
        if len(boundary) > MAX_BOUNDARY:
            raise ApiError(422, BAD_BOUNDARY)
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
            },
        )

    # --- parser callbacks ---------------------------------------------------------------------------
    def _on_part_begin(self) -> None:
        self._headers = {}
        self._header_field = b""

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field = data[start:end].lower()

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._headers[self._header_field] = self._headers.get(self._header_field, b"") + data[start:end]

    def _on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if params.get(b"name") == b"file" and not self._file_seen:
            self._in_file = self._file_seen = True
            name = params.get(b"filename", b"").decode("utf-8", "replace")
            self.filename = name.replace("\\", "/").rsplit("/", 1)[-1][:255]  # some browsers send a full path

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.size += end - start
            if self.size > self._limit:
                raise _TooLarge
            self._pending.append(data[start:end])
        else:
            self._preamble += end - start
            if self._preamble > MAX_PREAMBLE:
                raise ApiError(422, NOT_MULTIPART)

    def _on_part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            self._file_done = True

    # --- reading ------------------------------------------------------------------------------------
    async def _feed(self) -> bool:
        try:
            chunk = await self._source.__anext__()
        except StopAsyncIteration:
            try:
                self._parser.finalize()
            except Exception:  # a body that ends inside a part
                raise ApiError(422, NOT_MULTIPART) from None
            return False
        try:
            self._parser.write(chunk)
        except (_TooLarge, ApiError):
            raise
        except Exception:  # python-multipart's MultipartParseError and friends
            raise ApiError(422, NOT_MULTIPART) from None
        return True

    async def open(self) -> None:
        """Read until the file part has begun; 422 when the request has none."""
        while not self._file_seen:
            if not await self._feed():
                raise ApiError(422, NO_FILE, {"file": NO_FILE})

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            if self._pending:
                data = b"".join(self._pending)
                self._pending.clear()
                yield data
            if self._file_done or not await self._feed():
                if self._pending:
                    yield b"".join(self._pending)
                return


@dataclass
class ListLimit:
    """The list-validator's byte limit as last asked (it owns the setting), reused until `until`."""

    max_bytes: int = 0
    until: float = 0.0  # time.monotonic()


async def _limits(request: Request, upstreams: Upstreams) -> int:
    """The list-validator's byte limit, cached for a minute."""
    cached = registered(request, ListLimit)
    if cached.until > time.monotonic():
        return cached.max_bytes
    response = await upstreams.call("list_validator", "GET", "/internal/lists/limits")
    cached.max_bytes = parsed(response, contract.ListLimits).max_bytes
    cached.until = time.monotonic() + LIMITS_TTL
    return cached.max_bytes


@router.post(
    "/lists",
    status_code=202,
    response_model=ListAccepted,
    responses={
        401: {"description": "未ログインまたは失効"},
        413: {"description": "ファイルが大きすぎる"},
        422: {"description": "CSVとして読めない・空・件数超過など（detail に理由）"},
    },
    # The body is parsed as a stream (never buffered), so FastAPI cannot infer it: declare it here.
    openapi_extra=multipart_body(ListUploadForm),
)
async def upload_list(request: Request, session: PassSessionDep, upstreams: UpstreamsDep) -> Any:
    """Upload the recipient CSV (multipart field `file`); 202 with the list id while its addresses are checked."""
    limit = await _limits(request, upstreams)
    too_large = ApiError(413, TOO_LARGE.format(mb=limit / 1024 / 1024))
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + MULTIPART_OVERHEAD:
        raise too_large
    try:
        part = _FilePart(request, limit)
        await part.open()
        headers = {**pass_headers(session), "X-Isseimail-Filename": quote(part.filename)}
        response = await upstreams.lists.http.post("/internal/lists", content=part.chunks(), headers=headers)
    except _TooLarge:
        raise too_large from None
    except httpx.HTTPError as exc:
        raise ApiError(503, UNAVAILABLE) from exc
    if response.status_code != 202:
        raise relayed(response)  # the list-validator's refusal as it is ({"detail", "errors", "code"})
    accepted = parsed(response, contract.ListAccepted, ok=202)
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202)


def _list_id(raw: str) -> str:
    """A list id is a UUID; anything else is "not found" here, before it reaches an upstream URL (a CR/LF or
    NUL in the path would otherwise fail the call and show the user 503 instead of 404)."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ApiError(404, NOT_FOUND) from None


async def _owned_list(upstreams: Upstreams, session: PassSession, list_id: str) -> contract.ListSummary:
    list_id = _list_id(list_id)
    response = await upstreams.call(
        "list_validator", "GET", f"/internal/lists/{list_id}", headers=pass_headers(session)
    )
    if response.status_code in (404, 422):
        raise ApiError(404, NOT_FOUND)
    found = parsed(response, contract.ListSummary)
    if found.pass_id != session.pass_id:  # the list-validator checks too; a list is its pass's alone
        raise ApiError(404, NOT_FOUND)
    return found


@router.get("/lists/{list_id}", response_model=ListStatus, responses={404: {"description": NOT_FOUND}})
async def get_list(list_id: str, session: PassSessionDep, upstreams: UpstreamsDep) -> Any:
    """Status (validating, valid, invalid), counts, and for a checked list its bad rows (row, address, reason)."""
    return await _owned_list(upstreams, session, list_id)


def neutralise(cell: str) -> str:
    """Spreadsheets run cells that start with = + - @ (or tab/CR) as formulas: make them plain text."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def _csv_line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([neutralise(c) for c in cells])
    return out.getvalue()


@router.get(
    "/lists/{list_id}/errors.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, 404: {"description": NOT_FOUND}},
)
async def list_errors_csv(list_id: str, session: PassSessionDep, upstreams: UpstreamsDep) -> StreamingResponse:
    """The bad rows as a CSV Excel opens directly (UTF-8 with BOM, CRLF, formula cells neutralised)."""
    list_id = _list_id(list_id)
    await _owned_list(upstreams, session, list_id)
    client = upstreams.lists.http
    try:
        upstream = await client.send(
            client.build_request("GET", f"/internal/lists/{list_id}/errors", headers=pass_headers(session)),
            stream=True,
        )
    except httpx.HTTPError as exc:
        raise ApiError(503, UNAVAILABLE) from exc
    if upstream.status_code != 200:
        await upstream.aclose()
        raise ApiError(
            404 if upstream.status_code == 404 else 503, NOT_FOUND if upstream.status_code == 404 else UNAVAILABLE
        )

    async def body() -> AsyncIterator[bytes]:
        try:
            yield ("\ufeff" + _csv_line(CSV_HEADER)).encode()
            async for line in upstream.aiter_lines():
                if not line.strip():
                    continue
                r = contract.BadRow.model_validate_json(line)
                cells = [str(r.row), r.address, STATUS_TEXT.get(r.status, r.status), r.code, r.message]
                yield _csv_line(cells).encode()
        finally:
            await upstream.aclose()

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="errors-{list_id}.csv"'},
    )

"""The list-validator's internal HTTP API (docs/internal-api.md): upload, status, bad rows, recipient rows."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import unquote

import asyncpg
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from isseimail_list_validator import lists, reasons
from isseimail_list_validator.address_check import AddressChecker
from isseimail_list_validator.csv_reader import ENCODING_LABELS, CsvRefused
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_list_validator.upload import BodyTooLarge, spooled_body, store_csv
from isseimail_list_validator.work_messages import TaskPublisher
from isseimail_shared.app import Db, held
from isseimail_shared.contracts.list_validator import ListAccepted, ListLimits, ListSummary
from isseimail_shared.errors import ApiError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/internal/lists", tags=["lists"])

NOT_FOUND = "送信先リストが見つかりません。"
TOO_LARGE = "ファイルが大きすぎます（最大{mb:g}MB）。"
NOT_READY = "送信先リストの確認が完了していないか、誤りのある行があります。"


@dataclass(frozen=True)
class Uploads:
    """What uploads share in one replica: the row checker, slots bounding parse-and-store, the publisher of
    domain checks and the publishes in flight (an answered upload publishes in the background)."""

    checker: AddressChecker
    slots: asyncio.Semaphore
    publisher: TaskPublisher
    publishing: set[asyncio.Task[None]] = field(default_factory=set)

    async def close(self) -> None:
        """Let uploads that were answered finish publishing their domain checks."""
        if self.publishing:
            await asyncio.wait(self.publishing, timeout=10)


SettingsDep = Annotated[ListValidatorSettings, Depends(held(ListValidatorSettings))]
UploadsDep = Annotated[Uploads, Depends(held(Uploads))]


def _too_large(settings: ListValidatorSettings) -> ApiError:
    return ApiError(413, TOO_LARGE.format(mb=settings.list_max_bytes / 1024 / 1024))


@router.get("/limits")
@router.get("/limits")
async def limits(s: SettingsDep) -> ListLimits:
    """What the gateway enforces while it streams an upload here."""
    return ListLimits(max_bytes=s.list_max_bytes, max_rows=s.list_max_rows)


@router.post("", status_code=202)
async def upload(
    request: Request,
    s: SettingsDep,
    uploads: UploadsDep,
    pool: Db,
    x_isseimail_pass_id: Annotated[int, Header(ge=1)],
    x_isseimail_user_id: Annotated[str, Header(max_length=64)] = "",
    x_isseimail_filename: Annotated[str, Header(max_length=2000)] = "",
) -> ListAccepted:
    """The CSV as the raw request body; 202 with the list id once its rows are stored and checks published."""

    def new(encoding: str, has_header: bool) -> lists.NewList:
        return lists.NewList(
            list_id=uuid.uuid4(),
            pass_id=x_isseimail_pass_id,
            user_id=x_isseimail_user_id,
            filename=unquote(x_isseimail_filename)[:255],
            encoding=encoding,
            has_header=has_header,
            unverified_policy=s.unverified_policy,
        )

    try:
        # A slot per parse-and-store bounds the database and CPU work however many uploads arrive at once
        # (the body is spooled first, outside the slot, so that a slow client does not hold one).
        length = request.headers.get("content-length", "")
        async with (
            spooled_body(request.stream(), length, s.list_max_bytes) as body,
            uploads.slots,
        ):
            stored = await store_csv(
                pool,
                uploads.checker,
                s,
                body,
                new,
                lambda list_id, domains: _start_publishing(uploads, list_id, domains),
            )
    except BodyTooLarge:
        raise _too_large(s) from None
    except CsvRefused as exc:
        raise ApiError(422, exc.message, {"file": exc.message}, code=exc.code) from None
    return ListAccepted(
        list_id=stored.list_id,
        status=stored.status,
        encoding=stored.encoding,
        encoding_label=ENCODING_LABELS.get(stored.encoding, stored.encoding),
        has_header=stored.has_header,
        rows=stored.rows,
        domains=stored.domains,
    )


def _start_publishing(uploads: Uploads, list_id: uuid.UUID, domains: list[str]) -> None:
    """Publish in the background: if this process dies meanwhile, the stale-list sweeper republishes."""
    task = asyncio.create_task(_publish(uploads.publisher, list_id, domains))
    uploads.publishing.add(task)
    task.add_done_callback(uploads.publishing.discard)


async def _publish(publisher: TaskPublisher, list_id: uuid.UUID, domains: list[str]) -> None:
    started = time.perf_counter()
    try:
        await publisher.publish(list_id, domains)
    except Exception:
        log.exception("publishing domain checks of list %s failed; the sweeper will republish them", list_id)
        return
    log.info("list %s: %d domain checks published in %.2fs", list_id, len(domains), time.perf_counter() - started)


# Every read names the pass it acts for (the gateway: the logged-in pass; the composer: the draft's pass); a
# list of another pass is "not found", so no caller can read rows it does not own by knowing a list id.
ActingPass = Annotated[int, Header(ge=1, le=2**62)]


async def owned_list(pool: asyncpg.Pool, list_id: uuid.UUID, pass_id: int) -> dict[str, Any]:
    found = await lists.summary(pool, list_id)
    if found is None or found["pass_id"] != pass_id:
        raise ApiError(404, NOT_FOUND)
    return found


def _bad_row(record: asyncpg.Record) -> dict[str, Any]:
    code = record["reason"]
    return {
        "row": record["row_no"],
        "address": record["address"],
        "status": record["status"],
        "code": code,
        "message": reasons.message(code, duplicate_of=record["duplicate_of"]),
    }


@router.get("/{list_id}")
async def get_list(
    list_id: uuid.UUID,
    pool: Db,
    x_isseimail_pass_id: ActingPass,
    bad_rows: Annotated[int, Query(ge=0, le=10_000)] = 1000,
) -> ListSummary:
    """Status and counts; for a finished list the first `bad_rows` bad rows (all of them: /errors)."""
    found = await owned_list(pool, list_id, x_isseimail_pass_id)
    if found["status"] != "validating" and bad_rows:
        records = await pool.fetch(f"{lists.BAD_ROWS_SQL} LIMIT $2", list_id, bad_rows)
        found["bad_rows"] = [_bad_row(r) for r in records]
    return ListSummary.model_validate(found)


async def _ndjson(pool: asyncpg.Pool, sql: str, list_id: uuid.UUID, shape: Any) -> AsyncIterator[bytes]:
    """NDJSON lines of the contract's line models (BadRow, ListRow), written as plain dicts of the same fields:
    a million rows through pydantic would cost seconds (measured 3x json.dumps of a dict)."""
    async with pool.acquire() as conn, conn.transaction():
        lines: list[str] = []
        async for record in conn.cursor(sql, list_id, prefetch=2000):
            lines.append(json.dumps(shape(record), ensure_ascii=False))
            if len(lines) >= 1000:
                yield ("\n".join(lines) + "\n").encode()
                lines.clear()
        if lines:
            yield ("\n".join(lines) + "\n").encode()


@router.get("/{list_id}/errors")
async def list_errors(list_id: uuid.UUID, pool: Db, x_isseimail_pass_id: ActingPass) -> StreamingResponse:
    """Every invalid or unverified row, NDJSON in row order."""
    await owned_list(pool, list_id, x_isseimail_pass_id)
    return StreamingResponse(_ndjson(pool, lists.BAD_ROWS_SQL, list_id, _bad_row), media_type="application/x-ndjson")


def _recipient(record: asyncpg.Record) -> dict[str, Any]:
    return {
        "row": record["row_no"],
        "email": record["email"],
        "company": record["company"],
        "department1": record["department1"],
        "department2": record["department2"],
        "contact": record["contact"],
    }


@router.get("/{list_id}/rows")
async def list_rows(list_id: uuid.UUID, pool: Db, x_isseimail_pass_id: ActingPass) -> StreamingResponse:
    """The recipients of a valid list, NDJSON in CSV order; 409 while validating or when invalid."""
    found = await owned_list(pool, list_id, x_isseimail_pass_id)
    if found["status"] != "valid":
        raise ApiError(409, NOT_READY)
    return StreamingResponse(_ndjson(pool, lists.OK_ROWS_SQL, list_id, _recipient), media_type="application/x-ndjson")

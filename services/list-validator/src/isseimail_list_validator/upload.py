"""A CSV upload stored in constant memory, however many rows (up to ISSEIMAIL_LIST_MAX_ROWS, 1,000,000).

The body is spooled to a temporary file (memory up to SPOOL_MEMORY, then disk), sniffed in one pass
(encoding, delimiter), then read a batch of rows at a time: each batch is checked (address syntax,
required cells), asked against the suppression list, its new domains registered and their checks
published, and its rows COPYed. All rows go in one transaction: a file refused half-way (too many rows, a
malformed record) leaves nothing, and the list row opened for the domain checks is deleted again.
Duplicates are found in the database when the rows are in (`lists.RowWriter`). What the process holds is
one batch being COPYed and the next one being parsed and checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import asyncpg

from isseimail_list_validator import lists
from isseimail_list_validator.address_check import AddressChecker
from isseimail_list_validator.csv_reader import CsvRow, CsvStream, open_csv
from isseimail_list_validator.rows import PreparedRow, apply_suppressions, pending_domains, prepare_rows
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_list_validator.suppression import check_suppressed, suppression_client
from isseimail_shared.clients.notifier import NotifierClient

log = logging.getLogger(__name__)

SPOOL_MEMORY = 1 << 20  # an upload up to this size stays in memory; a larger one goes to a temporary file
BATCH_ROWS = 10_000  # rows checked, suppression-checked and COPYed at a time (~10 MB held per batch)


class BodyTooLarge(Exception):
    """The request body passed the byte limit."""


@contextlib.asynccontextmanager
async def spooled_body(chunks: AsyncIterator[bytes], length: str, limit: int) -> AsyncIterator[BinaryIO]:
    """The request body in a temporary file (closed and removed afterwards); BodyTooLarge as soon as it
    passes `limit` bytes, so a 1 GB stream is never read whole."""
    if length.isdigit() and int(length) > limit:
        raise BodyTooLarge
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY) as spool:
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            spool.write(chunk)
        spool.seek(0)
        yield spool  # type: ignore[misc]  # SpooledTemporaryFile is a BinaryIO in all but its annotation


@dataclass(frozen=True)
class Stored:
    list_id: uuid.UUID
    encoding: str
    has_header: bool
    rows: int
    domains: int
    status: str


class _Suppression:
    """The suppression list asked a batch at a time; once it could not be read, the rest of the list is
    marked unverifiable without asking again (a notifier that is down would cost a timeout per batch)."""

    def __init__(self, settings: ListValidatorSettings, client: NotifierClient) -> None:
        self._settings = settings
        self._client = client
        self._available = True

    async def apply(self, rows: list[PreparedRow]) -> None:
        addresses = [r.email for r in rows if r.status == "pending" and r.email]
        suppressed: dict[str, str] | None = {}
        if addresses and self._available:
            s = self._settings
            suppressed = await check_suppressed(
                s.notifier_url,
                addresses,
                timeout=s.suppression_timeout_seconds,
                tokens=s.internal_tokens,
                client=self._client,
            )
            self._available = suppressed is not None
        elif not self._available:
            suppressed = None
        apply_suppressions(rows, suppressed)


async def store_csv(
    pool: asyncpg.Pool,
    checker: AddressChecker,
    settings: ListValidatorSettings,
    file: BinaryIO,
    new: Callable[[str, bool], lists.NewList],
    publish: Callable[[uuid.UUID, list[str]], None],
) -> Stored:
    """Read, check and store an uploaded CSV; raises CsvRefused (nothing stored) for an unusable file.

    `new(encoding, has_header)` names the list; `publish(list_id, domains)` starts the checks of domains
    that are registered (with the SMTP probe on, which reads a domain's rows, only once the rows are in).
    """
    s = settings
    started = time.perf_counter()
    stream = await asyncio.to_thread(open_csv, file, max_rows=s.list_max_rows, max_columns=s.list_max_columns)
    batches = _prepared(stream, checker, s.list_max_cell_chars)
    first = await asyncio.to_thread(next, batches, None)  # the first rows: header known, file not empty
    assert first is not None  # the reader refuses a file without rows
    sniffed = time.perf_counter() - started
    opened = new(stream.encoding, stream.has_header)
    list_id = opened.list_id
    await lists.open_list(pool, opened, 0, [])
    spent = dict.fromkeys(("parse", "suppression", "domains", "copy", "waiting for a batch", "commit"), 0.0)
    domains = 0

    async def checked(batch: list[PreparedRow] | None, suppression: _Suppression) -> list[PreparedRow] | None:
        """A batch parsed (unless given), asked against the suppression list, its new domains registered
        and (without the SMTP probe) their checks published."""
        nonlocal domains
        mark = time.perf_counter()
        if batch is None:
            batch = await asyncio.to_thread(next, batches, None)
            if batch is None:
                return None
            mark = _spent(spent, "parse", mark)
        await suppression.apply(batch)
        mark = _spent(spent, "suppression", mark)
        fresh = await lists.add_domains(pool, list_id, pending_domains(batch))
        domains += len(fresh)
        if fresh and not s.smtp_probe:
            publish(list_id, fresh)
        _spent(spent, "domains", mark)
        return batch

    try:
        async with (
            suppression_client(s.notifier_url, s.internal_tokens, s.suppression_timeout_seconds) as client,
            lists.row_writer(pool, list_id) as writer,
        ):
            suppression = _Suppression(s, client)
            upcoming = asyncio.ensure_future(checked(first, suppression))
            try:
                while True:
                    mark = time.perf_counter()
                    batch = await upcoming
                    mark = _spent(spent, "waiting for a batch", mark)
                    if batch is None:
                        break
                    # The next batch is parsed and checked (the notifier, the domains) while this one is
                    # COPYed: at most two batches are held.
                    upcoming = asyncio.ensure_future(checked(None, suppression))
                    await writer.add(batch)
                    _spent(spent, "copy", mark)
            finally:
                if not upcoming.done():  # the COPY failed: stop the next batch before its client closes
                    upcoming.cancel()
                    with contextlib.suppress(BaseException):
                        await upcoming
            mark = time.perf_counter()
        _spent(spent, "commit", mark)  # duplicates, counts, finalising
        if s.smtp_probe and domains:
            publish(list_id, await lists.unanswered_domains(pool, list_id))
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.shield(lists.discard_list(pool, list_id))
        raise
    status = await lists.status(pool, list_id)
    log.info(
        "list %s stored: %d rows, %d domains, %s encoding; total %.2fs: sniff and first batch %.2fs, %s",
        list_id,
        writer.rows,
        domains,
        stream.encoding,
        time.perf_counter() - started,
        sniffed,
        ", ".join(f"{k} {v:.2f}s" for k, v in spent.items()),
    )
    return Stored(list_id, stream.encoding, stream.has_header, writer.rows, domains, status or "validating")


def _spent(spent: dict[str, float], what: str, since: float) -> float:
    now = time.perf_counter()
    spent[what] = spent.get(what, 0.0) + now - since
    return now


def _prepared(stream: CsvStream, checker: AddressChecker, max_cell_chars: int) -> Iterator[list[PreparedRow]]:
    batch: list[CsvRow]
    for batch in stream.batches(BATCH_ROWS):
        yield prepare_rows(batch, checker, max_cell_chars=max_cell_chars, controls=stream.has_controls)

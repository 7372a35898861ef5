"""Lists in the database: creation, per-domain results, finalisation (with list.validated via the outbox)."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from isseimail_list_validator.csv_reader import ENCODING_LABELS
from isseimail_list_validator.rows import ROW_COLUMNS, PreparedRow, pending_domains
from isseimail_shared.db import Conn
from isseimail_shared.events import ListValidated
from isseimail_shared.outbox import add_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewList:
    list_id: uuid.UUID
    pass_id: int
    user_id: str
    filename: str
    encoding: str
    has_header: bool
    unverified_policy: str


@dataclass(frozen=True)
class DomainOutcome:
    list_id: uuid.UUID
    domain: str
    code: str
    detail: str = ""
    probes: Sequence[tuple[int, str]] = ()  # (row, probe code) when the SMTP probe ran


async def create_list(pool: asyncpg.Pool, new: NewList, rows: list[PreparedRow]) -> list[str]:
    """Store a list whose rows are all at hand (tests, small lists); returns the domains still to check."""
    domains = pending_domains(rows)
    await open_list(pool, new, len(rows), domains)
    await store_rows(pool, new.list_id, rows)
    return domains


async def open_list(pool: asyncpg.Pool, new: NewList, row_count: int, domains: Sequence[str]) -> None:
    """First half of storing a large list: the list and its domains, so that the domain checks can start
    while the rows are still being stored (`store_rows`). One domain more is counted as pending until
    the rows are in: no worker can finish the list before them."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO lists (list_id, pass_id, user_id, filename, encoding, has_header, status, row_count,"
            " domain_count, domains_pending, unverified_policy) VALUES ($1, $2, $3, $4, $5, $6, 'validating',"
            " $7, $8, $8 + 1, $9)",
            new.list_id,
            new.pass_id,
            new.user_id,
            new.filename,
            new.encoding,
            new.has_header,
            row_count,
            len(domains),
            new.unverified_policy,
        )
        await conn.copy_records_to_table(
            "list_domains", records=[(new.list_id, d) for d in domains], columns=["list_id", "domain"]
        )


async def add_domains(pool: asyncpg.Pool, list_id: uuid.UUID, domains: Sequence[str]) -> list[str]:
    """Register domains of an opened list as its rows arrive; returns those new to it (to be checked).
    Committed before their checks are published: a result finds its domain row."""
    if not domains:
        return []
    records = await pool.fetch(
        "WITH new AS (INSERT INTO list_domains (list_id, domain) SELECT $1, d FROM unnest($2::text[]) AS d"
        "  ON CONFLICT DO NOTHING RETURNING domain),"
        " counted AS (UPDATE lists SET domain_count = domain_count + (SELECT count(*) FROM new),"
        "  domains_pending = domains_pending + (SELECT count(*) FROM new) WHERE list_id = $1)"
        " SELECT domain FROM new ORDER BY domain",
        list_id,
        list(domains),
    )
    return [r["domain"] for r in records]


async def unanswered_domains(pool: asyncpg.Pool, list_id: uuid.UUID) -> list[str]:
    records = await pool.fetch(
        "SELECT domain FROM list_domains WHERE list_id = $1 AND status = 'pending' ORDER BY domain", list_id
    )
    return [r["domain"] for r in records]


class RowWriter:
    """The rows of an opened list, COPYed a batch at a time in one transaction (`row_writer`)."""

    def __init__(self, conn: Conn, list_id: uuid.UUID) -> None:
        self._conn = conn
        self._list_id = list_id
        self.rows = 0
        self.finished = False  # whether committing the rows finalised the list

    async def add(self, rows: Sequence[PreparedRow]) -> None:
        list_id = self._list_id
        await self._conn.copy_records_to_table(
            "list_rows", records=[(list_id, *r.record()) for r in rows], columns=["list_id", *ROW_COLUMNS]
        )
        self.rows += len(rows)

    async def _finish(self) -> None:
        """Duplicates marked, the row count set, and the rows' pending "domain" released: the list is
        finalised here if every domain was answered meanwhile."""
        conn, list_id = self._conn, self._list_id
        # Rows that took part in the duplicate check: every row still to be sent, and the suppressed ones
        # (they were checked before the suppression list was asked). The first of each address stays.
        await conn.execute("SET LOCAL work_mem = '64MB'")  # the sort of a million keys stays in memory
        await conn.execute(
            "UPDATE list_rows r SET status = 'invalid', reason = 'duplicate', duplicate_of = d.first"
            " FROM (SELECT row_no, first_value(row_no) OVER"
            "  (PARTITION BY coalesce(dedup_key, email) ORDER BY row_no) AS first"
            "  FROM list_rows WHERE list_id = $1 AND email IS NOT NULL"
            "  AND (status <> 'invalid' OR reason = 'suppressed')) AS d"
            " WHERE r.list_id = $1 AND r.row_no = d.row_no AND d.first <> d.row_no",
            list_id,
        )
        left = await conn.fetchval(
            "UPDATE lists SET row_count = $2, domains_pending = domains_pending - 1"
            " WHERE list_id = $1 AND status = 'validating' RETURNING domains_pending",
            list_id,
            self.rows,
        )
        if left == 0:
            await finalise(conn, list_id)
            self.finished = True


@contextlib.asynccontextmanager
async def row_writer(pool: asyncpg.Pool, list_id: uuid.UUID) -> AsyncIterator[RowWriter]:
    """Second half of storing a list (after `open_list`): its rows, committed together on leaving the
    block, or none of them. A list whose rows never arrive is deleted by `stale_lists`."""
    async with pool.acquire() as conn, conn.transaction():
        writer = RowWriter(conn, list_id)
        yield writer
        await writer._finish()


async def store_rows(pool: asyncpg.Pool, list_id: uuid.UUID, rows: list[PreparedRow]) -> bool:
    """All of an opened list's rows at once; returns whether the list was finalised."""
    async with row_writer(pool, list_id) as writer:
        await writer.add(rows)
    return writer.finished


async def discard_list(pool: asyncpg.Pool, list_id: uuid.UUID) -> None:
    """Remove a list whose upload failed half-way (its checks may still be answered: they find nothing)."""
    await pool.execute("DELETE FROM lists WHERE list_id = $1", list_id)


async def status(pool: asyncpg.Pool, list_id: uuid.UUID) -> str | None:
    value: str | None = await pool.fetchval("SELECT status FROM lists WHERE list_id = $1", list_id)
    return value


async def record_outcomes(pool: asyncpg.Pool, outcomes: Sequence[DomainOutcome]) -> list[uuid.UUID]:
    """Write a batch of domain results in one transaction; finalise lists whose last domain this was."""
    finished: list[uuid.UUID] = []
    async with pool.acquire() as conn, conn.transaction():
        updated = await conn.fetch(
            "UPDATE list_domains d SET status = r.status, detail = r.detail, checked_at = now()"
            " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS r(list_id, domain, status, detail)"
            " WHERE d.list_id = r.list_id AND d.domain = r.domain AND d.status = 'pending'"
            " RETURNING d.list_id, d.domain",
            [o.list_id for o in outcomes],
            [o.domain for o in outcomes],
            [o.code for o in outcomes],
            [o.detail[:500] for o in outcomes],
        )
        fresh = {(r["list_id"], r["domain"]) for r in updated}
        probes = [(o.list_id, row, code) for o in outcomes if (o.list_id, o.domain) in fresh for row, code in o.probes]
        if probes:
            await conn.executemany(
                "INSERT INTO list_probes (list_id, row_no, code) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", probes
            )
        per_list = Counter(r["list_id"] for r in updated)
        for list_id in sorted(per_list):  # a fixed lock order: no deadlock between workers
            left = await conn.fetchval(
                "UPDATE lists SET domains_pending = domains_pending - $2 WHERE list_id = $1 AND status = 'validating'"
                " RETURNING domains_pending",
                list_id,
                per_list[list_id],
            )
            if left == 0:
                await finalise(conn, list_id)
                finished.append(list_id)
    return finished


async def finalise(conn: Conn, list_id: uuid.UUID) -> None:
    """Every domain answered: rows of failed domains get their reason, the list its status; list.validated."""
    # Rows were stored as if their domain were fine; only the rows of failed domains change.
    await conn.execute(
        "UPDATE list_rows r SET"
        " status = CASE WHEN d.status = 'dns_unverified' THEN 'unverified' ELSE 'invalid' END,"
        " reason = d.status"
        " FROM list_domains d"
        " WHERE r.list_id = $1 AND d.list_id = $1 AND d.domain = r.domain AND d.status <> 'ok'"
        " AND r.status <> 'invalid'",
        list_id,
    )
    # SMTP probe answers refine rows whose domain was fine: a mailbox that does not exist beats
    # "suppression list unavailable"; catch-all only relabels a plain ok.
    await conn.execute(
        "UPDATE list_rows r SET"
        " status = CASE p.code WHEN 'mailbox_not_found' THEN 'invalid' WHEN 'smtp_unverified' THEN 'unverified'"
        "  ELSE r.status END,"
        " reason = CASE WHEN p.code = 'mailbox_not_found' THEN p.code"
        "  WHEN p.code = 'smtp_unverified' THEN p.code"
        "  WHEN p.code = 'ok_catch_all' AND r.status = 'ok' AND r.reason = 'ok' THEN p.code"
        "  ELSE r.reason END"
        " FROM list_probes p"
        " WHERE r.list_id = $1 AND p.list_id = $1 AND p.row_no = r.row_no AND p.code <> 'ok'"
        " AND (r.status = 'ok' OR r.reason = 'suppression_unavailable')",
        list_id,
    )
    counts = await conn.fetchrow(
        "SELECT count(*) AS rows, count(*) FILTER (WHERE status = 'ok') AS ok,"
        " count(*) FILTER (WHERE status = 'invalid') AS invalid,"
        " count(*) FILTER (WHERE status = 'unverified') AS unverified"
        " FROM list_rows WHERE list_id = $1",
        list_id,
    )
    assert counts is not None
    policy = await conn.fetchval("SELECT unverified_policy FROM lists WHERE list_id = $1", list_id)
    blocked = counts["invalid"] > 0 or (counts["unverified"] > 0 and policy == "block")
    status = "invalid" if blocked else "valid"
    await conn.execute(
        "UPDATE lists SET status = $2, domains_pending = 0, finished_at = now() WHERE list_id = $1", list_id, status
    )
    await add_event(
        conn,
        ListValidated(
            list_id=list_id,
            status=status,
            rows=counts["rows"],
            ok=counts["ok"],
            invalid=counts["invalid"],
            unverified=counts["unverified"],
        ),
    )


async def summary(pool: asyncpg.Pool, list_id: uuid.UUID) -> dict[str, Any] | None:
    head = await pool.fetchrow(
        "SELECT list_id, pass_id, user_id, filename, encoding, has_header, status, row_count, domain_count,"
        " domains_pending, created_at, finished_at FROM lists WHERE list_id = $1",
        list_id,
    )
    if head is None:
        return None
    if head["status"] == "validating":
        # A row is checked once its domain answered (or it was refused before any lookup).
        counts = await pool.fetchrow(
            "SELECT count(*) FILTER (WHERE done) AS checked,"
            " count(*) FILTER (WHERE done AND status = 'ok') AS ok,"
            " count(*) FILTER (WHERE done AND status = 'invalid') AS invalid,"
            " count(*) FILTER (WHERE done AND status = 'unverified') AS unverified"
            " FROM (SELECT r.status, (r.status = 'invalid' OR d.status IS DISTINCT FROM 'pending') AS done"
            "  FROM list_rows r LEFT JOIN list_domains d ON d.list_id = r.list_id AND d.domain = r.domain"
            "  WHERE r.list_id = $1) AS x",
            list_id,
        )
    else:
        counts = await pool.fetchrow(
            "SELECT count(*) AS checked, count(*) FILTER (WHERE status = 'ok') AS ok,"
            " count(*) FILTER (WHERE status = 'invalid') AS invalid,"
            " count(*) FILTER (WHERE status = 'unverified') AS unverified"
            " FROM list_rows WHERE list_id = $1",
            list_id,
        )
    assert counts is not None
    return {
        "list_id": str(head["list_id"]),
        "pass_id": head["pass_id"],
        "status": head["status"],
        "filename": head["filename"],
        "encoding": head["encoding"],
        "encoding_label": ENCODING_LABELS.get(head["encoding"], head["encoding"]),
        "has_header": head["has_header"],
        "rows": head["row_count"],
        "checked": counts["checked"],
        "ok": counts["ok"],
        "invalid": counts["invalid"],
        "unverified": counts["unverified"],
        "domains": head["domain_count"],
        "domains_pending": head["domains_pending"],
        "created_at": head["created_at"].isoformat(),
        "finished_at": head["finished_at"].isoformat() if head["finished_at"] else None,
    }


BAD_ROWS_SQL = (
    "SELECT row_no, address, status, reason, duplicate_of FROM list_rows"
    " WHERE list_id = $1 AND status IN ('invalid', 'unverified') ORDER BY row_no"
)
OK_ROWS_SQL = (
    "SELECT row_no, email, company, department1, department2, contact FROM list_rows"
    " WHERE list_id = $1 AND status IN ('ok', 'unverified') ORDER BY row_no"
)


ORPHAN_MINUTES = 15  # far longer than any upload takes to store its rows


async def stale_lists(pool: asyncpg.Pool, older_than_seconds: float) -> list[tuple[uuid.UUID, list[str]]]:
    """Lists still validating long after their checks went out, with their unanswered domains.

    A list with one more domain pending than unanswered, uploaded over `ORPHAN_MINUTES` ago, never got
    its rows (its upload died between `open_list` and `store_rows`; nobody saw its id): it is deleted.
    """
    async with pool.acquire() as conn, conn.transaction():
        ids = await conn.fetch(
            "UPDATE lists SET dispatched_at = now() WHERE list_id IN (SELECT list_id FROM lists"
            " WHERE status = 'validating' AND dispatched_at < now() - make_interval(secs => $1)"
            " ORDER BY dispatched_at LIMIT 20 FOR UPDATE SKIP LOCKED)"
            " RETURNING list_id, domains_pending, created_at < now() - make_interval(mins => $2) AS old",
            older_than_seconds,
            ORPHAN_MINUTES,
        )
        result = []
        for r in ids:
            domains = await conn.fetch(
                "SELECT domain FROM list_domains WHERE list_id = $1 AND status = 'pending'", r["list_id"]
            )
            if r["domains_pending"] > len(domains) and r["old"]:
                log.warning("list %s never got its rows (upload interrupted); deleting it", r["list_id"])
                await conn.execute("DELETE FROM lists WHERE list_id = $1", r["list_id"])
                continue
            result.append((r["list_id"], [d["domain"] for d in domains]))
    return result


async def delete_expired(pool: asyncpg.Pool, days: int) -> int:
    """Delete lists (rows, domain results) uploaded more than `days` ago; returns how many."""
    result = await pool.execute("DELETE FROM lists WHERE created_at < now() - make_interval(days => $1)", days)
    return int(result.split()[-1])


async def pending_rows_for_domain(pool: asyncpg.Pool, list_id: uuid.UUID, domain: str) -> list[tuple[int, str]]:
    rows = await pool.fetch(
        "SELECT row_no, email FROM list_rows WHERE list_id = $1 AND domain = $2 AND status <> 'invalid'",
        list_id,
        domain,
    )
    return [(r["row_no"], r["email"]) for r in rows]

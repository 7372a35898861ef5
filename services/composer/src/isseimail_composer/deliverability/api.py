"""Internal routes for domain readiness (docs/internal-api.md): reports and the audited send-time override."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query

from isseimail_composer.deliverability import overrides
from isseimail_composer.deliverability.gate import DomainGate, normalize_domain
from isseimail_shared.app import Db, held
from isseimail_shared.contracts.composer import (
    DomainReport,
    DomainReports,
    Override,
    OverrideRequest,
    OverrideWithdrawn,
    Report,
)
from isseimail_shared.errors import ApiError

router = APIRouter(prefix="/internal/domains", tags=["domains"])

BAD_DOMAIN = "ドメイン名が正しくありません。"
NOT_SENDER = "このドメインは送信ドメイン（ISSEIMAIL_SENDER_DOMAINS）に設定されていません。"
REASON_REQUIRED = "理由を入力してください。"


GateDep = Annotated[DomainGate, Depends(held(DomainGate))]


def _domain(raw: str) -> str:
    domain = normalize_domain(raw)
    if domain is None:
        raise ApiError(422, BAD_DOMAIN, {"domain": BAD_DOMAIN})
    return domain


def _sender_domain(raw: str, gate: DomainGate) -> str:
    domain = _domain(raw)
    if domain not in gate.sender_domains:
        raise ApiError(404, NOT_SENDER)
    return domain


async def _full(gate: DomainGate, pool: Db, domain: str, fresh: bool) -> DomainReport:
    report: Report = await gate.checker.report(domain, fresh=fresh)
    async with pool.acquire() as conn:
        report.override = await overrides.live(conn, domain)
        history = await overrides.history(conn, domain)
    return DomainReport(
        **report.model_dump(),
        sender_domain=domain in gate.sender_domains,
        refused=bool(report.blocking) and report.override is None and domain in gate.sender_domains,
        override_history=history,
    )


@router.get("")
async def all_domains(gate: GateDep, pool: Db, refresh: Annotated[bool, Query()] = False) -> DomainReports:
    """Every configured sender domain's report (in ISSEIMAIL_SENDER_DOMAINS order)."""
    domains = sorted(gate.sender_domains)
    return DomainReports(domains=[await _full(gate, pool, d, refresh) for d in domains])


@router.get("/{domain}/readiness")
async def readiness(domain: str, gate: GateDep, pool: Db, refresh: Annotated[bool, Query()] = False) -> DomainReport:
    """One domain's report (any domain may be checked; only sender domains are refused at send time)."""
    return await _full(gate, pool, _domain(domain), refresh)


@router.post("/{domain}/override", status_code=201)
async def override(domain: str, body: Annotated[OverrideRequest, Body()], gate: GateDep, pool: Db) -> Override:
    """Let the domain send despite failing DKIM/DMARC; 409 when an override is already in force."""
    name = _sender_domain(domain, gate)
    reason = body.reason.strip()
    if not reason:
        raise ApiError(422, REASON_REQUIRED, {"reason": REASON_REQUIRED})
    async with pool.acquire() as conn:
        created = await overrides.create(conn, name, body.actor.strip(), reason)
    if created is None:
        raise ApiError(409, "このドメインには既に送信許可（例外）が設定されています。")
    return created


@router.delete("/{domain}/override")
async def withdraw(domain: str, body: Annotated[OverrideRequest, Body()], gate: GateDep, pool: Db) -> OverrideWithdrawn:
    """Withdraw the override (kept in the audit trail with who and why); 404 when none is in force."""
    name = _sender_domain(domain, gate)
    reason = body.reason.strip()
    if not reason:
        raise ApiError(422, REASON_REQUIRED, {"reason": REASON_REQUIRED})
    async with pool.acquire() as conn:
        done = await overrides.withdraw(conn, name, body.actor.strip(), reason)
    if not done:
        raise ApiError(404, "このドメインに送信許可（例外）は設定されていません。")
    return OverrideWithdrawn(domain=name, withdrawn=True)

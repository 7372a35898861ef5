"""Gateway JSON API for sender-domain readiness (under /api/v1/admin/domains), administrators only:
each sender domain's DNS findings with the records to publish, and the audited send-time override."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from isseimail_gateway.api.passes import relay_error
from isseimail_gateway.session import AdminSessionDep, UpstreamsDep
from isseimail_gateway.upstream import parsed
from isseimail_shared.contracts.composer import DomainReport, DomainReports, Override, OverrideWithdrawn
from isseimail_shared.paths import internal_path

router = APIRouter(prefix="/domains")

# A host name: letters, digits, dots and hyphens, never a dot segment or anything that could leave the route.
DOMAIN = r"^[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?$"
DomainName = Annotated[str, Path(min_length=1, max_length=253, pattern=DOMAIN, description="送信ドメイン")]


class OverrideReason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(max_length=500, description="理由（監査記録に残ります）")]


def _path(domain: str) -> str:
    return internal_path("/internal/domains", domain)


@router.get("", response_model=DomainReports)
async def list_domains(
    admin: AdminSessionDep, upstreams: UpstreamsDep, refresh: Annotated[bool, Query()] = False
) -> Any:
    """Every sender domain (ISSEIMAIL_SENDER_DOMAINS) with its findings: `{"domains": [report...]}`.

    A report: `{"domain", "checked_at", "status": "ok"|"warning"|"error", "findings": [{"check", "status",
    "message", "records": [{"name", "type", "value"}], "found"}], "blocking", "refused", "override",
    "override_history"}`. `refresh=true` asks DNS again instead of the short-lived cache."""
    response = await upstreams.call("composer", "GET", "/internal/domains", params={"refresh": refresh})
    if response.status_code != 200:
        return relay_error(response)
    return parsed(response, DomainReports)


@router.get("/{domain}", response_model=DomainReport)
async def domain_report(
    domain: DomainName, admin: AdminSessionDep, upstreams: UpstreamsDep, refresh: Annotated[bool, Query()] = False
) -> Any:
    """One domain's report (any domain may be checked; only sender domains are refused at send time)."""
    response = await upstreams.call("composer", "GET", f"{_path(domain)}/readiness", params={"refresh": refresh})
    if response.status_code != 200:
        return relay_error(response)
    return parsed(response, DomainReport)


@router.post("/{domain}/override", status_code=201, response_model=Override)
async def override(
    domain: DomainName, body: Annotated[OverrideReason, Body()], admin: AdminSessionDep, upstreams: UpstreamsDep
) -> Any:
    """Let a sender domain send although its DKIM or DMARC check fails; recorded with you and the reason."""
    response = await upstreams.call(
        "composer", "POST", f"{_path(domain)}/override", json={"actor": admin.email, "reason": body.reason}
    )
    if response.status_code != 201:
        return relay_error(response)
    return parsed(response, Override, ok=201)


@router.delete("/{domain}/override", response_model=OverrideWithdrawn)
async def withdraw(
    domain: DomainName, body: Annotated[OverrideReason, Body()], admin: AdminSessionDep, upstreams: UpstreamsDep
) -> Any:
    """Withdraw the override; sending is refused again while DKIM or DMARC fails (kept in the audit trail)."""
    response = await upstreams.call(
        "composer", "DELETE", f"{_path(domain)}/override", json={"actor": admin.email, "reason": body.reason}
    )
    if response.status_code != 200:
        return relay_error(response)
    return parsed(response, OverrideWithdrawn)

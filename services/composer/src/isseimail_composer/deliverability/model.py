"""What a readiness report is made of: findings (ok / warning / error), each with the records to publish."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Status = Literal["ok", "warning", "error"]
Check = Literal["spf", "bounce_spf", "dkim", "dmarc", "bounce_mx", "ptr"]
BLOCKING_CHECKS = ("dkim", "dmarc")  # an error here refuses sending (unless overridden)
_RANK = {"ok": 0, "warning": 1, "error": 2}


class DnsRecord(BaseModel):
    name: str
    type: str
    value: str

    def zone_line(self) -> str:
        value = f'"{self.value}"' if self.type == "TXT" else self.value
        return f"{self.name}. IN {self.type} {value}"


class Finding(BaseModel):
    check: Check
    status: Status
    message: str  # Japanese, for the administrator
    records: list[DnsRecord] = Field(default_factory=list)  # what to publish (empty when nothing is needed)
    found: list[str] = Field(default_factory=list)  # what DNS answers now, for comparison


class Override(BaseModel):
    domain: str
    reason: str
    created_by: str
    created_at: str


class Report(BaseModel):
    domain: str
    checked_at: str
    status: Status
    findings: list[Finding]
    blocking: list[str] = Field(default_factory=list)  # checks that refuse sending (dkim, dmarc with an error)
    override: Override | None = None

    @classmethod
    def of(cls, domain: str, checked_at: str, findings: list[Finding]) -> Report:
        worst = max((f.status for f in findings), key=_RANK.__getitem__, default="ok")
        blocking = sorted({f.check for f in findings if f.check in BLOCKING_CHECKS and f.status == "error"})
        return cls(domain=domain, checked_at=checked_at, status=worst, findings=findings, blocking=blocking)

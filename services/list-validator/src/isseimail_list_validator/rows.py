"""From parsed CSV rows to rows ready to store: address checks, required cells.

Rows are checked a batch at a time and forgotten once stored; duplicates are found in the database once
every row is in (`lists.RowWriter`), so nothing here grows with the list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from isseimail_list_validator.address_check import AddressChecker
from isseimail_list_validator.csv_reader import CsvRow

# Control characters other than tab and line breaks (cells may hold line breaks: Alt+Enter in Excel).
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029]")


@dataclass(slots=True)
class PreparedRow:
    row: int
    address: str
    email: str | None
    domain: str | None
    company: str
    department1: str
    department2: str
    contact: str
    status: str  # "pending" (waits for its domain) or "invalid"
    reason: str
    duplicate_of: int | None = None
    key: str | None = None  # duplicate detection (AddressResult.key), for a row that may still be sent

    def record(self) -> tuple[object, ...]:
        """The stored row. A row waiting for its domain is stored as what it becomes if the domain is fine
        (ok, or unverified when the suppression list could not be read): finalising a list then only
        touches the rows of domains that failed, not every row."""
        status = self.status
        if status == "pending":
            status = "unverified" if self.reason == "suppression_unavailable" else "ok"
        # The key is stored only where it is not the address itself (a quoted legacy local part).
        key = self.key if self.key != self.email else None
        return (
            self.row, self.address[:512], self.email, self.domain, self.company, self.department1,
            self.department2, self.contact, status, self.reason, self.duplicate_of, key,
        )  # fmt: skip


ROW_COLUMNS = [
    "row_no", "address", "email", "domain", "company", "department1", "department2", "contact", "status",
    "reason", "duplicate_of", "dedup_key",
]  # fmt: skip


def prepare_rows(
    rows: list[CsvRow], checker: AddressChecker, *, max_cell_chars: int, controls: bool = True
) -> list[PreparedRow]:
    """Check a batch of rows; pending rows still need their domain (and the suppression list), and the
    duplicate check, which sees the whole list (`lists.RowWriter`).

    `controls=False` says the file holds no control characters at all (one scan of the text), which
    spares a search per row.
    """
    prepared: list[PreparedRow] = []
    check = checker.check
    for r in rows:
        result = check(r.email)
        status, reason = "pending", result.code
        if not result.ok:
            status = "invalid"
        elif not r.contact:
            status, reason = "invalid", "missing_contact"
        elif max(len(r.company), len(r.department1), len(r.department2), len(r.contact)) > max_cell_chars:
            status, reason = "invalid", "cell_too_long"
        elif controls and CONTROL.search(r.company + r.department1 + r.department2 + r.contact):
            status, reason = "invalid", "control_chars"
        prepared.append(
            PreparedRow(
                r.row,
                r.email,
                result.email,
                result.domain,
                r.company if status == "pending" else r.company[: max_cell_chars * 2],
                r.department1 if status == "pending" else r.department1[: max_cell_chars * 2],
                r.department2 if status == "pending" else r.department2[: max_cell_chars * 2],
                r.contact if status == "pending" else r.contact[: max_cell_chars * 2],
                status,
                reason,
                key=result.key if status == "pending" else None,
            )
        )
    return prepared


def apply_suppressions(rows: list[PreparedRow], suppressed: dict[str, str] | None) -> None:
    """Suppressed addresses become invalid; when the list could not be read, pending rows are unverifiable.

    A suppressed row keeps its duplicate key: a later row with the same address is still reported as its
    duplicate, as when duplicates were found before the suppression list was asked."""
    for row in rows:
        if row.status != "pending" or row.email is None:
            continue
        if suppressed is None:
            row.reason = "suppression_unavailable"
        elif row.email.lower() in suppressed:
            row.status, row.reason = "invalid", "suppressed"


def pending_domains(rows: list[PreparedRow]) -> list[str]:
    """The distinct domains these rows still wait for."""
    return sorted({r.domain for r in rows if r.status == "pending" and r.domain})

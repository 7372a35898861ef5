"""Every attachment must be a sound, passive, clean PDF: structure and active content (pdf_safety), then
clamd when ISSEIMAIL_CLAMD_URL is set. Run when a draft is stored, at the ready-check, and at freeze.

The PDF checks run in a worker thread so the event loop is not held for their milliseconds; the
clamd scans of one draft run concurrently. Messages name the file and every reason, in Japanese.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import Counter, Histogram

from isseimail_composer.clamd_client import ClamdClient, ScanFailed
from isseimail_composer.form import Attachment
from isseimail_composer.pdf_safety import Verdict, check_pdf

log = logging.getLogger(__name__)

SCANNED = Counter(
    "isseimail_composer_attachments_scanned_total",
    "Attachments streamed to clamd, by outcome (clean, infected, failed).",
    ["outcome"],
)
REFUSED = Counter(
    "isseimail_composer_attachments_refused_total",
    "Attachments refused, by reason (a pdf_safety rule or structure problem, infected, scan_failed).",
    ["reason"],
)
SCAN_SECONDS = Histogram(
    "isseimail_composer_attachment_scan_seconds",
    "Time to stream one attachment to clamd and get its verdict.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CHECK_SECONDS = Histogram(
    "isseimail_composer_pdf_check_seconds",
    "Time of the PDF structure and active-content check of one draft's attachments.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)

SCAN_FAILED = "ウイルス検査を実行できなかったため添付できません。しばらくしてから再度お試しください。"


def infected(signature: str) -> str:
    return f"ウイルスが検出されました（{signature}）。このファイルは添付できません。"


@dataclass(frozen=True)
class Problem:
    filename: str
    reasons: tuple[str, ...]
    message: str

    def shown(self) -> str:
        name = self.filename if len(self.filename) <= 40 else self.filename[:40] + "…"
        return f"「{name}」: {self.message}"


class AttachmentGuard:
    def __init__(self, allowed: frozenset[str], clamd: ClamdClient | None) -> None:
        self.allowed = allowed
        self.clamd = clamd

    @property
    def scanning(self) -> bool:
        return self.clamd is not None

    def _check_all(self, attachments: Sequence[Attachment]) -> list[Verdict]:
        started = time.perf_counter()
        verdicts = [check_pdf(a.data, self.allowed) for a in attachments]
        CHECK_SECONDS.observe(time.perf_counter() - started)
        return verdicts

    async def _scan(self, attachment: Attachment) -> Problem | None:
        assert self.clamd is not None
        started = time.perf_counter()
        try:
            signature = await self.clamd.scan(attachment.data)
        except ScanFailed as exc:
            SCANNED.labels("failed").inc()
            log.error("attachment %r could not be scanned: %s", attachment.filename, exc)
            return Problem(attachment.filename, ("scan_failed",), SCAN_FAILED)
        finally:
            SCAN_SECONDS.observe(time.perf_counter() - started)
        if signature is None:
            SCANNED.labels("clean").inc()
            return None
        SCANNED.labels("infected").inc()
        log.warning("attachment %r refused: clamd found %s", attachment.filename, signature)
        return Problem(attachment.filename, ("infected",), infected(signature))

    async def problems(self, attachments: Sequence[Attachment], *, structure: bool = True) -> list[Problem]:
        """Every problem of every attachment (a file may have a structure problem and a virus).
        structure=False: the virus scan only (files already refused by the form rules, so a virus is named)."""
        if not attachments:
            return []
        scans = [asyncio.create_task(self._scan(a)) for a in attachments] if self.clamd else []
        try:
            verdicts = await asyncio.to_thread(self._check_all, attachments) if structure else []
            scanned = await asyncio.gather(*scans)
        finally:
            for task in scans:
                task.cancel()
        found: list[Problem] = []
        for i, attachment in enumerate(attachments):
            scan_problem = scanned[i] if scans else None
            if scan_problem is not None:
                found.append(scan_problem)
            verdict = verdicts[i] if structure else None
            if verdict is not None and not verdict.ok:
                found.append(Problem(attachment.filename, verdict.reasons, verdict.message))
        for problem in found:
            for reason in problem.reasons:
                REFUSED.labels(reason).inc()
        return found

    async def check(self, attachments: Sequence[Attachment], *, structure: bool = True) -> str | None:
        """The Japanese message for the attachments field, or None when every file may go out."""
        found = await self.problems(attachments, structure=structure)
        return " ".join(p.shown() for p in found) or None

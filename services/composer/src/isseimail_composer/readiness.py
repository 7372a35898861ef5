"""The ready-check before the pass is consumed: the draft still passes the form rules, its list is valid,
belongs to the same pass and has recipients, (ISO-2022-JP) every list cell can be carried, and the sender's
domain passes DKIM and DMARC (or an administrator has overridden that, see deliverability/gate.py)."""

from __future__ import annotations

import uuid

from isseimail_composer import text_rules
from isseimail_composer.deliverability.gate import DomainGate
from isseimail_composer.drafts import StoredDraft
from isseimail_composer.form import check_draft
from isseimail_shared.clients.list_validator import ListsClient
from isseimail_shared.unsubscribe import organisation_of

LIST_NOT_FOUND = "送信先リストが見つかりません。CSVをアップロードし直してください。"
LIST_PENDING = "送信先リストの確認が終わっていません。確認の完了をお待ちください。"
LIST_INVALID = "送信先リストに送信できないアドレスがあります。CSVを修正して再度アップロードしてください。"
LIST_EMPTY = "送信先リストに送信先がありません。"
CSV_COLUMNS = {"company": "会社名", "department1": "部署名1", "department2": "部署名2", "contact": "ご担当者名"}


async def _non_jis_rows(lists: ListsClient, list_id: uuid.UUID, pass_id: int) -> str | None:
    """For ISO-2022-JP: the list's cells that encoding cannot carry (they would show as 〓), named by row."""
    found: list[str] = []
    total = 0
    async for recipient in lists.rows(list_id, pass_id):
        for key, label in CSV_COLUMNS.items():
            value: str = getattr(recipient, key)
            bad = [c for c in value if text_rules.jis_reason(c)]
            if bad:
                total += 1
                if len(found) < text_rules.MAX_REPORTED:
                    found.append(f"{recipient.row}行目の{label}「{''.join(dict.fromkeys(bad))}」")
    if not found:
        return None
    more = f"ほか{total - len(found)}か所" if total > len(found) else ""
    return (
        "送信先リストにISO-2022-JPでは送信できない文字があります（" + "、".join(found) + more + "）。"
        "文字コードをUTF-8にするか、CSVを修正してください。"
    )


async def _suppressed_rows(lists: ListsClient, list_id: uuid.UUID, pass_id: int, sender_email: str) -> str | None:
    """The rows the sender's organisation may not mail (its unsubscribes and complaints), named by row."""
    organisation = organisation_of(sender_email)
    found = await lists.suppressed(list_id, pass_id, organisation, limit=text_rules.MAX_REPORTED)
    if not found.total:
        return None
    named = [f"{r.row}行目 {r.address}（{r.message}）" for r in found.rows]
    more = f"ほか{found.total - len(named)}件" if found.total > len(named) else ""
    return (
        f"送信先リストに、送信元ドメイン {organisation} からは送信できないアドレスがあります："
        + "、".join(named)
        + more
        + "。該当する行をCSVから削除して、再度アップロードしてください。"
    )


async def check(
    stored: StoredDraft, pass_id: int, lists: ListsClient, sender_domains: list[str], gate: DomainGate | None = None
) -> tuple[dict[str, str], int]:
    """(errors keyed by field, recipient count with the sender's copy); raises Unavailable (list-validator)."""
    d = stored.draft
    values = {
        "list_id": str(d.list_id),
        "sender_email": d.sender_email,
        "sender_name": d.sender_name,
        "subject": d.subject,
        "body": d.body,
        "charset": d.charset,
    }
    _, errors = check_draft(values, [(a.filename, a.data) for a in d.attachments], allowed_domains=sender_domains)
    info = await lists.get_list(d.list_id, pass_id)
    if info is None or info.pass_id != pass_id:
        errors["list_id"] = LIST_NOT_FOUND
    elif info.status == "validating":
        errors["list_id"] = LIST_PENDING
    elif info.status != "valid":
        errors["list_id"] = LIST_INVALID
    elif not info.rows:
        errors["list_id"] = LIST_EMPTY
    if "list_id" not in errors and "sender_email" not in errors:
        refused = await _suppressed_rows(lists, d.list_id, pass_id, d.sender_email)
        if refused:
            errors["list_id"] = refused
    if not errors and d.charset == "iso-2022-jp":
        problem = await _non_jis_rows(lists, d.list_id, pass_id)
        if problem:
            errors["charset"] = problem
    if gate is not None and "sender_email" not in errors:
        refusal = await gate.refusal(d.sender_email)
        if refusal:
            errors["sender_email"] = refusal
    rows = info.rows if info else 0
    return errors, rows + 1

"""The reason taxonomy: every reason has its Japanese explanation and advice, hardness and suppression policy."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from isseimail_notifier import report_texts
from isseimail_notifier.delays import DelayLine
from isseimail_notifier.reasons import (
    JAPANESE,
    REASONS,
    derived_status,
    is_hard,
    japanese,
    japanese_advice,
    suppression_scope,
)


def test_every_reason_is_explained_in_japanese_with_advice() -> None:
    """The failure report can explain each reason of the taxonomy and say what the sender can do."""
    assert set(JAPANESE) == set(REASONS)
    for reason in REASONS:
        assert japanese(reason).endswith("。")
        assert japanese_advice(reason).endswith("。")
    assert japanese("no-such-reason") == japanese("undefined")


@pytest.mark.parametrize(
    ("reason", "status", "hard", "scope"),
    [
        ("userunknown", "5.1.1", True, "global"),
        ("hostunknown", "5.1.2", True, "global"),
        ("filtered", "5.2.0", False, "organisation"),
        ("mailboxfull", "5.2.2", False, "organisation-counted"),
        ("policyviolation", "5.7.1", False, "organisation-counted"),
        ("blocked", "5.7.1", False, "none"),
        ("spamdetected", "5.7.1", False, "none"),
        ("undefined", "5.0.0", True, "none"),
        ("undefined", "4.0.0", False, "none"),
        ("expired", "4.4.7", False, "none"),
    ],
)
def test_hardness_and_suppression_policy(reason: str, status: str, hard: bool, scope: str) -> None:
    """Only non-existence is hard and global; a filter is per organisation; an unexplained 5xx is hard but
    suppresses nothing."""
    assert is_hard(reason, status) is hard
    assert suppression_scope(reason) == scope


def test_derived_status_follows_the_reply_class() -> None:
    assert derived_status("userunknown", 550) == "5.1.1"
    assert derived_status("mailboxfull", 452) == "4.2.2"
    assert derived_status("ratelimited", 550) == "4.7.0"
    assert derived_status("undefined", 550) is None


def test_failure_report_tells_the_sender_what_to_do_for_a_filter() -> None:
    """A carrier filter refusal is explained (the address exists) with what the recipient can change."""
    line = report_texts.FailureLine(
        recipient="keitai@docomo.ne.jp",
        row_number=5,
        source="bounce",
        reason="filtered",
        status="5.2.0",
        smtp_code=None,
        diagnostic="550 Unknown user (in reply to end of DATA command)",
    )
    body = report_texts.failure_report("a@corp.example", uuid.uuid4(), "お知らせ", [line], 10).body
    assert "アドレス自体は存在します" in body
    assert "対処: 受信者に、送信元ドメインからのメールを受信できるよう設定" in body


def test_completion_lists_delayed_recipients_as_delayed() -> None:
    """A recipient with a delay notice and no final failure shows as 遅延中 in the completion mail."""
    now = dt.datetime.now(dt.UTC)
    c = report_texts.Completion(uuid.uuid4(), "ご案内", now, now, 3, 2, 0, 0)
    text = report_texts.completion("山田", c, [], 50, "Asia/Tokyo", [DelayLine("slow@example.jp", 7, "4.4.1", "")]).body
    assert "- slow@example.jp（CSVの行: 7 行目）: 遅延中（4.4.1）" in text
    assert "遅延中" not in report_texts.completion("山田", c, [], 50, "Asia/Tokyo").body

"""The form rules as pure functions: counting, 外字 / control / JIS checks with positions, sender address."""

from __future__ import annotations

import unicodedata
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from isseimail_composer import text_rules
from isseimail_composer.form import MAX_BODY, check_draft, check_sender_email, check_text
from isseimail_shared.mailmerge import Recipient, render_campaign


def values(**overrides: str) -> dict[str, str]:
    base = {
        "list_id": str(uuid.uuid4()),
        "sender_email": "taro@example.co.jp",
        "sender_name": "山田太郎",
        "subject": "件名",
        "body": "本文",
        "charset": "utf-8",
    }
    base.update(overrides)
    return base


def test_nfc_counts_as_user_sees() -> None:
    """A decomposed が (2 code points) counts as one character after NFC."""
    decomposed = unicodedata.normalize("NFD", "が") * 100
    assert len(decomposed) == 200
    value, error = check_text("subject", decomposed, 100, multiline=False, charset="utf-8")
    assert error is None
    assert len(value) == 100


def test_positions_are_line_and_column() -> None:
    """Refused characters are reported with line and column, the code point, and a reason."""
    found = text_rules.bad_chars("ab\ncd\x07\n\ue000", multiline=True, iso_2022_jp=False)
    assert [(b.line, b.column, b.char) for b in found] == [(2, 3, "\x07"), (3, 1, "\ue000")]
    message = text_rules.describe("本文", found, multiline=True)
    assert "2行目3文字目" in message
    assert "U+0007" in message
    assert "3行目1文字目" in message
    assert "外字" in message


def test_many_bad_characters_message_stays_short() -> None:
    """A pasted blob of 外字 names the first five and counts the rest."""
    _, error = check_text("body", "\ue000" * 1000, MAX_BODY, multiline=True, charset="utf-8")
    assert error is not None
    assert "ほか995か所" in error
    assert len(error) < 600


def test_tab_and_newline_allowed_only_in_body() -> None:
    """Tabs and line breaks are fine in the body, refused in one-line fields."""
    assert check_text("body", "a\tb\r\nc", MAX_BODY, multiline=True, charset="utf-8")[1] is None
    assert "タブ" in (check_text("subject", "a\tb", 100, multiline=False, charset="utf-8")[1] or "")
    assert "改行" in (check_text("subject", "a\nb", 100, multiline=False, charset="utf-8")[1] or "")


def test_planes_15_and_16_and_unassigned_are_refused() -> None:
    """Supplementary private use (planes 15-16) and unassigned code points are refused."""
    for char, needle in (("\U000f0000", "外字"), ("\U00100000", "外字"), ("\U000e0fff", "未定義")):
        error = check_text("body", f"x{char}", MAX_BODY, multiline=True, charset="utf-8")[1]
        assert error is not None
        assert needle in error


def test_sender_domain_is_case_insensitive_and_normalised() -> None:
    """The domain part is lower-cased; allowed domains match exactly."""
    assert check_sender_email("Taro@Example.CO.JP", ["example.co.jp"]) == ("Taro@example.co.jp", None)
    assert check_sender_email("taro@sub.example.co.jp", ["example.co.jp"])[1] is not None
    assert check_sender_email("taro@localhost", [])[1] is not None
    assert check_sender_email("taro.@example.jp", [])[1] is not None
    assert check_sender_email("taro😀@example.jp", [])[1] is not None
    assert check_sender_email("taro@example.jp\r\nBcc: x@evil.example", [])[1] is not None


def test_whitespace_only_is_missing() -> None:
    """Fields of spaces only count as empty (全角スペース included)."""
    _, errors = check_draft(values(subject="　 ", body="\r\n\r\n"), [], allowed_domains=[])
    assert errors == {"subject": "件名を入力してください。", "body": "本文を入力してください。"}


SAFE = st.characters(blacklist_categories=("Cs", "Cc", "Co", "Cn", "Zl", "Zp", "Cf"))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_check_text_never_crashes_and_errors_are_japanese(raw: str) -> None:
    """Any input gives a value or a Japanese message, never an exception."""
    for charset in ("utf-8", "iso-2022-jp"):
        _, error = check_text("body", raw, MAX_BODY, multiline=True, charset=charset)  # type: ignore[arg-type]
        assert error is None or not error.isascii()


@settings(max_examples=100, deadline=None)
@given(
    name=st.text(SAFE, min_size=1, max_size=50).filter(lambda s: s.strip()),
    subject=st.text(SAFE, min_size=1, max_size=100).filter(lambda s: s.strip()),
    body=st.text(st.one_of(SAFE, st.just("\n")), min_size=1, max_size=500).filter(lambda s: s.strip()),
)
def test_accepted_drafts_always_render(name: str, subject: str, body: str) -> None:
    """Whatever the rules accept, the renderer can encode and stamp (no late failure at send time)."""
    for charset in ("utf-8", "iso-2022-jp"):
        draft, errors = check_draft(
            values(sender_name=name, subject=subject, body=body, charset=charset), [], allowed_domains=[]
        )
        if draft is None:
            assert errors
            continue
        template = render_campaign(draft.sender_email, draft.sender_name, draft.subject, draft.body, draft.charset, [])
        raw = template.stamp(
            Recipient(row=1, email="r@example.com", contact="各位"), message_id="m@x", bounce_address="b@x"
        )
        assert raw.isascii()


@given(
    st.text(alphabet="abc@.", min_size=0, max_size=20),
    st.sampled_from(["\r", "\n", "\r\n", "\u2028", "\x85", "\v"]),
    st.text(alphabet="abc@.", min_size=1, max_size=20),
)
def test_a_line_break_inside_the_sender_address_is_named_as_such(head: str, brk: str, tail: str) -> None:
    """CR/LF (or any line break) inside the sender address says 改行は使えません, not 'only one address'."""
    _, error = check_sender_email(f"taro{head}{brk}{tail}@example.jp", [])
    assert error == "送信者メールアドレスに改行は使えません。"


def test_attachments_required_by_default_setting_and_optional_when_allowed() -> None:
    """With attachments required a draft without one names the attachments field; allowed, it passes."""
    from isseimail_composer.form import NO_ATTACHMENT
    from isseimail_composer.settings import ComposerSettings

    assert ComposerSettings.model_fields["attachments_required"].default is True
    draft, errors = check_draft(values(), [], allowed_domains=[], attachments_required=True)
    assert draft is None
    assert errors == {"attachments": NO_ATTACHMENT}
    pdf = ("資料.pdf", b"%PDF-1.4 minimal")
    assert check_draft(values(), [pdf], allowed_domains=[], attachments_required=True)[1] == {}
    assert check_draft(values(), [], allowed_domains=[], attachments_required=False)[1] == {}

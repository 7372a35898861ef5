"""Render once, stamp per recipient: stamped messages parse back to exactly what was rendered."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import email.utils
import re
import unicodedata
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isseimail_shared.mailmerge import (
    CampaignTemplate,
    Recipient,
    _check_header_value,
    addressee_block,
    list_unsubscribe_header,
    normalise_text,
    render_campaign,
)

DATE = dt.datetime(2026, 11, 27, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=9)))
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
ROW = Recipient(
    row=1,
    email="hanako@example.com",
    company="株式会社テスト",
    department1="営業本部",
    department2="",
    contact="佐藤花子",
)


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert not message.defects
    return message


def text_of(message: EmailMessage) -> str:
    part = message if not message.is_multipart() else next(message.iter_parts())
    assert isinstance(part, EmailMessage)
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def attachments_of(message: EmailMessage) -> list[tuple[str | None, bytes]]:
    return [(part.get_filename(), part.get_content()) for part in message.iter_attachments()]


def stamp(template: CampaignTemplate, recipient: Recipient = ROW, **kwargs: object) -> bytes:
    defaults: dict[str, object] = {"message_id": "m1@isseimail.example", "bounce_address": "b-1@bounce.example"}
    defaults.update(kwargs)
    return template.stamp(recipient, date=DATE, **defaults)  # type: ignore[arg-type]


@pytest.mark.parametrize("charset", ["utf-8", "iso-2022-jp"])
def test_every_header_body_and_attachment_round_trip(charset: str) -> None:
    """From, Reply-To, To, Subject, Date, Message-ID, List-Unsubscribe, body and PDF bytes all parse back exactly."""
    files = [("見積書（2026年度）.pdf", PDF), ("案内 資料.pdf", b"%PDF-1.4 small")]
    template = render_campaign(
        "taro@example.co.jp",
        "株式会社サンプル 営業部 山田太郎",
        "【ご案内】新製品発表会のお知らせ（11月27日開催）について詳しくご説明いたします",
        "いつもお世話になっております。\r\n\r\n新製品のご案内です。<b>太字ではない</b>",
        charset,  # type: ignore[arg-type]
        files,
    )
    raw = stamp(template, list_unsubscribe="mailto:unsub@example.co.jp, https://example.co.jp/u/1")
    message = parse(raw)
    assert message["From"].addresses[0].display_name == "株式会社サンプル 営業部 山田太郎"
    assert message["From"].addresses[0].addr_spec == "taro@example.co.jp"
    assert str(message["Reply-To"]) == str(message["From"])
    assert message["To"].addresses[0].addr_spec == "hanako@example.com"
    assert message["Subject"] == "【ご案内】新製品発表会のお知らせ（11月27日開催）について詳しくご説明いたします"
    assert message["Date"].datetime == DATE
    assert message["Message-ID"] == "<m1@isseimail.example>"
    assert message["MIME-Version"] == "1.0"
    assert message["List-Unsubscribe"] == "<mailto:unsub@example.co.jp>, <https://example.co.jp/u/1>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["X-Isseimail-Bounce"] == "<b-1@bounce.example>"
    assert message["Return-Path"] is None  # added by the final MTA from the envelope, never by us (RFC 5321)
    assert message.get_content_type() == "multipart/mixed"
    assert next(message.iter_parts()).get_content_charset() == charset
    assert text_of(message) == (
        "株式会社テスト\n営業本部\n佐藤花子 様\n\n"
        "いつもお世話になっております。\n\n新製品のご案内です。<b>太字ではない</b>\n\n"
        "株式会社サンプル 営業部 山田太郎\ntaro@example.co.jp\n"
    )
    assert attachments_of(message) == files


def test_message_is_seven_bit_with_crlf_and_short_lines() -> None:
    """Stamped bytes are ASCII, every line ends in CRLF and none exceeds 998 octets, even for a 5000-char line."""
    body = "あ" * 5000
    for charset in ("utf-8", "iso-2022-jp"):
        template = render_campaign("a@example.com", "名前", "件名", body, charset, [("x.pdf", PDF)])  # type: ignore[arg-type]
        raw = stamp(template)
        assert raw.isascii()
        assert b"\n" not in raw.replace(b"\r\n", b"")
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        assert text_of(parse(raw)).split("\n")[4] == body


def test_without_attachments_message_is_single_text_part() -> None:
    """No attachments: one text/plain part, no multipart wrapper, no List-Unsubscribe unless given."""
    template = render_campaign("a@example.com", "Sender", "Hello", "Body", "utf-8", [])
    message = parse(stamp(template))
    assert not message.is_multipart()
    assert message.get_content_type() == "text/plain"
    assert message["List-Unsubscribe"] is None
    assert message["Subject"] == "Hello"


def test_mailto_only_unsubscribe_has_no_one_click_header() -> None:
    """List-Unsubscribe-Post (RFC 8058) appears only with an https URI."""
    template = render_campaign("a@example.com", "S", "s", "b", "utf-8", [])
    message = parse(stamp(template, list_unsubscribe="<mailto:u@example.com>"))
    assert message["List-Unsubscribe"] == "<mailto:u@example.com>"
    assert message["List-Unsubscribe-Post"] is None


@pytest.mark.parametrize(
    ("contact", "expected"),
    [("各位", "各位"), ("皆様", "皆様"), ("営業部各位", "営業部各位"), ("山田", "山田 様"), ("山田様", "山田様")],
)
def test_honorific_after_contact_only_when_needed(contact: str, expected: str) -> None:
    """様 follows the contact name, never after 各位 or 皆様 (or a name that already has it)."""
    assert addressee_block(Recipient(row=1, email="a@b.jp", contact=contact)) == expected


def test_empty_fields_leave_no_blank_lines() -> None:
    """Only non-empty CSV fields appear in the addressee block, in order company, dept1, dept2, contact."""
    recipient = Recipient(row=1, email="a@b.jp", company="", department1="", department2="課", contact="皆様")
    assert addressee_block(recipient) == "課\n皆様"
    assert addressee_block(Recipient(row=1, email="a@b.jp")) == ""


def test_sender_copy_shows_sender_as_addressee() -> None:
    """Row 0 (the sender's copy) is addressed to the sender with their own name in the block."""
    template = render_campaign("taro@example.co.jp", "山田太郎", "件名", "本文", "utf-8", [])
    sender = Recipient(row=0, email="taro@example.co.jp", contact="山田太郎")
    message = parse(stamp(template, sender))
    assert message["To"].addresses[0].addr_spec == "taro@example.co.jp"
    assert text_of(message).startswith("山田太郎 様\n\n本文\n")


@pytest.mark.parametrize(
    ("field", "value"),
    [("sender_name", "名前\r\nBcc: x@evil.example"), ("subject", "件名\nBcc: x@evil.example"), ("subject", "a\x00b")],
)
def test_header_injection_is_refused(field: str, value: str) -> None:
    """CR, LF or control characters in a header field raise instead of being folded into the header."""
    args = {"sender_email": "a@example.com", "sender_name": "S", "subject": "s", "body": "b"}
    args[field] = value
    with pytest.raises(ValueError, match="line break or control"):
        render_campaign(**args)  # type: ignore[arg-type]


@given(st.text(max_size=40))
def test_header_check_refuses_exactly_line_breaks_and_control_characters(value: str) -> None:
    """The one-regex check is the definition: any Cc character, CR, LF, U+2028 or U+2029 is refused, nothing else."""
    refused = any(unicodedata.category(c) == "Cc" or c in "\u2028\u2029" for c in value)
    try:
        _check_header_value("X", value)
    except ValueError:
        assert refused
    else:
        assert not refused


def test_recipient_and_ids_cannot_inject_headers() -> None:
    """A recipient address or Message-ID with a line break is refused at stamp time."""
    template = render_campaign("a@example.com", "S", "s", "b", "utf-8", [])
    with pytest.raises(ValueError, match="To"):
        stamp(template, Recipient(row=1, email="x@example.com\r\nBcc: y@evil.example"))
    with pytest.raises(ValueError, match="Message-ID"):
        stamp(template, message_id="a@b\r\nX: y")
    with pytest.raises(ValueError, match="List-Unsubscribe"):
        stamp(template, list_unsubscribe="javascript:alert(1)")


@pytest.mark.parametrize("char", ["①", "㈱", "髙", "😀"])
def test_iso_2022_jp_refuses_characters_outside_jis_x_0208(char: str) -> None:
    """ISO-2022-JP rendering fails loudly for characters it cannot carry."""
    with pytest.raises(ValueError, match="cannot be sent"):
        render_campaign("a@example.com", "S", "s", f"本文{char}", "iso-2022-jp", [])


def test_iso_2022_jp_maps_windows_variants_to_jis() -> None:
    """～ and － typed on Windows are sent as their JIS X 0208 forms instead of being refused."""
    template = render_campaign("a@example.com", "S", "s～", "10～20－1", "iso-2022-jp", [])
    message = parse(stamp(template, Recipient(row=1, email="r@example.net", company="Ａ－Ｂ")))
    assert message["Subject"] == "s〜"
    assert text_of(message).startswith("Ａ−Ｂ\n\n10〜20−1\n")


def test_iso_2022_jp_recipient_fields_outside_jis_become_geta() -> None:
    """A CSV cell outside JIS X 0208 cannot make a recipient's message fail: it is sent as 〓."""
    template = render_campaign("a@example.com", "S", "s", "本文", "iso-2022-jp", [])
    recipient = Recipient(row=2, email="r@example.net", company="㈱髙橋商事", contact="髙橋①")
    message = parse(stamp(template, recipient))
    assert text_of(message).startswith("〓〓橋商事\n〓橋〓 様\n\n本文\n")


def test_template_json_round_trip_stamps_identical_bytes() -> None:
    """A template stored as JSON and loaded back (the dispatcher's path) stamps the same bytes."""
    template = render_campaign("a@example.com", "差出人", "件名", "本文", "iso-2022-jp", [("資料.pdf", PDF)])
    loaded = CampaignTemplate.model_validate_json(template.model_dump_json())
    assert stamp(loaded) == stamp(template)


def test_attachments_are_encoded_once_per_template() -> None:
    """Stamping reuses the same precomputed attachment bytes for every recipient."""
    template = render_campaign("a@example.com", "S", "s", "b", "utf-8", [("a.pdf", PDF)])
    stamp(template)
    tail = template._fixed_parts().tail
    stamp(template, Recipient(row=2, email="other@example.org", contact="各位"))
    assert template._fixed_parts().tail is tail
    assert template.attachments[0].mime.split("\r\n\r\n", 1)[1].encode() in tail


@settings(max_examples=300, deadline=None)
@given(
    body=st.text(st.characters(blacklist_categories=["Cs", "Cc"]) | st.sampled_from("\n\t"), min_size=1, max_size=400),
    company=st.text(max_size=60),
    contact=st.text(max_size=30),
)
def test_text_part_is_exactly_base64_of_the_whole_text(body: str, company: str, contact: str) -> None:
    """Only the addressee block is encoded per recipient, yet the bytes are those of encoding the whole text
    (whatever the block's length leaves over a 57-byte base64 line), and decode to the recipient's text."""
    template = render_campaign("a@example.com", "S", "s", normalise_text(body) or "b", "utf-8", [])
    recipient = Recipient(row=1, email="x@example.org", company=company, contact=contact)
    for _ in range(2):  # the second call takes the fixed part's cached encoding
        headers, encoded = template._text_part(recipient, template._fixed_parts())
        whole = template.text_for(recipient).replace("\n", "\r\n").encode("utf-8")
        assert encoded == base64.encodebytes(whole).replace(b"\n", b"\r\n")
        assert headers.endswith("Content-Transfer-Encoding: base64\r\n")


def test_date_header_is_now_unless_given() -> None:
    """Without a date the header is the current second in JST; a given date is used as it is."""
    template = render_campaign("a@example.com", "S", "s", "b", "utf-8", [])
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    message = email.message_from_bytes(template.stamp(ROW, message_id="m@x.example", bounce_address="b@x.example"))
    sent = email.utils.parsedate_to_datetime(message["Date"])
    assert before <= sent <= dt.datetime.now(dt.UTC)
    assert message["Date"].endswith("+0900")
    assert email.message_from_bytes(stamp(template))["Date"] == email.utils.format_datetime(DATE)


def test_list_unsubscribe_header_normalises_brackets() -> None:
    """Bare and bracketed URIs both come out bracketed and comma-separated."""
    assert list_unsubscribe_header("mailto:a@b.c,<https://x.example/u>") == "<mailto:a@b.c>, <https://x.example/u>"


# --- properties -----------------------------------------------------------------------------------

HEADER_CHARS = st.characters(blacklist_categories=("Cs", "Cc", "Co", "Cn", "Zl", "Zp"))
BODY_CHARS = st.one_of(HEADER_CHARS, st.sampled_from(["\n", "\r\n", "\t"]))
JIS_ALPHABET = (
    "abcXYZ019 !?@#-_.,;:()[]'\"あいうえおかきくけこアイウエオ漢字東京都港区株式会社営業部様各位皆様"
    "、。・：；？！「」『』（）【】ー〜＋×÷＝≠＜＞＄％＃＆＊＠§☆★○●◎◇◆□■△▲▽▼※〒→←↑↓"
)
JIS_CHARS = st.sampled_from(list(JIS_ALPHABET))
FILE_NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Co", "Cn", "Zl", "Zp"), blacklist_characters="/\\"),
    min_size=1,
    max_size=80,
).map(lambda s: s.strip() + ".pdf")


def _expect_header(value: str) -> str:
    return normalise_text(value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.text(HEADER_CHARS, min_size=1, max_size=50).filter(lambda s: s.strip() == s and s),
    subject=st.text(HEADER_CHARS, min_size=1, max_size=100).filter(lambda s: s.strip() == s and s),
    body=st.lists(BODY_CHARS, min_size=1, max_size=400).map("".join),
    files=st.lists(st.tuples(FILE_NAMES, st.binary(min_size=1, max_size=3000)), max_size=3),
    contact=st.text(HEADER_CHARS, max_size=20),
)
def test_utf8_round_trip_property(
    name: str, subject: str, body: str, files: list[tuple[str, bytes]], contact: str
) -> None:
    """Any printable Unicode in name, subject, body and file names survives stamping and parsing (UTF-8)."""
    template = render_campaign("s@example.com", name, subject, body, "utf-8", files)
    recipient = Recipient(row=3, email="r@example.net", company="会社", contact=contact)
    message = parse(stamp(template, recipient))
    assert message["From"].addresses[0].display_name == re.sub(" {2,}", " ", _expect_header(name))
    assert message["Subject"] == _expect_header(subject)
    assert text_of(message) == template.text_for(recipient)
    assert [(n, d) for n, d in attachments_of(message)] == [(normalise_text(n), d) for n, d in files]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.text(JIS_CHARS, min_size=1, max_size=50).filter(lambda s: s.strip() == s and s),
    subject=st.text(JIS_CHARS, min_size=1, max_size=100).filter(lambda s: s.strip() == s and s),
    body=st.text(st.one_of(JIS_CHARS, st.just("\n")), min_size=1, max_size=400),
    contact=st.text(JIS_CHARS, max_size=20),
)
def test_iso_2022_jp_round_trip_property(name: str, subject: str, body: str, contact: str) -> None:
    """JIS X 0208 text in name, subject and body survives stamping and parsing (ISO-2022-JP)."""
    template = render_campaign("s@example.com", name, subject, body, "iso-2022-jp", [("添付.pdf", PDF)])
    recipient = Recipient(row=3, email="r@example.net", department1="部", contact=contact)
    message = parse(stamp(template, recipient))
    assert message["From"].addresses[0].display_name == re.sub(" {2,}", " ", name)
    assert message["Subject"] == subject
    assert text_of(message) == template.text_for(recipient)
    assert attachments_of(message) == [("添付.pdf", PDF)]

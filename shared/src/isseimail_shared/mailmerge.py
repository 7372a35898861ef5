"""Render a campaign once, stamp it per recipient.

`render_campaign()` builds a `CampaignTemplate`: the fixed headers already RFC 2047-encoded, the body
text, and every attachment as a finished MIME part (base64, CRLF). `template.stamp(recipient, ...)`
only writes the per-recipient pieces (To, Date, Message-ID, List-Unsubscribe, the addressee block at the
top of the text part) and joins them with byte chunks computed once per template, so 5,000 recipients
never re-encode 2 MB of attachments.

The template is plain pydantic (JSON-serialisable): the composer stores it in the frozen snapshot and
the dispatcher loads it back and stamps at send time. Anything that would let a user inject a header
(CR or LF in a header field) raises `ValueError`; the composer's form rules refuse it earlier with a
Japanese message, this is the last line of defence.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import email.utils
import re
import secrets
import time
import unicodedata
import uuid
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

Charset = Literal["utf-8", "iso-2022-jp"]

CRLF = "\r\n"
JST = dt.timezone(dt.timedelta(hours=9), "JST")
MAX_LINE_OCTETS = 998  # RFC 5322 hard limit; longer 7bit lines force base64
NO_HONORIFIC_SUFFIXES = ("様", "各位", "御中", "殿")  # 皆様 ends with 様; 様 after these reads wrong

# Windows (CP932) input gives these code points for characters JIS X 0208 has under another one;
# ISO-2022-JP campaigns send the JIS form (～ -> 〜, － -> −, ∥ -> ‖, ￠ ￡ ￢ -> ¢ £ ¬).
JIS_VARIANTS = str.maketrans("\uff5e\uff0d\u2225\uffe0\uffe1\uffe2", "\u301c\u2212\u2016\u00a2\u00a3\u00ac")

# A line break or any control character (Unicode category Cc is exactly U+0000-001F and U+007F-009F): one
# regex, since stamp() checks four header values per message and a per-character loop was half its time.
_HEADER_BREAK = re.compile(r"[\r\n\u2028\u2029\x00-\x1f\x7f-\x9f]")
_MIME_CHARSET = {"utf-8": "UTF-8", "iso-2022-jp": "ISO-2022-JP"}
_WORD_BYTES = 45  # 45 raw bytes -> 60 base64 chars -> an encoded-word of at most 75 characters
_PLAIN_HEADER = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,68}[\x21-\x7e])?$")


class Recipient(BaseModel):
    """One recipient row, as the list validator serves it (row 0 is the sender's own copy)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    row: int = Field(ge=0)
    email: str = Field(min_length=3, max_length=320)
    company: str = ""
    department1: str = ""
    department2: str = ""
    contact: str = ""


class AttachmentPart(BaseModel):
    """An attachment as a finished MIME part (headers, blank line, base64 body; CRLF line ends)."""

    model_config = ConfigDict(frozen=True)

    filename: str
    size: int = Field(ge=0)
    content_type: str = "application/pdf"
    mime: str


class CampaignTemplate(BaseModel):
    """A campaign rendered once; `stamp()` produces one recipient's complete message as bytes."""

    model_config = ConfigDict(frozen=True)

    charset: Charset
    sender_email: str
    sender_name: str
    subject: str
    body: str  # normalised: NFC, LF line ends
    fixed_headers: str  # From, Reply-To, Subject, MIME-Version (and Content-Type when multipart); CRLF
    boundary: str | None  # None: a single text/plain part, no attachments
    attachments: list[AttachmentPart] = Field(default_factory=list)

    _parts: _FixedParts | None = PrivateAttr(default=None)

    # --- what the recipient reads ---------------------------------------------------------------

    def signature(self) -> str:
        """The sender block at the bottom of every message (the manual: 'メール一番下に反映されます')."""
        return f"{self.sender_name}\n{self.sender_email}"

    def text_for(self, recipient: Recipient) -> str:
        """The full text part as `recipient` sees it (LF line ends): addressee block, body, sender."""
        return f"{self._addressee_head(recipient)}{self._fixed_text()}"

    def _addressee_head(self, recipient: Recipient) -> str:
        """The part of the text that differs per recipient: the addressee block and a blank line (or nothing)."""
        block = addressee_block(recipient)
        if self.charset == "iso-2022-jp":
            block = jis_safe(block)
        return f"{block}\n\n" if block else ""

    def _fixed_text(self) -> str:
        """The part of the text that is the same for every recipient: body and sender block."""
        return f"{self.body}\n\n{self.signature()}\n"

    # --- bytes ---------------------------------------------------------------------------------

    def _fixed_parts(self) -> _FixedParts:
        """Everything that is the same for every recipient, as bytes; computed once per template."""
        if self._parts is None:
            if self.boundary is None:
                tail = b""
            else:
                pieces = [f"{CRLF}--{self.boundary}{CRLF}{part.mime}" for part in self.attachments]
                tail = ("".join(pieces) + f"{CRLF}--{self.boundary}--{CRLF}").encode("ascii")
            fixed_text = None
            if self.charset == "utf-8":
                fixed_text = self._fixed_text().replace("\n", CRLF).encode("utf-8")
            self._parts = _FixedParts(self.fixed_headers.encode("ascii"), tail, fixed_text)
        return self._parts

    def _text_part(self, recipient: Recipient, parts: _FixedParts) -> tuple[str, bytes]:
        """The text part's headers and encoded body; in UTF-8 only the addressee block is encoded per recipient."""
        if parts.fixed_text is None:  # ISO-2022-JP: each line encoded on its own
            return _encode_text(self.text_for(recipient), self.charset)
        head = self._addressee_head(recipient).replace("\n", CRLF).encode("utf-8")
        return _UTF8_TEXT_HEADERS, parts.base64_after(head)

    def stamp(
        self,
        recipient: Recipient,
        *,
        message_id: str,
        bounce_address: str,
        list_unsubscribe: str | None = None,
        date: dt.datetime | None = None,
    ) -> bytes:
        """One recipient's complete RFC 5322 message (CRLF line ends), ready for SMTP DATA."""
        parts = self._fixed_parts()
        head, tail = parts.headers, parts.tail
        _check_header_value("To", recipient.email)
        _check_header_value("Message-ID", message_id)
        _check_header_value("bounce address", bounce_address)
        if date is not None and date.tzinfo is None:
            raise ValueError("date must be timezone-aware")
        mid = message_id.strip()
        if not mid.startswith("<"):
            mid = f"<{mid}>"
        lines = [
            f"To: {recipient.email}",
            f"Date: {email.utils.format_datetime(date) if date else _DATE.now()}",
            f"Message-ID: {mid}",
            f"X-Isseimail-Bounce: <{bounce_address}>",  # lets a bounce that quotes only headers be matched
        ]
        if list_unsubscribe:
            value = list_unsubscribe_header(list_unsubscribe)
            lines.append(f"List-Unsubscribe: {value}")
            if "<https://" in value:
                lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")  # RFC 8058
        per_recipient = (CRLF.join(lines) + CRLF).encode("ascii")
        text_headers, text_body = self._text_part(recipient, parts)
        if self.boundary is None:
            return b"".join((per_recipient, head, text_headers.encode("ascii"), CRLF.encode(), text_body))
        opening = f"{CRLF}--{self.boundary}{CRLF}{text_headers}{CRLF}".encode("ascii")
        return b"".join((per_recipient, head, opening, text_body, tail))


_B64_LINE = 57  # input bytes per 76-character base64 line (base64.encodebytes)


@dataclasses.dataclass
class _FixedParts:
    """A template's bytes that every recipient shares. In UTF-8 the text part is base64 of (addressee block +
    fixed text); base64 lines are 57 input bytes each, so once the per-recipient bytes are topped up to a
    multiple of 57 from the start of the fixed text, the rest's lines are the same for every recipient whose
    block leaves the same remainder: at most 57 encodings of the fixed text, each made once."""

    headers: bytes
    tail: bytes
    fixed_text: bytes | None  # the CRLF-encoded UTF-8 body and sender block; None for ISO-2022-JP
    _rest: dict[int, bytes] = dataclasses.field(default_factory=dict)

    def base64_after(self, head: bytes) -> bytes:
        """Exactly `_base64_lines(head + fixed_text)`, with only the head's lines encoded per call."""
        assert self.fixed_text is not None
        top_up = -len(head) % _B64_LINE
        rest = self._rest.get(top_up)
        if rest is None:
            rest = self._rest[top_up] = _base64_lines(self.fixed_text[top_up:])
        return _base64_lines(head + self.fixed_text[:top_up]) + rest


class _SecondClock:
    """The Date header of "now", formatted once per second (format_datetime was ~5 % of a worker's time)."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._text = email.utils.format_datetime(dt.datetime.fromtimestamp(second, JST))
            self._second = second
        return self._text


_DATE = _SecondClock()


# --- rendering ------------------------------------------------------------------------------------


def render_campaign(
    sender_email: str,
    sender_name: str,
    subject: str,
    body: str,
    charset: Charset = "utf-8",
    attachments: list[tuple[str, bytes]] | None = None,
    *,
    boundary: str | None = None,
    content_type: str = "application/pdf",
) -> CampaignTemplate:
    """Encode everything that is the same for every recipient; raises ValueError for unsafe input."""
    for field, value in (("From", sender_email), ("sender name", sender_name), ("Subject", subject)):
        _check_header_value(field, value)
    if not sender_email.isascii() or "@" not in sender_email or any(c in sender_email for c in ' <>,;"'):
        raise ValueError("sender address must be one plain ASCII address")
    # Address parsers collapse runs of spaces in a display name; collapse them here so what is shown matches.
    sender_name = re.sub(" {2,}", " ", unicodedata.normalize("NFC", sender_name))
    subject = unicodedata.normalize("NFC", subject)
    body = normalise_text(body)
    if charset == "iso-2022-jp":
        sender_name, subject, body = (v.translate(JIS_VARIANTS) for v in (sender_name, subject, body))
    files = attachments or []
    parts = [_attachment_part(name, data, content_type) for name, data in files]
    if files:
        boundary = boundary or f"=_isseimail_{secrets.token_hex(16)}"
        if not re.fullmatch(r"[0-9A-Za-z'()+_,\-./:=?]{1,69}", boundary):
            raise ValueError("invalid MIME boundary")
    else:
        boundary = None
    # One encoded-word for the display name, even past RFC 2047's 75 characters: a name split into
    # several words comes back with spaces inserted by Python's address parser (and others like it).
    display = encode_header_text(sender_name, charset, plain_ok=False, word_bytes=1000)
    headers = [
        f"From: {display} <{sender_email}>",
        f"Reply-To: {display} <{sender_email}>",
        f"Subject: {encode_header_text(subject, charset)}",
        "MIME-Version: 1.0",
    ]
    if boundary is not None:
        headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
    template = CampaignTemplate(
        charset=charset,
        sender_email=sender_email,
        sender_name=sender_name,
        subject=subject,
        body=body,
        fixed_headers=CRLF.join(headers) + CRLF,
        boundary=boundary,
        attachments=parts,
    )
    # Encode one message now: a character the charset cannot carry fails here, not at send time.
    _encode_text(template.text_for(Recipient(row=0, email=sender_email, contact=sender_name)), charset)
    return template


def normalise_text(text: str) -> str:
    """NFC, LF line ends (a CRLF is one line break), no trailing whitespace at the very end."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return text.rstrip()


def addressee_block(recipient: Recipient) -> str:
    """会社名, 部署名1, 部署名2, ご担当者名 + 様 (none after 各位/皆様); empty fields leave no blank lines."""
    lines = [_one_line(v) for v in (recipient.company, recipient.department1, recipient.department2)]
    contact = _one_line(recipient.contact)
    if contact:
        lines.append(contact if contact.endswith(NO_HONORIFIC_SUFFIXES) else f"{contact} 様")
    return "\n".join(line for line in lines if line)


def jis_safe(text: str) -> str:
    """Text ISO-2022-JP can carry: Windows variants mapped, anything else outside JIS X 0208 as 〓 (geta).

    The composer refuses such characters in the campaign's own fields and warns about them in the list;
    this keeps one odd CSV cell from making a recipient's message impossible to send.
    """
    text = text.translate(JIS_VARIANTS)
    try:
        text.encode("iso-2022-jp")
    except UnicodeEncodeError:
        return "".join(c if _jis_ok(c) else "\u3013" for c in text)
    return text


def _jis_ok(char: str) -> bool:
    try:
        char.encode("iso-2022-jp")
    except UnicodeEncodeError:
        return False
    return True


def _one_line(value: str) -> str:
    return " ".join(unicodedata.normalize("NFC", value).split())


def list_unsubscribe_header(value: str) -> str:
    """'mailto:a@b, https://x' or '<mailto:a@b>, <https://x>' -> the bracketed header value."""
    _check_header_value("List-Unsubscribe", value)
    items = [item.strip().strip("<>").strip() for item in value.split(",")]
    uris = [item for item in items if item]
    if not uris or not all(u.startswith(("mailto:", "https://", "http://")) and u.isascii() for u in uris):
        raise ValueError("List-Unsubscribe takes mailto: and https:// URIs")
    return ", ".join(f"<{u}>" for u in uris)


def new_message_id(domain: str) -> str:
    """A globally unique Message-ID on `domain` (angle brackets included)."""
    return f"<{uuid.uuid4().hex}@{domain}>"


# --- encoders -------------------------------------------------------------------------------------


def _check_header_value(field: str, value: str) -> None:
    if _HEADER_BREAK.search(value):
        raise ValueError(f"{field} contains a line break or control character")


def _charset_bytes(text: str, charset: Charset) -> bytes:
    try:
        return text.encode(charset)
    except UnicodeEncodeError as exc:
        raise ValueError(f"character {text[exc.start]!r} cannot be sent as {charset}") from None


def encode_header_text(text: str, charset: Charset, *, plain_ok: bool = True, word_bytes: int = _WORD_BYTES) -> str:
    """RFC 2047 B-encoded words (folded), or the text itself when it is short printable ASCII."""
    if plain_ok and _PLAIN_HEADER.match(text) and "=?" not in text:
        return text
    if not text:
        return '""' if not plain_ok else ""
    mime = _MIME_CHARSET[charset]
    words: list[str] = []
    chunk = ""
    for char in text:
        # Each word is encoded on its own, so an ISO-2022-JP word starts and ends in ASCII mode.
        if chunk and len(_charset_bytes(chunk + char, charset)) > word_bytes:
            words.append(chunk)
            chunk = ""
        chunk += char
    words.append(chunk)
    encoded = [f"=?{mime}?B?{base64.b64encode(_charset_bytes(w, charset)).decode()}?=" for w in words]
    return f"{CRLF} ".join(encoded)


def _text_headers(mime: str, transfer_encoding: str) -> str:
    """The text part's Content-Type and Content-Transfer-Encoding lines (CRLF-terminated)."""
    return f'Content-Type: text/plain; charset="{mime}"{CRLF}Content-Transfer-Encoding: {transfer_encoding}{CRLF}'


_UTF8_TEXT_HEADERS = _text_headers("UTF-8", "base64")  # stamp()'s UTF-8 path: the same lines as _encode_text's


def _encode_text(text: str, charset: Charset) -> tuple[str, bytes]:
    """The text part's headers (CRLF-terminated lines) and its encoded body."""
    lines = text.split("\n")
    mime = _MIME_CHARSET[charset]
    if charset == "iso-2022-jp":
        # Each line encoded on its own ends in ASCII mode before the CRLF, as RFC 1468 requires.
        encoded = [_charset_bytes(line, charset) for line in lines]
        if all(len(line) <= MAX_LINE_OCTETS for line in encoded):
            return _text_headers(mime, "7bit"), b"\r\n".join(encoded)
        raw = b"\r\n".join(encoded)
    else:
        raw = CRLF.join(lines).encode("utf-8")
    return _text_headers(mime, "base64"), _base64_lines(raw)


def _base64_lines(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _rfc2231_params(name: str, value: str) -> str:
    """`name*0*=UTF-8''...; name*1*=...` folded on separate lines, each line under 78 characters."""
    encoded = quote(value, safe="")
    if len(encoded) + len(name) < 60:
        return f"{name}*=UTF-8''{encoded}"
    pieces: list[str] = []
    rest = encoded
    while rest:
        cut = min(48, len(rest))
        escape = rest.rfind("%", 0, cut)
        if cut < len(rest) and escape > cut - 3:  # never split a %XX escape
            cut = escape
        pieces.append(rest[:cut])
        rest = rest[cut:]
    params = [f"{name}*{i}*={'UTF-8' + chr(39) * 2 if i == 0 else ''}{p}" for i, p in enumerate(pieces)]
    return f";{CRLF} ".join(params)


def _attachment_part(filename: str, data: bytes, content_type: str) -> AttachmentPart:
    _check_header_value("attachment file name", filename)
    filename = unicodedata.normalize("NFC", filename)
    if not filename or "/" in filename or "\\" in filename:
        raise ValueError("attachment file name must be a plain name")
    headers = (
        f"Content-Type: {content_type};{CRLF} {_rfc2231_params('name', filename)}{CRLF}"
        f"Content-Disposition: attachment;{CRLF} {_rfc2231_params('filename', filename)}{CRLF}"
        f"Content-Transfer-Encoding: base64{CRLF}{CRLF}"
    )
    body = _base64_lines(data).decode("ascii").removesuffix(CRLF)
    return AttachmentPart(filename=filename, size=len(data), content_type=content_type, mime=headers + body)

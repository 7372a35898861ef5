"""System-mail texts as Jinja2 templates (package data in templates/mail/): one file per mail, with a
`subject` block and a `body` block; files starting with "_" are parts that mails include.

Text parts are not escaped (text/plain has nothing to escape); an .html template would be (autoescape by
extension). StrictUndefined: a variable a template names but the caller forgot is an error, not an empty
string in a mail. The rendered subject is collapsed to one line whatever the template or the data hold,
so no CR/LF (nor any other line break) from user text can reach a header.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from isseimail_notifier.reasons import japanese, japanese_advice

TEMPLATES = "templates/mail"
SUBJECT_LIMIT = 998  # RFC 5322's line limit: a bound, not a layout (the header is folded when encoded)
_WEEKDAYS = "月火水木金土日"


@dataclass(frozen=True)
class MailText:
    subject: str
    body: str


class _Row(Protocol):
    @property
    def row_number(self) -> int | None: ...


class _Failure(_Row, Protocol):
    @property
    def source(self) -> str: ...
    @property
    def status(self) -> str | None: ...
    @property
    def smtp_code(self) -> int | None: ...


def one_line(text: str, limit: int = 200) -> str:
    """User or remote text inside a mail: one line, bounded (no line breaks that could fake extra lines)."""
    return " ".join(text.split())[:limit]


def japanese_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日（{_WEEKDAYS[day.weekday()]}）"


def local_time(moment: dt.datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def row_label(line: _Row) -> str:
    """Where the recipient stood in the uploaded CSV."""
    return f"{line.row_number} 行目" if line.row_number else "不明"


def source_label(line: _Failure) -> str:
    """How the failure was found: "smtp" (refused while sending) or "bounce" (returned later)."""
    return "送信時に相手先サーバが拒否" if line.source == "smtp" else "送信後に返送（バウンス）"


def error_code(line: _Failure) -> str:
    parts = [str(line.smtp_code)] if line.smtp_code else []
    if line.status:
        parts.append(line.status)
    return " ".join(parts) or "なし"


class _StrictUndefined(StrictUndefined):
    """StrictUndefined in a slice too (`lines[:limit]`): Python asks for __index__, which would be a TypeError."""

    __slots__ = ()
    __index__ = StrictUndefined._fail_with_undefined_error


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("isseimail_notifier", TEMPLATES),
        undefined=_StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html", "htm"), default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        one_line=one_line,
        japanese_date=japanese_date,
        local_time=local_time,
        row_label=row_label,
        source_label=source_label,
        error_code=error_code,
        reason_text=japanese,
        reason_advice=japanese_advice,
    )
    return env


ENV = _environment()


def render(template: str, /, **context: object) -> MailText:
    """The subject and body of the mail `template` (a file of templates/mail/) for these values."""
    loaded = ENV.get_template(template)
    ctx = loaded.new_context(context)
    subject = "".join(loaded.blocks["subject"](ctx))
    body = "".join(loaded.blocks["body"](ctx))
    return MailText(subject=one_line(subject, SUBJECT_LIMIT), body=body)

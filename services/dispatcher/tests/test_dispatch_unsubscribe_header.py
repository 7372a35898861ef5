"""List-Unsubscribe: a mailto: on the bounce domain always, the one-click URL only for an https public URL."""

from __future__ import annotations

import uuid

from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_dispatcher.unsubscribe_header import list_unsubscribe
from isseimail_shared.unsubscribe import read_token, token_of_address, verify

CAMPAIGN = uuid.uuid4()


def _header(public_url: str | None) -> str:
    return list_unsubscribe(
        b"k",
        bounce_domain="bounce.example.jp",
        public_url=public_url,
        campaign_id=CAMPAIGN,
        delivery_id=42,
        recipient="Taro@Example.co.jp",
        sender_email="koho@Corp.Example.jp",
    )


def test_mailto_only_without_an_https_public_url() -> None:
    """No public URL, or an http:// one, gives the mailto: alone (RFC 8058 needs HTTPS)."""
    for url in (None, "http://127.0.0.1:8080"):
        header = _header(url)
        assert header.startswith("mailto:unsubscribe+")
        assert "," not in header
        token = token_of_address(header.removeprefix("mailto:"), "bounce.example.jp")
        assert token is not None
        ref = read_token(token)
        assert ref is not None
        assert ref.delivery_id == 42
        assert verify(b"k", ref, "taro@example.co.jp", "corp.example.jp")


def test_https_public_url_adds_the_one_click_url_with_the_same_token() -> None:
    """The https URL (trailing slash or not) carries the same token as the mailto:."""
    mailto, url = _header("https://mail.example.jp/").split(", ")
    token = url.removeprefix("https://mail.example.jp/unsubscribe/")
    assert mailto == f"mailto:unsubscribe+{token}@bounce.example.jp"
    assert _header("https://mail.example.jp") == _header("https://mail.example.jp/")


def test_public_url_setting_reads_the_shared_variable() -> None:
    """ISSEIMAIL_PUBLIC_URL is the setting; its default (http, for a local set-up) gives the mailto: only."""
    assert "," not in _header(DispatcherSettings().public_url)
    assert DispatcherSettings(public_url="https://mail.example.jp").public_url == "https://mail.example.jp"

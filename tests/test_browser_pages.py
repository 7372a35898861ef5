"""The web UI in a real browser (Debian's chromium), gateway alone: layout, counters, no script errors."""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from typing import Any

import pytest

from isseimail_gateway.app import create_app
from isseimail_gateway.settings import GatewaySettings
from isseimail_testing.browser import PageWatch, chromium, new_page, screenshot
from isseimail_testing.http import serving_service
from isseimail_testing.process import free_port

PAGES = {"home": "/", "rules": "/rules", "apply": "/apply", "login": "/login", "admin-login": "/admin/login"}


@pytest.fixture
async def gateway_url() -> AsyncIterator[str]:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = GatewaySettings(
        session_secret="browser-test-secret",
        pass_url=dead,
        list_validator_url=dead,
        composer_url=dead,
        dispatcher_url=dead,
        notifier_url=dead,
    )
    async with serving_service(create_app(settings)) as url:
        yield url


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as b:
        yield b


@pytest.mark.parametrize(("width", "label"), [(1280, "desktop"), (360, "narrow")])
async def test_pages_load_cleanly_and_fit_the_screen(gateway_url: str, browser: Any, width: int, label: str) -> None:
    """Each page loads with no JS error or CSP violation, in Japanese fonts, without sideways scrolling."""
    watch = PageWatch()
    page = await new_page(browser, watch, viewport={"width": width, "height": 900})
    for name, path in PAGES.items():
        response = await page.goto(gateway_url + path)
        assert response is not None
        assert response.status == 200, path
        assert await page.evaluate("document.documentElement.lang") == "ja"
        assert await page.evaluate("document.documentElement.scrollWidth") <= width, f"{path} overflows at {width}px"
        family = await page.evaluate("getComputedStyle(document.body).fontFamily")
        assert "Noto Sans CJK JP" in family
        await screenshot(page, f"pages-{label}-{name}")
        await watch.check(page)


async def test_japanese_is_drawn_with_the_installed_noto_cjk_font(gateway_url: str, browser: Any) -> None:
    """Text set in Noto Sans CJK JP measures differently from the bare fallback: the font is really installed
    (fonts-noto-cjk), so screenshots show Japanese, not empty boxes."""
    watch = PageWatch()
    page = await new_page(browser, watch)
    await page.goto(gateway_url + "/rules")
    widths = await page.evaluate(
        """() => {
            const c = document.createElement('canvas').getContext('2d');
            const text = '1DayPass 一斉メール Wide';
            c.font = '20px "Noto Sans CJK JP", monospace'; const noto = c.measureText(text).width;
            c.font = '20px monospace'; const fallback = c.measureText(text).width;
            return [noto, fallback];
        }"""
    )
    assert widths[0] != widths[1], f"Noto Sans CJK JP is not installed (same width as monospace: {widths})"
    await watch.check(page)


async def test_every_input_has_a_label(gateway_url: str, browser: Any) -> None:
    """Every visible form control is tied to a <label> (screen readers announce what to type)."""
    watch = PageWatch()
    page = await new_page(browser, watch)
    for path in ("/apply", "/login", "/admin/login"):
        await page.goto(gateway_url + path)
        unlabeled = await page.evaluate(
            """Array.from(document.querySelectorAll('input:not([type=hidden]), textarea, select'))
                 .filter(el => !el.labels || el.labels.length === 0).map(el => el.name)"""
        )
        assert unlabeled == [], f"{path}: {unlabeled}"
    await watch.check(page)


async def test_character_counter_counts_like_the_server(gateway_url: str, browser: Any) -> None:
    """The counter counts NFC code points (a decomposed é is 1, an emoji is 1, CRLF is 1) and flags overflow."""
    watch = PageWatch()
    page = await new_page(browser, watch)
    await page.goto(gateway_url + "/apply")
    name = "Cafe\u0301 😀 山田"
    await page.fill("#f-applicant_name", name)
    expected = len(unicodedata.normalize("NFC", name))
    assert expected == 9
    assert await page.inner_text("#f-applicant_name-count .counter__n") == str(expected)
    assert await page.evaluate("window.isseimailCountChars('a\\r\\nb\\rc\\nd')") == 7
    await page.fill("#f-applicant_name", "あ" * 101)
    assert await page.inner_text("#f-applicant_name-count .counter__n") == "101"
    assert "is-over" in (await page.get_attribute("#f-applicant_name-count", "class") or "")
    await page.fill("#f-purpose", "一行目\n二行目")
    assert await page.inner_text("#f-purpose-count .counter__n") == "7"
    await watch.check(page)


async def test_a_service_outage_is_a_japanese_page_in_the_browser(gateway_url: str, browser: Any) -> None:
    """Submitting the login form while the pass service is down shows a Japanese error page, no script error."""
    watch = PageWatch()
    page = await new_page(browser, watch)
    await page.goto(gateway_url + "/login")
    await page.fill("#f-user_id", "123456")
    await page.fill("#f-password", "secret-password")
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    assert "ただいま処理できません" in await page.inner_text("main")
    assert "secret-password" not in await page.content()
    await watch.check(page)

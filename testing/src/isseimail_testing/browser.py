"""Browser tests: serve apps on real loopback sockets and drive Debian's chromium with Playwright.

    async with serving_service(create_app(settings)) as base_url, browser() as b:
        page = await new_page(b, watch)  # watch collects JS errors and CSP violations

Never `playwright install`: the browser is the distribution's /usr/bin/chromium.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--lang=ja-JP"]
ROOT = Path(__file__).resolve().parents[3]  # testing/src/isseimail_testing/browser.py -> the repository
SCREENSHOTS = ROOT / "var" / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
# ISSEIMAIL_DOCS_SCREENSHOTS=1: the shots the README shows are refreshed in docs/screenshots as well.
REFRESH_DOCS = "ISSEIMAIL_DOCS_SCREENSHOTS"

# Runs before any page script (not subject to the page's CSP): records every CSP violation.
_CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


@dataclass
class PageWatch:
    """What went wrong in the pages of one test: uncaught JS errors, console errors, CSP violations."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        # A document answered with a 4xx (a refused login, a validation error) is logged as a failed
        # load; that is the page working as designed. Sub-resources are checked in _response instead.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"console: {message.text}")

    def _response(self, response: Any) -> None:
        if response.request.resource_type in ("stylesheet", "script", "image", "font") and response.status >= 400:
            self.errors.append(f"asset {response.url} answered {response.status}")

    async def check(self, page: Any) -> None:
        """Fail if the current page recorded a CSP violation, or any page had a JS/asset error."""
        with contextlib.suppress(Exception):  # a page in the middle of navigating has no window yet
            violations = await page.evaluate("window.__cspViolations || []")
            self.errors.extend(f"CSP violation: {v}" for v in violations)
        assert not self.errors, self.errors


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """Headless Debian chromium driven by Playwright."""
    from playwright.async_api import async_playwright  # imported here: only browser tests need it

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def new_page(browser: Any, watch: PageWatch, **context_options: Any) -> Any:
    context = await browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", **context_options)
    await context.add_init_script(_CSP_WATCH)
    page = await context.new_page()
    watch.attach(page)
    return page


async def screenshot(page: Any, name: str, docs: str | None = None) -> Path:
    """Save a full-page screenshot under var/screenshots/ (test artifacts, not committed); with `docs` and
    ISSEIMAIL_DOCS_SCREENSHOTS=1 also as docs/screenshots/<docs>.png (committed, shown in the README)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    if docs and os.environ.get(REFRESH_DOCS) == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / f"{docs}.png")
    return path

"""The one exception the web pages raise to show the user an error page instead of JSON."""

from __future__ import annotations


class WebError(Exception):
    """A problem to show the user as a page: the message is Japanese and safe to display."""

    def __init__(self, status_code: int, message: str, back: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.back = back

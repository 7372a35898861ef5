"""Internal URLs built from user text: each piece becomes exactly one path segment.

`segment()` percent-encodes everything but unreserved characters ("/", "?", "#", "%", controls included),
and refuses the empty segment and the dot segments an HTTP client would collapse ("." and ".."), so no
input can move a call to another route or add a query string.
"""

from __future__ import annotations

from urllib.parse import quote


def segment(value: str) -> str:
    if value in ("", ".", ".."):
        raise ValueError("not usable as a path segment")
    return quote(value, safe="")


def internal_path(prefix: str, *segments: str) -> str:
    """`prefix` (a literal of the caller's, like "/internal/lists") followed by the encoded segments."""
    return "/".join([prefix.rstrip("/"), *(segment(s) for s in segments)])

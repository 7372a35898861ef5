"""Internal paths from user text (issue 18 #5): one segment each, whatever the text."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from isseimail_shared.paths import internal_path, segment


@given(st.text(min_size=1, max_size=60).filter(lambda t: t not in (".", "..")))
def test_any_text_stays_one_segment_of_the_route(text: str) -> None:
    """The URL an HTTP client builds keeps the route: same prefix, one more segment, no query, no fragment."""
    url = httpx.URL("http://service" + internal_path("/internal/lists", text, "rows"))
    assert url.query == b""
    assert url.fragment == ""
    parts = url.raw_path.decode().split("/")
    assert parts[:3] == ["", "internal", "lists"]
    assert parts[-1] == "rows"
    assert len(parts) == 5


@pytest.mark.parametrize("bad", ["", ".", ".."])
def test_dot_and_empty_segments_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="path segment"):
        segment(bad)


def test_hostile_examples_are_encoded() -> None:
    assert internal_path("/internal/suppressions", "a/../b?x=1#f") == "/internal/suppressions/a%2F..%2Fb%3Fx%3D1%23f"
    assert internal_path("/internal/lists", "\x00") == "/internal/lists/%00"

"""The organisational domain of RFC 7489 3.2: the public suffix (Public Suffix List, ICANN and private
sections) plus one label. The list ships inside the `publicsuffixlist` package and is read from the
installed file only: nothing is fetched at run time (a new list comes with a package upgrade)."""

from __future__ import annotations

import functools

from publicsuffixlist import PublicSuffixList


@functools.cache
def _psl() -> PublicSuffixList:
    return PublicSuffixList()  # parses the bundled public_suffix_list.dat once (~0.1 s)


def organizational_domain(domain: str) -> str:
    """example.co.jp for mail.example.co.jp; city.kawasaki.jp (an exception rule) for itself; b.github.io
    for a.b.github.io (a private suffix). A name that is itself a public suffix is its own."""
    name = domain.strip().rstrip(".").lower()
    return _psl().privatesuffix(name) or name

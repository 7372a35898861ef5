"""Values tests send with their calls: the internal token of the test system, the API client's header."""

from __future__ import annotations

from isseimail_shared.internal_auth import HEADER

INTERNAL_TOKEN = "test-internal-token"  # noqa: S105 - service-to-service token for tests only
INTERNAL_HEADERS = {HEADER: INTERNAL_TOKEN}  # what a test sends when it calls an internal API itself
# What every program calling the gateway's JSON API sends (state-changing calls without it are refused as
# cross-site, see the gateway's api_csrf.py).
API_CLIENT_HEADERS = {"X-Isseimail-CSRF": "1"}

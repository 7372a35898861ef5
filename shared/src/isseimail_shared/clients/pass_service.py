"""The pass-service's internal API, typed (isseimail_shared.contracts.pass_service)."""

from __future__ import annotations

import uuid

import httpx

from isseimail_shared.clients.base import InternalClient
from isseimail_shared.contracts.pass_service import ConsumeOut, PassOut, RevokeOut, SessionOut


class PassClient(InternalClient):
    service = "pass-service"

    async def get_pass(self, pass_id: int) -> PassOut | None:
        return await self.call("GET", f"/internal/passes/{pass_id}", PassOut, none_on=frozenset({404}))

    async def consume(self, pass_id: int, campaign_id: uuid.UUID | str) -> httpx.Response:
        """The raw answer: 200 won, 404 unknown, 409 失効 (the caller maps each); never retried."""
        return await self.request("POST", f"/internal/passes/{pass_id}/consume", json={"campaign_id": str(campaign_id)})

    @staticmethod
    def won(response: httpx.Response) -> bool:
        return response.status_code == 200 and ConsumeOut.model_validate_json(response.content).won

    async def lookup_session(self, session_id: str) -> SessionOut | None:
        """The session, or None when it is unknown, revoked or expired (404)."""
        body = {"session_id": session_id}
        return await self.call("POST", "/internal/sessions/lookup", SessionOut, none_on=frozenset({404}), json=body)

    async def revoke_session(self, session_id: str) -> bool:
        found = await self.fetch("POST", "/internal/sessions/revoke", RevokeOut, json={"session_id": session_id})
        return found.revoked

"""/internal/dkim: the DKIM keys of a sender domain (read by the composer's domain-readiness check) and the
administrator's generate and rotate actions (through the gateway). Never a private key in any answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import field_validator

from isseimail_dispatcher import dkim_store
from isseimail_dispatcher.dkim_keys import DkimKeyError, check_selector, normalize_domain, parse_algorithm
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_shared.app import Db, held
from isseimail_shared.contracts.dispatcher import (
    DkimGenerated,
    DkimGenerateRequest,
    DkimKeys,
    DkimRotated,
    DkimRotateRequest,
)

router = APIRouter(prefix="/internal/dkim", tags=["internal"])


SettingsDep = Annotated[DispatcherSettings, Depends(held(DispatcherSettings))]


def _parse_algorithm(value: object) -> object:
    return parse_algorithm(value) if isinstance(value, str) else value


class GenerateRequest(DkimGenerateRequest):
    """The contract's body, with the algorithm's short names and the selector's rules."""

    _algorithm = field_validator("algorithm", mode="before")(_parse_algorithm)

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        return check_selector(value) if value else None


class RotateRequest(DkimRotateRequest):
    _algorithm = field_validator("algorithm", mode="before")(_parse_algorithm)


def _domain(domain: str) -> str:
    if len(domain) > 253:
        raise DkimKeyError("ドメイン名が正しくありません。")
    return normalize_domain(domain)


@router.get("/{domain}")
async def keys(domain: str, db: Db, settings: SettingsDep) -> DkimKeys:
    name = _domain(domain)
    async with db.acquire() as conn:
        found = await dkim_store.published_keys(conn, settings, name)
    return DkimKeys(domain=name, keys=[k.contract() for k in found])


@router.post("/{domain}/keys", status_code=201)
async def generate(domain: str, body: GenerateRequest, db: Db, settings: SettingsDep) -> DkimGenerated:
    key = await dkim_store.generate_key(db, settings, _domain(domain), body.algorithm, body.selector)
    return DkimGenerated(domain=key.domain, key=key.contract())


@router.post("/{domain}/rotate")
async def rotate(domain: str, db: Db, settings: SettingsDep, body: RotateRequest | None = None) -> DkimRotated:
    body = body or RotateRequest()
    activated = await dkim_store.rotate(db, settings, _domain(domain), body.algorithm, check_dns=not body.force)
    async with db.acquire() as conn:
        found = await dkim_store.published_keys(conn, settings, activated[0].domain)
    return DkimRotated(
        domain=activated[0].domain,
        activated=[k.selector for k in activated],
        keys=[k.contract() for k in found],
    )

"""/internal/dkim: the DKIM keys of a sender domain (read by the composer's domain-readiness check) and the
administrator's generate and rotate actions (through the gateway). Never a private key in any answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from isseimail_dispatcher import dkim_store
from isseimail_dispatcher.dkim_keys import Algorithm, DkimKeyError, check_selector, normalize_domain, parse_algorithm
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_shared.app import Db, held
from isseimail_shared.errors import INVALID_INPUT, install_validation_handler

router = APIRouter(prefix="/internal/dkim", tags=["internal"])


SettingsDep = Annotated[DispatcherSettings, Depends(held(DispatcherSettings))]


def _parse_algorithm(value: object) -> object:
    return parse_algorithm(value) if isinstance(value, str) else value


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    algorithm: Algorithm = "rsa-sha256"  # "rsa" / "ed25519" accepted too
    selector: str | None = Field(default=None, max_length=63)

    _algorithm = field_validator("algorithm", mode="before")(_parse_algorithm)

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        return check_selector(value) if value else None


class RotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    algorithm: Algorithm | None = None
    force: bool = False  # promote even when the TXT record does not resolve yet (audited by the caller)

    _algorithm = field_validator("algorithm", mode="before")(_parse_algorithm)


def _domain(domain: str) -> str:
    if len(domain) > 253:
        raise DkimKeyError("ドメイン名が正しくありません。")
    return normalize_domain(domain)


@router.get("/{domain}")
async def keys(domain: str, db: Db, settings: SettingsDep) -> dict[str, Any]:
    name = _domain(domain)
    async with db.acquire() as conn:
        found = await dkim_store.published_keys(conn, settings, name)
    return {"domain": name, "keys": [k.as_json() for k in found]}


@router.post("/{domain}/keys", status_code=201)
async def generate(domain: str, body: GenerateRequest, db: Db, settings: SettingsDep) -> dict[str, Any]:
    key = await dkim_store.generate_key(db, settings, _domain(domain), body.algorithm, body.selector)
    return {"domain": key.domain, "key": key.as_json()}


@router.post("/{domain}/rotate")
async def rotate(domain: str, db: Db, settings: SettingsDep, body: RotateRequest | None = None) -> dict[str, Any]:
    body = body or RotateRequest()
    activated = await dkim_store.rotate(db, settings, _domain(domain), body.algorithm, check_dns=not body.force)
    async with db.acquire() as conn:
        found = await dkim_store.published_keys(conn, settings, activated[0].domain)
    return {
        "domain": activated[0].domain,
        "activated": [k.selector for k in activated],
        "keys": [k.as_json() for k in found],
    }


def install_error_handler(app: FastAPI) -> None:
    install_validation_handler(app, INVALID_INPUT)

    @app.exception_handler(DkimKeyError)
    async def dkim_error(request: Request, exc: DkimKeyError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

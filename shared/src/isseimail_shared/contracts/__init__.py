"""Wire contracts of the services' internal HTTP APIs: one module per owning service.

Each module holds the pydantic request and response models of its service's `/internal/` routes, the NDJSON
line models of its streams, and `ENDPOINTS`, the list that `scripts/internal_api_doc.py` turns into
docs/internal-api.md. The owner uses the models as return types (FastAPI's response_model); callers parse
answers into them through the typed clients of `isseimail_shared.clients`. Services never import each other:
what two services share on the wire lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel


@dataclass(frozen=True)
class Endpoint:
    """One internal route as the documentation lists it; the prose says what the models cannot."""

    method: str
    path: str
    doc: str
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    ndjson: type[BaseModel] | None = None  # the line model of a streamed answer
    extra: tuple[type[BaseModel], ...] = field(default=())  # further models worth listing (nested, variants)


@dataclass(frozen=True)
class ServiceContract:
    name: str
    port: int
    intro: str
    endpoints: tuple[Endpoint, ...]

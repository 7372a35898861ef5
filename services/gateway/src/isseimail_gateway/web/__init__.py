"""The server-rendered web UI (Japanese): the applicant's eight steps and the administrator's pages."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)

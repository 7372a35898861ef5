"""Gateway JSON API: campaign progress read from the dispatcher (under /api/v1)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["progress"])

"""The JSON API under /api/v1, one router per step of the flow."""

from fastapi import APIRouter

from isseimail_gateway.api import admin, campaigns, estimate, lists, passes, progress

ROUTERS: list[APIRouter] = [
    passes.router,
    admin.router,
    lists.router,
    campaigns.router,
    progress.router,
    estimate.router,
]

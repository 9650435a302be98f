"""Every admin page under ``/admin``: the one ``APIRouter`` the web server mounts."""

from __future__ import annotations

from fastapi import APIRouter

from daemon.web.admin import (
    access,
    dead_pages,
    delivery_pages,
    lead_pages,
    response_pages,
    source_pages,
)
from daemon.web.admin.site import PREFIX, Admin


def admin_router(admin: Admin) -> APIRouter:
    """All admin routes, under ``PREFIX`` already."""
    r = APIRouter()
    for module in (access, lead_pages, dead_pages, delivery_pages, source_pages, response_pages):
        # HTML pages behind a login: not part of the API that /openapi.json describes
        r.include_router(module.routes(admin), prefix=PREFIX, include_in_schema=False)
    return r

"""Browser pages of exports and the jobs centre (placeholder until they land)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Redirect
from litestar.types import ControllerRouterHandler

from app.accounts.auth import verified_guard


class JobsPages(Controller):
    path = "/jobs"
    guards = [verified_guard]

    @get("/", name="jobs")
    async def index(self) -> Redirect:
        return Redirect("/customers")


export_route_handlers: list[ControllerRouterHandler] = [JobsPages]

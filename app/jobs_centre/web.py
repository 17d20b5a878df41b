"""The jobs centre `/jobs` (placeholder until it lands)."""

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


jobs_centre_route_handlers: list[ControllerRouterHandler] = [JobsPages]

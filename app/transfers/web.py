"""Browser pages of imports (placeholder until the import pages land)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Redirect
from litestar.types import ControllerRouterHandler

from app.accounts.auth import verified_guard


class ImportPages(Controller):
    path = "/imports"
    guards = [verified_guard]

    @get("/", name="imports")
    async def index(self) -> Redirect:
        return Redirect("/customers")


import_route_handlers: list[ControllerRouterHandler] = [ImportPages]

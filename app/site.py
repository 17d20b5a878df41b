"""The pages that belong to no feature: home, health and readiness."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Controller, Request, get
from litestar.response import Response

from app.lib import db
from app.lib.htmx import render
from app.lib.stores import check_stores

logger = logging.getLogger("crm.readyz")
READY_TIMEOUT = 3.0


class SiteController(Controller):
    include_in_schema = False

    @get("/", name="home")
    async def home(self, request: Request) -> Response[str]:
        return render(request, "home.html")

    @get("/healthz", name="healthz", cache=False)
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", name="readyz", cache=False)
    async def readyz(self, request: Request) -> Response[dict[str, Any]]:
        state = request.app.state
        checks: dict[str, Callable[[], Awaitable[None]]] = {
            "database": lambda: db.ping(state.engine),
            "storage": state.storage.check,
            "jobs": state.jobs.check,
        }
        if state.settings.uses_redis:
            checks["redis"] = lambda: check_stores(request.app.stores)
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), READY_TIMEOUT)
                results[name] = "ok"
            except Exception as error:  # readiness reports any failure, whatever its kind
                logger.warning("readiness check failed", extra={"fields": {"check": name}})
                results[name] = f"down: {type(error).__name__}"
        down = sorted(name for name, result in results.items() if result != "ok")
        body: dict[str, Any] = {"status": "down" if down else "ok", "checks": results}
        if down:
            body["down"] = down
        return Response(body, status_code=503 if down else 200)

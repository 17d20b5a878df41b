"""Admin pages (placeholder until the queue monitor lands)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

admin_route_handlers: list[ControllerRouterHandler] = []

"""Browser pages of exports (placeholder until they land)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

export_route_handlers: list[ControllerRouterHandler] = []

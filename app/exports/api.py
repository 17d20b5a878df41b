"""JSON API of exports (placeholder until it lands)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

export_api_route_handlers: list[ControllerRouterHandler] = []

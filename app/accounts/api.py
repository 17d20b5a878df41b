"""JSON API of accounts (placeholder until the controllers land)."""

from litestar.types import ControllerRouterHandler

api_route_handlers: list[ControllerRouterHandler] = []

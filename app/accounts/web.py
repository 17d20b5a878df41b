"""Browser pages of accounts (placeholder until the controllers land)."""

from litestar.types import ControllerRouterHandler

account_route_handlers: list[ControllerRouterHandler] = []

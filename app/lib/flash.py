"""One-time messages ("Customer saved.") kept in the session until the next page shows them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import pass_context
from litestar.connection import ASGIConnection

KEY = "_flashes"


def flash(connection: ASGIConnection, message: str, category: str = "success") -> None:
    connection.session.setdefault(KEY, []).append({"message": message, "category": category})


@pass_context
def pop_flashes(context: Mapping[str, Any]) -> list[dict[str, str]]:
    request = context.get("request")
    # Pages rendered outside the session middleware (a routing 404) have no session.
    if request is None or "session" not in request.scope:
        return []
    session = request.scope["session"]
    if not isinstance(session, dict):
        return []
    return list(session.pop(KEY, []))

"""Pages and their fragments from one template.

A page's fragments are named blocks of the page's own template. An htmx request (not a
history restore) gets the block; any other request gets the whole page. Both vary on
``HX-Request`` so no cache hands one to the other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from litestar import Request
from litestar.enums import MediaType
from litestar.response import Response
from litestar.utils.empty import value_or_default
from litestar.utils.scope.state import ScopeState
from markupsafe import Markup


def is_htmx(request: Request) -> bool:
    headers = request.headers
    return (
        headers.get("hx-request") == "true" and headers.get("hx-history-restore-request") != "true"
    )


def template_context(request: Request, context: Mapping[str, Any]) -> dict[str, Any]:
    token = value_or_default(ScopeState.from_scope(request.scope).csrf_token, "")
    return {
        **context,
        "request": request,
        "csrf_input": Markup('<input type="hidden" name="_csrf_token" value="{}">').format(token),
    }


def render(
    request: Request,
    template_name: str,
    context: Mapping[str, Any] | None = None,
    *,
    block: str | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    trigger: Mapping[str, Any] | None = None,
) -> Response[str]:
    """Render the page, or only ``block`` of it for htmx.

    ``trigger`` becomes an ``HX-Trigger`` header: events named in the past tense that
    other parts of the page listen for with ``from:body``.
    """
    engine = request.app.template_engine
    if engine is None:
        raise RuntimeError("the app has no template engine configured")
    template = engine.engine.get_template(template_name)
    values = template_context(request, context or {})
    if block is not None and is_htmx(request):
        body = "".join(template.blocks[block](template.new_context(values)))
    else:
        body = template.render(values)
    response_headers = {"Vary": "HX-Request", **(headers or {})}
    if trigger:
        response_headers["HX-Trigger"] = json.dumps(trigger)
    return Response(
        content=body,
        media_type=MediaType.HTML,
        status_code=status_code,
        headers=response_headers,
    )

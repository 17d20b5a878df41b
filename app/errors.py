"""Error responses: a calm page (or JSON for the API) with the request id, never a traceback."""

from __future__ import annotations

import logging
from http import HTTPStatus
from urllib.parse import urlencode

from litestar import Request
from litestar.enums import MediaType
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Response

from app.lib.htmx import render
from app.lib.requests import request_id_of

logger = logging.getLogger("crm.errors")

MESSAGES = {
    404: "We could not find that page. It may have moved, or it was never here.",
    405: "That address does not accept this kind of request.",
    429: "Too many attempts. Wait a minute and try again.",
    500: "Something went wrong on our side. It has been logged.",
}


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.url.path.startswith("/api/") or (
        "application/json" in accept and "text/html" not in accept
    )


def error_response(request: Request, status: int, detail: str | None = None) -> Response:
    request_id = request_id_of(request.scope)
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    message = detail or MESSAGES.get(status, title)
    if wants_json(request):
        return Response(
            {"error": message, "status": status, "request_id": request_id},
            status_code=status,
            media_type=MediaType.JSON,
        )
    try:
        return render(
            request,
            "errors.html",
            {"status": status, "title": title, "message": message, "request_id": request_id},
            status_code=status,
        )
    except Exception:
        # The error page itself failed (a broken template, say): plain text still helps.
        logger.exception("error page failed", extra={"fields": {"request_id": request_id}})
        return Response(
            f"{status} {title}. Request id: {request_id}",
            status_code=status,
            media_type=MediaType.TEXT,
        )


def handle_auth_required(request: Request, exc: HTTPException) -> Response:
    """Browsers are sent where they can fix it; API clients get a JSON error."""
    from app.accounts.auth import LoginRequired

    if wants_json(request):
        response = error_response(request, exc.status_code, exc.detail)
        if isinstance(exc, LoginRequired):
            response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
        return response
    if isinstance(exc, LoginRequired):
        target = request.app.route_reverse("login")
        if request.method == "GET":
            target += "?" + urlencode(
                {"next": request.url.path + (f"?{request.url.query}" if request.url.query else "")}
            )
    else:
        target = request.app.route_reverse("verify_notice")
    if request.headers.get("hx-request") == "true":
        # An htmx request would swap the login page into a fragment: send the whole
        # window there instead.
        return Response(content=None, status_code=204, headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


def handle_http_exception(request: Request, exc: HTTPException) -> Response:
    # Only messages we wrote for people are shown; framework details stay in the log.
    detail = (
        exc.detail
        if exc.status_code < 500 and exc.detail != HTTPStatus(exc.status_code).phrase
        else None
    )
    response = error_response(request, exc.status_code, detail if exc.status_code != 404 else None)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def handle_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception(
        "unhandled error",
        exc_info=exc,
        extra={"fields": {"request_id": request_id_of(request.scope), "path": request.url.path}},
    )
    return error_response(request, 500)

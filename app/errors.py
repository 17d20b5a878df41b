"""Error responses: a calm page (or JSON for the API) with the request id, never a traceback."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlencode

from litestar import Request
from litestar.enums import MediaType
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotFoundException,
    SerializationException,
    ValidationException,
)
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Operation, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.response import Redirect, Response

from app.lib.htmx import render
from app.lib.requests import request_id_of
from app.lib.validation import ValidationFailed

logger = logging.getLogger("crm.errors")

MESSAGES = {
    404: "We could not find that page. It may have moved, or it was never here.",
    405: "That address does not accept this kind of request.",
    429: "Too many attempts. Wait a minute and try again.",
    500: "Something went wrong on our side. It has been logged.",
    503: "The service is not available for a moment. Try again in a few seconds.",
}

# The largest BIGINT: no row has an id beyond it, and both databases refuse such a parameter.
MAX_ROW_ID = 2**63 - 1


async def refuse_impossible_ids(request: Request) -> None:
    """An id in the path that no row can have is "not found" before any query sees it
    (the app's ``before_request``: it covers every route, those added later too)."""
    for value in request.path_params.values():
        if type(value) is int and not -MAX_ROW_ID <= value <= MAX_ROW_ID:
            raise NotFoundException()


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


BACKEND_DOWN = (
    "The service is catching its breath: a part of it is not answering. Nothing you did "
    "was lost; try again in a few seconds."
)


def handle_backend_down(request: Request, exc: Exception) -> Response:
    """Redis (sessions, rate limits, cache, the job queue) not answering: 503 with
    Retry-After, in words, instead of a 500. /readyz names what is down."""
    logger.warning(
        "a backend is not answering: %s",
        exc,
        extra={"fields": {"request_id": request_id_of(request.scope), "path": request.url.path}},
    )
    response = error_response(request, 503, BACKEND_DOWN)
    response.headers["Retry-After"] = "5"
    return response


def _raised_in(exc: BaseException, filename_end: str) -> bool:
    trace = exc.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename.endswith(filename_end):
            return True
        trace = trace.tb_next
    return False


UNREADABLE_FORM = "A form field is not valid UTF-8 text. Send text fields in UTF-8."


def handle_unexpected(request: Request, exc: Exception) -> Response:
    if isinstance(exc, UnicodeDecodeError) and _raised_in(exc, "litestar/_multipart.py"):
        # Litestar decodes a multipart text field without catching a bad byte: the
        # client's mistake, not ours.
        if is_api(request):
            return validation_errors_response({BODY: UNREADABLE_FORM})
        return error_response(request, 400, UNREADABLE_FORM)
    logger.exception(
        "unhandled error",
        exc_info=exc,
        extra={"fields": {"request_id": request_id_of(request.scope), "path": request.url.path}},
    )
    return error_response(request, 500)


# Validation errors of the JSON API: 422 with {"errors": {field: message}}, whoever found
# them (a service's ValidationFailed, or Litestar decoding the body).
BODY = "body"  # the field named when the body as a whole is unreadable
_TYPE_WORDS = {
    "str": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "null": "null",
    "object": "a JSON object",
    "array": "a list",
}
_EXPECTED = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`")
# msgspec's words for a malformed date or time, and ours.
_FORMATS = {
    "Invalid RFC3339 encoded date": "Enter a date as YYYY-MM-DD.",
    "Invalid RFC3339 encoded datetime": "Enter a date and time in ISO 8601, with a UTC offset.",
}


def _type_words(spec: str) -> str:
    return " or ".join(_TYPE_WORDS.get(part.strip(), part.strip()) for part in spec.split("|"))


def _field_error(key: str, message: str) -> tuple[str, str]:
    """One of Litestar's (msgspec's) messages as (field, words)."""
    field = BODY if key in ("data", "") else key
    if missing := _MISSING.match(message):
        return missing["field"], "This field is required."
    if unknown := _UNKNOWN.match(message):
        return unknown["field"], "This field is not known here, or it cannot be changed."
    if message in _FORMATS:
        return field, _FORMATS[message]
    if expected := _EXPECTED.match(message):
        return field, (
            f"Expected {_type_words(expected['expected'])}, got {_type_words(expected['got'])}."
        )
    if field == BODY:
        return field, "Send a JSON object in the request body."
    return field, message


_UNREADABLE = {
    "Invalid multipart/form-data": "The request body is not valid multipart/form-data.",
    "Unexpected eof in multipart/form-data": "The multipart/form-data body ends too early.",
}


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def validation_errors_response(errors: dict[str, str]) -> Response:
    return Response({"errors": errors}, status_code=422, media_type=MediaType.JSON)


def handle_client_error(request: Request, exc: ClientException) -> Response:
    """On the API, a body Litestar could not read or validate is a 422 like any other."""
    if is_api(request):
        if isinstance(exc, ValidationException):
            errors: dict[str, str] = {}
            for item in exc.extra if isinstance(exc.extra, list) else []:
                field, message = _field_error(str(item.get("key", "")), str(item.get("message")))
                errors.setdefault(field, message)
            return validation_errors_response(errors or {BODY: "The request is not valid."})
        if isinstance(exc.__cause__, SerializationException):
            return validation_errors_response({BODY: "The request body is not valid JSON."})
        if exc.status_code == 400:
            # Anything else Litestar could not read (a broken multipart body, say): the
            # API's one answer to invalid input.
            words = _UNREADABLE.get(str(exc.detail), "The request body could not be read.")
            return validation_errors_response({BODY: words})
    return handle_http_exception(request, exc)


def handle_validation_failed(request: Request, exc: ValidationFailed) -> Response:
    if is_api(request):
        return validation_errors_response(exc.errors)
    # Browser controllers show these beside their fields; one that forgot still says why.
    return error_response(request, 422, " ".join(exc.errors.values()))


@dataclass
class ApiOperation(Operation):
    """An API operation as documented: Litestar lists its own 400 for invalid input, but
    ``handle_client_error`` answers it with 422 ``{"errors": ...}``. Pass it as
    ``operation_class`` to every API handler."""

    def __post_init__(self) -> None:
        if not self.responses or self.responses.pop("400", None) is None:
            return
        # A path parameter of the wrong type matches no route (404); a body or query can be 422.
        reads_input = self.request_body is not None or any(
            getattr(parameter, "param_in", None) != "path" for parameter in self.parameters or []
        )
        if reads_input:
            self.responses.setdefault("422", VALIDATION_RESPONSE)


VALIDATION_RESPONSE = OpenAPIResponse(
    description='Invalid input: `{"errors": {field: message}}`',
    content={
        MediaType.JSON: OpenAPIMediaType(
            schema=Schema(
                type=OpenAPIType.OBJECT,
                required=["errors"],
                properties={
                    "errors": Schema(
                        type=OpenAPIType.OBJECT,
                        additional_properties=Schema(type=OpenAPIType.STRING),
                    )
                },
            )
        )
    },
)

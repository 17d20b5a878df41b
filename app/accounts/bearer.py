"""The API's door: bearer-token authentication and the per-token rate limit.

Every ``/api/v1`` route except registration and token creation is protected the same way::

    from app.accounts.bearer import BEARER_RESPONSES, BEARER_SECURITY, bearer_guard
    from app.errors import ApiOperation  # documents invalid input as 422, not 400

    class CustomerApiController(Controller):
        path = "/customers"
        guards = [bearer_guard]
        security = BEARER_SECURITY  # documents the requirement in the OpenAPI schema

        @get("/", operation_class=ApiOperation, responses=BEARER_RESPONSES)
        ...

The guard leaves the token's owner in ``request.user`` (an ``Account``) and the token in
``request.auth`` (a ``TokenRecord``). ``RateLimitHeadersMiddleware`` sits on the API router
and copies the guard's rate-limit verdict into the response headers.
"""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.accounts.auth import LoginRequired, VerificationRequired, log_auth_event
from app.accounts.dependencies import build_account_service
from app.accounts.schemas import ErrorOut
from app.lib.requests import client_ip
from app.lib.throttle import Throttle, Verdict

# The name of the security scheme declared in the OpenAPI components (app.main).
BEARER_SCHEME = "bearer"
BEARER_SECURITY: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]

API_WINDOW = 60  # seconds
RATE_LIMIT_STATE = "api_rate_limit"


def error_spec(description: str) -> ResponseSpec:
    """An error response for the OpenAPI schema: ``{"error", "status", "request_id"}``."""
    return ResponseSpec(data_container=ErrorOut, description=description)


UNAUTHORIZED = error_spec(
    "Missing, malformed, expired or revoked token (`WWW-Authenticate: Bearer`)"
)
UNVERIFIED = error_spec("The account's email address is not verified yet")
THROTTLED = error_spec("Too many requests: wait `Retry-After` seconds")
# What every protected operation can answer besides its own responses.
BEARER_RESPONSES: dict[int, ResponseSpec] = {401: UNAUTHORIZED, 403: UNVERIFIED, 429: THROTTLED}

MISSING = "Send your API token in the header `Authorization: Bearer <token>`."
REFUSED = (
    "This API token is not valid: it may be mistyped, expired or revoked. "
    "Create a new one with POST /api/v1/auth/tokens."
)


def bearer_token(connection: ASGIConnection) -> str | None:
    """The raw token of an ``Authorization: Bearer ...`` header, or None."""
    scheme, _, credentials = connection.headers.get("authorization", "").partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials


def too_many_requests(verdict: Verdict, detail: str) -> TooManyRequestsException:
    return TooManyRequestsException(
        detail=detail,
        headers={"Retry-After": str(max(verdict.retry_after, 1)), **verdict.headers()},
    )


async def bearer_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Let through requests carrying a valid token of a verified account, within the limit.

    Missing, malformed, unknown, expired or revoked tokens: 401 with ``WWW-Authenticate:
    Bearer`` (through ``LoginRequired``). A token whose owner has not verified the email:
    403. More than API_RATE_LIMIT requests a minute on one token: 429 with ``Retry-After``.
    """
    raw = bearer_token(connection)
    if raw is None:
        log_auth_event(connection, "token_auth_failed", reason="missing")
        raise LoginRequired(detail=MISSING)
    accounts = build_account_service(connection)
    found = await accounts.authenticate_token(raw, client_ip(connection.scope))
    if found is None:
        # The id before "|" is no secret and helps trace abuse; the rest never leaves here.
        token_id, separator, _secret = raw.partition("|")
        known_id = token_id if separator and token_id.isdigit() and len(token_id) <= 18 else None
        log_auth_event(connection, "token_auth_failed", reason="invalid", token_id=known_id)
        raise LoginRequired(detail=REFUSED)
    account, record = found
    if not account.is_verified:
        log_auth_event(connection, "token_auth_failed", reason="unverified", user_id=account.id)
        raise VerificationRequired()

    throttle: Throttle = connection.app.state.throttle
    limit = connection.app.state.settings.api_rate_limit
    verdict = await throttle.hit(f"api:{record.id}", limit=limit, window=API_WINDOW)
    connection.scope.setdefault("state", {})[RATE_LIMIT_STATE] = verdict
    if not verdict.allowed:
        raise too_many_requests(
            verdict, f"This token made more than {limit} requests in a minute. Slow down."
        )
    connection.scope["user"] = account
    connection.scope["auth"] = record


class RateLimitHeadersMiddleware:
    """``RateLimit-Limit/Remaining/Reset`` on every response the bearer guard counted.

    A middleware rather than an ``after_request`` hook: it sees the scope, and it also
    covers responses built from exceptions raised after the guard (404, 422, 429).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                verdict = scope.get("state", {}).get(RATE_LIMIT_STATE)
                if isinstance(verdict, Verdict):
                    headers = MutableScopeHeaders.from_message(message)
                    for name, value in verdict.headers().items():
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)

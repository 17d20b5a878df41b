"""JSON API of accounts: register, personal access tokens, and who am I.

Registration and token creation are the only API routes open without a token; both are
throttled (per IP, and per email + IP like the browser login). Everything else goes through
``bearer_guard``.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.types import ControllerRouterHandler

from app.accounts.auth import LoginRequired, VerificationRequired, log_auth_event
from app.accounts.bearer import (
    BEARER_RESPONSES,
    BEARER_SECURITY,
    THROTTLED,
    UNVERIFIED,
    bearer_guard,
    error_spec,
    too_many_requests,
)
from app.accounts.repository import Account, TokenRecord
from app.accounts.schemas import (
    AccountOut,
    IssuedTokenOut,
    Registration,
    TokenOut,
    TokenRequest,
    ValidationErrorOut,
)
from app.accounts.service import AccountService
from app.accounts.web import REGISTRATION_WINDOW
from app.errors import ApiOperation
from app.lib.requests import client_ip
from app.lib.throttle import Throttle
from app.lib.validation import normalize_email

LOGIN_LIMIT = 5  # attempts per (lower-cased email, IP)
LOGIN_WINDOW = 60
LOGIN_FAILURE_LIMIT = 100  # failures per account, whatever the IP
LOGIN_FAILURE_WINDOW = 3600

WRONG_CREDENTIALS = "The email or password is not correct."

ApiRequest = Request[Account, TokenRecord, Any]
Accounts = NamedDependency[AccountService]  # the app's "accounts" dependency
Throttled = NamedDependency[Throttle]  # the app's "throttle" dependency


INVALID = ResponseSpec(
    data_container=ValidationErrorOut,
    description='Invalid input: `{"errors": {field: message}}`',
)


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post(
        "/register",
        operation_class=ApiOperation,
        summary="Create an account",
        description="Sends a mail with a verification link; tokens can be created once the "
        "address is verified. Limited to 10 registrations an hour per IP address.",
        responses={422: INVALID, 429: THROTTLED},
    )
    async def register(
        self,
        request: Request,
        data: JSONBody[Registration],
        accounts: Accounts,
        throttle: Throttled,
    ) -> AccountOut:
        # Shared with the browser's registration form.
        verdict = await throttle.hit(
            f"register:{client_ip(request.scope)}",
            limit=request.app.state.settings.registration_limit,
            window=REGISTRATION_WINDOW,
        )
        if not verdict.allowed:
            raise too_many_requests(verdict, "Too many registrations from your address.")
        account = await accounts.register(name=data.name, email=data.email, password=data.password)
        log_auth_event(request, "register", user_id=account.id, channel="api")
        return AccountOut.of(account)

    @post(
        "/tokens",
        operation_class=ApiOperation,
        summary="Create a personal access token",
        description="Sign in with email and password and get a token for "
        "`Authorization: Bearer <token>`. The token is in this response only. "
        "Limited to 5 attempts a minute per email and IP address.",
        responses={
            401: error_spec("Wrong email or password"),
            403: UNVERIFIED,
            422: INVALID,
            429: THROTTLED,
        },
    )
    async def create_token(
        self,
        request: Request,
        data: JSONBody[TokenRequest],
        accounts: Accounts,
        throttle: Throttled,
    ) -> IssuedTokenOut:
        email = normalize_email(data.email)
        # The same keys as the browser's sign-in form: one budget, whichever door is used.
        attempts = await throttle.hit(
            f"login:{email}:{client_ip(request.scope)}", limit=LOGIN_LIMIT, window=LOGIN_WINDOW
        )
        if not attempts.allowed:
            log_auth_event(request, "login_throttled", email=email, channel="api")
            raise too_many_requests(attempts, "Too many sign-in attempts. Wait a minute.")
        failures_key = f"login-failures:{email}"
        failures = await throttle.check(
            failures_key, limit=LOGIN_FAILURE_LIMIT, window=LOGIN_FAILURE_WINDOW
        )
        if not failures.allowed:
            log_auth_event(request, "login_throttled", email=email, channel="api")
            raise too_many_requests(failures, "Too many failed sign-ins for this account.")
        account = await accounts.authenticate(email, data.password)
        if account is None:
            await throttle.hit(failures_key, limit=LOGIN_FAILURE_LIMIT, window=LOGIN_FAILURE_WINDOW)
            log_auth_event(request, "login_failed", email=email, channel="api")
            raise LoginRequired(detail=WRONG_CREDENTIALS)
        if not account.is_verified:
            log_auth_event(request, "login_refused_unverified", user_id=account.id, channel="api")
            raise VerificationRequired(
                detail="Confirm your email address before creating a token: "
                "follow the link in the mail we sent you."
            )
        issued = await accounts.create_token(
            account, name=data.name, expires_in_days=data.expires_in_days
        )
        log_auth_event(
            request, "token_created", user_id=account.id, token_id=issued.record.id, channel="api"
        )
        return IssuedTokenOut.of(issued)

    @get(
        "/tokens",
        operation_class=ApiOperation,
        summary="List your tokens",
        description="Never returns token values.",
        guards=[bearer_guard],
        security=BEARER_SECURITY,
        responses=BEARER_RESPONSES,
    )
    async def list_tokens(self, request: ApiRequest, accounts: Accounts) -> list[TokenOut]:
        return [TokenOut.of(record) for record in await accounts.list_tokens(request.user)]

    @delete(
        "/tokens/{token_id:int}",
        operation_class=ApiOperation,
        summary="Revoke a token",
        description="The token stops working at once. Any of your tokens can revoke any "
        "other, itself included.",
        guards=[bearer_guard],
        security=BEARER_SECURITY,
        responses={**BEARER_RESPONSES, 404: error_spec("No token of yours has this id")},
    )
    async def revoke_token(
        self, request: ApiRequest, token_id: FromPath[int], accounts: Accounts
    ) -> None:
        if not await accounts.revoke_token(request.user, token_id):
            # Another user's token is "not found" too: existence is not leaked.
            raise NotFoundException()
        log_auth_event(
            request, "token_revoked", user_id=request.user.id, token_id=token_id, channel="api"
        )


@get(
    "/me",
    operation_class=ApiOperation,
    summary="The account the token belongs to",
    tags=["account"],
    guards=[bearer_guard],
    security=BEARER_SECURITY,
    responses=BEARER_RESPONSES,
)
async def me(request: ApiRequest) -> AccountOut:
    return AccountOut.of(request.user)


api_route_handlers: list[ControllerRouterHandler] = [AuthController, me]

"""Who is asking: the signed-in account (session) or the token's owner (API), and the guards.

Every customer, audit and transfer route uses ``verified_guard`` (HTML) or sits under the
API router whose guard is ``bearer_guard``; ownership itself is enforced in the
repositories, where every query carries the user id.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from app.accounts.repository import Account, PiccoloAccountRepository
from app.lib.requests import client_ip, request_id_of

logger = logging.getLogger("crm.auth")
SESSION_USER = "user_id"
API_PREFIX = "/api/"


class LoginRequired(HTTPException):
    status_code = 401
    detail = "Sign in to continue."


class VerificationRequired(HTTPException):
    status_code = 403
    detail = "Confirm your email address first: follow the link in the mail we sent you."


def log_auth_event(connection: ASGIConnection, event: str, **fields: Any) -> None:
    """Auth events with request id and IP; never a password or a token."""
    logger.info(
        event,
        extra={
            "fields": {
                "event": event,
                "request_id": request_id_of(connection.scope),
                "ip": client_ip(connection.scope),
                **fields,
            }
        },
    )


def current_account(connection: ASGIConnection) -> Account | None:
    user = connection.scope.get("user")
    return user if isinstance(user, Account) else None


class SessionUserMiddleware:
    """Loads the signed-in account for browser requests (after the session middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.repository = PiccoloAccountRepository()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(API_PREFIX):
            scope["user"] = None
            session = scope.get("session")
            if isinstance(session, dict) and isinstance(session.get(SESSION_USER), int):
                account = await self.repository.get(session[SESSION_USER])
                if account is None:
                    session.clear()  # the account was deleted: the session ends with it
                scope["user"] = account
        await self.app(scope, receive, send)


async def login_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    if current_account(connection) is None:
        raise LoginRequired()


async def verified_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    account = current_account(connection)
    if account is None:
        raise LoginRequired()
    if not account.is_verified:
        raise VerificationRequired()

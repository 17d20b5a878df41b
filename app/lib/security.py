"""Security headers, CSRF and session cookies: one place for each protection."""

from __future__ import annotations

import logging
from typing import Any

from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.session.base import ONE_DAY_IN_SECONDS
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.types import ASGIApp, Empty, Message, Receive, Scope, Send
from litestar.types.asgi_types import ScopeSession
from litestar.utils.dataclass import extract_dataclass_items
from redis.exceptions import RedisError

from app.settings import Settings

logger = logging.getLogger("crm.sessions")

# htmx runs from a vendored file and app.js; nothing inline, nothing evaluated.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)

BASE_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "cross-origin-opener-policy": "same-origin",
}


def https(settings: Settings) -> bool:
    return settings.app_url.startswith("https://")


class SecurityHeadersMiddleware:
    """Adds the headers to every HTTP response, error pages and static files included."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in self.headers.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def security_headers(settings: Settings) -> dict[str, str]:
    headers = dict(BASE_HEADERS)
    if https(settings):
        headers["strict-transport-security"] = "max-age=31536000; includeSubDomains"
    return headers


def csrf_config(settings: Settings) -> CSRFConfig:
    return CSRFConfig(
        secret=settings.secret_key,
        cookie_secure=https(settings),
        cookie_samesite="lax",
        # The JSON API authenticates with bearer tokens, not cookies: no CSRF there.
        exclude=["^/api/", "^/healthz$", "^/readyz$", "^/files/"],
    )


ROTATE = "rotate_session"
NEW_SESSION_ID = "new_session_id"
LOADED_SESSION = "loaded_session_data"
IDLE_TIMEOUT = 120 * 60
assert IDLE_TIMEOUT < ONE_DAY_IN_SECONDS


def rotate_session(connection: ASGIConnection) -> None:
    """Ask for a fresh session id on this response; the old id stops working.

    Called at login (against session fixation) and whenever privileges change.
    """
    connection.scope.setdefault("state", {})[ROTATE] = True


class RotatingSessionBackend(ServerSideSessionBackend):
    """Litestar keeps a session id for life; this backend can replace it on request.

    It also writes a session back only when it changed: reading it already pushed its
    expiry ahead (``renew_on_access``), so re-writing the same bytes on every request
    was one Redis write per page for nothing.
    """

    async def load_from_connection(self, connection: ASGIConnection) -> dict[str, Any]:
        if session_id := connection.cookies.get(self.config.key):
            store = self.config.get_store_from_app(connection.scope["app"])
            data = await self.get(session_id, store=store)
            if data is not None:
                connection.scope.setdefault("state", {})[LOADED_SESSION] = data
                return self.deserialize_data(data)
        return {}

    def get_session_id(self, connection: ASGIConnection) -> str:
        new_id = connection.scope.get("state", {}).get(NEW_SESSION_ID)
        return str(new_id) if new_id else super().get_session_id(connection)

    async def store_in_message(
        self, scope_session: ScopeSession, message: Message, connection: ASGIConnection
    ) -> None:
        try:
            state = connection.scope.setdefault("state", {})
            if state.pop(ROTATE, False):
                old_id = connection.cookies.get(self.config.key)
                if old_id:
                    store = self.config.get_store_from_app(connection.app)
                    await self.delete(old_id, store=store)
                state[NEW_SESSION_ID] = self.generate_session_id()
            elif scope_session is not Empty and scope_session:
                loaded = state.pop(LOADED_SESSION, None)
                if (
                    loaded is not None
                    and self.serialize_data(scope_session, connection.scope) == loaded
                ):
                    self._set_cookie(message, self.get_session_id(connection))
                    return
            await super().store_in_message(scope_session, message, connection)
        except RedisError as error:
            # The response has started: too late for the error page. It must not look like
            # a success (a sign-out that did not end the session), so it becomes a 503 that
            # says when to come back; its body stays as it was.
            logger.warning("the session could not be saved: %s", error)
            if message["type"] == "http.response.start":
                message["status"] = 503
            headers = MutableScopeHeaders.from_message(message)
            headers["retry-after"] = "5"
            if "location" in headers:
                del headers["location"]

    def _set_cookie(self, message: Message, session_id: str) -> None:
        """The cookie as Litestar sets it: its Max-Age slides with the stored expiry."""
        params = extract_dataclass_items(
            self.config, exclude_none=True, include=Cookie.__dict__.keys()
        )
        cookie = Cookie(value=session_id, key=self.config.key, **dict(params))
        MutableScopeHeaders.from_message(message).add("Set-Cookie", cookie.to_header(header=""))


class SessionConfig(ServerSideSessionConfig):
    _backend_class = RotatingSessionBackend


def session_config(settings: Settings) -> ServerSideSessionConfig:
    return SessionConfig(
        key="crm_session",
        store="sessions",
        secure=https(settings),
        httponly=True,
        samesite="lax",
        # Idle timeout: every request pushes the expiry 120 minutes ahead.
        max_age=IDLE_TIMEOUT,
        renew_on_access=True,
        # API requests carry a bearer token; don't open a session for them.
        exclude=["^/api/", "^/healthz$", "^/readyz$", "^/static/", "^/files/", "^/schema"],
    )

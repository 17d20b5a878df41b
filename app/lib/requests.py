"""Request ids and structured request logs.

Every request gets an id (a well-formed incoming ``X-Request-ID`` from a proxy is kept),
returned in the ``X-Request-ID`` header, logged with the request as one JSON line, and
shown on error pages so a person can quote it.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
logger = logging.getLogger("crm.requests")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: easy to grep here, easy to ship to a log store."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update(getattr(record, "fields", {}))
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    # Replace only a handler we installed before (create_app may run many times in one
    # process); handlers that others installed, such as pytest's, stay.
    for existing in list(root.handlers):
        if isinstance(existing.formatter, JsonFormatter):
            root.removeHandler(existing)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's access log would repeat what the request log already says.
    logging.getLogger("uvicorn.access").disabled = True


def request_id_of(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", "-"))


def loggable_path(path: str, secret_prefixes: tuple[str, ...]) -> str:
    """The path with the secret part of a mailed link (after its prefix) left out."""
    for prefix in secret_prefixes:
        if path.startswith(prefix) and len(path) > len(prefix):
            return prefix + "[redacted]"
    return path


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, secret_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        # Paths whose remainder is a credential (a password-reset link): kept out of logs.
        self.secret_prefixes = secret_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            logger.info(
                "request",
                extra={
                    "fields": {
                        "request_id": request_id,
                        "method": scope.get("method"),
                        "path": loggable_path(scope.get("path", ""), self.secret_prefixes),
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    }
                },
            )


def client_ip(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None

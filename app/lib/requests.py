"""Request ids and structured request logs.

Every request gets an id (a well-formed incoming ``X-Request-ID`` from a proxy is kept),
returned in the ``X-Request-ID`` header, logged with the request as one JSON line, and
shown on error pages so a person can quote it.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import re
import time
import uuid
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.lib.metrics import UNMATCHED, RequestMetrics

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
    def __init__(
        self,
        app: ASGIApp,
        secret_prefixes: tuple[str, ...] = (),
        metrics: RequestMetrics | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
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
            duration = time.perf_counter() - started
            if self.metrics is not None:
                # The route's template (one series per route, not per customer), set by
                # the router on this very scope.
                route = str(scope.get("path_template") or UNMATCHED)
                self.metrics.observe(str(scope.get("method", "")), route, status, duration)
            logger.info(
                "request",
                extra={
                    "fields": {
                        "request_id": request_id,
                        "method": scope.get("method"),
                        "path": loggable_path(scope.get("path", ""), self.secret_prefixes),
                        "status": status,
                        "duration_ms": round(duration * 1000, 2),
                    }
                },
            )


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.lru_cache(maxsize=16)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in trusted)


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:51234"
        text = text.split(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _trusted_of(scope: Scope) -> tuple[str, ...]:
    app = scope.get("app")
    settings = getattr(getattr(app, "state", None), "settings", None) if app else None
    return tuple(getattr(settings, "trusted_proxies", ()) or ())


def client_ip(scope: Scope, trusted_proxies: tuple[str, ...] | None = None) -> str | None:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the first
    address in X-Forwarded-For (read from the right) that is not a trusted proxy.

    ``trusted_proxies`` defaults to the app's TRUSTED_PROXIES setting. Anyone can send
    X-Forwarded-For, so it is believed only as far as a chain of trusted proxies
    vouches for it; a malformed entry stops the walk at the proxy that passed it on.
    """
    client = scope.get("client")
    peer = str(client[0]) if client else None
    trusted = _trusted_of(scope) if trusted_proxies is None else trusted_proxies
    if peer is None or not trusted:
        return peer
    networks = _networks(tuple(trusted))

    def is_trusted(address: Address) -> bool:
        return any(address in network for network in networks)

    current = _address(peer)
    if current is None or not is_trusted(current):
        return peer
    hops = [
        hop
        for name, value in scope.get("headers", ())
        if name == b"x-forwarded-for"
        for hop in value.decode("latin-1").split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        current = address
        if not is_trusted(address):
            break
    return str(current)

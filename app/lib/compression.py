"""Gzip for responses, through ISA-L (the ``isal`` package), in a middleware of our own.

Litestar 2's ``CompressionConfig`` takes a ``compression_facade``, but its middleware
uses its own ``GzipFile``-based facade whenever the client asks for gzip, so a facade of
ours is never called for gzip (and its ``middleware_class`` is not used either). This
middleware does the same job with ISA-L's deflate at level 1: on a list fragment (85 kB
of HTML) a quarter of zlib's level-1 time, for an output 2 % smaller
(tests/perf/README.md). The bytes are plain gzip: any client decodes them.

- A response whose body comes in one message is compressed whole when it is at least
  ``minimum_size`` bytes; a smaller one goes out as it is.
- A streamed response (an export download, say) is compressed chunk by chunk, each chunk
  flushed, so the client can use what arrived before the stream ends.
- A response that already has a ``Content-Encoding``, or whose type is compressed
  already (images, zip, gzip, xlsx...), goes out untouched.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from isal import isal_zlib

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

GZIP_WBITS = 31  # deflate inside a gzip header and trailer
MINIMUM_SIZE = 500  # bytes; below it gzip's header and trailer outweigh the saving
LEVEL = 1  # ISA-L's levels are 0 to 3; a list page compresses 6 to 7 times at 1
# Content types that are compressed already: gzip would spend CPU to make them larger.
_COMPRESSED_TYPES = (
    b"image/",
    b"audio/",
    b"video/",
    b"font/woff",
    b"application/zip",
    b"application/gzip",
    b"application/x-gzip",
    b"application/vnd.openxmlformats-officedocument.",
)


def _header(headers: Iterable[Any], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return bytes(value)
    return None


def _accepts_gzip(scope: Scope) -> bool:
    value = _header(scope.get("headers") or (), b"accept-encoding")
    return value is not None and b"gzip" in value.lower()


def _compressible(headers: list[Any]) -> bool:
    if _header(headers, b"content-encoding") is not None:
        return False
    content_type = (_header(headers, b"content-type") or b"").lower()
    return not content_type.startswith(_COMPRESSED_TYPES)


def _gzip_headers(headers: list[Any], length: int | None) -> list[Any]:
    """The response's headers for a gzip body: encoding set, Vary extended, and the length
    of the compressed body (or none, for a stream)."""
    kept: list[Any] = []
    vary: list[bytes] = []
    for key, value in headers:
        lowered = key.lower()
        if lowered == b"content-length":
            continue
        if lowered == b"vary":
            vary.append(bytes(value))
            continue
        kept.append((key, value))
    if not any(b"accept-encoding" in value.lower() for value in vary):
        vary.append(b"Accept-Encoding")
    kept.append((b"content-encoding", b"gzip"))
    kept.append((b"vary", b", ".join(vary)))
    if length is not None:
        kept.append((b"content-length", str(length).encode()))
    return kept


def _body(data: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


class _GzipSend:
    """The ``send`` the app below the middleware calls: holds the response's start until
    the first body message tells whether (and how) to compress."""

    __slots__ = ("_compressor", "_level", "_minimum_size", "_passing", "_send", "_start")

    def __init__(self, send: Send, minimum_size: int, level: int) -> None:
        # The events are plain dicts here: typed as Any, not as Litestar's TypedDicts.
        self._send: Any = send
        self._minimum_size = minimum_size
        self._level = level
        self._start: Any = None
        self._compressor: Any = None
        self._passing = False

    async def __call__(self, event: Message) -> None:
        message: Any = event
        kind = message["type"]
        if kind == "http.response.start":
            self._start = message
            return
        if kind != "http.response.body" or self._passing or self._start is None:
            await self._send(message)
            return
        body: bytes = message.get("body", b"")
        more = bool(message.get("more_body", False))
        if self._compressor is None:
            await self._first_body(body, more)
            return
        await self._send(_body(self._compress(body, more), more))

    def _compress(self, body: bytes, more: bool) -> bytes:
        """The chunk compressed and flushed: to a byte boundary while more follows (the
        client can decode it now), to the gzip trailer at the end."""
        data: bytes = self._compressor.compress(body)
        return data + self._compressor.flush(isal_zlib.Z_SYNC_FLUSH if more else isal_zlib.Z_FINISH)

    async def _first_body(self, body: bytes, more: bool) -> None:
        start = self._start
        assert start is not None
        headers = list(start.get("headers") or [])
        if not _compressible(headers) or (not more and len(body) < self._minimum_size):
            self._passing = True
            await self._send(start)
            await self._send(_body(body, more))
            return
        self._compressor = isal_zlib.compressobj(self._level, isal_zlib.DEFLATED, GZIP_WBITS)
        data = self._compress(body, more)
        await self._send({**start, "headers": _gzip_headers(headers, None if more else len(data))})
        await self._send(_body(data, more))


class GzipMiddleware:
    """Gzip (ISA-L) for every HTTP response to a client that accepts it."""

    def __init__(self, app: ASGIApp, minimum_size: int = MINIMUM_SIZE, level: int = LEVEL) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.level = level

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _accepts_gzip(scope):
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _GzipSend(send, self.minimum_size, self.level))

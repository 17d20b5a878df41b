"""Gzip of responses (ISA-L, app/lib/compression.py): what goes out is gzip any client
reads, streamed bodies can be read as they arrive, and what should not be compressed is
left alone."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

from app.lib.compression import GzipMiddleware

PAGE = b"".join(
    b"<tr><td>Customer %d</td><td>c%d@example.com</td></tr>\n" % (n, n) for n in range(3000)
)


def responder(chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    """An ASGI app answering with these body chunks (one message each)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": headers
                or [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(sum(map(len, chunks))).encode()),
                ],
            }
        )
        for index, chunk in enumerate(chunks):
            more = index < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    return app


async def call(app: Any, accept: bytes | None = b"gzip, deflate, br") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    headers = [(b"accept-encoding", accept)] if accept is not None else []
    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers}
    await GzipMiddleware(app)(scope, receive, send)
    return sent


def headers_of(message: dict[str, Any]) -> dict[bytes, bytes]:
    return {bytes(k).lower(): bytes(v) for k, v in message["headers"]}


async def test_a_page_goes_out_as_standard_gzip_with_its_new_length():
    start, body = await call(responder([PAGE]))
    headers = headers_of(start)
    assert headers[b"content-encoding"] == b"gzip"
    assert headers[b"vary"] == b"Accept-Encoding"
    assert int(headers[b"content-length"]) == len(body["body"])
    assert gzip.decompress(body["body"]) == PAGE
    assert len(body["body"]) < len(PAGE) / 5


async def test_each_streamed_chunk_can_be_decoded_before_the_stream_ends():
    chunks = [PAGE[:1000], PAGE[1000:50_000], PAGE[50_000:]]
    start, *bodies = await call(responder(chunks, [(b"content-type", b"text/csv")]))
    headers = headers_of(start)
    assert headers[b"content-encoding"] == b"gzip"
    assert b"content-length" not in headers
    reader = zlib.decompressobj(31)
    received = b""
    for number, message in enumerate(bodies, start=1):
        received += reader.decompress(message["body"])
        # What the client holds after this chunk: everything sent so far.
        assert received == b"".join(chunks[:number])
    assert [message["more_body"] for message in bodies] == [True, True, False]
    assert reader.eof


async def test_a_small_body_goes_out_as_it_is():
    start, body = await call(responder([b"<p>Saved.</p>"]))
    assert b"content-encoding" not in headers_of(start)
    assert body["body"] == b"<p>Saved.</p>"


async def test_a_client_that_does_not_ask_for_gzip_gets_the_plain_body():
    start, body = await call(responder([PAGE]), accept=None)
    assert b"content-encoding" not in headers_of(start)
    assert body["body"] == PAGE
    start, body = await call(responder([PAGE]), accept=b"identity")
    assert body["body"] == PAGE


async def test_compressed_types_and_encoded_bodies_are_left_alone():
    for content_type in (
        b"image/png",
        b"application/zip",
        b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ):
        start, body = await call(responder([PAGE], [(b"content-type", content_type)]))
        assert b"content-encoding" not in headers_of(start), content_type
        assert body["body"] == PAGE
    already = [(b"content-type", b"text/plain"), (b"content-encoding", b"br")]
    start, body = await call(responder([PAGE], already))
    assert headers_of(start)[b"content-encoding"] == b"br"
    assert body["body"] == PAGE


async def test_an_existing_vary_header_is_extended_not_replaced():
    headers = [(b"content-type", b"text/html"), (b"vary", b"HX-Request")]
    start, _ = await call(responder([PAGE], headers))
    assert headers_of(start)[b"vary"] == b"HX-Request, Accept-Encoding"

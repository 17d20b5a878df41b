"""The gzip facade of responses (ISA-L): what it writes is gzip any client reads."""

from __future__ import annotations

import gzip
import zlib
from io import BytesIO

from litestar.config.compression import CompressionConfig

from app.lib.compression import IsalGzipCompression

PAGE = b"".join(
    b"<tr><td>Customer %d</td><td>c%d@example.com</td></tr>\n" % (n, n) for n in range(3000)
)


def test_one_body_comes_out_as_standard_gzip_and_smaller():
    buffer = BytesIO()
    facade = IsalGzipCompression(buffer, "gzip", CompressionConfig(backend="gzip"))
    facade.write(PAGE)
    facade.close()
    assert gzip.decompress(buffer.getvalue()) == PAGE
    assert len(buffer.getvalue()) < len(PAGE) / 5


def test_each_streamed_chunk_can_be_decoded_before_the_stream_ends():
    buffer = BytesIO()
    facade = IsalGzipCompression(buffer, "gzip", CompressionConfig(backend="gzip"))
    reader = zlib.decompressobj(31)
    received = b""
    chunks = [PAGE[:1000], PAGE[1000:50_000], PAGE[50_000:]]
    for chunk in chunks:
        facade.write(chunk)
        # What the middleware sends after this write: the client can already show it.
        received += reader.decompress(buffer.getvalue())
        buffer.seek(0)
        buffer.truncate()
        assert PAGE.startswith(received)
        assert len(received) == sum(len(c) for c in chunks[: chunks.index(chunk) + 1])
    facade.close()
    received += reader.decompress(buffer.getvalue())
    assert received == PAGE
    assert reader.eof


def test_a_body_too_small_to_compress_writes_nothing():
    buffer = BytesIO()
    IsalGzipCompression(buffer, "gzip", CompressionConfig(backend="gzip")).close()
    assert buffer.getvalue() == b""

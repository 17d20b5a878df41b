"""Gzip for responses through ISA-L (the ``isal`` package) instead of the standard library.

Litestar's gzip facade wraps ``gzip.GzipFile``: on a list fragment (85 kB of HTML) its
compression was about a twelfth of the app's CPU for the request. ISA-L's deflate at its
level 1 took a quarter of zlib's level-1 time on the same page, for an output 2 % smaller
(tests/perf/README.md). The bytes are plain gzip: any client decodes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from isal import isal_zlib
from litestar.enums import CompressionEncoding

if TYPE_CHECKING:
    from io import BytesIO

    from litestar.config.compression import CompressionConfig

GZIP_WBITS = 31  # deflate inside a gzip header and trailer
ISAL_LEVELS = 3  # ISA-L's levels are 0 to 3


class IsalGzipCompression:
    """The facade Litestar's CompressionMiddleware drives: ``write`` per body chunk (each
    flushed, so a streamed response goes out as it is made), ``close`` at the end."""

    __slots__ = ("buffer", "compression_encoding", "compressor", "level")

    encoding: ClassVar[str] = CompressionEncoding.GZIP

    def __init__(
        self, buffer: BytesIO, compression_encoding: str, config: CompressionConfig
    ) -> None:
        self.buffer = buffer
        self.compression_encoding = compression_encoding
        self.level = min(config.gzip_compress_level, ISAL_LEVELS)
        # Made on first write: a body under the minimum size is never compressed.
        self.compressor: Any = None

    def write(self, body: bytes) -> None:
        if self.compressor is None:
            self.compressor = isal_zlib.compressobj(self.level, isal_zlib.DEFLATED, GZIP_WBITS)
        self.buffer.write(self.compressor.compress(body))
        self.buffer.write(self.compressor.flush(isal_zlib.Z_SYNC_FLUSH))

    def close(self) -> None:
        if self.compressor is not None:
            self.buffer.write(self.compressor.flush(isal_zlib.Z_FINISH))

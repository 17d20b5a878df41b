"""A load generator's HTTP client that costs next to nothing.

The benchmarks' load generator runs on the same two cores as the app, PostgreSQL and
Redis. httpx costs about 1.2 ms of CPU per request (its models, header handling and
decoding), a third of what the app spends on a list fragment: that CPU is taken from
the system under test and shows up in its latencies. This client sends a GET over a
kept-alive HTTP/1.1 connection with plain asyncio streams, reads the status line, the
headers and the body (Content-Length or chunked), and stops there: about a tenth of
httpx's cost. Sign-in and everything else that needs forms or cookies stays on httpx;
its cookies are handed over here.

It asks for gzip as a browser does and leaves the body compressed: the benchmarks check
the status (and, where they look at the page, they decompress it themselves).
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-cased names; the last of a repeated header wins
    body: bytes  # as sent (gzip when the server compressed it)

    def text(self) -> str:
        if self.headers.get("content-encoding") == "gzip":
            return gzip.decompress(self.body).decode()
        return self.body.decode()


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class LeanClient:
    """GETs over up to ``size`` kept-alive connections; each request takes an idle one."""

    def __init__(self, base_url: str, *, size: int) -> None:
        parts = urlsplit(base_url)
        self._netloc = parts.netloc
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(size)
        self.use_cookies({})

    def use_cookies(self, cookies: Mapping[str, str]) -> None:
        """Send these cookies (a signed-in session, say) with every request from now on."""
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        self._common = (
            f"Host: {self._netloc}\r\nAccept-Encoding: gzip\r\nAccept: */*\r\n"
            + (f"Cookie: {cookie}\r\n" if cookie else "")
        ).encode()

    async def get(self, path: str, headers: Mapping[str, str] | None = None) -> Answer:
        async with self._slots:
            reused = bool(self._idle)
            connection = self._idle.pop() if reused else await self._open()
            try:
                answer, keep = await self._exchange(connection, path, headers or {})
            except (asyncio.IncompleteReadError, ConnectionError) as error:
                connection.close()
                stale = isinstance(error, ConnectionError) or not error.partial
                if not (reused and stale):
                    raise
                # The server closed an idle connection (its keep-alive timeout) before
                # this request reached it: a GET is safe to send again on a new one.
                connection = await self._open()
                try:
                    answer, keep = await self._exchange(connection, path, headers or {})
                except BaseException:
                    connection.close()
                    raise
            except BaseException:
                connection.close()
                raise
            if keep:
                self._idle.append(connection)
            else:
                connection.close()
            return answer

    async def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _open(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        return _Connection(reader, writer)

    async def _exchange(
        self, connection: _Connection, path: str, headers: Mapping[str, str]
    ) -> tuple[Answer, bool]:
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        connection.writer.write(
            f"GET {path} HTTP/1.1\r\n".encode() + self._common + extra.encode() + b"\r\n"
        )
        reader = connection.reader
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        if "content-length" in fields:
            body = await reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            pieces = []
            while True:
                size = int((await reader.readline()).split(b";", 1)[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # the (empty) trailer's end
                    break
                pieces.append(await reader.readexactly(size + 2))
            body = b"".join(piece[:-2] for piece in pieces)
        else:
            body = await reader.read()  # delimited by the connection's close
            fields["connection"] = "close"
        keep = fields.get("connection", "").lower() != "close"
        return Answer(status, fields, body), keep

"""The object-storage seam: one ``Storage`` interface, a folder or S3 behind it.

``build_storage(settings)`` picks the backend once at start-up: ``LocalStorage`` (a
folder, ``STORAGE_DIR``) for the embedded default, ``S3Storage`` (the ``minio`` client)
when ``S3_ENDPOINT`` is set. Features only ever see the ``Storage`` protocol.

Both backends stream: uploads are read chunk by chunk from a file-like object or an
async iterator of unknown length, downloads come back as an async iterator of chunks,
so memory stays flat whatever the size of a file.

The minio client blocks, and so does the file system: every such call runs in a worker
thread (``asyncio.to_thread``) so the event loop keeps serving other requests.

Keys are checked in one place (``validate_key``) before either backend touches them.
Besides the obvious (traversal, absolute paths, backslashes), segments may not start
with a dot: that rules out ``.`` and ``..`` on both backends alike and reserves dot-names
in the folder backend for its temporary and metadata files, so a key can never collide
with them.

The folder backend has no presigned URLs of its own; ``download_url`` returns a URL of
the app signed with HMAC-SHA256 over the key, the expiry and the file name, served by
``serve_local_file`` (register ``storage_route_handlers``; the route authenticates by
signature alone, so it must stay outside any login guard).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import hmac
import inspect
import json
import mimetypes
import os
import re
import tempfile
import time
import unicodedata
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol, TypeAlias, cast, runtime_checkable
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Stream
from minio import Minio
from minio.error import S3Error

from app.settings import Settings

CHUNK_SIZE = 1024 * 1024
"""Size of the chunks ``get`` yields and the folder backend writes."""

PART_SIZE = 10 * 1024 * 1024
"""Multipart part size: 10 MiB parts allow objects up to ~100 GB (10,000 parts)."""

PARALLEL_UPLOADS = 2
"""Parts minio uploads at once. Each in-flight part is held in memory, so this (with the
part being assembled) bounds an upload's memory to a few part sizes."""

MAX_KEY_LENGTH = 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject", "ResourceNotFound"})
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_SIGNATURE_CONTEXT = "crm-storage-download-v1"


# --- errors and values ---------------------------------------------------------------


class StorageError(Exception):
    """Base class of the errors this module raises on purpose."""


class InvalidKey(StorageError, ValueError):
    """A key that could escape its place (traversal, absolute path) or is malformed."""


class ObjectNotFound(StorageError, LookupError):
    """No object under this key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object under key {key!r}")
        self.key = key


class StorageUnavailable(StorageError):
    """The backend cannot be reached or written (``check``, and any call to an S3 server
    that does not answer)."""


@contextlib.contextmanager
def _answering(endpoint: str) -> Any:
    """Connection failures to the S3 server as StorageUnavailable, so that callers can
    say "try again later" in words instead of failing with a transport error."""
    try:
        yield
    except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as error:
        raise StorageUnavailable(
            f"the object storage at {endpoint} is not answering ({type(error).__name__})"
        ) from error


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a backend knows about one stored object.

    ``content_type`` is ``None`` in ``list`` results: an S3 listing does not carry it,
    and both backends answer alike; ``stat`` (and ``put``) always fill it in.
    """

    key: str
    size: int
    last_modified: datetime  # timezone-aware, UTC
    content_type: str | None = None


class SupportsRead(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class SupportsAsyncRead(Protocol):
    async def read(self, size: int = -1, /) -> bytes: ...


# A blocking binary file (an open file, BytesIO, SpooledTemporaryFile), an async one
# (Litestar's UploadFile) or any async iterator of bytes, all of unknown length.
PutSource: TypeAlias = SupportsRead | SupportsAsyncRead | IO[bytes] | AsyncIterable[bytes]


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is safe on every backend, else raise ``InvalidKey``.

    The one place keys are checked, so the folder and S3 backends refuse the same things.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey("a storage key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"a storage key is at most {MAX_KEY_LENGTH} characters, got {len(key)}")
    if _CONTROL_CHARS.search(key):
        raise InvalidKey(f"a storage key may not contain NUL or control characters: {key!r}")
    if "\\" in key:
        raise InvalidKey(f"a storage key may not contain a backslash: {key!r}")
    if key.startswith("/"):
        raise InvalidKey(f"a storage key is relative, it may not start with '/': {key!r}")
    for segment in key.split("/"):
        if not segment:
            raise InvalidKey(
                f"a storage key may not have an empty segment ('//' or a trailing '/'): {key!r}"
            )
        if segment.startswith("."):
            # Covers '.' and '..' (traversal) and keeps dot-names free for the folder
            # backend's temporary and metadata files.
            raise InvalidKey(f"a storage key segment may not start with '.': {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """Like ``validate_key`` for a listing prefix, which may be empty or end with '/'."""
    if not prefix:
        return prefix
    *complete, _partial = prefix.split("/")
    if complete:
        validate_key("/".join(complete))
    if len(prefix) > MAX_KEY_LENGTH or _CONTROL_CHARS.search(prefix) or "\\" in prefix:
        raise InvalidKey(f"invalid storage prefix: {prefix!r}")
    return prefix


def _guess_content_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or DEFAULT_CONTENT_TYPE


def content_disposition(filename: str) -> str:
    """An ``attachment`` Content-Disposition that survives any file name (RFC 6266)."""
    # An ASCII fallback for old clients, the exact name as UTF-8 in filename*.
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    fallback = re.sub(r"[^A-Za-z0-9._ ()+-]", "_", fallback).strip() or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# --- the interface ---------------------------------------------------------------------


@runtime_checkable
class Storage(Protocol):
    """Object storage as the app sees it; keys are checked by ``validate_key``."""

    async def start(self) -> None:
        """Create the folder or bucket when missing (called once from the lifespan)."""

    async def put(
        self, key: str, source: PutSource, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        """Store ``source`` (read to its end, length unknown) under ``key``, atomically."""
        ...

    async def get(self, key: str) -> ChunkStream:
        """Open ``key`` (``ObjectNotFound`` raised here) and return its chunks.

        Read it to the end or ``aclose()`` it: it holds an open file or connection.
        """
        ...

    async def stat(self, key: str) -> ObjectInfo:
        """Size, date and content type of ``key``; ``ObjectNotFound`` if missing."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix``, recursively, sorted by key."""
        ...

    async def download_url(
        self,
        key: str,
        expires: timedelta = timedelta(minutes=15),
        filename: str | None = None,
    ) -> str:
        """A URL a browser can fetch ``key`` from until ``expires`` has passed."""
        ...

    async def check(self) -> None:
        """Raise if the backend is unreachable or not writable (for /readyz)."""


class ChunkStream(AsyncIterator[bytes]):
    """The async iterator ``get`` returns: chunks read in a worker thread.

    It owns an open file or HTTP response; ``aclose`` (or reading to the end) releases
    it, even when iteration never started, which a bare async generator cannot promise.
    """

    def __init__(self, read: Callable[[], bytes], close: Callable[[], None]) -> None:
        self._read = read
        self._close = close
        self._closed = False

    def __aiter__(self) -> ChunkStream:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        try:
            chunk = await asyncio.to_thread(self._read)
        except BaseException:
            await self.aclose()
            raise
        if not chunk:
            await self.aclose()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(self._close)

    async def read_all(self) -> bytes:
        """Convenience for small objects (tests, little JSON files)."""
        return b"".join([chunk async for chunk in self])


def _as_async_iterable(source: PutSource) -> AsyncIterable[bytes] | None:
    """The async view of ``source``, or None for a blocking file-like object."""
    read = getattr(source, "read", None)
    if read is not None and inspect.iscoroutinefunction(read):
        async_read = cast(Callable[[int], Awaitable[bytes]], read)

        async def chunks() -> AsyncIterator[bytes]:
            while chunk := await async_read(CHUNK_SIZE):
                yield chunk

        return chunks()
    if read is not None:
        return None
    if isinstance(source, AsyncIterable):
        return source
    raise TypeError(f"put() needs a binary file-like object or an async iterator, got {source!r}")


def _as_bytes(chunk: object) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, bytearray | memoryview):
        return bytes(chunk)
    raise TypeError(f"an upload source must yield bytes, got {type(chunk).__name__}")


async def _aclose(source: object) -> None:
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


# --- the folder backend -------------------------------------------------------------------


class LocalStorage:
    """Objects as files under one folder; metadata (content type) in a dot-file beside it.

    A file appears under its final name only once complete: chunks go to a temporary
    dot-file in the same folder (same file system), which is fsynced then renamed.
    """

    def __init__(self, root: str | Path, *, secret_key: str, app_url: str) -> None:
        self.root = Path(root).resolve()
        self._secret_key = secret_key
        self._app_url = app_url.rstrip("/")

    # paths

    def path_for(self, key: str) -> Path:
        """The file of ``key``; refuses any key whose resolved path leaves the root."""
        validate_key(key)
        path = (self.root / key).resolve()
        # validate_key already refuses traversal; this also catches symlinks pointing out.
        if not path.is_relative_to(self.root) or path == self.root:
            raise InvalidKey(f"storage key {key!r} resolves outside the storage folder")
        return path

    @staticmethod
    def _meta_path(path: Path) -> Path:
        return path.with_name(f".{path.name}.meta")

    def _info(self, key: str, path: Path, content_type: str | None) -> ObjectInfo:
        st = path.stat()
        return ObjectInfo(
            key=key,
            size=st.st_size,
            last_modified=datetime.fromtimestamp(st.st_mtime, tz=UTC),
            content_type=content_type,
        )

    def _content_type(self, key: str, path: Path) -> str:
        try:
            meta = json.loads(self._meta_path(path).read_text())
            return str(meta["content_type"])
        except (OSError, ValueError, KeyError, TypeError):
            # No metadata (written by hand, or an interrupted put): go by the extension.
            return _guess_content_type(key)

    # lifecycle

    async def start(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    async def check(self) -> None:
        def probe() -> None:
            try:
                fd, name = tempfile.mkstemp(dir=self.root, prefix=".probe-")
                os.close(fd)
                os.unlink(name)
            except OSError as error:
                raise StorageUnavailable(
                    f"storage folder {self.root} is not writable: {error}"
                ) from error

        await asyncio.to_thread(probe)

    # writing

    async def put(
        self, key: str, source: PutSource, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        path = self.path_for(key)
        content_type = content_type or DEFAULT_CONTENT_TYPE

        def open_temp() -> tuple[IO[bytes], Path]:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
            return os.fdopen(fd, "wb"), Path(name)

        def commit(handle: IO[bytes], temp: Path) -> ObjectInfo:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            meta_temp = temp.with_name(temp.name + ".meta")
            meta_temp.write_text(json.dumps({"content_type": content_type}))
            # Data first: if this rename fails, the old object and its metadata stand.
            os.replace(temp, path)
            os.replace(meta_temp, self._meta_path(path))
            return self._info(key, path, content_type)

        def discard(handle: IO[bytes], temp: Path) -> None:
            with contextlib.suppress(OSError):
                handle.close()
            with contextlib.suppress(OSError):
                temp.unlink()
            with contextlib.suppress(OSError):
                temp.with_name(temp.name + ".meta").unlink()

        chunks = _as_async_iterable(source)
        handle, temp = await asyncio.to_thread(open_temp)
        try:
            if chunks is None:
                reader = cast(SupportsRead, source)
                await asyncio.to_thread(_copy_file, reader, handle)
            else:
                await _write_chunks(chunks, handle)
            return await asyncio.to_thread(commit, handle, temp)
        except BaseException:
            # Whatever went wrong (a failing source, a full disk, a cancelled request)
            # the half-written temporary file goes and no object appears.
            await asyncio.shield(asyncio.to_thread(discard, handle, temp))
            raise

    async def delete(self, key: str) -> None:
        path = self.path_for(key)

        def remove() -> None:
            for target in (path, self._meta_path(path)):
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()

        await asyncio.to_thread(remove)

    # reading

    async def stat(self, key: str) -> ObjectInfo:
        path = self.path_for(key)

        def read_info() -> ObjectInfo:
            if not path.is_file():
                raise ObjectNotFound(key)
            return self._info(key, path, self._content_type(key, path))

        return await asyncio.to_thread(read_info)

    async def get(self, key: str) -> ChunkStream:
        path = self.path_for(key)

        def open_file() -> IO[bytes]:
            try:
                return path.open("rb")
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise ObjectNotFound(key) from None

        handle = await asyncio.to_thread(open_file)
        return ChunkStream(lambda: handle.read(CHUNK_SIZE), handle.close)

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        validate_prefix(prefix)
        # Walk only below the deepest folder the prefix names; match the rest as text,
        # as S3 does ('exports/1' matches 'exports/1/...' and 'exports/10/...').
        folder = self.root.joinpath(*prefix.split("/")[:-1])

        def walk() -> list[ObjectInfo]:
            found: list[ObjectInfo] = []
            for dirpath, dirnames, filenames in os.walk(folder):
                dirnames[:] = [name for name in dirnames if not name.startswith(".")]
                for name in filenames:
                    if name.startswith("."):  # temporary and metadata files
                        continue
                    path = Path(dirpath, name)
                    key = path.relative_to(self.root).as_posix()
                    if not key.startswith(prefix) or path.is_symlink():
                        continue
                    with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                        found.append(self._info(key, path, None))
            return sorted(found, key=lambda info: info.key)

        return await asyncio.to_thread(walk)

    # download links

    async def download_url(
        self,
        key: str,
        expires: timedelta = timedelta(minutes=15),
        filename: str | None = None,
    ) -> str:
        validate_key(key)
        until = int(time.time() + expires.total_seconds())
        params: dict[str, str] = {"expires": str(until)}
        if filename is not None:
            params["filename"] = filename
        params["sig"] = sign_download(self._secret_key, key, until, filename)
        return f"{self._app_url}/files/{quote(key, safe='/')}?{urlencode(params)}"


def _copy_file(reader: SupportsRead, handle: IO[bytes]) -> None:
    while chunk := reader.read(CHUNK_SIZE):
        handle.write(_as_bytes(chunk))


async def _write_chunks(chunks: AsyncIterable[bytes], handle: IO[bytes]) -> None:
    # Small chunks are gathered to ~1 MiB so each thread hop writes a useful amount.
    buffer = bytearray()
    try:
        async for chunk in chunks:
            buffer += _as_bytes(chunk)
            if len(buffer) >= CHUNK_SIZE:
                await asyncio.to_thread(handle.write, bytes(buffer))
                buffer.clear()
        if buffer:
            await asyncio.to_thread(handle.write, bytes(buffer))
    finally:
        await _aclose(chunks)


# --- signed links for the folder backend ------------------------------------------


def sign_download(secret_key: str, key: str, expires: int, filename: str | None) -> str:
    """HMAC-SHA256 (hex) binding the key, the expiry and the file name together."""
    # JSON keeps the fields apart: no key/filename pair can forge another's message.
    message = json.dumps([_SIGNATURE_CONTEXT, key, int(expires), filename])
    return hmac.new(secret_key.encode(), message.encode(), hashlib.sha256).hexdigest()


def verify_download(
    secret_key: str,
    key: str,
    expires: int | str,
    sig: str,
    filename: str | None = None,
    *,
    now: float | None = None,
) -> bool:
    """True when ``sig`` is ours for these values and ``expires`` (unix time) is ahead."""
    try:
        until = int(expires)
    except (TypeError, ValueError):
        return False
    if until < (time.time() if now is None else now):
        return False
    expected = sign_download(secret_key, key, until, filename)
    return hmac.compare_digest(expected.encode(), str(sig).encode())


@get(
    "/files/{key:path}",
    name="files:download",
    include_in_schema=False,
    cache=False,
)
async def serve_local_file(request: Request[Any, Any, Any], key: FromPath[str]) -> Stream:
    """Stream a file of the folder backend to the holder of a valid signed link.

    Every failure (bad or expired signature, bad key, missing file, another backend)
    is the same 404, so the response tells a prober nothing.
    """
    key = key.lstrip("/")
    # Mapping access works on Litestar's State and on a plain dict passed as state.
    storage = request.app.state.get("storage")
    query = request.query_params
    expires, sig, filename = query.get("expires"), query.get("sig"), query.get("filename")
    if (
        not isinstance(storage, LocalStorage)
        or expires is None
        or sig is None
        or not verify_download(storage._secret_key, key, expires, sig, filename)
    ):
        raise NotFoundException()
    try:
        info = await storage.stat(key)
        chunks = await storage.get(key)
    except (InvalidKey, ObjectNotFound):
        raise NotFoundException() from None
    return Stream(
        chunks,
        media_type=info.content_type or DEFAULT_CONTENT_TYPE,
        headers={
            "Content-Disposition": content_disposition(filename or key.rsplit("/", 1)[-1]),
            "Content-Length": str(info.size),
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


storage_route_handlers = [serve_local_file]


# --- the S3 backend -------------------------------------------------------------------------


class _ThreadReader:
    """A blocking ``read(size)`` over an async iterator, for minio's worker thread.

    Each ``read`` pulls chunks from the iterator on the event loop
    (``run_coroutine_threadsafe``) until it has ``size`` bytes: nothing is read ahead,
    so memory is bounded by what minio asks for (one part) and the loop stays free.
    """

    def __init__(self, chunks: AsyncIterable[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._iterator = aiter(chunks)
        self._loop = loop
        self._leftover = b""
        self._eof = False
        self.abandoned = False  # set when put() is cancelled: the next read fails
        self.delivered = 0  # bytes handed to minio so far

    async def _next(self) -> bytes | None:
        try:
            return _as_bytes(await anext(self._iterator))
        except StopAsyncIteration:
            return None

    def _pull(self) -> bytes | None:
        future = asyncio.run_coroutine_threadsafe(self._next(), self._loop)
        while True:
            # Poll rather than block for good, so an abandoned upload notices.
            if self.abandoned:
                future.cancel()
                raise StorageError("upload abandoned")
            try:
                return future.result(timeout=0.5)
            except concurrent.futures.TimeoutError:
                continue

    def read(self, size: int = -1) -> bytes:
        parts = [self._leftover] if self._leftover else []
        have = len(self._leftover)
        self._leftover = b""
        while not self._eof and (size < 0 or have < size):
            chunk = self._pull()
            if chunk is None:
                self._eof = True
            elif chunk:
                parts.append(chunk)
                have += len(chunk)
        if 0 <= size < have:
            # Split the last chunk, not the joined result: one copy of a part, not two.
            last = parts[-1]
            cut = len(last) - (have - size)
            parts[-1], self._leftover = last[:cut], last[cut:]
        data = b"".join(parts)
        self.delivered += len(data)
        return data


class _CountingReader:
    """A file object's ``read`` that counts what it hands out (to minio's thread)."""

    def __init__(self, source: SupportsRead) -> None:
        self._source = source
        self.delivered = 0

    def read(self, size: int = -1) -> bytes:
        data = _as_bytes(self._source.read(size))
        self.delivered += len(data)
        return data


class S3Storage:
    """Objects in one S3 bucket through the (blocking) minio client."""

    def __init__(
        self,
        endpoint: str,
        *,
        access_key: str | None,
        secret_key: str | None,
        bucket: str,
        region: str,
        secure: bool,
    ) -> None:
        # Accept 'host:port' (minio's form) and 'http(s)://host:port' (what people paste).
        if "://" in endpoint:
            parts = urlsplit(endpoint)
            endpoint, secure = parts.netloc, parts.scheme == "https"
        self.endpoint = endpoint
        self.bucket = bucket
        common: dict[str, Any] = {
            "access_key": access_key,
            "secret_key": secret_key,
            "secure": secure,
            # An explicit region saves a location lookup and makes presigning offline.
            "region": region,
        }
        # minio's own default waits 5 minutes on a dead server; these are the app's.
        self.client = Minio(
            endpoint, http_client=_http_client(connect=10, read=120, retries=3), **common
        )
        # /readyz gives up after a few seconds: its probe must fail fast, without retries.
        self._probe = Minio(
            endpoint, http_client=_http_client(connect=2, read=3, retries=0), **common
        )
        self._region = region

    async def start(self) -> None:
        def ensure_bucket() -> None:
            if self.client.bucket_exists(self.bucket):
                return
            try:
                self.client.make_bucket(self.bucket, location=self._region)
            except S3Error as error:
                # Another process created it first: that is what we wanted.
                if error.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

        await asyncio.to_thread(ensure_bucket)

    async def check(self) -> None:
        try:
            exists = await asyncio.to_thread(self._probe.bucket_exists, self.bucket)
        except Exception as error:
            raise StorageUnavailable(f"S3 is unreachable: {error}") from error
        if not exists:
            raise StorageUnavailable(f"S3 bucket {self.bucket!r} does not exist")

    async def put(
        self, key: str, source: PutSource, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        validate_key(key)
        content_type = content_type or DEFAULT_CONTENT_TYPE
        chunks = _as_async_iterable(source)

        def upload(data: SupportsRead) -> None:
            # length=-1: multipart in PART_SIZE parts; minio aborts the multipart upload
            # when reading or sending fails, so no partial object is ever visible.
            self.client.put_object(
                self.bucket,
                key,
                cast(Any, data),
                length=-1,
                content_type=content_type,
                part_size=PART_SIZE,
                num_parallel_uploads=PARALLEL_UPLOADS,
            )

        if chunks is None:
            counted = _CountingReader(cast(SupportsRead, source))
            with _answering(self.endpoint):
                await asyncio.to_thread(upload, counted)
            size = counted.delivered
        else:
            reader = _ThreadReader(chunks, asyncio.get_running_loop())
            try:
                with _answering(self.endpoint):
                    await asyncio.to_thread(upload, reader)
            except asyncio.CancelledError:
                # The thread cannot be interrupted; make its next read fail so minio
                # aborts the multipart upload instead of waiting on a dead request.
                reader.abandoned = True
                raise
            finally:
                await _aclose(chunks)
            size = reader.delivered
        # What S3 accepted is what was sent: no HEAD request after each upload (a third
        # of the archive job's requests for small objects, with a GET to verify and the
        # PUT itself; minio sends an object under one part in a single PUT).
        return ObjectInfo(
            key=key, size=size, last_modified=datetime.now(UTC), content_type=content_type
        )

    async def delete(self, key: str) -> None:
        validate_key(key)
        # S3 answers a delete of a missing key with success already.
        with _answering(self.endpoint):
            await asyncio.to_thread(self.client.remove_object, self.bucket, key)

    async def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        try:
            with _answering(self.endpoint):
                obj = await asyncio.to_thread(self.client.stat_object, self.bucket, key)
        except S3Error as error:
            raise _translate(error, key) from error
        return ObjectInfo(
            key=key,
            size=int(obj.size or 0),
            last_modified=_utc(obj.last_modified),
            content_type=obj.content_type or DEFAULT_CONTENT_TYPE,
        )

    async def get(self, key: str) -> ChunkStream:
        validate_key(key)
        try:
            with _answering(self.endpoint):
                response = await asyncio.to_thread(self.client.get_object, self.bucket, key)
        except S3Error as error:
            raise _translate(error, key) from error

        def close() -> None:
            response.close()
            response.release_conn()

        return ChunkStream(lambda: response.read(CHUNK_SIZE), close)

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        validate_prefix(prefix)

        def collect() -> list[ObjectInfo]:
            objects = self.client.list_objects(self.bucket, prefix=prefix or None, recursive=True)
            return [
                ObjectInfo(
                    key=str(obj.object_name),
                    size=int(obj.size or 0),
                    last_modified=_utc(obj.last_modified),
                )
                for obj in objects
                if not obj.is_dir
            ]

        with _answering(self.endpoint):
            found = await asyncio.to_thread(collect)
        return sorted(found, key=lambda info: info.key)

    async def download_url(
        self,
        key: str,
        expires: timedelta = timedelta(minutes=15),
        filename: str | None = None,
    ) -> str:
        validate_key(key)
        headers: dict[str, str | list[str] | tuple[str]] | None = None
        if filename is not None:
            headers = {"response-content-disposition": content_disposition(filename)}
        # Presigning is local computation (region is set), but stays off the loop anyway
        # should minio ever need to look something up.
        return await asyncio.to_thread(
            self.client.presigned_get_object,
            self.bucket,
            key,
            expires=expires,
            response_headers=headers,
        )


def _http_client(*, connect: float, read: float, retries: int) -> urllib3.PoolManager:
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=connect, read=read),
        maxsize=10,
        retries=urllib3.Retry(
            total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
        ),
    )


def _translate(error: S3Error, key: str) -> Exception:
    if error.code in _NOT_FOUND_CODES:
        return ObjectNotFound(key)
    return error


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# --- the choice -------------------------------------------------------------------------------


def build_storage(settings: Settings) -> Storage:
    """The backend these settings ask for: S3 when ``S3_ENDPOINT`` is set, else a folder."""
    if settings.s3_endpoint:
        return S3Storage(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            secure=settings.s3_secure,
        )
    return LocalStorage(
        settings.storage_dir, secret_key=settings.secret_key, app_url=settings.app_url
    )


__all__ = [
    "CHUNK_SIZE",
    "PART_SIZE",
    "ChunkStream",
    "InvalidKey",
    "LocalStorage",
    "ObjectInfo",
    "ObjectNotFound",
    "PutSource",
    "S3Storage",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "build_storage",
    "content_disposition",
    "serve_local_file",
    "sign_download",
    "storage_route_handlers",
    "validate_key",
    "validate_prefix",
    "verify_download",
]

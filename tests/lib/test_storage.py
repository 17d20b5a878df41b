"""The object-storage seam, run on both backends: a folder (embedded) and S3 (moto)."""

import hashlib
import io
import os
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.lib.storage import (
    InvalidKey,
    LocalStorage,
    ObjectNotFound,
    S3Storage,
    StorageUnavailable,
    build_storage,
    sign_download,
    storage_route_handlers,
    validate_key,
    verify_download,
)

MiB = 1024 * 1024
BAD_KEYS = ["../x", "/etc/passwd", "a/../../b", "a//b", "a\\b", "", "a/./b", "a\x00b", "a/"]


@pytest.fixture
async def storage(settings):
    backend = build_storage(settings)
    await backend.start()
    return backend


async def chunks_of(*parts: bytes):
    for part in parts:
        yield part


async def read_all(storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in await storage.get(key)])


def local_files(storage) -> list[str]:
    """Every file under a folder backend's root, hidden ones included."""
    return sorted(
        os.path.relpath(os.path.join(folder, name), storage.root)
        for folder, _, names in os.walk(storage.root)
        for name in names
    )


def test_build_storage_follows_the_settings(settings):
    backend = build_storage(settings)
    assert isinstance(backend, S3Storage if settings.s3_endpoint else LocalStorage)


async def test_round_trip_put_stat_get_list_delete(storage):
    before = datetime.now(UTC) - timedelta(seconds=5)
    info = await storage.put(
        "imports/1/7/source.csv", io.BytesIO(b"name,email\nAda,ada@example.com\n"), "text/csv"
    )
    assert info.key == "imports/1/7/source.csv"
    assert info.size == 31
    assert info.content_type == "text/csv"

    streamed = await storage.put(
        "imports/1/7/errors.csv", chunks_of(b"row,", b"error\n", b"2,bad email\n")
    )
    assert streamed.size == len(b"row,error\n2,bad email\n")
    assert streamed.content_type == "application/octet-stream"
    await storage.put("imports/10/1/source.csv", io.BytesIO(b"x"))
    await storage.put("exports/1/1/all.csv", io.BytesIO(b"y"))

    stat = await storage.stat("imports/1/7/source.csv")
    assert (stat.key, stat.size, stat.content_type) == ("imports/1/7/source.csv", 31, "text/csv")
    assert stat.last_modified.tzinfo is not None
    assert stat.last_modified.utcoffset() == timedelta(0)
    assert before <= stat.last_modified <= datetime.now(UTC) + timedelta(seconds=5)

    assert await read_all(storage, "imports/1/7/source.csv") == b"name,email\nAda,ada@example.com\n"
    assert await read_all(storage, "imports/1/7/errors.csv") == b"row,error\n2,bad email\n"

    listed = await storage.list("imports/1/")
    assert [(o.key, o.size) for o in listed] == [
        ("imports/1/7/errors.csv", 22),
        ("imports/1/7/source.csv", 31),
    ]
    # A prefix is text, not a folder: 'imports/1' also matches 'imports/10/...'.
    assert [o.key for o in await storage.list("imports/1")] == [
        "imports/1/7/errors.csv",
        "imports/1/7/source.csv",
        "imports/10/1/source.csv",
    ]
    assert len(await storage.list()) == 4
    assert await storage.list("nothing/here/") == []

    await storage.delete("imports/1/7/source.csv")
    await storage.delete("imports/1/7/source.csv")  # a missing key is no error
    with pytest.raises(ObjectNotFound):
        await storage.stat("imports/1/7/source.csv")
    assert [o.key for o in await storage.list("imports/1/")] == ["imports/1/7/errors.csv"]


async def test_missing_keys_raise_object_not_found_before_any_chunk(storage):
    with pytest.raises(ObjectNotFound) as raised:
        await storage.get("no/such/key.csv")
    assert raised.value.key == "no/such/key.csv"
    with pytest.raises(ObjectNotFound):
        await storage.stat("no/such/key.csv")


async def test_put_overwrites_and_accepts_an_async_file_like_source(storage):
    class AsyncFile:  # what Litestar's UploadFile looks like
        def __init__(self, data: bytes) -> None:
            self._buffer = io.BytesIO(data)

        async def read(self, size: int = -1) -> bytes:
            return self._buffer.read(size)

    await storage.put("a/b.txt", io.BytesIO(b"first"), "text/plain")
    info = await storage.put("a/b.txt", AsyncFile(b"second version"), "text/markdown")
    assert info.size == 14
    assert (await storage.stat("a/b.txt")).content_type == "text/markdown"
    assert await read_all(storage, "a/b.txt") == b"second version"


async def test_a_20_mb_stream_is_uploaded_in_bounded_memory(storage):
    size = 20 * MiB
    expected = hashlib.sha256()

    async def generate():
        remaining = size
        while remaining:
            chunk = os.urandom(min(64 * 1024, remaining))
            expected.update(chunk)
            remaining -= len(chunk)
            yield chunk

    tracemalloc.start()
    try:
        info = await storage.put("exports/1/1/big.bin", generate())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * MiB, f"peak {peak / MiB:.1f} MiB"

    assert info.size == size
    assert (await storage.stat("exports/1/1/big.bin")).size == size
    stored = hashlib.sha256()
    async for chunk in await storage.get("exports/1/1/big.bin"):
        assert len(chunk) <= 1 * MiB
        stored.update(chunk)
    assert stored.hexdigest() == expected.hexdigest()


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_unsafe_keys_are_refused_and_nothing_is_written(storage, key, tmp_path):
    with pytest.raises(InvalidKey):
        await storage.put(key, io.BytesIO(b"owned"))
    with pytest.raises(InvalidKey):
        await storage.put(key, chunks_of(b"owned"))
    for operation in (storage.stat, storage.get, storage.delete, storage.download_url):
        with pytest.raises(InvalidKey):
            await operation(key)
    assert await storage.list() == []
    # Nothing landed beside the storage folder either (where '../x' would point).
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "b").exists()
    if isinstance(storage, LocalStorage):
        assert local_files(storage) == []


def test_invalid_key_is_a_value_error_with_a_clear_message():
    with pytest.raises(ValueError, match=r"may not start with '/'"):
        validate_key("/etc/passwd")
    with pytest.raises(InvalidKey, match="at most 1024"):
        validate_key("a" * 1025)
    assert validate_key("audit/1/2024/05/06/42.jsonl.gz") == "audit/1/2024/05/06/42.jsonl.gz"
    assert validate_key("exports/1/2/customers 2024 (é).csv")


async def test_a_failed_upload_leaves_nothing_behind(storage):
    # Fails before the first part is full, then after a whole multipart part was sent.
    for failing_after in (1 * MiB, 12 * MiB):

        async def failing(limit: int = failing_after):
            sent = 0
            while sent < limit:
                yield b"z" * (256 * 1024)
                sent += 256 * 1024
            raise RuntimeError("the client went away")

        with pytest.raises(RuntimeError, match="went away"):
            await storage.put("imports/1/9/source.csv", failing(), "text/csv")
        with pytest.raises(ObjectNotFound):
            await storage.stat("imports/1/9/source.csv")
        assert await storage.list() == []

    if isinstance(storage, LocalStorage):
        assert local_files(storage) == []  # no temporary file either
    else:
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://{storage.client._base_url.host}",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        uploads = s3.list_multipart_uploads(Bucket=storage.bucket)
        assert uploads.get("Uploads", []) == []  # the multipart upload was aborted


async def test_a_failed_overwrite_keeps_the_previous_object(storage):
    await storage.put("exports/1/3/list.csv", io.BytesIO(b"the good one"), "text/csv")

    async def failing():
        yield b"half of a new"
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        await storage.put("exports/1/3/list.csv", failing())
    assert await read_all(storage, "exports/1/3/list.csv") == b"the good one"
    assert (await storage.stat("exports/1/3/list.csv")).content_type == "text/csv"


async def test_check_fails_until_started(settings):
    backend = build_storage(settings)
    with pytest.raises(StorageUnavailable):
        await backend.check()
    await backend.start()
    await backend.start()  # idempotent: the folder or bucket already exists
    await backend.check()


# --- download links ---------------------------------------------------------------------


async def fetch(storage, settings, url: str) -> httpx.Response:
    """GET a download URL the way a browser would: from S3, or from the app's route."""
    if isinstance(storage, LocalStorage):
        assert url.startswith(f"{settings.app_url}/files/")
        app = Litestar(route_handlers=storage_route_handlers)
        app.state.storage = storage
        async with AsyncTestClient(app, base_url=settings.app_url) as client:
            return await client.get(url)
    async with httpx.AsyncClient() as client:
        return await client.get(url)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def test_a_download_url_serves_the_bytes(storage, settings):
    data = b"id,name\n1,Ada Lovelace\n"
    await storage.put("exports/1/5/customers 2024.csv", io.BytesIO(data), "text/csv")

    url = await storage.download_url("exports/1/5/customers 2024.csv")
    response = await fetch(storage, settings, url)
    assert response.status_code == 200
    assert response.content == data

    url = await storage.download_url(
        "exports/1/5/customers 2024.csv", timedelta(minutes=5), filename="clients é.csv"
    )
    response = await fetch(storage, settings, url)
    assert response.status_code == 200
    assert response.content == data
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''clients%20%C3%A9.csv" in disposition
    if isinstance(storage, S3Storage):
        # What S3 itself enforces (moto does not): the lifetime and a signature.
        query = parse_qs(urlsplit(url).query)
        assert query["X-Amz-Expires"] == ["300"]
        assert query["X-Amz-Signature"]


async def test_a_local_download_url_refuses_tampering_and_expiry(embedded):
    # The folder backend only: S3 checks its own presigned URLs (moto does not).
    settings = embedded
    storage = build_storage(settings)
    await storage.start()
    await storage.put("exports/1/6/a.csv", io.BytesIO(b"secret rows"))
    await storage.put("exports/2/6/b.csv", io.BytesIO(b"someone else's rows"))
    url = await storage.download_url("exports/1/6/a.csv", filename="a.csv")
    assert (await fetch(storage, settings, url)).status_code == 200

    sig = parse_qs(urlsplit(url).query)["sig"][0]
    forged = ("0" if sig[0] != "0" else "1") + sig[1:]
    later = str(int(time.time()) + 3600)
    refused = [
        with_query(url, sig=forged),
        with_query(url, expires=later),  # a longer life needs a new signature
        with_query(url, filename="b.csv"),  # the file name is signed too
        url.replace("exports/1/6/a.csv", "exports/2/6/b.csv"),  # another key, same sig
        url.split("?")[0],  # no signature at all
        await storage.download_url("exports/1/6/a.csv", timedelta(seconds=-1)),  # expired
    ]
    for bad in refused:
        response = await fetch(storage, settings, bad)
        assert response.status_code == 404, bad
        assert b"secret rows" not in response.content

    # A valid link to a file deleted since is the same 404.
    await storage.delete("exports/1/6/a.csv")
    assert (await fetch(storage, settings, url)).status_code == 404


async def test_the_download_route_is_a_404_on_another_backend(settings):
    app = Litestar(route_handlers=storage_route_handlers)
    app.state.storage = object()
    expires = int(time.time()) + 60
    sig = sign_download(settings.secret_key, "a/b", expires, None)
    async with AsyncTestClient(app) as client:
        response = await client.get(f"/files/a/b?expires={expires}&sig={sig}")
    assert response.status_code == 404


def test_verify_download():
    secret = "s" * 40
    expires = int(time.time()) + 60
    sig = sign_download(secret, "a/b.csv", expires, "b.csv")
    assert verify_download(secret, "a/b.csv", expires, sig, "b.csv")
    assert verify_download(secret, "a/b.csv", str(expires), sig, "b.csv")
    assert not verify_download(secret, "a/b.csv", expires, sig, None)
    assert not verify_download(secret, "a/b.csv", expires, sig, "c.csv")
    assert not verify_download(secret, "a/c.csv", expires, sig, "b.csv")
    assert not verify_download("t" * 40, "a/b.csv", expires, sig, "b.csv")
    assert not verify_download(secret, "a/b.csv", "soon", sig, "b.csv")
    assert not verify_download(secret, "a/b.csv", expires, sig, "b.csv", now=expires + 1)

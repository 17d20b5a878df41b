"""Imports on both profiles: the profile's database and storage, people, and a way to run
an import to its end on the importer directly (the job is thin over it)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from app.audit.tables import AuditLog
from app.customers.tables import Customer as CustomerTable
from app.lib.storage import Storage, build_storage
from app.settings import Settings
from app.transfers.importer import Fault, Importer
from app.transfers.repository import TransferRecord
from app.transfers.service import ImportService
from tests.jobs.workers import unique_queue

FILES = Path(__file__).parent / "files"
CHUNK_ROWS = 2  # small: every test file spans several chunks


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The profile's settings with small chunks and a job queue of the test's own."""
    return replace(settings, import_chunk_rows=CHUNK_ROWS, jobs_queue=unique_queue())


@pytest.fixture
async def storage(settings: Settings) -> Storage:
    storage = build_storage(settings)
    await storage.start()
    return storage


@dataclass
class RecordingJobs:
    """A job runner that only records what was enqueued (the test runs the importer)."""

    enqueued: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def enqueue(self, name: str, *, key: str | None = None, **kwargs: Any) -> str:
        self.enqueued.append((name, key, kwargs))
        return key or "job"

    async def status(self, job_id: str) -> None:
        return None

    async def check(self) -> None: ...


@pytest.fixture
def jobs() -> RecordingJobs:
    return RecordingJobs()


@pytest.fixture
def imports(storage: Storage, settings: Settings, jobs: RecordingJobs) -> ImportService:
    return ImportService(storage, jobs, settings)


async def chunks_of(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@dataclass
class Run:
    imports: ImportService
    storage: Storage
    user_id: int

    async def upload(self, data: bytes, filename: str = "people.csv") -> TransferRecord:
        return await self.imports.upload(self.user_id, filename, io.BytesIO(data))

    async def start(
        self,
        data: bytes,
        *,
        on_duplicate: str = "skip",
        mapping: dict[str, str] | None = None,
    ) -> TransferRecord:
        transfer = await self.upload(data)
        await self.imports.configure(self.user_id, transfer.id, mapping, on_duplicate)
        return await self.imports.start(self.user_id, transfer.id)

    async def resume(
        self, transfer_id: int, *, fault: Fault | None = None, chunk_rows: int = CHUNK_ROWS
    ) -> TransferRecord:
        importer = Importer(self.storage, chunk_rows=chunk_rows, fault=fault)
        await importer.run(self.user_id, transfer_id)
        return await self.imports.get(self.user_id, transfer_id)

    async def full(
        self,
        data: bytes,
        *,
        on_duplicate: str = "skip",
        mapping: dict[str, str] | None = None,
        chunk_rows: int = CHUNK_ROWS,
    ) -> TransferRecord:
        transfer = await self.start(data, on_duplicate=on_duplicate, mapping=mapping)
        return await self.resume(transfer.id, chunk_rows=chunk_rows)

    async def customers(self, user_id: int | None = None) -> dict[str, dict[str, Any]]:
        rows = await CustomerTable.select().where(
            CustomerTable.user_id == (user_id or self.user_id)
        )
        return {row["email_normalized"]: row for row in rows}

    async def entries(self, import_id: int) -> list[dict[str, Any]]:
        return list(
            await AuditLog.select()
            .where((AuditLog.user_id == self.user_id) & (AuditLog.import_id == import_id))
            .order_by(AuditLog.id)
        )

    async def report(self, transfer: TransferRecord) -> str:
        assert transfer.error_report_key
        stream = await self.storage.get(transfer.error_report_key)
        return (await stream.read_all()).decode("utf-8-sig")


@pytest.fixture
def run(imports: ImportService, storage: Storage, user_id: int) -> Run:
    return Run(imports, storage, user_id)


def csv_bytes(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


# --- a real SAQ worker for the full stack ------------------------------------------------

import contextlib  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from collections.abc import Iterator  # noqa: E402

from tests.fixtures.services import ROOT  # noqa: E402
from tests.jobs.workers import WorkerProcess, _drop_queue_keys, _wait_for_worker  # noqa: E402


@contextlib.contextmanager
def import_worker(
    settings: Settings, home: Path, *, keep_queue: bool = False
) -> Iterator[WorkerProcess]:
    """``saq jobs.worker.settings`` (the deployed worker) on the profile's database, Redis,
    S3 bucket and the test's own queue, whose keys are dropped afterwards unless
    ``keep_queue`` (another worker takes over the queue, jobs included)."""
    assert settings.redis_url
    assert settings.s3_endpoint
    env = {key: value for key, value in os.environ.items() if not key.startswith("S3_")}
    env |= {
        "REDIS_URL": settings.redis_url,
        "JOBS_QUEUE": settings.jobs_queue,
        "SECRET_KEY": settings.secret_key,
        "DATABASE_URL": settings.database_url,
        "MAIL_URL": f"file://{home / 'mail'}",
        "S3_ENDPOINT": settings.s3_endpoint,
        "S3_ACCESS_KEY": settings.s3_access_key or "",
        "S3_SECRET_KEY": settings.s3_secret_key or "",
        "S3_BUCKET": settings.s3_bucket,
        "S3_SECURE": "false",
        "IMPORT_CHUNK_ROWS": str(settings.import_chunk_rows),
        "IMPORT_MAX_BYTES": str(settings.import_max_bytes),
    }
    log = home / "import-worker.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "saq", "jobs.worker.settings", "--verbose"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess(process=process, queue=settings.jobs_queue, log=log, settings=settings)
    try:
        _wait_for_worker(worker, settings.redis_url)
        yield worker
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if not keep_queue:
            _drop_queue_keys(settings.redis_url, settings.jobs_queue)


@pytest.fixture
def job_worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess | None]:
    """What runs the jobs: the app's in-process runner (embedded, nothing to start) or a
    real SAQ worker process (full stack)."""
    if not settings.redis_url:
        yield None
        return
    with import_worker(settings, tmp_path) as worker:
        yield worker

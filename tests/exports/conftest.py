"""Exports on both profiles: the profile's database and storage, a book of customers with
awkward values, the exporter run to its end, and a real SAQ worker for the full stack."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.audit.context import AuditContext
from app.customers.models import Customer, ListQuery
from app.customers.repository import PiccoloCustomerRepository
from app.customers.tables import Customer as CustomerTable
from app.exports.exporter import Exporter, Fault
from app.exports.service import ExportService
from app.lib.storage import Storage, build_storage
from app.settings import Settings
from app.transfers.repository import TransferRecord
from tests.fixtures.services import ROOT
from tests.jobs.workers import WorkerProcess, _drop_queue_keys, _wait_for_worker, unique_queue

BASE_TIME = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HEADER = [
    "name",
    "email",
    "phone",
    "organization",
    "job_title",
    "notes",
    "created_at",
    "updated_at",
    "slug",
]
# Values a CSV writer can get wrong, and cells a spreadsheet would run as formulas.
AWKWARD = [
    {"name": "Zoë Ångström", "organization": "Ünïcode GmbH", "notes": "naïve café 日本語 😀"},
    {"name": 'Ann "The Hammer" Lee', "organization": "Acme, Inc.", "notes": 'says "hi", twice'},
    {"name": "Multi Line", "organization": "Acme, Inc.", "notes": "line one\nline two\r\nthree"},
    {"name": '=HYPERLINK("http://evil")', "organization": "Acme, Inc.", "notes": "+1 cell"},
    {"name": "Minus Person", "phone": "-12", "job_title": "@admin", "notes": "\tstarts with tab"},
    {"name": "Plain Person", "organization": "Beta", "notes": ""},
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, jobs_queue=unique_queue())


@pytest.fixture
async def storage(settings: Settings) -> Storage:
    storage = build_storage(settings)
    await storage.start()
    return storage


@dataclass
class RecordingJobs:
    """A job runner that only records what was enqueued (the test runs the exporter)."""

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
def exports(storage: Storage, settings: Settings, jobs: RecordingJobs) -> ExportService:
    return ExportService(storage, jobs, settings)


def customer_rows(user_id: int, rows: list[dict[str, str]], start: int = 0) -> list[Any]:
    objects = []
    for number, row in enumerate(rows, start=start):
        email = row.get("email", f"p{number}-{uuid.uuid4().hex[:6]}@seed.test")
        created = BASE_TIME + timedelta(minutes=number)
        objects.append(
            CustomerTable(
                user_id=user_id,
                slug=row.get("slug", f"p{number}-{uuid.uuid4().hex[:6]}"),
                name=row.get("name", f"Person {number}"),
                email=email,
                email_normalized=email.lower(),
                phone=row.get("phone", ""),
                organization=row.get("organization", ""),
                job_title=row.get("job_title", ""),
                notes=row.get("notes", ""),
                created_at=created,
                updated_at=created + timedelta(seconds=number),
            )
        )
    return objects


async def seed(user_id: int, rows: list[dict[str, str]], start: int = 0) -> None:
    objects = customer_rows(user_id, rows, start)
    for first in range(0, len(objects), 1000):
        await CustomerTable.insert(*objects[first : first + 1000])


async def listed(user_id: int, query: ListQuery) -> list[Customer]:
    """Every customer the dashboard lists for ``query``, page after page (its Next link)."""
    repository = PiccoloCustomerRepository()
    found: list[Customer] = []
    query = replace(query, limit=100)
    while True:
        page = await repository.list_page(user_id, query)
        found.extend(page.customers)
        if not page.next_cursor:
            return found
        query = replace(query, cursor=page.next_cursor)


def parse_csv(data: bytes) -> list[list[str]]:
    text = data.decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


@dataclass
class Run:
    exports: ExportService
    storage: Storage
    settings: Settings
    user_id: int

    async def start(
        self,
        query: ListQuery | None = None,
        *,
        slugs: list[str] | None = None,
        fmt: str = "csv",
        bom: bool = False,
    ) -> TransferRecord:
        return await self.exports.create(
            self.user_id,
            query or ListQuery(),
            slugs,
            fmt,
            bom,
            AuditContext(actor_id=self.user_id, ip="203.0.113.9", request_id="req-1"),
        )

    async def finish(
        self, transfer_id: int, *, batch_rows: int = 2, fault: Fault | None = None
    ) -> TransferRecord:
        exporter = Exporter(
            self.storage,
            self.settings,
            jobs=self.exports.jobs,
            batch_rows=batch_rows,
            fault=fault,
        )
        await exporter.run(self.user_id, transfer_id)
        return await self.exports.get(self.user_id, transfer_id)

    async def full(self, query: ListQuery | None = None, **options: Any) -> TransferRecord:
        batch_rows = options.pop("batch_rows", 2)
        transfer = await self.start(query, **options)
        return await self.finish(transfer.id, batch_rows=batch_rows)

    async def content(self, transfer: TransferRecord) -> bytes:
        assert transfer.file_key, transfer
        stream = await self.storage.get(transfer.file_key)
        return await stream.read_all()


@pytest.fixture
def run(exports: ExportService, storage: Storage, settings: Settings, user_id: int) -> Run:
    return Run(exports, storage, settings, user_id)


# --- a real SAQ worker for the full stack -----------------------------------------------


@contextlib.contextmanager
def export_worker(settings: Settings, home: Path) -> Iterator[WorkerProcess]:
    """``saq jobs.worker.settings`` (the deployed worker) on the profile's database, Redis,
    S3 bucket, SMTP server and the test's own queue."""
    assert settings.redis_url
    assert settings.s3_endpoint
    env = {key: value for key, value in os.environ.items() if not key.startswith("S3_")}
    env |= {
        "REDIS_URL": settings.redis_url,
        "JOBS_QUEUE": settings.jobs_queue,
        "SECRET_KEY": settings.secret_key,
        "DATABASE_URL": settings.database_url,
        "MAIL_URL": settings.mail_url,
        "APP_URL": settings.app_url,
        "S3_ENDPOINT": settings.s3_endpoint,
        "S3_ACCESS_KEY": settings.s3_access_key or "",
        "S3_SECRET_KEY": settings.s3_secret_key or "",
        "S3_BUCKET": settings.s3_bucket,
        "S3_SECURE": "false",
        "EXPORT_TTL_HOURS": str(settings.export_ttl_hours),
    }
    log = home / "export-worker.log"
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
        _drop_queue_keys(settings.redis_url, settings.jobs_queue)


@pytest.fixture
def job_worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess | None]:
    """What runs the jobs: the app's in-process runner (embedded) or a real SAQ worker."""
    if not settings.redis_url:
        yield None
        return
    with export_worker(settings, tmp_path) as worker:
        yield worker

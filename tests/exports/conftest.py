"""Exports on both profiles: the profile's database and storage, a book of customers with
awkward values, the exporter run to its end, and a real SAQ worker for the full stack."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.audit.context import AuditContext
from app.customers.models import Customer, ListQuery
from app.customers.repository import PiccoloCustomerRepository
from app.customers.tables import Customer as CustomerTable
from app.exports.exporter import Exporter, Fault
from app.exports.service import ExportService
from app.lib.storage import Storage
from app.settings import Settings
from app.transfers.repository import TransferRecord
from tests.jobs.workers import RecordingJobs, unique_queue

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

"""Imports on both profiles: the profile's database and storage, people, and a way to run
an import to its end on the importer directly (the job is thin over it)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from app.audit.tables import AuditLog
from app.customers.tables import Customer as CustomerTable
from app.lib.storage import Storage
from app.settings import Settings
from app.transfers.importer import Fault, Importer
from app.transfers.repository import TransferRecord
from app.transfers.service import ImportService
from tests.jobs.workers import RecordingJobs, unique_queue

FILES = Path(__file__).parent / "files"
CHUNK_ROWS = 2  # small: every test file spans several chunks


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The profile's settings with small chunks and a job queue of the test's own."""
    return replace(settings, import_chunk_rows=CHUNK_ROWS, jobs_queue=unique_queue())


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

"""The export job's work: count the rows, then read them in keyset batches, write them
(CSV or XLSX) and stream the bytes to storage, recording progress per batch.

Memory stays flat whatever the row count: one batch of rows is held at a time, CSV
bytes flow straight into ``storage.put`` (a multipart upload on S3, which minio aborts
when the stream fails, so no half-written object is ever visible), XLSX rows go to a
temporary file first (a zip's directory comes last) and that file is streamed.

Safe to run twice: an export that is no longer queued or running is left alone, and a
retry starts over (the upload of a failed attempt was aborted; the key is the same).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from app.audit.models import EXPORTED
from app.audit.service import AuditService
from app.customers.models import ListQuery
from app.exports.repository import PiccoloExportRepository
from app.exports.service import (
    NOTIFY_JOB,
    context_of,
    file_key,
    notify_key,
    query_of,
    slugs_of,
)
from app.exports.writer import CONTENT_TYPES, CSV, CsvWriter, XlsxWriter
from app.lib.jobs import JobRunner
from app.lib.storage import ObjectInfo, Storage
from app.settings import Settings
from app.transfers.repository import TransferRecord
from app.transfers.tables import TransferStatus

BATCH_ROWS = 5_000
# CSV chunks (one batch each) made ahead of the upload: a few MB at most.
AHEAD_CHUNKS = 4
Heartbeat = Callable[[], Awaitable[None]]


class Batch(Protocol):
    """What the repository reads per batch: rows (or their CSV) and where to go on."""

    @property
    def count(self) -> int: ...
    @property
    def after(self) -> tuple[Any, int] | None: ...


B = TypeVar("B", bound=Batch)
Read = Callable[[int, ListQuery, tuple[Any, int] | None, int, Sequence[str] | None], Awaitable[B]]
# Called with the number of rows written so far, after each batch: tests inject faults.
Fault = Callable[[int], None]


class ExportStopped(Exception):
    """The export was cancelled while it ran: the upload is abandoned (and aborted)."""


class _Failed:
    """What ended the chunks early, handed from the making task to the reader."""

    def __init__(self, error: Exception) -> None:
        self.error = error


async def ahead(chunks: AsyncGenerator[bytes, None], depth: int) -> AsyncIterator[bytes]:
    """``chunks``, made by a task of their own up to ``depth`` chunks ahead of the reader.

    Storage pulls the next chunk only when it wants more bytes (on S3, when it assembles
    the next part); made on demand, no chunk would be made while a part is sent. Memory
    stays bounded: at most ``depth`` chunks wait. What the making raises is raised here,
    to the reader (so the upload is aborted); a reader that stops early stops the making.
    """
    queue: asyncio.Queue[bytes | _Failed | None] = asyncio.Queue(maxsize=depth)

    async def make() -> None:
        try:
            async with contextlib.aclosing(chunks) as made:
                async for chunk in made:
                    await queue.put(chunk)
        except Exception as error:
            await queue.put(_Failed(error))
        else:
            await queue.put(None)

    maker = asyncio.create_task(make())
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        if not maker.done():
            maker.cancel()
            with contextlib.suppress(BaseException):
                await maker


class Exporter:
    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        *,
        repository: PiccoloExportRepository | None = None,
        audit: AuditService | None = None,
        jobs: JobRunner | None = None,
        batch_rows: int = BATCH_ROWS,
        fault: Fault | None = None,
    ) -> None:
        self.storage = storage
        self.settings = settings
        self.repository = repository or PiccoloExportRepository()
        self.audit = audit or AuditService(storage=storage)
        self.jobs = jobs
        self.batch_rows = batch_rows
        self.fault = fault

    async def run(self, user_id: int, transfer_id: int, heartbeat: Heartbeat | None = None) -> str:
        """Export to its end; the status the export is left in."""
        transfer = await self.repository.get_export(user_id, transfer_id)
        if transfer is None:
            return "missing"
        if transfer.status not in (TransferStatus.queued, TransferStatus.running):
            return transfer.status
        query, slugs = query_of(transfer.options), slugs_of(transfer.options)
        if not await self.repository.update(
            user_id,
            transfer_id,
            {
                "status": TransferStatus.running,
                "started_at": datetime.now(UTC),
                "processed_rows": 0,
                "error_message": None,
            },
            only_if_status=[TransferStatus.queued, TransferStatus.running],
        ):
            return "cancelled"
        total = await self.repository.count_rows(user_id, query, slugs)
        await self.repository.update(user_id, transfer_id, {"total_rows": total})
        key = file_key(user_id, transfer_id, transfer.original_filename)
        written = {"rows": 0}
        fmt = str(transfer.options.get("format", CSV))
        try:
            if fmt == CSV:
                info = await self.storage.put(
                    key,
                    ahead(self._csv(transfer, written, heartbeat), AHEAD_CHUNKS),
                    CONTENT_TYPES[CSV],
                )
            else:
                info = await self._xlsx(transfer, key, written, heartbeat)
        except ExportStopped:
            return "cancelled"
        return await self._finish(transfer, key, info, written["rows"])

    # --- the rows -------------------------------------------------------------------------

    async def _batches(
        self,
        transfer: TransferRecord,
        written: dict[str, int],
        heartbeat: Heartbeat | None,
        read: Read[B],
    ) -> AsyncIterator[B]:
        user_id = transfer.user_id
        query, slugs = query_of(transfer.options), slugs_of(transfer.options)

        def start(after: tuple[Any, int] | None) -> asyncio.Future[B]:
            return asyncio.ensure_future(read(user_id, query, after, self.batch_rows, slugs))

        # The next batch is read while this one is written: the database and the writer
        # work at the same time.
        pending = start(None)
        try:
            while True:
                batch = await pending
                if batch.after is not None:
                    pending = start(batch.after)
                if batch.count:
                    yield batch
                    written["rows"] += batch.count
                    if self.fault is not None:
                        self.fault(written["rows"])
                    # Progress, and the cancel check, in one statement per batch.
                    if not await self.repository.progress(user_id, transfer.id, written["rows"]):
                        raise ExportStopped()
                    if heartbeat is not None:
                        await heartbeat()
                if batch.after is None:
                    return
        finally:
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending

    async def _csv(
        self, transfer: TransferRecord, written: dict[str, int], heartbeat: Heartbeat | None
    ) -> AsyncGenerator[bytes, None]:
        yield CsvWriter(bom=bool(transfer.options.get("bom"))).header()
        batches = self._batches(transfer, written, heartbeat, self.repository.csv_batch)
        async for batch in batches:
            yield batch.data

    async def _xlsx(
        self,
        transfer: TransferRecord,
        key: str,
        written: dict[str, int],
        heartbeat: Heartbeat | None,
    ) -> ObjectInfo:
        writer = XlsxWriter()
        async for batch in self._batches(transfer, written, heartbeat, self.repository.rows):
            await asyncio.to_thread(writer.batch, batch.rows)
        handle = await asyncio.to_thread(writer.finish)
        try:
            return await self.storage.put(key, handle, CONTENT_TYPES["xlsx"])
        finally:
            await asyncio.to_thread(handle.close)

    # --- the end --------------------------------------------------------------------------

    async def _finish(self, transfer: TransferRecord, key: str, info: ObjectInfo, rows: int) -> str:
        user_id, transfer_id = transfer.user_id, transfer.id
        now = datetime.now(UTC)
        options = {**transfer.options, "size_bytes": info.size}
        async with self.repository.transaction():
            done = await self.repository.update(
                user_id,
                transfer_id,
                {
                    "status": TransferStatus.completed,
                    "file_key": key,
                    "processed_rows": rows,
                    "total_rows": rows,
                    "finished_at": now,
                    "expires_at": now + timedelta(hours=self.settings.export_ttl_hours),
                    "options": options,
                },
                only_if_status=[TransferStatus.running],
            )
            if done:
                # Who took which data out is on record: one entry per export.
                await self.audit.record_event(
                    user_id,
                    EXPORTED,
                    context_of(transfer.options),
                    customer_label=f"Export {transfer.original_filename}",
                    new_values={
                        "export_id": transfer_id,
                        "filters": transfer.options.get("query") or {},
                        "selected": len(transfer.options["slugs"])
                        if transfer.options.get("slugs") is not None
                        else None,
                        "format": transfer.options.get("format", CSV),
                        "rows": rows,
                    },
                )
        if not done:
            # Cancelled as the upload completed: the file must not outlive the export.
            await self.storage.delete(key)
            return "cancelled"
        if self.jobs is not None:
            await self.jobs.enqueue(
                NOTIFY_JOB, key=notify_key(transfer_id), user_id=user_id, transfer_id=transfer_id
            )
        return "completed"

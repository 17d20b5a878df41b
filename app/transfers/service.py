"""Import rules: upload (streamed, size-limited, sniffed), configure, start, cancel, undo.

The only entry point for controllers, jobs and the CLI; the browser pages and the API are
thin over it. A transfer moves ``pending`` (uploaded, described) -> ``queued`` (started)
-> ``running`` (the job) -> ``completed`` | ``cancelled`` | ``failed``. The row is the
truth: the job writes it, every page reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.audit.context import AuditContext
from app.audit.models import DELETED, IMPORTED, RESTORED
from app.audit.service import AuditService
from app.customers.models import EDITABLE_FIELDS, CustomerChange
from app.customers.service import DELETED as CUSTOMER_DELETED
from app.customers.service import UPDATED as CUSTOMER_UPDATED
from app.lib.jobs import JobRunner
from app.lib.storage import Storage, StorageError, StorageUnavailable
from app.lib.validation import ValidationFailed
from app.settings import Settings
from app.transfers.csv_reader import MAX_SNIFF_BYTES, FileFormat, sniff_file
from app.transfers.errors import NO_ROWS_MESSAGE, CsvError, MappingError
from app.transfers.importer import POLICIES, SKIP, Invalidate, source_key
from app.transfers.mapping import Mapping, suggest_mapping, validate_mapping
from app.transfers.repository import PiccoloTransferRepository, TransferRecord
from app.transfers.tables import TransferKind, TransferStatus

IMPORT_JOB = "import_customers"
HEAD_BYTES = MAX_SNIFF_BYTES + 1  # what sniff_file may read of the start of a file
UPLOAD_CHUNK = 1024 * 1024
REPORT_LINK_LIFETIME = timedelta(minutes=15)
UNDO_BATCH = 5_000
FINISHED = (TransferStatus.completed, TransferStatus.failed, TransferStatus.cancelled)


STORAGE_DOWN = (
    "We could not store your file: our file storage is not answering right now. Nothing "
    "was kept; try again in a few minutes."
)


class ImportNotFound(LookupError):
    """No import with this id in this user's list (another user's is not found too)."""


class _TooLarge(Exception):
    pass


def job_key(transfer_id: int) -> str:
    return f"import:{transfer_id}"


def _size_words(nbytes: int) -> str:
    mb = 1024 * 1024
    if nbytes >= mb and nbytes % mb == 0:
        return f"{nbytes // mb} MB"
    if nbytes >= 1024 and nbytes % 1024 == 0:
        return f"{nbytes // 1024} KB"
    return f"{nbytes:,} bytes"


async def _chunks(source: Any) -> AsyncIterator[bytes]:
    """Bytes from an UploadFile (async read), an async iterator, or a blocking file."""
    read = getattr(source, "read", None)
    if read is not None and inspect.iscoroutinefunction(read):
        while chunk := await read(UPLOAD_CHUNK):
            yield bytes(chunk)
        return
    if read is not None:
        while chunk := await asyncio.to_thread(read, UPLOAD_CHUNK):
            yield bytes(chunk)
        return
    if isinstance(source, AsyncIterable):
        async for chunk in source:
            yield bytes(chunk)
        return
    raise TypeError(f"cannot read an upload from {source!r}")


@dataclass(frozen=True)
class ImportView:
    """An import as the pages and the API show it."""

    transfer: TransferRecord
    error_report_url: str | None

    @property
    def format(self) -> FileFormat | None:
        data = self.transfer.options.get("format")
        return FileFormat(**data) if data else None

    @property
    def mapping(self) -> Mapping | None:
        data = self.transfer.options.get("mapping")
        return Mapping.from_dict(data) if data else None

    @property
    def total_is_estimate(self) -> bool:
        return self.transfer.status in (TransferStatus.queued, TransferStatus.running)


@dataclass(frozen=True)
class UndoResult:
    deleted: int
    restored: int


class ImportService:
    def __init__(
        self,
        storage: Storage,
        jobs: JobRunner | None,
        settings: Settings,
        *,
        repository: PiccoloTransferRepository | None = None,
        audit: AuditService | None = None,
        invalidate: Invalidate | None = None,
    ) -> None:
        self.storage = storage
        self._invalidate = invalidate
        self.jobs = jobs
        self.settings = settings
        self.repository = repository or PiccoloTransferRepository()
        self.audit = audit or AuditService(storage=storage)

    # --- reads ---------------------------------------------------------------------------

    async def get(self, user_id: int, transfer_id: int) -> TransferRecord:
        found = await self.repository.get(user_id, transfer_id, TransferKind.import_)
        if found is None:
            raise ImportNotFound(transfer_id)
        return found

    async def view(self, user_id: int, transfer_id: int) -> ImportView:
        transfer = await self.get(user_id, transfer_id)
        return ImportView(transfer, await self.report_url(transfer))

    async def list_imports(self, user_id: int, limit: int = 100) -> list[TransferRecord]:
        return await self.repository.list_transfers(user_id, TransferKind.import_, limit)

    async def report_url(self, transfer: TransferRecord) -> str | None:
        if not transfer.error_report_key:
            return None
        name = f"import-{transfer.id}-errors.csv"
        return await self.storage.download_url(
            transfer.error_report_key, REPORT_LINK_LIFETIME, filename=name
        )

    # --- upload --------------------------------------------------------------------------

    async def upload(self, user_id: int, filename: str, source: Any) -> TransferRecord:
        """Stream ``source`` to storage (at most IMPORT_MAX_BYTES), describe it (format and
        suggested mapping in ``options``) and return the ``pending`` transfer.

        Raises ValidationFailed({"file": ...}) for a file too large, empty or not a CSV;
        then nothing is kept, neither the row nor the object.
        """
        limit = self.settings.import_max_bytes
        transfer = await self.repository.create(
            user_id,
            {
                "kind": TransferKind.import_,
                "status": TransferStatus.pending,
                "original_filename": (filename or "upload.csv")[:255],
                "options": {},
            },
        )
        key = source_key(user_id, transfer.id)
        head = bytearray()
        state = {"size": 0, "too_large": False}

        async def limited() -> AsyncIterator[bytes]:
            async for chunk in _chunks(source):
                state["size"] += len(chunk)
                if state["size"] > limit:
                    state["too_large"] = True
                    raise _TooLarge()
                if len(head) < HEAD_BYTES:
                    head.extend(chunk[: HEAD_BYTES - len(head)])
                yield chunk

        try:
            try:
                info = await self.storage.put(key, limited(), "text/csv")
            except StorageUnavailable:
                raise ValidationFailed({"file": STORAGE_DOWN}) from None
            except Exception:
                if state["too_large"]:
                    raise ValidationFailed(
                        {
                            "file": f"The file is larger than {_size_words(limit)}, the most "
                            "an import takes. Split it into smaller files and import each."
                        }
                    ) from None
                raise
            try:
                fmt = sniff_file(io.BytesIO(bytes(head)))
            except CsvError as error:
                raise ValidationFailed({"file": error.message}) from None
            if not fmt.preview_rows and info.size < HEAD_BYTES:
                raise ValidationFailed({"file": NO_ROWS_MESSAGE})
        except BaseException:
            await self._discard(user_id, transfer.id, key)
            raise
        suggested = suggest_mapping(fmt.header)
        options = {
            "format": asdict(fmt),
            "mapping": suggested.to_dict(),
            "suggested_mapping": suggested.to_dict(),
            "on_duplicate": SKIP,
            "size": info.size,
        }
        await self.repository.update(user_id, transfer.id, {"file_key": key, "options": options})
        return await self.get(user_id, transfer.id)

    async def _discard(self, user_id: int, transfer_id: int, key: str) -> None:
        # The row first: it is what the person sees. The object may not exist (a refused
        # upload aborts its multipart upload) or the storage may be down; then nothing
        # points at what may be left under the transfer's key.
        await asyncio.shield(self.repository.delete(user_id, transfer_id))
        with contextlib.suppress(StorageError):
            await asyncio.shield(self.storage.delete(key))

    # --- configure, start ----------------------------------------------------------------

    async def configure(
        self,
        user_id: int,
        transfer_id: int,
        mapping: dict[str, str] | Sequence[str] | None = None,
        on_duplicate: str = SKIP,
    ) -> TransferRecord:
        """Choose the mapping (``{source_header: target}`` as the API sends it, or one
        target per column as the mapping page does; None keeps the suggested one) and
        the duplicate policy. Raises ValidationFailed naming what is wrong or missing."""
        transfer = await self.get(user_id, transfer_id)
        if transfer.status != TransferStatus.pending:
            raise ValidationFailed({"status": "This import has started already."})
        errors: dict[str, str] = {}
        if on_duplicate not in POLICIES:
            errors["on_duplicate"] = "Choose skip, update or merge."
        header = transfer.options["format"]["header"]
        chosen: Mapping | None = None
        try:
            if mapping is None:
                chosen = Mapping.from_dict(transfer.options["mapping"])
            elif isinstance(mapping, dict):
                chosen = Mapping.from_names(header, mapping)
            else:
                chosen = Mapping.from_targets(header, list(mapping))
        except MappingError as error:
            errors["mapping"] = " ".join(error.problems)
        if chosen is not None:
            problems = validate_mapping(chosen)
            if problems:
                errors["mapping"] = " ".join(problems)
        if errors or chosen is None:
            raise ValidationFailed(errors)
        options = {**transfer.options, "mapping": chosen.to_dict(), "on_duplicate": on_duplicate}
        await self.repository.update(user_id, transfer_id, {"options": options})
        return await self.get(user_id, transfer_id)

    async def start(self, user_id: int, transfer_id: int) -> TransferRecord:
        """Queue the import job (key ``import:{id}``: never queued twice)."""
        transfer = await self.get(user_id, transfer_id)
        problems = validate_mapping(Mapping.from_dict(transfer.options["mapping"]))
        if problems:
            raise ValidationFailed({"mapping": " ".join(problems)})
        if not await self.repository.update(
            user_id,
            transfer_id,
            {"status": TransferStatus.queued},
            only_if_status=[TransferStatus.pending],
        ):
            raise ValidationFailed({"status": "This import has started already."})
        await self.enqueue(user_id, transfer_id)
        return await self.get(user_id, transfer_id)

    async def enqueue(self, user_id: int, transfer_id: int) -> None:
        if self.jobs is None:
            raise RuntimeError("this ImportService was built without a job runner")
        await self.jobs.enqueue(
            IMPORT_JOB, key=job_key(transfer_id), user_id=user_id, transfer_id=transfer_id
        )

    async def retry(self, user_id: int, transfer_id: int) -> TransferRecord:
        """Queue a failed import again under the same job key; the job resumes from the
        transfer's checkpoint, so the rows committed before the failure are not redone.

        Both runners take a key again once its job has finished: SAQ refuses a key only
        while the job is incomplete, the in-process runner only while it is not finished."""
        await self.get(user_id, transfer_id)
        if not await self.repository.update(
            user_id,
            transfer_id,
            {"status": TransferStatus.queued, "error_message": None, "finished_at": None},
            only_if_status=[TransferStatus.failed],
        ):
            raise ValidationFailed({"status": "Only an import that failed can be tried again."})
        await self.enqueue(user_id, transfer_id)
        return await self.get(user_id, transfer_id)

    async def create_import(
        self,
        user_id: int,
        filename: str,
        source: Any,
        mapping: dict[str, str] | None = None,
        on_duplicate: str = SKIP,
    ) -> TransferRecord:
        """Upload, configure and start in one go (the API); on invalid input nothing is kept."""
        transfer = await self.upload(user_id, filename, source)
        try:
            await self.configure(user_id, transfer.id, mapping, on_duplicate)
        except BaseException:
            await self._discard(user_id, transfer.id, transfer.file_key or "")
            raise
        return await self.start(user_id, transfer.id)

    # --- cancel, undo --------------------------------------------------------------------

    async def cancel(self, user_id: int, transfer_id: int) -> TransferRecord:
        """Not started yet: cancelled at once. Running: the job stops at the next chunk
        (what it committed stays). Finished: ValidationFailed."""
        transfer = await self.get(user_id, transfer_id)
        now = datetime.now(UTC)
        if await self.repository.update(
            user_id,
            transfer_id,
            {
                "status": TransferStatus.cancelled,
                "finished_at": now,
                "error_message": "The import was cancelled before it started.",
            },
            only_if_status=[TransferStatus.pending, TransferStatus.queued],
        ):
            return await self.get(user_id, transfer_id)
        if transfer.status == TransferStatus.running or (transfer.status == TransferStatus.queued):
            options = {**transfer.options, "cancel_requested": True}
            await self.repository.update(user_id, transfer_id, {"options": options})
            return await self.get(user_id, transfer_id)
        raise ValidationFailed({"status": "This import has finished: there is nothing to cancel."})

    async def undo(self, user_id: int, transfer_id: int, context: AuditContext) -> UndoResult:
        """Delete the customers the import created and restore the previous values of the
        ones it updated or merged (from its audit entries), in one transaction, audited
        as ``deleted`` and ``restored`` with the import's id."""
        transfer = await self.get(user_id, transfer_id)
        if transfer.status not in (TransferStatus.completed, TransferStatus.cancelled):
            raise ValidationFailed({"status": "Only a finished import can be undone."})
        if transfer.options.get("undone_at"):
            raise ValidationFailed({"status": "This import has been undone already."})
        context = context.for_import(transfer_id)
        deleted = restored = 0
        async with self.repository.transaction():
            after_id = 0
            while entries := await self.repository.import_entries(
                user_id, transfer_id, IMPORTED, after_id, UNDO_BATCH
            ):
                after_id = entries[-1].id
                created_ids = [e.customer_id for e in entries if e.customer_id and not e.old_values]
                olds = {
                    e.customer_id: e.old_values for e in entries if e.customer_id and e.old_values
                }
                gone = await self.repository.delete_customers(user_id, created_ids)
                await self.audit.record_many(
                    [
                        CustomerChange(
                            event=CUSTOMER_DELETED,
                            user_id=user_id,
                            customer_id=c.id,
                            slug=c.slug,
                            label=c.name,
                            old_values=c.editable_values(),
                            before=c,
                        )
                        for c in gone
                    ],
                    context,
                    event=DELETED,
                )
                deleted += len(gone)
                current = await self.repository.customers_by_id(user_id, list(olds))
                updates = []
                for customer_id, old in olds.items():
                    before = current.get(customer_id)
                    if before is None or old is None:
                        continue
                    # Only the fields the import changed: the others keep what they
                    # hold when the statement runs.
                    values = {n: str(old[n] or "") for n in EDITABLE_FIELDS if n in old}
                    values.pop("email", None)
                    updates.append((customer_id, values))
                now = datetime.now(UTC)
                changes = []
                for after in await self.repository.update_customers(user_id, updates, now):
                    before = current[after.id]
                    old = olds[after.id] or {}
                    fields = [n for n in EDITABLE_FIELDS if n in old]
                    changes.append(
                        CustomerChange(
                            event=CUSTOMER_UPDATED,
                            user_id=user_id,
                            customer_id=after.id,
                            slug=after.slug,
                            label=after.name,
                            old_values={n: getattr(before, n) for n in fields},
                            new_values={n: getattr(after, n) for n in fields},
                            before=before,
                            after=after,
                        )
                    )
                await self.audit.record_many(changes, context, event=RESTORED)
                restored += len(changes)
            options = {
                **transfer.options,
                "undone_at": datetime.now(UTC).isoformat(),
                "undo": {"deleted": deleted, "restored": restored},
            }
            await self.repository.update(user_id, transfer_id, {"options": options})
        if self._invalidate is not None:
            await self._invalidate(user_id)
        return UndoResult(deleted=deleted, restored=restored)


FINISHED_STATUSES = tuple(str(status) for status in FINISHED)

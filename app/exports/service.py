"""Export rules: queue an export of what the dashboard shows (or the selected rows), follow
it, download it for 15 minutes at a time, cancel or retry it, expire it.

The only entry point for controllers and jobs; the pages and the API are thin over it. An
export moves ``queued`` -> ``running`` (the job, ``app.exports.exporter``) ->
``completed`` | ``failed`` | ``cancelled``, then ``expired`` once EXPORT_TTL_HOURS have
passed and the file is gone. The transfer row is the truth: the job writes it, every
page reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from app.audit.context import AuditContext
from app.customers.models import ListQuery
from app.exports.repository import PiccoloExportRepository
from app.exports.writer import CSV, FORMATS, XLSX
from app.lib.jobs import JobRunner
from app.lib.storage import Storage
from app.lib.validation import ValidationFailed
from app.settings import Settings
from app.transfers.repository import TransferRecord
from app.transfers.tables import TransferKind, TransferStatus

EXPORT_JOB = "export_customers"
NOTIFY_JOB = "notify_export_ready"
LINK_LIFETIME = timedelta(minutes=15)
MAX_SELECTED = 10_000
EXPIRY_BATCH = 500
RUNNING = (TransferStatus.queued, TransferStatus.running)
FORMAT_NAMES = {CSV: "CSV", XLSX: "Excel workbook (XLSX)"}


class ExportNotFound(LookupError):
    """No export with this id in this user's list (another user's is not found too)."""


class ExportUnavailable(Exception):
    """The export has no file to download (yet, or any more); ``expired`` says which."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.expired = expired


def job_key(transfer_id: int) -> str:
    return f"export:{transfer_id}"


def notify_key(transfer_id: int) -> str:
    return f"export-ready:{transfer_id}"


def file_name(fmt: str, moment: datetime) -> str:
    return f"customers-{moment.astimezone(UTC):%Y%m%d-%H%M}.{fmt}"


def file_key(user_id: int, transfer_id: int, filename: str) -> str:
    return f"exports/{user_id}/{transfer_id}/{filename}"


def download_path(transfer_id: int) -> str:
    """The app route that makes a fresh short-lived link (``export_download``); mails
    carry it, since a presigned URL would die in 15 minutes."""
    return f"/exports/{transfer_id}/download"


def query_options(query: ListQuery) -> dict[str, Any]:
    """What an export keeps of the list it exports: filters and sort, not the page."""
    return {**query.filter_key, "sort": query.sort}


def query_of(options: dict[str, Any]) -> ListQuery:
    saved = options.get("query") or {}

    def day(name: str) -> date | None:
        value = saved.get(name)
        return date.fromisoformat(value) if value else None

    return ListQuery(
        q=saved.get("q") or "",
        organization=saved.get("organization") or None,
        created_from=day("created_from"),
        created_to=day("created_to"),
        sort=saved.get("sort") or None,
    )


def slugs_of(options: dict[str, Any]) -> list[str] | None:
    slugs = options.get("slugs")
    return None if slugs is None else [str(s) for s in slugs]


def context_of(options: dict[str, Any]) -> AuditContext:
    return AuditContext(**(options.get("context") or {}))


@dataclass(frozen=True)
class ExportView:
    """An export as the pages and the API show it."""

    transfer: TransferRecord
    download_url: str | None  # a fresh 15-minute link, only when there is a file

    @property
    def rows(self) -> int:
        return self.transfer.processed_rows

    @property
    def size_bytes(self) -> int | None:
        size = self.transfer.options.get("size_bytes")
        return int(size) if size is not None else None

    @property
    def format(self) -> str:
        return str(self.transfer.options.get("format", CSV))

    @property
    def bom(self) -> bool:
        return bool(self.transfer.options.get("bom"))

    @property
    def selected(self) -> int | None:
        slugs = self.transfer.options.get("slugs")
        return None if slugs is None else len(slugs)

    @property
    def filters(self) -> dict[str, Any]:
        return dict(self.transfer.options.get("query") or {})

    @property
    def finished(self) -> bool:
        return self.transfer.status not in RUNNING

    @property
    def percent(self) -> int:
        total = self.transfer.total_rows
        if self.transfer.status == TransferStatus.completed:
            return 100
        if not total:
            return 0
        return min(100, self.transfer.processed_rows * 100 // total)


class ExportService:
    def __init__(
        self,
        storage: Storage,
        jobs: JobRunner | None,
        settings: Settings,
        *,
        repository: PiccoloExportRepository | None = None,
    ) -> None:
        self.storage = storage
        self.jobs = jobs
        self.settings = settings
        self.repository = repository or PiccoloExportRepository()

    # --- create --------------------------------------------------------------------------

    async def create(
        self,
        user_id: int,
        query: ListQuery,
        slugs: Sequence[str] | None,
        format: str,
        bom: bool,
        context: AuditContext,
    ) -> TransferRecord:
        """Queue an export of every row ``query`` lists (all pages), or only of ``slugs``
        (in the list's order), as CSV (with a UTF-8 BOM when ``bom``) or XLSX.

        Raises ValidationFailed({"format"|"slugs": ...}) in words.
        """
        errors: dict[str, str] = {}
        if format not in FORMATS:
            errors["format"] = "Choose the format: csv or xlsx."
        chosen: list[str] | None = None
        if slugs is not None:
            chosen = list(dict.fromkeys(s for s in slugs if isinstance(s, str) and s))
            if not chosen:
                errors["slugs"] = "Select the customers to export first."
            elif len(chosen) > MAX_SELECTED:
                errors["slugs"] = (
                    f"Select at most {MAX_SELECTED:,} customers, or export the whole list."
                )
        if errors:
            raise ValidationFailed(errors)
        now = datetime.now(UTC)
        transfer = await self.repository.create(
            user_id,
            {
                "kind": TransferKind.export,
                "status": TransferStatus.queued,
                "original_filename": file_name(format, now),
                "options": {
                    "query": query_options(query),
                    "slugs": chosen,
                    "format": format,
                    "bom": bool(bom) and format == CSV,
                    # Who asked, from where: the audit entry is written when the file is done.
                    "context": {k: v for k, v in asdict(context).items() if k != "import_id"},
                },
            },
        )
        await self._enqueue(user_id, transfer.id)
        return transfer

    async def _enqueue(self, user_id: int, transfer_id: int) -> None:
        if self.jobs is None:
            raise RuntimeError("this ExportService was built without a job runner")
        await self.jobs.enqueue(
            EXPORT_JOB, key=job_key(transfer_id), user_id=user_id, transfer_id=transfer_id
        )

    # --- reads ---------------------------------------------------------------------------

    async def get(self, user_id: int, transfer_id: int) -> TransferRecord:
        found = await self.repository.get_export(user_id, transfer_id)
        if found is None:
            raise ExportNotFound(transfer_id)
        return found

    async def view(self, user_id: int, transfer_id: int) -> ExportView:
        transfer = await self.get(user_id, transfer_id)
        return ExportView(transfer, await self._link(transfer))

    async def list_exports(self, user_id: int, limit: int = 100) -> list[ExportView]:
        found = await self.repository.list_exports(user_id, limit)
        return [ExportView(t, await self._link(t)) for t in found]

    async def download_url(self, user_id: int, transfer_id: int) -> str:
        """A fresh 15-minute link to the file, for its owner only. Raises ExportNotFound,
        or ExportUnavailable (not finished, failed, or expired) with words."""
        transfer = await self.get(user_id, transfer_id)
        link = await self._link(transfer)
        if link is not None:
            return link
        if transfer.status == TransferStatus.expired or (
            transfer.status == TransferStatus.completed
        ):
            hours = self.settings.export_ttl_hours
            raise ExportUnavailable(
                f"This export has expired: files are kept for {hours} hours. "
                "Export the list again to get a fresh file.",
                expired=True,
            )
        if transfer.status in RUNNING:
            raise ExportUnavailable("This export is not finished yet.")
        raise ExportUnavailable("This export has no file: it did not finish.")

    async def _link(self, transfer: TransferRecord) -> str | None:
        if (
            transfer.status != TransferStatus.completed
            or not transfer.file_key
            or (transfer.expires_at is not None and transfer.expires_at <= datetime.now(UTC))
        ):
            return None
        return await self.storage.download_url(
            transfer.file_key, LINK_LIFETIME, filename=transfer.original_filename
        )

    # --- cancel, retry -------------------------------------------------------------------

    async def cancel(self, user_id: int, transfer_id: int) -> TransferRecord:
        """Queued or running: cancelled now; a running job notices at its next batch and
        aborts its upload, so no file is left. Finished: ValidationFailed."""
        await self.get(user_id, transfer_id)
        if not await self.repository.update(
            user_id,
            transfer_id,
            {
                "status": TransferStatus.cancelled,
                "finished_at": datetime.now(UTC),
                "error_message": "The export was cancelled.",
            },
            only_if_status=list(RUNNING),
        ):
            raise ValidationFailed(
                {"status": "This export has finished: there is nothing to cancel."}
            )
        return await self.get(user_id, transfer_id)

    async def retry(self, user_id: int, transfer_id: int) -> TransferRecord:
        """Queue a failed (or cancelled) export again, from the start."""
        await self.get(user_id, transfer_id)
        if not await self.repository.update(
            user_id,
            transfer_id,
            {
                "status": TransferStatus.queued,
                "processed_rows": 0,
                "total_rows": None,
                "error_message": None,
                "started_at": None,
                "finished_at": None,
            },
            only_if_status=[TransferStatus.failed, TransferStatus.cancelled],
        ):
            raise ValidationFailed({"status": "Only a failed or cancelled export can be retried."})
        await self._enqueue(user_id, transfer_id)
        return await self.get(user_id, transfer_id)

    # --- expiry --------------------------------------------------------------------------

    async def expire_due(self, now: datetime | None = None) -> int:
        """Delete the files of completed exports past their expiry and mark them expired;
        how many. Safe to run twice: a deleted object is no error, an expired row no
        longer matches."""
        now = now or datetime.now(UTC)
        expired = 0
        while due := await self.repository.due_for_expiry(now, EXPIRY_BATCH):
            for transfer in due:
                if transfer.file_key:
                    await self.storage.delete(transfer.file_key)
            expired += await self.repository.mark_expired([t.id for t in due])
            if len(due) < EXPIRY_BATCH:
                break
        return expired

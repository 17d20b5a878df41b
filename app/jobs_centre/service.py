"""The jobs centre: a user's imports and exports as rows to show, and the jobs badge mark.

Rows say in words what each transfer is doing and which actions it allows; the actions
themselves belong to the import and export pages (their services hold the rules).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime

from app.accounts.repository import PiccoloAccountRepository
from app.jobs_centre.repository import PiccoloJobsRepository
from app.transfers.repository import TransferRecord
from app.transfers.tables import TransferKind, TransferStatus

PAGE_SIZE = 25
ACTIVE = frozenset({TransferStatus.queued, TransferStatus.running})
FINISHED = frozenset({TransferStatus.completed, TransferStatus.failed, TransferStatus.cancelled})


class JobNotFound(LookupError):
    """No transfer of this user with that id (another user's is not found either)."""


class InvalidCursor(ValueError):
    pass


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def size_words(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size):,} bytes" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1000
    return f"{nbytes:,} bytes"


@dataclass(frozen=True)
class JobRow:
    """One transfer as the jobs centre shows it."""

    transfer: TransferRecord

    @property
    def id(self) -> int:
        return self.transfer.id

    @property
    def is_import(self) -> bool:
        return self.transfer.kind == TransferKind.import_

    @property
    def kind_label(self) -> str:
        return "Import" if self.is_import else "Export"

    @property
    def file_name(self) -> str:
        return self.transfer.original_filename or f"{self.kind_label.lower()} #{self.id}"

    @property
    def active(self) -> bool:
        return self.transfer.status in ACTIVE

    @property
    def undone(self) -> bool:
        return bool(self.transfer.options.get("undone_at"))

    @property
    def status_label(self) -> str:
        status = self.transfer.status
        labels: dict[str, str] = {
            TransferStatus.pending: "Waiting for the column mapping",
            TransferStatus.queued: "Waiting to start",
            TransferStatus.running: "Running",
            TransferStatus.completed: "Undone" if self.undone else "Finished",
            TransferStatus.failed: "Failed",
            TransferStatus.cancelled: "Cancelled",
            TransferStatus.expired: "File expired",
        }
        return labels.get(status, status)

    @property
    def status_detail(self) -> str | None:
        t = self.transfer
        if t.status == TransferStatus.failed:
            return t.error_message or "It stopped with an error."
        if t.status == TransferStatus.running:
            return f"{self.progress_words} done"
        if t.status == TransferStatus.cancelled:
            return "Rows committed before the cancel were kept."
        if t.status == TransferStatus.expired:
            return "The file was deleted after its retention time; export again."
        return None

    @property
    def progress_value(self) -> int:
        if self.transfer.status == TransferStatus.completed:
            return self.progress_max
        return min(self.transfer.processed_rows, self.progress_max)

    @property
    def progress_max(self) -> int:
        total = self.transfer.total_rows
        if total:
            return max(total, self.transfer.processed_rows)
        return max(self.transfer.processed_rows, 1)

    @property
    def progress_known(self) -> bool:
        """False while the total is unknown and the job has not finished (indeterminate)."""
        return bool(self.transfer.total_rows) or self.transfer.status in FINISHED

    @property
    def percent(self) -> int:
        return int(100 * self.progress_value / self.progress_max)

    @property
    def progress_words(self) -> str:
        t = self.transfer
        if t.total_rows:
            return f"{t.processed_rows:,} of {t.total_rows:,} rows ({self.percent} %)"
        return f"{_plural(t.processed_rows, 'row')}"

    @property
    def counts(self) -> list[tuple[str, str]]:
        t = self.transfer
        if self.is_import:
            return [
                ("Created", f"{t.created:,}"),
                ("Updated", f"{t.updated:,}"),
                ("Skipped", f"{t.skipped:,}"),
                ("Failed", f"{t.failed:,}"),
            ]
        counts = [("Rows", f"{t.processed_rows:,}")]
        size = t.options.get("size_bytes")
        if isinstance(size, int):
            counts.append(("Size", size_words(size)))
        return counts

    @property
    def started_at(self) -> datetime | None:
        return self.transfer.started_at

    @property
    def finished_at(self) -> datetime | None:
        return self.transfer.finished_at

    # --- which actions apply (the pages of imports and exports carry them out) ----------

    @property
    def can_download(self) -> bool:
        return not self.is_import and self.transfer.status == TransferStatus.completed

    @property
    def has_error_report(self) -> bool:
        return self.is_import and bool(self.transfer.error_report_key)

    @property
    def can_cancel(self) -> bool:
        return self.active

    @property
    def can_retry(self) -> bool:
        return self.transfer.status == TransferStatus.failed

    @property
    def can_undo(self) -> bool:
        return (
            self.is_import
            and self.transfer.status in (TransferStatus.completed, TransferStatus.cancelled)
            and not self.undone
        )


@dataclass(frozen=True)
class JobsPage:
    rows: list[JobRow]
    next_cursor: str | None


def encode_cursor(transfer: TransferRecord) -> str:
    raw = f"{transfer.created_at.isoformat()}|{transfer.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, number = raw.partition("|")
        created_at = datetime.fromisoformat(when)
        if created_at.tzinfo is None or not number.isdigit():
            raise ValueError(cursor)
        return created_at.astimezone(UTC), int(number)
    except (ValueError, UnicodeDecodeError, binascii.Error) as error:
        raise InvalidCursor(cursor) from error


class JobsCentre:
    def __init__(
        self,
        repository: PiccoloJobsRepository | None = None,
        accounts: PiccoloAccountRepository | None = None,
    ) -> None:
        self.repository = repository or PiccoloJobsRepository()
        self.accounts = accounts or PiccoloAccountRepository()

    async def page(
        self, user_id: int, cursor: str | None = None, limit: int = PAGE_SIZE
    ) -> JobsPage:
        """A page of the user's transfers, newest first; raises InvalidCursor."""
        before = decode_cursor(cursor) if cursor else None
        found = await self.repository.page(user_id, before, limit + 1)
        rows = [JobRow(t) for t in found[:limit]]
        next_cursor = encode_cursor(found[limit - 1]) if len(found) > limit else None
        return JobsPage(rows=rows, next_cursor=next_cursor)

    async def row(self, user_id: int, transfer_id: int) -> JobRow:
        transfer = await self.repository.get(user_id, transfer_id)
        if transfer is None:
            raise JobNotFound(transfer_id)
        return JobRow(transfer)

    async def mark_seen(self, user_id: int, at: datetime | None = None) -> None:
        """Everything finished up to ``at`` (now) no longer counts on the badge."""
        await self.accounts.mark_jobs_seen(user_id, at or datetime.now(UTC))

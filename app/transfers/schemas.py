"""What the imports API reads and writes: the shapes published in the OpenAPI schema."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec
from litestar.datastructures import UploadFile

from app.transfers.repository import TransferRecord
from app.transfers.service import ImportView, UndoResult


@dataclass
class ImportForm:
    """multipart/form-data: the CSV file, an optional mapping as JSON
    ``{source_header: target_field}`` and the duplicate policy."""

    file: UploadFile | None = None
    mapping: str | None = None
    on_duplicate: str = "skip"


class ImportOut(msgspec.Struct):
    """An import and its progress. ``total_rows`` is estimated from the file size while
    it runs (``total_is_estimate``) and exact once it has finished."""

    id: int
    status: str
    filename: str
    total_rows: int | None
    total_is_estimate: bool
    processed_rows: int
    created: int
    updated: int
    skipped: int
    failed: int
    on_duplicate: str
    error_report_url: str | None
    error_message: str | None
    undone: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, transfer: TransferRecord, error_report_url: str | None = None) -> ImportOut:
        return cls(
            id=transfer.id,
            status=transfer.status,
            filename=transfer.original_filename,
            total_rows=transfer.total_rows,
            total_is_estimate=transfer.status in ("queued", "running"),
            processed_rows=transfer.processed_rows,
            created=transfer.created,
            updated=transfer.updated,
            skipped=transfer.skipped,
            failed=transfer.failed,
            on_duplicate=str(transfer.options.get("on_duplicate", "skip")),
            error_report_url=error_report_url,
            error_message=transfer.error_message,
            undone=bool(transfer.options.get("undone_at")),
            created_at=transfer.created_at,
            started_at=transfer.started_at,
            finished_at=transfer.finished_at,
        )

    @classmethod
    def of_view(cls, view: ImportView) -> ImportOut:
        return cls.of(view.transfer, view.error_report_url)


class ImportListOut(msgspec.Struct):
    data: list[ImportOut]


class UndoOut(msgspec.Struct):
    """What an undo did: customers the import created and deleted now, and customers it
    changed whose previous values are back."""

    id: int
    deleted: int
    restored: int

    @classmethod
    def of(cls, transfer_id: int, result: UndoResult) -> UndoOut:
        return cls(id=transfer_id, deleted=result.deleted, restored=result.restored)

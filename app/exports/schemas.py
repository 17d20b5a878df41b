"""What the exports API reads and writes: the shapes published in the OpenAPI schema."""

from __future__ import annotations

from datetime import datetime

import msgspec

from app.exports.service import ExportView


class ExportCreate(msgspec.Struct, forbid_unknown_fields=True):
    """What to export: the list's search, filters and sort as the customers API takes
    them (every page of it), or only ``slugs`` of it; ``format`` csv or xlsx; ``bom``
    adds a UTF-8 byte order mark to a CSV so that Excel reads accents right."""

    format: str = "csv"
    q: str = ""
    organization: str = ""
    created_from: str = ""
    created_to: str = ""
    sort: str = ""
    slugs: list[str] | None = None
    bom: bool = False


class ExportQueuedOut(msgspec.Struct):
    id: int
    status: str


class ExportOut(msgspec.Struct):
    """An export and its progress. ``download_url`` (a completed export not yet expired)
    works for 15 minutes; ask again for a fresh one."""

    id: int
    status: str
    format: str
    filename: str
    rows: int
    total_rows: int | None
    size_bytes: int | None
    download_url: str | None
    expires_at: datetime | None
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, view: ExportView) -> ExportOut:
        transfer = view.transfer
        return cls(
            id=transfer.id,
            status=transfer.status,
            format=view.format,
            filename=transfer.original_filename,
            rows=view.rows,
            total_rows=transfer.total_rows,
            size_bytes=view.size_bytes,
            download_url=view.download_url,
            expires_at=transfer.expires_at,
            error_message=transfer.error_message,
            created_at=transfer.created_at,
            started_at=transfer.started_at,
            finished_at=transfer.finished_at,
        )


class ExportListOut(msgspec.Struct):
    data: list[ExportOut]

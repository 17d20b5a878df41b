"""Imports and exports. This row, not the queue, is the truth about a job's progress."""

from enum import StrEnum

from piccolo.columns import (
    JSONB,
    BigInt,
    BigSerial,
    ForeignKey,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import User


class TransferKind(StrEnum):
    import_ = "import"
    export = "export"


class TransferStatus(StrEnum):
    # Uploaded and described (format, suggested mapping), not started yet.
    pending = "pending"
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"
    # The file was deleted by the retention job; the row stays as history.
    expired = "expired"


class Transfer(Table, tablename="transfers"):
    id = BigSerial(primary_key=True)
    user_id = ForeignKey(references=User, on_delete=OnDelete.cascade, null=False)
    kind = Varchar(length=10, choices=TransferKind)
    status = Varchar(length=12, choices=TransferStatus, default=TransferStatus.queued)
    file_key = Text(null=True, default=None)
    original_filename = Varchar(length=255, default="")
    options = JSONB(default={})
    total_rows = BigInt(null=True, default=None)
    processed_rows = BigInt(default=0)
    created = BigInt(default=0)
    updated = BigInt(default=0)
    skipped = BigInt(default=0)
    failed = BigInt(default=0)
    error_report_key = Text(null=True, default=None)
    error_message = Text(null=True, default=None)
    checkpoint = JSONB(null=True, default=None)
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
    expires_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())

"""What the audit feature hands around: plain dataclasses, no ORM objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Events an entry can record. The customer service's events map onto the first three.
CREATED = "created"
UPDATED = "updated"
DELETED = "deleted"
IMPORTED = "imported"
EXPORTED = "exported"
RESTORED = "restored"
# The retention job deleted an archive object: old_values describe it (see archive.py).
ARCHIVE_DELETED = "archive_deleted"
EVENTS = (CREATED, UPDATED, DELETED, IMPORTED, EXPORTED, RESTORED, ARCHIVE_DELETED)

DEFAULT_LIMIT = 25
MAX_LIMIT = 100


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class AuditEntry:
    """One entry, read from the database or from an archive object (``archived``)."""

    id: int
    user_id: int
    actor_id: int | None
    customer_id: int | None
    customer_label: str
    event: str
    old_values: dict[str, Any] | None
    new_values: dict[str, Any] | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    import_id: int | None
    created_at: datetime
    prev_hash: str
    hash: str
    archived: bool = False

    @property
    def changes(self) -> list[FieldChange]:
        """Field by field, old -> new, in the order the fields were recorded."""
        old = self.old_values or {}
        new = self.new_values or {}
        names = list(dict.fromkeys([*new, *old]))
        return [FieldChange(name, old.get(name), new.get(name)) for name in names]


@dataclass(frozen=True)
class TrailPage:
    """A page of a trail, newest first. ``next_cursor`` asks for the older entries."""

    entries: list[AuditEntry]
    next_cursor: str | None


@dataclass(frozen=True)
class ChainBreak:
    """Where a user's hash chain stops holding, and why.

    ``reason`` is ``edited`` (the entry's content no longer matches its hash),
    ``missing`` (an entry before this one was removed), ``reordered`` (entries are
    out of their recorded order) or ``archive_altered`` (an archive object no longer
    matches its recorded checksum or entry count). ``position`` counts entries from 1
    along the walk; ``location`` is the archive object's key or ``"database"``.
    """

    entry_id: int | None
    position: int
    reason: str
    location: str
    detail: str


@dataclass(frozen=True)
class ChainReport:
    user_id: int
    entries: int  # entries checked (up to the break)
    archives: int  # archive objects read
    first_break: ChainBreak | None

    @property
    def intact(self) -> bool:
        return self.first_break is None


@dataclass(frozen=True)
class ArchiveRecord:
    """One ``audit_archives`` row."""

    id: int
    user_id: int
    object_key: str
    first_at: datetime
    last_at: datetime
    entries: int
    sha256: str
    first_id: int
    last_id: int
    last_hash: str
    customer_ids: list[int] | None
    created_at: datetime


@dataclass(frozen=True)
class ArchiveRun:
    """What one run of the archive job did."""

    archives: int = 0
    entries: int = 0


@dataclass(frozen=True)
class RetentionRun:
    """What one run of the retention job did."""

    archives: int = 0
    entries: int = 0

"""Audit rules: recording (inside the customer's write transaction), the hash chain,
trails that run from the database into the archives, restore, archive and retention.

The only entry point for controllers, jobs and the CLI. Recording is wired into the
customer service through its hooks: ``AuditService.customer_service(context)`` (or
``hooks(context)``) gives a CustomerService whose every write records its entries in
the same transaction.

Trail cursors are opaque to clients: base64url (no padding) of JSON
``{"k": [created_at ISO 8601, id]}``, the position of the last entry shown. The same
cursor works whether that entry, or the next one, is in the database or in an archive:
a user's archived entries are all older than the ones left in the database.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from app.audit.archive import (
    ArchiveObject,
    Archiver,
    Clock,
    Heartbeat,
    deletion_values,
    newest_in_archive,
    stream_archive,
    stream_checked,
    utc_now,
)
from app.audit.chain import ARCHIVE_ALTERED, GENESIS, MISSING, ChainWalk, link
from app.audit.context import AuditContext
from app.audit.models import (
    ARCHIVE_DELETED,
    CREATED,
    DEFAULT_LIMIT,
    DELETED,
    EVENTS,
    IMPORTED,
    MAX_LIMIT,
    RESTORED,
    UPDATED,
    ArchiveRecord,
    ArchiveRun,
    AuditEntry,
    ChainReport,
    RetentionRun,
    TrailPage,
)
from app.audit.repository import (
    AuditRepository,
    ChainHead,
    PiccoloAuditRepository,
    TrailFilter,
)
from app.customers import service as customer_events
from app.customers.events import run_listeners
from app.customers.models import EDITABLE_FIELDS, Customer, CustomerChange, CustomerInput
from app.customers.repository import CustomerRepository
from app.customers.service import CustomerService, Emit, OnWrite, OnWriteMany
from app.lib.storage import ObjectNotFound, Storage
from app.lib.validation import ValidationFailed

# The customer service's event names -> the audit's.
EVENT_OF_CHANGE = {
    customer_events.CREATED: CREATED,
    customer_events.UPDATED: UPDATED,
    customer_events.DELETED: DELETED,
}
LABEL_MAX = 500
USER_AGENT_MAX = 500
REQUEST_ID_MAX = 64
IP_MAX = 45
# A page that reaches into the archives opens at most this many objects; past that it
# returns what it has with a cursor to go on from (a slow page, never an endless one).
MAX_ARCHIVES_PER_PAGE = 30
ARCHIVE_ROWS_BATCH = 50
WALK_BATCH = 5_000

Position = tuple[datetime, int]
# Writes chained entries (dicts of the entry columns) and returns their ids in the order
# given; the repository's ``insert_entries`` unless a bulk writer (an import's COPY) is given.
InsertEntries = Callable[[Sequence[dict[str, Any]]], Awaitable[list[int]]]
# Writes chained entries in order, when their ids are not needed (an import's COPY).
WriteEntries = Callable[[Sequence[dict[str, Any]]], Awaitable[None]]
# One ``imported`` entry: customer id, label, old values (None for a new customer), new values.
ImportedEntry = tuple[int, str, dict[str, Any] | None, dict[str, Any] | None]


class AuditEntryNotFound(LookupError):
    """No entry with this id in this user's trail (another user's is not found too)."""


class InvalidCursor(ValueError):
    """A trail cursor this app did not make."""


class RestoreRefused(ValueError):
    """The entry cannot be restored; the message says why, in words."""


def encode_cursor(created_at: datetime, entry_id: int) -> str:
    payload = {"k": [created_at.astimezone(UTC).isoformat(), entry_id]}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> Position:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        moment, entry_id = json.loads(raw)["k"]
        created_at = datetime.fromisoformat(moment)
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise InvalidCursor("this page link is not valid") from error
    if type(entry_id) is not int or created_at.tzinfo is None:
        raise InvalidCursor("this page link is not valid")
    return created_at.astimezone(UTC), entry_id


def _day(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time.min, tzinfo=UTC)


def trail_filter(
    customer_id: int | None,
    event: str | None,
    date_from: date | datetime | None,
    date_to: date | datetime | None,
) -> TrailFilter:
    """``date_from`` inclusive; ``date_to`` inclusive for a date (the whole UTC day),
    exclusive for a datetime. Raises ValidationFailed with words."""
    errors = {}
    if event is not None and event not in EVENTS:
        errors["event"] = "Choose one of: " + ", ".join(EVENTS) + "."
    start = _day(date_from) if date_from is not None else None
    end = None
    if date_to is not None:
        end = _day(date_to)
        if not isinstance(date_to, datetime):
            end += timedelta(days=1)
    if start is not None and end is not None and end <= start:
        errors["date_to"] = "The end date is before the start date."
    if errors:
        raise ValidationFailed(errors)
    return TrailFilter(customer_id=customer_id, event=event, start=start, end=end)


def customer_label(customer: Customer) -> str:
    """How an entry names its customer, so it still reads after the customer is gone."""
    return f"{customer.name} <{customer.email}>"


def _cut(value: str | None, length: int) -> str | None:
    return value[:length] if value else value


class AuditService:
    def __init__(
        self,
        repository: AuditRepository | None = None,
        storage: Storage | None = None,
        *,
        customers: CustomerRepository | None = None,
        emit: Emit | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.repository: AuditRepository = repository or PiccoloAuditRepository()
        self._storage = storage
        self._customers = customers
        self._emit = emit
        self._clock = clock

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            raise RuntimeError("this AuditService was built without storage")
        return self._storage

    # --- wiring into the customer service ------------------------------------------------

    def hooks(
        self, context: AuditContext, *, event: str | None = None
    ) -> tuple[OnWrite, OnWriteMany]:
        """``on_write`` and ``on_write_many`` for a CustomerService: each change is
        recorded with this context, inside the change's transaction. ``event``
        overrides the recorded event (``restored``, ``imported``)."""

        async def on_write(tx: Any, change: CustomerChange) -> None:
            await self.record(change, context, event=event)

        async def on_write_many(tx: Any, changes: Sequence[CustomerChange]) -> None:
            await self.record_many(changes, context, event=event)

        return on_write, on_write_many

    def customer_service(
        self, context: AuditContext, *, event: str | None = None
    ) -> CustomerService:
        """A CustomerService whose writes are audited with ``context``."""
        if self._customers is None:
            raise RuntimeError("this AuditService was built without a customer repository")
        on_write, on_write_many = self.hooks(context, event=event)
        return CustomerService(
            self._customers,
            emit=self._emit or run_listeners,
            on_write=on_write,
            on_write_many=on_write_many,
        )

    # --- recording ---------------------------------------------------------------------

    async def record(
        self, change: CustomerChange, context: AuditContext, *, event: str | None = None
    ) -> AuditEntry:
        """Record one customer write. Call it inside the write's transaction (the hook
        does): it joins it, so the entry and the change commit or roll back together."""
        return (await self.record_many([change], context, event=event))[0]

    async def record_many(
        self,
        changes: Sequence[CustomerChange],
        context: AuditContext,
        *,
        event: str | None = None,
        insert: InsertEntries | None = None,
    ) -> list[AuditEntry]:
        """Record many writes (a bulk delete, an import chunk): per user, one chain lock,
        one head lookup and one multi-row INSERT per chunk of rows (or one ``insert``)."""
        drafts: dict[int, list[dict[str, Any]]] = {}
        common = self._context_values(context)
        for change in changes:
            drafts.setdefault(change.user_id, []).append(self._draft(change, common, event))
        recorded: list[AuditEntry] = []
        async with self.repository.transaction():
            # A fixed order of users, so two bulk writers cannot deadlock on the locks.
            for user_id in sorted(drafts):
                recorded.extend(await self._append(user_id, drafts[user_id], insert))
        return recorded

    async def record_imported(
        self,
        user_id: int,
        entries: Sequence[ImportedEntry],
        context: AuditContext,
        *,
        write: WriteEntries | None = None,
    ) -> int:
        """An import chunk's ``imported`` entries, in order, for one user: what
        ``record_many(changes, context, event=IMPORTED)`` writes (one chain lock, the
        hashes linked in order), without a CustomerChange or an AuditEntry per row, which
        a million-row import would pay for. The number of entries written."""
        common = self._context_values(context) | {"user_id": user_id, "event": IMPORTED}
        drafts = [
            common
            | {
                "customer_id": customer_id,
                "customer_label": label[:LABEL_MAX],
                "old_values": old_values or None,
                "new_values": new_values or None,
            }
            for customer_id, label, old_values, new_values in entries
        ]
        async with self.repository.transaction():
            head = await self.repository.lock_chain_head(user_id)
            rows = self._link(user_id, drafts, head)
            if write is not None:
                await write(rows)
            else:
                await self.repository.insert_entries(rows)
        return len(rows)

    async def record_event(
        self,
        user_id: int,
        event: str,
        context: AuditContext,
        *,
        customer_id: int | None = None,
        customer_label: str = "",
        old_values: dict[str, Any] | None = None,
        new_values: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Record an event that is not a customer write (``exported``, ``archive_deleted``)."""
        if event not in EVENTS:
            raise ValueError(f"unknown audit event {event!r}")
        draft = self._context_values(context) | {
            "user_id": user_id,
            "customer_id": customer_id,
            "customer_label": customer_label[:LABEL_MAX],
            "event": event,
            "old_values": old_values or None,
            "new_values": new_values or None,
        }
        return (await self._append(user_id, [draft]))[0]

    def _context_values(self, context: AuditContext) -> dict[str, Any]:
        return {
            "actor_id": context.actor_id,
            "ip": _cut(context.ip, IP_MAX),
            "user_agent": _cut(context.user_agent, USER_AGENT_MAX),
            "request_id": _cut(context.request_id, REQUEST_ID_MAX),
            "import_id": context.import_id,
        }

    def _draft(
        self, change: CustomerChange, common: dict[str, Any], event: str | None
    ) -> dict[str, Any]:
        customer = change.after or change.before
        label = customer_label(customer) if customer is not None else change.label
        try:
            recorded_event = event or EVENT_OF_CHANGE[change.event]
        except KeyError:
            raise ValueError(f"no audit event for {change.event!r}") from None
        return common | {
            "user_id": change.user_id,
            "customer_id": change.customer_id,
            "customer_label": label[:LABEL_MAX],
            "event": recorded_event,
            "old_values": dict(change.old_values) or None,
            "new_values": dict(change.new_values) or None,
        }

    async def _append(
        self, user_id: int, drafts: list[dict[str, Any]], insert: InsertEntries | None = None
    ) -> list[AuditEntry]:
        async with self.repository.transaction():
            if len(drafts) == 1 and insert is None:
                # One statement for lock, head, link and insert where the database can.
                entry = await self.repository.append_one(user_id, drafts[0], self._clock())
                if entry is not None:
                    return [entry]
            head = await self.repository.lock_chain_head(user_id)
            return await self._insert_chained(user_id, drafts, head, insert)

    def _link(
        self, user_id: int, drafts: list[dict[str, Any]], head: ChainHead | None
    ) -> list[dict[str, Any]]:
        """The drafts as rows linked onto ``head`` (the chain lock is held)."""
        now = self._clock()
        # The chain's time never runs backwards (clocks of several machines may differ),
        # so chain order, id order and created_at order are one order.
        if head is not None and head.created_at > now:
            now = head.created_at
        rows = [{**draft, "user_id": user_id, "created_at": now} for draft in drafts]
        link(rows, head.hash if head is not None else GENESIS)
        return rows

    async def _insert_chained(
        self,
        user_id: int,
        drafts: list[dict[str, Any]],
        head: ChainHead | None,
        insert: InsertEntries | None = None,
    ) -> list[AuditEntry]:
        """Link the drafts onto ``head`` and insert them (the chain lock is held)."""
        rows = self._link(user_id, drafts, head)
        ids = await (insert or self.repository.insert_entries)(rows)
        return [AuditEntry(id=entry_id, **row) for entry_id, row in zip(ids, rows, strict=True)]

    # --- reading -------------------------------------------------------------------------

    async def trail(
        self,
        user_id: int,
        customer_id: int | None = None,
        event: str | None = None,
        date_from: date | datetime | None = None,
        date_to: date | datetime | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> TrailPage:
        """The user's entries, newest first, optionally of one customer, one event and a
        date range; the database first, then the archives, behind one cursor.

        Raises ValidationFailed (filters, limit) or InvalidCursor.
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationFailed({"limit": f"Show between 1 and {MAX_LIMIT} entries."})
        found = trail_filter(customer_id, event, date_from, date_to)
        before = decode_cursor(cursor) if cursor else None
        entries = await self.repository.page(user_id, found, before, limit + 1)
        resume: Position | None = None
        if len(entries) <= limit and self._storage is not None:
            position = (entries[-1].created_at, entries[-1].id) if entries else before
            older, resume = await self._archived(user_id, found, position, limit + 1 - len(entries))
            entries += older
        if len(entries) > limit:
            last = entries[limit - 1]
            return TrailPage(entries[:limit], encode_cursor(last.created_at, last.id))
        return TrailPage(entries, encode_cursor(*resume) if resume else None)

    async def _archived(
        self, user_id: int, found: TrailFilter, before: Position | None, wanted: int
    ) -> tuple[list[AuditEntry], Position | None]:
        """Up to ``wanted`` archived entries before ``before``, newest first, and where to
        resume when the page had to stop early (MAX_ARCHIVES_PER_PAGE)."""
        collected: list[AuditEntry] = []
        opened = 0
        after: Position | None = None
        while True:
            batch = await self.repository.archives_before(user_id, found, after, ARCHIVE_ROWS_BATCH)
            for record in batch:
                after = (record.first_at, record.id)
                if before is not None and record.first_at > before[0]:
                    continue  # all of it is newer than the position
                listed = record.customer_ids
                if (
                    found.customer_id is not None
                    and listed is not None
                    and (found.customer_id not in listed)
                ):
                    continue
                if opened == MAX_ARCHIVES_PER_PAGE:
                    # Everything in this archive and older is still to be read.
                    resume = (record.last_at, record.last_id + 1)
                    return collected, min(resume, before) if before else resume
                opened += 1
                collected += await newest_in_archive(
                    self.storage, record, found, before, wanted - len(collected)
                )
                if len(collected) >= wanted:
                    return collected, None
            if len(batch) < ARCHIVE_ROWS_BATCH:
                return collected, None

    async def get_entry(self, user_id: int, entry_id: int) -> AuditEntry:
        """One of the user's entries, from the database or an archive; another user's
        entry raises AuditEntryNotFound, as a missing one does."""
        entry = await self.repository.get_entry(user_id, entry_id)
        if entry is not None:
            return entry
        record = await self.repository.archive_holding(user_id, entry_id)
        if record is not None and self._storage is not None:
            try:
                async with contextlib.aclosing(stream_archive(self.storage, record)) as entries:
                    async for archived in entries:
                        if archived.id == entry_id and archived.user_id == user_id:
                            return archived
            except ObjectNotFound:
                pass
        raise AuditEntryNotFound(entry_id)

    # --- restore -------------------------------------------------------------------------

    async def restore_update(self, user_id: int, entry_id: int, context: AuditContext) -> Customer:
        """Apply an update entry's old values as a new update, audited as ``restored``.

        Raises AuditEntryNotFound, RestoreRefused (not an update, or the customer is
        gone) or ValidationFailed (the old email now belongs to another customer). Values
        that already match write nothing, as any update.
        """
        entry = await self.get_entry(user_id, entry_id)
        if entry.event not in (UPDATED, RESTORED) or not entry.old_values:
            raise RestoreRefused("Only the values of an update can be restored.")
        slug = None
        if entry.customer_id is not None:
            slug = await self.repository.customer_slug(user_id, entry.customer_id)
        if slug is None:
            raise RestoreRefused(
                "This customer has been deleted. Restore the customer from its deletion first."
            )
        values = {f: v for f, v in entry.old_values.items() if f in EDITABLE_FIELDS}
        customers = self.customer_service(context, event=RESTORED)
        return await customers.update(user_id, slug, values)

    async def restore_deleted(self, user_id: int, entry_id: int, context: AuditContext) -> Customer:
        """Re-create the customer a delete entry recorded, audited as ``restored``; it gets
        the slug its name asks for, or the next free one when that is taken.

        Raises AuditEntryNotFound, RestoreRefused (not a delete) or ValidationFailed (its
        email now belongs to another customer, e.g. it was restored already).
        """
        entry = await self.get_entry(user_id, entry_id)
        if entry.event != DELETED or not entry.old_values:
            raise RestoreRefused("Only a deleted customer can be restored from this entry.")
        values = {f: str(entry.old_values.get(f) or "") for f in EDITABLE_FIELDS}
        customers = self.customer_service(context, event=RESTORED)
        return await customers.create(user_id, CustomerInput(**values))

    # --- the chain -----------------------------------------------------------------------

    async def verify_chain(self, user_id: int) -> ChainReport:
        """Walk the user's chain, archives (in order) then the database, and report the
        first break: an edited, missing or reordered entry, or an altered archive."""
        walk = ChainWalk()
        records = await self.repository.archives(user_id)
        for record in records:
            start = walk.position + 1
            read = ArchiveObject(record)
            try:
                async for entry in stream_checked(self.storage, read):
                    walk.feed(entry, record.object_key)
            except ObjectNotFound:
                walk.fail_archive(
                    record.first_id, start, MISSING, record.object_key, "the object is missing"
                )
                continue
            problem = _archive_problem(record, read, walk)
            if problem:
                walk.fail_archive(
                    record.first_id, start, ARCHIVE_ALTERED, record.object_key, problem
                )
        after_id = 0
        while rows := await self.repository.walk(user_id, after_id, WALK_BATCH):
            for entry in rows:
                walk.feed(entry, "database")
            after_id = rows[-1].id
        return ChainReport(
            user_id=user_id,
            entries=walk.checked,
            archives=len(records),
            first_break=walk.finish(),
        )

    # --- archive and retention -------------------------------------------------------------

    def archiver(self) -> Archiver:
        return Archiver(
            self.repository, self.storage, self._record_archive_deletion, clock=self._clock
        )

    async def archive(
        self,
        after_days: int,
        *,
        now: datetime | None = None,
        heartbeat: Heartbeat | None = None,
    ) -> ArchiveRun:
        """Move whole days of entries older than ``after_days`` to storage (see archive.py)."""
        return await self.archiver().archive(after_days, now=now, heartbeat=heartbeat)

    async def apply_retention(
        self,
        retention_days: int,
        *,
        now: datetime | None = None,
        heartbeat: Heartbeat | None = None,
    ) -> RetentionRun:
        """Delete archives older than ``retention_days`` (0: keep forever), recording each
        deletion as an ``archive_deleted`` entry of the user's chain."""
        return await self.archiver().apply_retention(retention_days, now=now, heartbeat=heartbeat)

    async def _record_archive_deletion(self, record: ArchiveRecord) -> bool:
        """One transaction: the archive's row goes, an ``archive_deleted`` entry comes.
        False when the row was gone already (another run did it)."""
        context = AuditContext.system(request_id="retention")
        draft = self._context_values(context) | {
            "customer_id": None,
            "customer_label": "",
            "event": ARCHIVE_DELETED,
            "old_values": deletion_values(record),
            "new_values": None,
        }
        async with self.repository.transaction():
            # The head before the row goes: when the database holds none of the user's
            # entries, the chain continues from this archive's last entry.
            head = await self.repository.lock_chain_head(record.user_id)
            if not await self.repository.delete_archive_row(record.user_id, record.id):
                return False
            await self._insert_chained(record.user_id, [draft], head)
        return True


def _archive_problem(record: ArchiveRecord, read: ArchiveObject, walk: ChainWalk) -> str | None:
    if walk.broken:
        return None  # the entry-level break inside says more
    if read.sha256 != record.sha256:
        return "the object's sha256 does not match the one recorded when it was archived"
    if read.entries != record.entries:
        return f"the object holds {read.entries} entries, {record.entries} were archived"
    if (read.first_id, read.last_id, read.last_hash) != (
        record.first_id,
        record.last_id,
        record.last_hash,
    ):
        return "the object's first and last entries are not the ones recorded"
    return None

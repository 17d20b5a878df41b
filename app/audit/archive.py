"""Archiving audit entries to object storage, reading them back, and retention.

One object per user and UTC day, gzipped JSON Lines, one entry per line in chain (id)
order, every column of the entry (hashes included), ``created_at`` as in the chain:

    audit/{user_id}/{yyyy}/{mm}/{dd}/{archive_id}.jsonl.gz

Crash safety. The archive id in the key is the id of the day's first entry, known
before the upload starts (an entry is archived once, so it names one object): a run
that dies between the upload and the commit leaves an object that no audit_archives
row names, and the next run, finding the same entries, writes the same key over it.
An entry leaves the database only in the transaction that records its object
(``commit_archive``), after the object was read back and its sha256 matched; that
transaction also checks that it deletes exactly the entries written, and the unique
(user_id, object_key) index refuses a second row for the same object when two runs
race. So a crash at any point loses nothing and duplicates nothing, and
running the job again is safe.

Only whole days older than the cutoff are archived, oldest first. A user's archived
entries are therefore always older than the ones still in the database, which is what
lets a trail continue from the database into the archives with one cursor.

Memory stays flat: entries are read in batches, encoded and compressed as they come,
and handed to ``Storage.put`` as an async iterator (multipart upload); reading back
and retrieval stream and decompress chunk by chunk.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import zlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from typing import Any

import msgspec

from app.audit.chain import iso
from app.audit.models import (
    ARCHIVE_DELETED,
    ArchiveRecord,
    ArchiveRun,
    AuditEntry,
    RetentionRun,
)
from app.audit.repository import (
    ArchiveAlreadyRecorded,
    AuditRepository,
    TrailFilter,
    entry_from_row,
)
from app.lib.storage import CHUNK_SIZE, ObjectNotFound, Storage

logger = logging.getLogger("crm.audit")

CONTENT_TYPE = "application/gzip"
READ_BATCH = 5_000
# An archive lists its customers (to be skipped by a customer's history) up to this many.
MAX_LISTED_CUSTOMERS = 256
# Level 3 compresses these lines about as well as 6 (hashes do not compress) in half the
# time: the compressor is the archive job's biggest cost after the database.
COMPRESS_LEVEL = 3
HEARTBEAT_EVERY = 10.0  # seconds between heartbeats of a long run
RETENTION_BATCH = 100
# Users archived at once. Each holds at most a part or two of its upload in memory
# (storage.PART_SIZE), so this also bounds the job's memory for very large days.
CONCURRENCY = 4

Heartbeat = Callable[[], Awaitable[None]]
Clock = Callable[[], datetime]

_line_encoder = msgspec.json.Encoder()
_line_decoder = msgspec.json.Decoder()


def utc_now() -> datetime:
    return datetime.now(UTC)


def day_start(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(UTC).date(), day_time.min, tzinfo=UTC)


def object_key(user_id: int, day: datetime, archive_id: int) -> str:
    """Where a user's day goes; ``archive_id`` is the id of the day's first entry."""
    return f"audit/{user_id}/{day:%Y/%m/%d}/{archive_id}.jsonl.gz"


def _json_raw(value: Any) -> Any:
    # JSON columns arrive as text: put it in the line as it is, without decoding it.
    if isinstance(value, str):
        return msgspec.Raw(value.encode())
    return value


def encode_line(row: dict[str, Any]) -> bytes:
    """One entry as an archive line (a database row, JSON columns still text)."""
    created_at = row["created_at"]
    if not isinstance(created_at, str):
        created_at = iso(created_at)
    else:
        created_at = iso(datetime.fromisoformat(created_at).replace(tzinfo=UTC))
    line = {
        "id": row["id"],
        "user_id": row["user_id"],
        "actor_id": row["actor_id"],
        "customer_id": row["customer_id"],
        "customer_label": row["customer_label"],
        "event": row["event"],
        "old_values": _json_raw(row["old_values"]),
        "new_values": _json_raw(row["new_values"]),
        "ip": row["ip"],
        "user_agent": row["user_agent"],
        "request_id": row["request_id"],
        "import_id": row["import_id"],
        "created_at": created_at,
        "prev_hash": row["prev_hash"],
        "hash": row["hash"],
    }
    return _line_encoder.encode(line) + b"\n"


def decode_line(line: bytes) -> AuditEntry:
    return entry_from_row(_line_decoder.decode(line), archived=True)


@dataclass
class _Compressed:
    """Lines in, gzip chunks out, with the sha256 of what came out."""

    level: int = COMPRESS_LEVEL
    sha256: Any = field(default_factory=hashlib.sha256)

    def __post_init__(self) -> None:
        self._zip = zlib.compressobj(self.level, zlib.DEFLATED, 31)  # 31: a gzip member
        self._pending: list[bytes] = []
        self._pending_size = 0

    def add(self, data: bytes) -> None:
        out = self._zip.compress(data)
        if out:
            self._pending.append(out)
            self._pending_size += len(out)

    @property
    def ready(self) -> bool:
        return self._pending_size >= CHUNK_SIZE

    def take(self, final: bool = False) -> bytes:
        if final:
            self._pending.append(self._zip.flush())
        chunk = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        self.sha256.update(chunk)
        return chunk


async def read_lines(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The lines of a gzipped stream, decompressed as the chunks arrive."""
    unzip = zlib.decompressobj(31)
    rest = b""
    async for chunk in stream:
        data = chunk
        while data:
            out = unzip.decompress(data)
            data = b""
            if unzip.eof:
                # Another gzip member may follow (concatenated files are valid gzip).
                data = unzip.unused_data
                unzip = zlib.decompressobj(31)
            if out:
                rest += out
                *lines, rest = rest.split(b"\n")
                for line in lines:
                    if line:
                        yield line
    if rest.strip():
        yield rest


@dataclass
class ArchiveObject:
    """An archive read back: its entries as they stream, then its checksum and count."""

    record: ArchiveRecord
    sha256: str = ""
    entries: int = 0
    first_id: int | None = None
    last_id: int | None = None
    last_hash: str = ""


async def stream_archive(storage: Storage, record: ArchiveRecord) -> AsyncGenerator[AuditEntry]:
    """The entries of one archive object, in chain order. Raises ObjectNotFound.

    Close it (``contextlib.aclosing``) when stopping early: it holds the download open.
    """
    chunks = await storage.get(record.object_key)
    try:
        async for line in read_lines(chunks):
            yield decode_line(line)
    finally:
        await chunks.aclose()


async def stream_checked(storage: Storage, found: ArchiveObject) -> AsyncGenerator[AuditEntry]:
    """Like stream_archive, filling in ``found.sha256`` and ``found.entries`` at the end."""
    digest = hashlib.sha256()
    chunks = await storage.get(found.record.object_key)

    async def hashed() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            digest.update(chunk)
            yield chunk

    try:
        async for line in read_lines(hashed()):
            entry = decode_line(line)
            found.entries += 1
            if found.first_id is None:
                found.first_id = entry.id
            found.last_id, found.last_hash = entry.id, entry.hash
            yield entry
    finally:
        await chunks.aclose()
    found.sha256 = digest.hexdigest()


def _matches(entry: AuditEntry, found: TrailFilter) -> bool:
    if found.customer_id is not None and entry.customer_id != found.customer_id:
        return False
    if found.event is not None and entry.event != found.event:
        return False
    if found.start is not None and entry.created_at < found.start:
        return False
    return not (found.end is not None and entry.created_at >= found.end)


async def newest_in_archive(
    storage: Storage,
    record: ArchiveRecord,
    found: TrailFilter,
    before: tuple[datetime, int] | None,
    count: int,
) -> list[AuditEntry]:
    """Up to ``count`` matching entries of one archive before ``before``, newest first.

    The object is in chain order, oldest first: stream it and keep only the last
    ``count`` matches, so memory stays bounded whatever the size of the day.
    """
    kept: deque[AuditEntry] = deque(maxlen=count)
    try:
        async for entry in stream_archive(storage, record):
            if entry.user_id != record.user_id:
                continue  # objects are per user; never show another user's line
            if before is not None and (entry.created_at, entry.id) >= before:
                continue
            if _matches(entry, found):
                kept.append(entry)
    except ObjectNotFound:
        # Retention deletes the object just before its row; a reader in between skips it.
        logger.warning("archive %s is recorded but missing from storage", record.object_key)
        return []
    return list(reversed(kept))


class _Beat:
    """Calls the job's heartbeat at most every HEARTBEAT_EVERY seconds."""

    def __init__(self, heartbeat: Heartbeat | None) -> None:
        self._heartbeat = heartbeat
        self._last = time.monotonic()

    async def __call__(self, force: bool = False) -> None:
        if self._heartbeat is None:
            return
        now = time.monotonic()
        if force or now - self._last >= HEARTBEAT_EVERY:
            self._last = now
            await self._heartbeat()


class Archiver:
    """Moves old entries to storage (``archive``) and deletes expired archives
    (``apply_retention``). ``record_deletion`` writes the retention's audit entry
    (the service's recorder, so it joins the user's chain)."""

    def __init__(
        self,
        repository: AuditRepository,
        storage: Storage,
        record_deletion: Callable[[ArchiveRecord], Awaitable[Any]],
        clock: Clock = utc_now,
    ) -> None:
        self.repository = repository
        self.storage = storage
        self._record_deletion = record_deletion
        self._clock = clock

    # --- archive ---------------------------------------------------------------------------

    async def archive(
        self,
        after_days: int,
        *,
        now: datetime | None = None,
        heartbeat: Heartbeat | None = None,
        batch_size: int = READ_BATCH,
        concurrency: int = CONCURRENCY,
    ) -> ArchiveRun:
        """Archive every user's whole days older than ``after_days``; return the totals.

        ``concurrency`` users are archived at once (each user's days in order, oldest
        first): most of an object's time is waiting on storage and the database.
        """
        now = now or self._clock()
        # Whole days only: a day goes once its end is at least `after_days` old.
        last_day_end = day_start(now - timedelta(days=after_days))
        beat = _Beat(heartbeat)
        done = {"archives": 0, "entries": 0}
        users: asyncio.Queue[tuple[int, datetime] | None] = asyncio.Queue(concurrency)

        def old_enough(moment: datetime) -> bool:
            return day_start(moment) + timedelta(days=1) <= last_day_end

        async def find_users() -> None:
            after_user = 0
            while (found := await self.repository.next_user_with_entries(after_user)) is not None:
                after_user = found[0]
                if old_enough(found[1]):
                    await users.put(found)
            for _ in range(concurrency):
                await users.put(None)

        async def archive_users() -> None:
            while (found := await users.get()) is not None:
                user_id, first = found
                oldest: datetime | None = first
                finished: datetime | None = None
                while oldest is not None and old_enough(oldest):
                    day = day_start(oldest)
                    if finished is not None and day <= finished:
                        # The day is still there after its run (a race lost to another
                        # run, or rows that are not what they were): the next run's.
                        logger.warning("audit entries of user %d on %s stayed", user_id, day)
                        break
                    record = await self.archive_day(user_id, day, beat=beat, batch_size=batch_size)
                    if record is not None:
                        done["archives"] += 1
                        done["entries"] += record.entries
                    finished = day
                    await beat()
                    oldest = await self.repository.oldest_entry_at(user_id)

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(find_users())
                for _ in range(max(concurrency, 1)):
                    group.create_task(archive_users())
        except ExceptionGroup as failed:
            # One failure stops the run (the others are cancelled): raise it as it is.
            for other in failed.exceptions[1:]:
                logger.error("archive run: another failure as well: %r", other)
            raise failed.exceptions[0] from None
        return ArchiveRun(archives=done["archives"], entries=done["entries"])

    async def archive_day(
        self,
        user_id: int,
        day: datetime,
        *,
        beat: _Beat | None = None,
        batch_size: int = READ_BATCH,
    ) -> ArchiveRecord | None:
        """Write one user's day to storage, check it, then record it and delete the entries.

        The key is known from the first batch (the day's first entry id), before the
        upload starts; the rest streams through the compressor into the upload.
        """
        beat = beat or _Beat(None)
        start, end = day, day + timedelta(days=1)
        first = await self.repository.day_rows(user_id, start, end, 0, batch_size)
        if not first:
            return None
        first_id = int(first[0]["id"])
        key = object_key(user_id, day, first_id)
        compressed = _Compressed()
        seen: dict[str, Any] = {"entries": 0, "last_id": 0, "last_at": None, "last_hash": ""}
        customers: set[int] | None = set()

        async def chunks() -> AsyncIterator[bytes]:
            nonlocal customers
            rows = first
            while rows:
                if rows[0]["line"] is not None:
                    compressed.add(("\n".join(row["line"] for row in rows) + "\n").encode())
                else:
                    compressed.add(b"".join(encode_line(row) for row in rows))
                if customers is not None:
                    customers.update(
                        int(row["customer_id"]) for row in rows if row["customer_id"] is not None
                    )
                    if len(customers) > MAX_LISTED_CUSTOMERS:
                        customers = None
                last = rows[-1]
                seen["entries"] += len(rows)
                seen["last_id"] = int(last["id"])
                seen["last_at"] = last["created_at"]
                seen["last_hash"] = last["hash"]
                if compressed.ready:
                    yield compressed.take()
                await beat()
                if len(rows) < batch_size:
                    break
                rows = await self.repository.day_rows(
                    user_id, start, end, seen["last_id"], batch_size
                )
            yield compressed.take(final=True)

        await self.storage.put(key, chunks(), content_type=CONTENT_TYPE)
        written = compressed.sha256.hexdigest()
        await beat(force=True)
        stored = await self._stored_sha256(key)
        if stored != written:
            # Nothing leaves the database; the next run writes this key again.
            raise RuntimeError(f"{key}: stored object's sha256 {stored} is not {written}")
        try:
            # Deletes the day's entries between first_id and last_id, and only when they
            # are exactly the ones written (ArchiveMismatch otherwise, nothing changed).
            record = await self.repository.commit_archive(
                {
                    "user_id": user_id,
                    "object_key": key,
                    "first_at": _moment(first[0]["created_at"]),
                    "last_at": _moment(seen["last_at"]),
                    "entries": seen["entries"],
                    "sha256": written,
                    "first_id": first_id,
                    "last_id": seen["last_id"],
                    "last_hash": seen["last_hash"],
                    "customer_ids": sorted(customers) if customers is not None else None,
                    "created_at": self._clock(),
                },
                start,
                end,
            )
        except ArchiveAlreadyRecorded:
            # Another run recorded this very object (same key, same entries) first.
            logger.info("archive %s was recorded by another run", key)
            return None
        logger.info(
            "archived %d audit entries of user %d to %s",
            record.entries,
            user_id,
            key,
            extra={"fields": {"user_id": user_id, "object_key": key, "entries": record.entries}},
        )
        return record

    async def _stored_sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        async for chunk in await self.storage.get(key):
            digest.update(chunk)
        return digest.hexdigest()

    # --- retention -------------------------------------------------------------------------

    async def apply_retention(
        self,
        retention_days: int,
        *,
        now: datetime | None = None,
        heartbeat: Heartbeat | None = None,
    ) -> RetentionRun:
        """Delete archives whose newest entry is older than ``retention_days`` (0: none).

        Per archive, oldest first for each user: the object, then in one transaction its
        row and an ``archive_deleted`` entry in the user's chain. A crash between the two
        leaves a row whose object is gone: the next run deletes it (deleting a missing
        object is no error) and records the deletion then.
        """
        if retention_days <= 0:
            return RetentionRun()
        now = now or self._clock()
        cutoff = now - timedelta(days=retention_days)
        beat = _Beat(heartbeat)
        archives = entries = 0
        after = (0, 0)
        while True:
            batch = await self.repository.archives_ended_before(cutoff, after, RETENTION_BATCH)
            for record in batch:
                await self.storage.delete(record.object_key)
                if await self._record_deletion(record):
                    archives += 1
                    entries += record.entries
                    logger.info(
                        "retention deleted %s (%d entries of user %d)",
                        record.object_key,
                        record.entries,
                        record.user_id,
                        extra={
                            "fields": {
                                "event": ARCHIVE_DELETED,
                                "user_id": record.user_id,
                                "object_key": record.object_key,
                                "entries": record.entries,
                            }
                        },
                    )
                await beat()
            if len(batch) < RETENTION_BATCH:
                return RetentionRun(archives=archives, entries=entries)
            after = (batch[-1].user_id, batch[-1].first_id)


def _moment(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def deletion_values(record: ArchiveRecord) -> dict[str, Any]:
    """What an ``archive_deleted`` entry records of the archive (its old_values)."""
    return {
        "object_key": record.object_key,
        "first_id": record.first_id,
        "last_id": record.last_id,
        "first_at": iso(record.first_at),
        "last_at": iso(record.last_at),
        "entries": record.entries,
        "sha256": record.sha256,
        "last_hash": record.last_hash,
    }

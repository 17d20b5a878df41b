"""The import job's work: read the source from storage, map its rows, write them in chunks.

Each chunk of ``IMPORT_CHUNK_ROWS`` rows is one transaction holding its customers (new ones
inserted in bulk with slugs allocated in bulk; existing emails skipped, updated or merged
with one read and one bulk UPDATE), their audit entries (``imported``, with the import id;
old and new values for updated rows, so undo can restore them), and the checkpoint: the
byte offset and line after the chunk's last row, and the counters. A worker killed at any
moment resumes from the last committed checkpoint: every row is counted exactly once.

On a resume the rows before the checkpoint are read again (parsed and mapped, never
written): that rebuilds, exactly, the two things that depend on every row before it, the
emails seen so far (a later duplicate in the file is an error naming the line of the
first) and the rows of the error report. Nothing else has to be kept between attempts,
and the rebuilt state cannot disagree with the file. It costs one parse of the part
already done, only on a resume.

The source is read from storage as a stream; parsing runs in a worker thread that pulls
the chunks from the event loop (``_StreamReader``), so memory stays at one storage chunk,
two chunks of rows (one written, one read ahead) and a digest of each email seen.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import hashlib
import heapq
import io
import operator
import re
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from piccolo.engine.postgres import PostgresEngine

from app.audit.context import AuditContext
from app.audit.service import AuditService, ImportedEntry, customer_label
from app.customers.models import EDITABLE_FIELDS, Customer
from app.customers.service import (
    DEFAULT_SLUG,
    RESERVED_SLUGS,
    SLUG_BASE_MAX,
    slug_base,
)
from app.lib.db import is_unique_violation
from app.lib.storage import Storage
from app.lib.validation import normalize_email
from app.transfers.csv_reader import FileFormat, Row, guard_formula, iter_rows
from app.transfers.errors import NO_ROWS_MESSAGE
from app.transfers.mapping import MappedRow, Mapping, apply_mapping
from app.transfers.repository import (
    PiccoloTransferRepository,
    TransferRecord,
    highest_suffixes,
)
from app.transfers.tables import TransferKind, TransferStatus

MAX_CHUNK_ATTEMPTS = 5  # a chunk meets a unique race (a slug or email taken meanwhile)
FIRST_CHUNK_ROWS = 500  # a small first chunk: progress shows within a second of the start
CHUNK_SECONDS = 0.75  # what a chunk should take at most, when chunk_rows would take longer
_FIELDS_BUT_EMAIL = [name for name in EDITABLE_FIELDS if name != "email"]

Heartbeat = Callable[[], Awaitable[None]]
# Tests inject crashes: called with (chunk number, stage) where stage is "written" (inside
# the transaction, rows written, before the commit) or "committed" (after the commit).
Fault = Callable[[int, str], None]
# Moves the user's customer-cache version on after rows were written (see customers/cached).
Invalidate = Callable[[int], Awaitable[None]]

SKIP = "skip"
UPDATE = "update"
MERGE = "merge"
POLICIES = (SKIP, UPDATE, MERGE)


def source_key(user_id: int, transfer_id: int) -> str:
    return f"imports/{user_id}/{transfer_id}/source.csv"


def errors_key(user_id: int, transfer_id: int) -> str:
    return f"imports/{user_id}/{transfer_id}/errors.csv"


class _StreamReader:
    """A blocking ``read(size)`` over an async chunk stream, for the parsing thread."""

    def __init__(self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._chunks = chunks
        self._loop = loop
        self._leftover = b""
        self._eof = False

    def seekable(self) -> bool:
        return False

    async def _next(self) -> bytes | None:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return None

    def read(self, size: int = -1) -> bytes:
        parts = [self._leftover] if self._leftover else []
        have = len(self._leftover)
        self._leftover = b""
        while not self._eof and (size < 0 or have < size):
            chunk = asyncio.run_coroutine_threadsafe(self._next(), self._loop).result()
            if chunk is None:
                self._eof = True
            else:
                parts.append(chunk)
                have += len(chunk)
        data = b"".join(parts)
        if 0 <= size < len(data):
            data, self._leftover = data[:size], data[size:]
        return data


def _take(rows: Iterator[Row], count: int) -> list[Row]:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) >= count:
            break
    return batch


class ErrorReport:
    """errors.csv: line, reason, then the row's original values under the file's header.
    Spooled: kept in memory while small, on a temporary file beyond that."""

    def __init__(self, header: list[str]) -> None:
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
        self._text = io.TextIOWrapper(self.file, encoding="utf-8", newline="")
        self._text.write("\ufeff")  # Excel reads UTF-8 with a BOM
        self._writer = csv.writer(self._text)
        self._writer.writerow(["line", "reason", *header])
        self.rows = 0

    def add(self, line: int, reason: str, values: list[str]) -> None:
        self._writer.writerow([line, reason, *(guard_formula(value) for value in values)])
        self.rows += 1

    def finish(self) -> IO[bytes]:
        self._text.flush()
        self._text.detach()
        self.file.seek(0)
        return self.file


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0

    @property
    def processed(self) -> int:
        return self.created + self.updated + self.skipped + self.failed

    def as_dict(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "failed": self.failed,
        }


@dataclass
class _Chunk:
    good: list[tuple[int, MappedRow]] = field(default_factory=list)
    errors: list[tuple[int, str, list[str]]] = field(default_factory=list)
    # Errors of rows before the resume point: they go to the report, nothing is written.
    replayed: list[tuple[int, str, list[str]]] = field(default_factory=list)
    first_line: int | None = None  # of the first row after the resume point
    last: Row | None = None


def _email_key(email_normalized: str) -> int:
    """What ``seen`` keeps of an email: a 96-bit digest, about half the memory of the
    string (a million emails: ~115 MB instead of ~160 MB). Two emails of one file share
    a key with a probability near 1e-17 at a million rows."""
    digest = hashlib.blake2b(email_normalized.encode(), digest_size=12).digest()
    return int.from_bytes(digest, "big")


class SlugRace(Exception):
    """Another writer took a slug or an email of the chunk meanwhile: write it again."""


class CheckpointMoved(Exception):
    """The transfer's checkpoint is not where the chunk starts: the chunk before it did not
    commit, or another run of the same import wrote it. Nothing of the chunk is kept."""


class _Abandoned(Exception):
    """The chunk before a chunk written ahead did not commit (or the import stopped)."""


@dataclass
class _Ahead:
    """A chunk started on its own connection while the chunk before it is written: its
    transaction reads what the chunk needs, then waits for ``go`` (the counts once the
    chunk before committed) to write its rows, entries and checkpoint and commit."""

    chunk: _Chunk
    number: int
    start: int  # the checkpoint offset the chunk follows
    go: asyncio.Future[Counts]
    after: dict[str, int] = field(default_factory=dict)  # its slugs, kept once it commits
    task: asyncio.Task[Counts] | None = None


_cached_slug_base = functools.lru_cache(maxsize=16_384)(slug_base)
_PLAIN_NAME = re.compile(r"[A-Za-z0-9 ]+")


def _slug_base(name: str) -> str:
    """``slug_base``, without slugify's cost for the common plain-ASCII name (the same
    result: lower case, words joined by hyphens, cut at SLUG_BASE_MAX)."""
    if _PLAIN_NAME.fullmatch(name):
        return "-".join(name.lower().split())[:SLUG_BASE_MAX].strip("-") or DEFAULT_SLUG
    return _cached_slug_base(name)


_RESERVED_HIGHEST = highest_suffixes(RESERVED_SLUGS, RESERVED_SLUGS)
SLUG_CACHE_LIMIT = 100_000  # bases remembered between chunks (memory stays bounded)


class SlugAllocator:
    """Slugs for new customers in bulk: each name's base, or base-N with N one above the
    highest taken (as ``next_free_slug`` does). The highest suffix of each base is read
    from the database once per import and kept while the import allocates; a race with
    another writer (``SlugRace``) forgets it all and reads again."""

    def __init__(self) -> None:
        self.highest: dict[str, int] = {}

    def forget(self) -> None:
        self.highest.clear()

    def missing(self, bases: list[str]) -> list[str]:
        if len(self.highest) > SLUG_CACHE_LIMIT:
            self._shrink()
        return sorted({base for base in bases if base not in self.highest})

    def _shrink(self) -> None:
        """Forget the half of the bases with the fewest slugs. Reading a base again costs
        one row per slug it has: forgetting everything made a million-row import read
        the thousands of slugs of its commonest names again and again (45 of its 117
        seconds), where a base seen once costs one row."""
        kept = heapq.nlargest(
            SLUG_CACHE_LIMIT // 2, self.highest.items(), key=operator.itemgetter(1)
        )
        self.highest = dict(kept)

    def learn(self, found: dict[str, int]) -> None:
        # Never lower: a read made before a chunk in flight committed misses its slugs.
        highest = self.highest
        for base, number in found.items():
            highest[base] = max(number, _RESERVED_HIGHEST.get(base, 0), highest.get(base, 0))

    def allocate(
        self, bases: list[str], pending: dict[str, int] | None = None
    ) -> tuple[list[str], dict[str, int]]:
        """The slugs, and the highest suffixes to keep once they are committed; ``pending``:
        those of the chunk written ahead of these, not committed yet."""
        highest = self.highest
        after: dict[str, int] = {}
        slugs = []
        for base in bases:
            number = after.get(base)
            if number is None and pending:
                number = pending.get(base)
            if number is None:
                number = highest[base]
            slugs.append(base if number == 0 else f"{base}-{number + 1}")
            after[base] = number + 1
        return slugs, after


def _changes_for(policy: str, existing: Customer, row: MappedRow) -> dict[str, str]:
    values = {name: getattr(row, name) for name in _FIELDS_BUT_EMAIL}
    if policy == UPDATE:
        return {n: v for n, v in values.items() if v and v != getattr(existing, n)}
    if policy == MERGE:
        return {n: v for n, v in values.items() if v and not getattr(existing, n)}
    return {}


class Importer:
    def __init__(
        self,
        storage: Storage,
        *,
        chunk_rows: int,
        repository: PiccoloTransferRepository | None = None,
        audit: AuditService | None = None,
        fault: Fault | None = None,
        invalidate: Invalidate | None = None,
    ) -> None:
        self.storage = storage
        self._invalidate = invalidate
        self.chunk_rows = max(1, chunk_rows)
        self.repository = repository or PiccoloTransferRepository()
        self.audit = audit or AuditService(storage=storage)
        self._fault = fault
        self.slugs = SlugAllocator()
        self._slugs_after: dict[str, int] = {}  # the chunk's slugs, kept once it commits
        self._aheads: dict[int, _Ahead] = {}  # by chunk number
        self._offset = 0  # the checkpoint's offset: after the last chunk committed

    async def run(
        self, user_id: int, transfer_id: int, *, heartbeat: Heartbeat | None = None
    ) -> str:
        """Import (or resume importing) the transfer; its final status."""
        transfer = await self.repository.get(user_id, transfer_id, TransferKind.import_)
        if transfer is None:
            return "missing"
        if transfer.status not in (TransferStatus.queued, TransferStatus.running):
            return transfer.status  # done, cancelled before it started, or never started
        now = datetime.now(UTC)
        await self.repository.update(
            user_id,
            transfer_id,
            {"status": TransferStatus.running, "started_at": transfer.started_at or now},
            only_if_status=[TransferStatus.queued, TransferStatus.running],
        )
        fmt = FileFormat(**transfer.options["format"])
        mapping = Mapping.from_dict(transfer.options["mapping"])
        policy = transfer.options.get("on_duplicate", SKIP)
        size = int(transfer.options.get("size") or 0)
        checkpoint = transfer.checkpoint or {}
        resume_offset = int(checkpoint.get("offset", 0))
        counts = Counts(**{k: int(checkpoint.get(k, 0)) for k in Counts().as_dict()})
        context = AuditContext.system(
            actor_id=user_id, request_id=f"import:{transfer_id}", import_id=transfer_id
        )

        report = ErrorReport(fmt.header)
        seen: dict[int, int] = {}
        chunks = await self.storage.get(transfer.file_key or source_key(user_id, transfer_id))
        reader = _StreamReader(chunks, asyncio.get_running_loop())
        rows = iter_rows(reader, fmt)  # type: ignore[arg-type]
        cancelled_at: int | None = None
        number = int(checkpoint.get("chunks", 0))

        def read_ahead(size: int) -> asyncio.Future[_Chunk | None]:
            # Parsing and mapping run in a thread while the previous chunk is written.
            return asyncio.ensure_future(
                asyncio.to_thread(self._read_chunk, rows, size, mapping, seen, resume_offset)
            )

        # A small first chunk: progress shows within a second of the start.
        rows_next = min(self.chunk_rows, FIRST_CHUNK_ROWS)
        pending = read_ahead(rows_next)
        last_commit = time.monotonic()
        self._offset = resume_offset
        # PostgreSQL: chunk N+1 opens its transaction on a second connection and reads its
        # existing emails and slug suffixes while chunk N is written; it writes once N has
        # committed (see _write_ahead). SQLite has one writer: one chunk at a time.
        ahead = isinstance(self.repository.engine, PostgresEngine)

        async def cancelled() -> bool:
            current = await self.repository.get(user_id, transfer_id, TransferKind.import_)
            return current is None or bool(current.options.get("cancel_requested"))

        async def commit(chunk: _Chunk, number: int) -> None:
            nonlocal last_commit, rows_next
            await self._write_chunk(
                transfer, chunk, policy, counts, context, number, size, resume_offset
            )
            for line, error, values in chunk.errors:
                report.add(line, error, values)
            # Chunks of up to chunk_rows, fewer while that would take longer than
            # CHUNK_SECONDS: progress keeps moving, however slow the database.
            moment = time.monotonic()
            done_rows = len(chunk.good) + len(chunk.errors)
            per_second = done_rows / max(moment - last_commit, 1e-3)
            last_commit = moment
            rows_next = max(
                min(self.chunk_rows, FIRST_CHUNK_ROWS),
                min(self.chunk_rows, int(per_second * CHUNK_SECONDS)),
            )
            if self._invalidate is not None:
                await self._invalidate(user_id)
            if self._fault is not None:
                self._fault(number, "committed")

        # The chunk read and started but not committed yet. Every commit follows a cancel
        # check made after the commit before it, as when chunks were written one by one.
        previous: tuple[_Chunk, int] | None = None
        try:
            while True:
                chunk = await pending
                if chunk is None:
                    break
                pending = read_ahead(rows_next)
                for line, error, values in chunk.replayed:
                    report.add(line, error, values)
                if heartbeat is not None:
                    await heartbeat()
                if chunk.last is None:
                    continue  # every row of the batch was done before the resume point
                if await cancelled():
                    cancelled_at = (previous[0] if previous else chunk).first_line
                    previous = None
                    break
                number += 1
                if previous is not None and previous[1] not in self._aheads:
                    await commit(*previous)  # not written ahead (or abandoned): one by one
                    previous = None
                if ahead:
                    after = previous[0].last if previous is not None else None
                    self._start_ahead(
                        transfer,
                        chunk,
                        policy,
                        context,
                        number,
                        start=after.byte_offset_after if after is not None else self._offset,
                    )
                if previous is not None:
                    await commit(*previous)
                previous = (chunk, number)
            if previous is not None:
                if await cancelled():
                    cancelled_at = previous[0].first_line
                else:
                    await commit(*previous)
        finally:
            # A chunk written ahead and not committed is rolled back.
            await self._abandon_aheads()
            # The reading thread pulls from the stream: let it finish before closing it.
            await asyncio.gather(pending, return_exceptions=True)
            await chunks.aclose()
        return await self._finish(transfer, counts, report, cancelled_at)

    def _read_chunk(
        self,
        rows: Iterator[Row],
        size: int,
        mapping: Mapping,
        seen: dict[int, int],
        resume_offset: int,
    ) -> _Chunk | None:
        """The next ``size`` rows, parsed, mapped and checked (in the reading thread, which
        alone touches ``rows`` and ``seen``); None at the end of the file."""
        batch = _take(rows, size)
        if not batch:
            return None
        chunk = _Chunk()
        for row in batch:
            if row.byte_offset_after <= resume_offset:
                error = self._check(mapping, row, seen, None)
                if error is not None:
                    chunk.replayed.append((row.line, error, row.values))
                continue
            self._check(mapping, row, seen, chunk)
            if chunk.first_line is None:
                chunk.first_line = row.line
            chunk.last = row
        return chunk

    def _check(
        self, mapping: Mapping, row: Row, seen: dict[int, int], chunk: _Chunk | None
    ) -> str | None:
        """The row's error (in words), or None; good rows go into ``chunk``."""
        error = row.error
        mapped = None
        if error is None:
            mapped = apply_mapping(mapping, row.values, line=row.line)
            error = mapped.error
        if error is None and mapped is not None:
            key = _email_key(mapped.email_normalized)
            first = seen.get(key)
            if first is not None:
                error = f'line {row.line}: email "{mapped.email}" is a duplicate of line {first}'
            else:
                seen[key] = row.line
        if chunk is not None:
            if error is not None:
                chunk.errors.append((row.line, error, row.values))
            elif mapped is not None:
                chunk.good.append((row.line, mapped))
        return error

    async def _write_chunk(
        self,
        transfer: TransferRecord,
        chunk: _Chunk,
        policy: str,
        counts: Counts,
        context: AuditContext,
        number: int,
        size: int,
        data_offset: int,
    ) -> None:
        """Commit the chunk (its rows, entries and checkpoint), after the chunk before it.
        Written ahead: let its transaction go on and wait for it; else, or when it met a
        race, one transaction here, written again on a race."""
        assert chunk.last is not None
        user_id = transfer.user_id
        first_attempt = 1
        ahead = self._aheads.pop(number, None)
        if ahead is not None:
            assert ahead.task is not None
            ahead.go.set_result(Counts(**counts.as_dict()))
            try:
                done = await ahead.task
            except Exception as error:
                # The chunks written ahead of it wait for it: roll them back too, and
                # write them one by one.
                await self._abandon_aheads()
                self.slugs.forget()
                self._slugs_after = {}
                if not self._is_race(error):
                    raise
                first_attempt = 2
            else:
                self.slugs.highest.update(ahead.after)
                self._committed(counts, done, chunk)
                return
        for attempt in range(first_attempt, MAX_CHUNK_ATTEMPTS + 1):
            done = Counts(**counts.as_dict())
            try:
                async with self.repository.transaction():
                    await self.repository.commit_without_flush()
                    await self._write_rows(user_id, chunk, policy, done, context)
                    done.failed += len(chunk.errors)
                    await self._write_checkpoint(transfer, chunk, done, number, size)
            except Exception as error:
                self.slugs.forget()
                self._slugs_after = {}
                if self._is_race(error) and attempt < MAX_CHUNK_ATTEMPTS:
                    continue  # someone took a slug or an email meanwhile: read again
                raise
            self.slugs.highest.update(self._slugs_after)
            self._slugs_after = {}
            self._committed(counts, done, chunk)
            return

    @staticmethod
    def _is_race(error: BaseException) -> bool:
        return isinstance(error, SlugRace) or is_unique_violation(error)

    def _committed(self, counts: Counts, done: Counts, chunk: _Chunk) -> None:
        assert chunk.last is not None
        for name, value in done.as_dict().items():
            setattr(counts, name, value)
        self._offset = chunk.last.byte_offset_after

    async def _write_checkpoint(
        self,
        transfer: TransferRecord,
        chunk: _Chunk,
        done: Counts,
        number: int,
        size: int,
        start: int | None = None,
    ) -> None:
        """Inside the chunk's transaction, after its rows and entries: the counts and the
        checkpoint, moved on only from ``start`` (the end of the chunk before it)."""
        assert chunk.last is not None
        offset = chunk.last.byte_offset_after
        estimate = done.processed
        if size and offset:
            estimate = max(done.processed, round(done.processed * size / offset))
        moved = await self.repository.update_from_checkpoint(
            transfer.user_id,
            transfer.id,
            {
                **done.as_dict(),
                "processed_rows": done.processed,
                "total_rows": estimate,
                "checkpoint": {
                    "offset": offset,
                    "line": chunk.last.next_line,
                    "chunks": number,
                    **done.as_dict(),
                },
            },
            offset=self._offset if start is None else start,
        )
        if not moved:
            raise CheckpointMoved(
                f"import {transfer.id}: the checkpoint is not at the start of chunk {number}"
            )
        if self._fault is not None:
            self._fault(number, "written")

    def _start_ahead(
        self,
        transfer: TransferRecord,
        chunk: _Chunk,
        policy: str,
        context: AuditContext,
        number: int,
        *,
        start: int,
    ) -> None:
        loop = asyncio.get_running_loop()
        ahead = _Ahead(chunk, number, start, loop.create_future())
        ahead.task = asyncio.create_task(self._write_ahead(transfer, ahead, policy, context))
        self._aheads[number] = ahead

    async def _abandon_aheads(self) -> None:
        """Roll back every chunk written ahead and not committed."""
        aheads = list(self._aheads.values())
        self._aheads.clear()
        for ahead in aheads:
            if not ahead.go.done():
                ahead.go.set_exception(_Abandoned())
        await asyncio.gather(
            *(ahead.task for ahead in aheads if ahead.task is not None), return_exceptions=True
        )
        for ahead in aheads:
            if not ahead.go.done() or ahead.go.cancelled():
                continue
            ahead.go.exception()  # retrieved: not "never retrieved" in the log

    async def _write_ahead(
        self,
        transfer: TransferRecord,
        ahead: _Ahead,
        policy: str,
        context: AuditContext,
    ) -> Counts:
        """The chunk's transaction on its own connection. Its reads (the chunk's existing
        emails, the slug suffixes not known yet) run while the chunk before it is written;
        then it waits for ``go``, given once that chunk committed (and its after-commit
        work ran), and writes: slugs allocated, customers, entries under the chain lock,
        the checkpoint, moved only from where the chunk before left it (else
        ``CheckpointMoved``). It holds no row before ``go``: nothing can wait for it."""
        chunk = ahead.chunk
        user_id = transfer.user_id
        async with self.repository.transaction():
            await self.repository.commit_without_flush()
            existing: dict[str, Customer] = {}
            new: list[MappedRow] = []
            bases: list[str] = []
            found: dict[str, int] = {}
            if chunk.good:
                emails = [row.email_normalized for _line, row in chunk.good]
                existing = await self.repository.customers_by_email(user_id, emails)
                new = [row for _line, row in chunk.good if row.email_normalized not in existing]
                bases = [_slug_base(row.name) for row in new]
                missing = self.slugs.missing(bases) if new else []
                if missing:
                    found = await self.repository.slug_highest(user_id, missing)
            before = await ahead.go
            now = datetime.now(UTC)
            done = Counts(**before.as_dict())
            entries: list[ImportedEntry] = []
            if new:
                # Read before the chunk before committed: ``learn`` never lowers what
                # that chunk's commit taught.
                self.slugs.learn(found)
                slugs, ahead.after = self.slugs.allocate(bases)
                entries += await self._insert_new(user_id, new, slugs, now)
                done.created += len(entries)
            if chunk.good:
                entries += await self._update_existing(user_id, chunk, policy, existing, done, now)
            done.failed += len(chunk.errors)
            if entries:
                await self.audit.record_imported(
                    user_id, entries, context, write=self.repository.copy_audit_entries
                )
            await self._write_checkpoint(
                transfer,
                chunk,
                done,
                ahead.number,
                int(transfer.options.get("size") or 0),
                start=ahead.start,
            )
        return done

    async def _write_rows(
        self,
        user_id: int,
        chunk: _Chunk,
        policy: str,
        counts: Counts,
        context: AuditContext,
    ) -> None:
        if not chunk.good:
            return
        now = datetime.now(UTC)
        emails = [row.email_normalized for _line, row in chunk.good]
        existing = await self.repository.customers_by_email(user_id, emails)
        new = [row for _line, row in chunk.good if row.email_normalized not in existing]
        entries: list[ImportedEntry] = []
        if new:
            bases = [_slug_base(row.name) for row in new]
            missing = self.slugs.missing(bases)
            if missing:
                self.slugs.learn(await self.repository.slug_highest(user_id, missing))
            slugs, self._slugs_after = self.slugs.allocate(bases)
            entries += await self._insert_new(user_id, new, slugs, now)
            counts.created += len(entries)
        entries += await self._update_existing(user_id, chunk, policy, existing, counts, now)
        if entries:
            bulk = self.repository.copy_connection() is not None
            await self.audit.record_imported(
                user_id,
                entries,
                context,
                write=self.repository.copy_audit_entries if bulk else None,
            )

    async def _update_existing(
        self,
        user_id: int,
        chunk: _Chunk,
        policy: str,
        existing: dict[str, Customer],
        counts: Counts,
        now: datetime,
    ) -> list[ImportedEntry]:
        """Skip, update or merge the rows whose email the book has; their entries."""
        entries: list[ImportedEntry] = []
        updates: list[tuple[int, dict[str, str]]] = []
        diffs: dict[int, dict[str, str]] = {}
        for _line, row in chunk.good:
            before = existing.get(row.email_normalized)
            if before is None:
                continue
            diff = _changes_for(policy, before, row)
            if not diff:
                counts.skipped += 1
                continue
            updates.append((before.id, diff))  # only the fields the row changes
            diffs[before.id] = diff
        if updates:
            befores = {c.id: c for c in existing.values()}
            for after in await self.repository.update_customers(user_id, updates, now):
                before = befores[after.id]
                diff = diffs[after.id]
                counts.updated += 1
                entries.append(
                    (
                        after.id,
                        customer_label(after),
                        {n: getattr(before, n) for n in EDITABLE_FIELDS if n in diff},
                        {n: getattr(after, n) for n in EDITABLE_FIELDS if n in diff},
                    )
                )
        return entries

    async def _insert_new(
        self, user_id: int, new: list[MappedRow], slugs: list[str], now: datetime
    ) -> list[ImportedEntry]:
        """Insert the new customers (PostgreSQL: COPY + INSERT ... SELECT; SQLite: a multi-row
        INSERT); their audit entries."""
        staged = await self.repository.insert_new_customers(
            user_id,
            [
                (
                    slug,
                    row.name,
                    row.email,
                    row.email_normalized,
                    row.phone,
                    row.organization,
                    row.job_title,
                    row.notes,
                )
                for slug, row in zip(slugs, new, strict=True)
            ],
            now,
        )
        if staged is None:
            inserted = await self.repository.insert_customers(
                user_id,
                [
                    {
                        "slug": slug,
                        "email_normalized": row.email_normalized,
                        **{name: getattr(row, name) for name in EDITABLE_FIELDS},
                    }
                    for slug, row in zip(slugs, new, strict=True)
                ],
                now,
            )
            staged = [(c.id, c.slug, normalize_email(c.email)) for c in inserted]
        if len(staged) < len(new):
            raise SlugRace  # ON CONFLICT DO NOTHING left rows out: someone took them
        by_email = {row.email_normalized: row for row in new}
        entries: list[ImportedEntry] = []
        # Ids were drawn in row order: entries in id order follow the file.
        for customer_id, _slug, email_normalized in sorted(staged):
            row = by_email[email_normalized]
            values = {
                "name": row.name,
                "email": row.email,
                "phone": row.phone,
                "organization": row.organization,
                "job_title": row.job_title,
                "notes": row.notes,
            }
            # The label as customer_label() writes it for the stored customer.
            entries.append((customer_id, f"{row.name} <{row.email}>", None, values))
        return entries

    async def _finish(
        self,
        transfer: TransferRecord,
        counts: Counts,
        report: ErrorReport,
        cancelled_at: int | None,
    ) -> str:
        user_id = transfer.user_id
        status = TransferStatus.completed
        message = None
        if cancelled_at is not None:
            status = TransferStatus.cancelled
            message = (
                f"The import was cancelled: rows from line {cancelled_at} on were not imported; "
                "the rows before it stay imported."
            )
            report.add(cancelled_at, message, [])
        elif counts.processed == 0:
            message = NO_ROWS_MESSAGE
        elif counts.failed == counts.processed:
            message = "No row could be imported: see the error report for the reason of each."
        report_key = None
        if report.rows:
            report_key = errors_key(user_id, transfer.id)
            await self.storage.put(report_key, report.finish(), "text/csv")
        values: dict[str, Any] = {
            "status": status,
            "finished_at": datetime.now(UTC),
            "total_rows": counts.processed,
            "processed_rows": counts.processed,
            **counts.as_dict(),
            "error_report_key": report_key,
            "error_message": message,
        }
        await self.repository.update(
            user_id, transfer.id, values, only_if_status=[TransferStatus.running]
        )
        return status

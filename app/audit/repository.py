"""The only place that queries audit_logs and audit_archives. Every method that reads a
user's entries takes the user_id first; the archive and retention jobs' scans over all
users are named as such (``next_user_with_entries``, ``archives_ended_before``).

Entries are written by ``insert_entries`` (one multi-row INSERT per chunk, under
PostgreSQL's 32,767-parameter cap), inside a transaction that first took the user's
chain lock and read the chain's head (``lock_chain_head``): on PostgreSQL the
``audit_chain_head`` function of the migration (``pg_advisory_xact_lock`` keyed by the
user, released at commit, and the head read after it, in one round trip); on SQLite
the IMMEDIATE write transaction already holds the database's one write lock. A single
entry on PostgreSQL goes through ``append_one`` instead: the ``audit_append`` function
takes the lock, reads the head, hashes and inserts, all in one round trip.

These two run on every audited write, so on PostgreSQL they go straight to the open
transaction's asyncpg connection (``_transaction_connection``): Piccolo's query building
costs as much as the round trip itself here.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.querystring import QueryString

from app.audit.chain import canonical_parts
from app.audit.models import ArchiveRecord, AuditEntry
from app.audit.tables import AuditArchive, AuditLog
from app.lib.db import is_unique_violation

# Written by the recorder, in this order (the id comes from the sequence).
ENTRY_COLUMNS = (
    "user_id",
    "actor_id",
    "customer_id",
    "customer_label",
    "event",
    "old_values",
    "new_values",
    "ip",
    "user_agent",
    "request_id",
    "import_id",
    "created_at",
    "prev_hash",
    "hash",
)
_JSON_COLUMNS = ("old_values", "new_values")
_LINKED = ("created_at", "prev_hash", "hash")  # set when the entry joins the chain
# audit_append's entry parameters, in this order.
_UNLINKED = tuple(name for name in ENTRY_COLUMNS if name not in _LINKED)
_SELECT_ENTRY = ", ".join(("id", *ENTRY_COLUMNS))
ARCHIVE_COLUMNS = (
    "id",
    "user_id",
    "object_key",
    "first_at",
    "last_at",
    "entries",
    "sha256",
    "first_id",
    "last_id",
    "last_hash",
    "customer_ids",
    "created_at",
)
_SELECT_ARCHIVE = ", ".join(ARCHIVE_COLUMNS)
# An entry as one JSON object, as archive lines hold it (created_at as the chain writes it).
_PG_LINE = (
    "json_build_object("
    + ", ".join(
        f"'{name}', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        if name == "created_at"
        else f"'{name}', {name}"
        for name in ("id", *ENTRY_COLUMNS)
    )
    + ")::text"
)
# PostgreSQL refuses a statement with more than 32,767 parameters (SQLite: 32,766).
MAX_PARAMETERS = 32_000
INSERT_CHUNK = MAX_PARAMETERS // len(ENTRY_COLUMNS)
# pg_advisory_xact_lock(key1, key2): key1 names this lock's purpose among the app's
# advisory locks ("AUDT"), key2 is the user (folded into int4; a collision only makes
# two users' writers wait for each other).
CHAIN_LOCK_CLASS = 0x41554454
_INT4 = 2**31 - 1

_json_encoder = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder()


class ArchiveAlreadyRecorded(Exception):
    """An audit_archives row for this object exists: another run archived the day."""


class ArchiveMismatch(Exception):
    """The entries to delete are not the ones written to the object; nothing changed."""


@dataclass(frozen=True)
class ChainHead:
    hash: str
    created_at: datetime


@dataclass(frozen=True)
class TrailFilter:
    customer_id: int | None = None
    event: str | None = None
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive


def as_datetime(value: Any) -> datetime:
    # SQLite hands back text where it cannot see the column's declared type.
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def json_value(value: Any) -> Any:
    """A JSON column as read: text on both drivers, decoded here."""
    if isinstance(value, str | bytes):
        return _json_decoder.decode(value)
    return value


def json_text(value: Any) -> str | None:
    return None if value is None else _json_encoder.encode(value).decode()


@functools.cache
def _json_positions(names: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(index for index, name in enumerate(names) if name in _JSON_COLUMNS)


def entry_values(row: dict[str, Any], names: tuple[str, ...] = ENTRY_COLUMNS) -> list[Any]:
    """An entry's values of ``names`` as INSERT and COPY take them (JSON columns as text).
    Per row of an import: the JSON columns' places are worked out once per ``names``."""
    values = [row[name] for name in names]
    for index in _json_positions(names):
        values[index] = json_text(values[index])
    return values


def entry_from_row(row: dict[str, Any], archived: bool = False) -> AuditEntry:
    return AuditEntry(
        id=int(row["id"]),
        user_id=int(row["user_id"]),
        actor_id=row["actor_id"],
        customer_id=row["customer_id"],
        customer_label=row["customer_label"] or "",
        event=row["event"],
        old_values=json_value(row["old_values"]),
        new_values=json_value(row["new_values"]),
        ip=row["ip"],
        user_agent=row["user_agent"],
        request_id=row["request_id"],
        import_id=row["import_id"],
        created_at=as_datetime(row["created_at"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        archived=archived,
    )


def archive_from_row(row: dict[str, Any]) -> ArchiveRecord:
    return ArchiveRecord(
        id=int(row["id"]),
        user_id=int(row["user_id"]),
        object_key=row["object_key"],
        first_at=as_datetime(row["first_at"]),
        last_at=as_datetime(row["last_at"]),
        entries=int(row["entries"]),
        sha256=row["sha256"],
        first_id=int(row["first_id"]),
        last_id=int(row["last_id"]),
        last_hash=row["last_hash"],
        customer_ids=json_value(row["customer_ids"]),
        created_at=as_datetime(row["created_at"]),
    )


@functools.lru_cache(maxsize=64)
def _numbered(template: str) -> str:
    """``{}`` placeholders as asyncpg's ``$1``, ``$2``, ..."""
    parts = template.split("{}")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]


@functools.lru_cache(maxsize=8)
def _insert_sql(rows: int, numbered: bool = False) -> str:
    """INSERT of ``rows`` entries: ``$n`` placeholders for asyncpg, ``{}`` for Piccolo."""
    width = len(ENTRY_COLUMNS)
    groups = []
    for row in range(rows):
        if numbered:
            marks = ", ".join(f"${row * width + n + 1}" for n in range(width))
        else:
            marks = ", ".join("{}" for _ in range(width))
        groups.append(f"({marks})")
    columns = ", ".join(ENTRY_COLUMNS)
    return f"INSERT INTO audit_logs ({columns}) VALUES {', '.join(groups)} RETURNING id"  # noqa: S608


def _and(conditions: Sequence[QueryString]) -> QueryString:
    return QueryString(" AND ".join("{}" for _ in conditions), *conditions)


def _filters(user_id: int, found: TrailFilter) -> list[QueryString]:
    conditions = [QueryString("user_id = {}", user_id)]
    if found.customer_id is not None:
        conditions.append(QueryString("customer_id = {}", found.customer_id))
    if found.event is not None:
        conditions.append(QueryString("event = {}", found.event))
    if found.start is not None:
        conditions.append(QueryString("created_at >= {}", found.start))
    if found.end is not None:
        conditions.append(QueryString("created_at < {}", found.end))
    return conditions


class AuditRepository(Protocol):
    """Storage of audit entries and of the archive index; the service only knows this."""

    def transaction(self) -> AbstractAsyncContextManager[Any]: ...
    async def lock_chain_head(self, user_id: int) -> ChainHead | None: ...
    async def append_one(
        self, user_id: int, draft: dict[str, Any], now: datetime
    ) -> AuditEntry | None: ...
    async def insert_entries(self, rows: Sequence[dict[str, Any]]) -> list[int]: ...
    async def get_entry(self, user_id: int, entry_id: int) -> AuditEntry | None: ...
    async def page(
        self,
        user_id: int,
        found: TrailFilter,
        before: tuple[datetime, int] | None,
        limit: int,
    ) -> list[AuditEntry]: ...
    async def walk(self, user_id: int, after_id: int, limit: int) -> list[AuditEntry]: ...
    async def archives(self, user_id: int) -> list[ArchiveRecord]: ...
    async def archives_before(
        self,
        user_id: int,
        found: TrailFilter,
        before: tuple[datetime, int] | None,
        limit: int,
    ) -> list[ArchiveRecord]: ...
    async def archive_holding(self, user_id: int, entry_id: int) -> ArchiveRecord | None: ...
    async def next_user_with_entries(self, after_user_id: int) -> tuple[int, datetime] | None: ...
    async def oldest_entry_at(self, user_id: int) -> datetime | None: ...
    async def day_rows(
        self, user_id: int, start: datetime, end: datetime, after_id: int, limit: int
    ) -> Sequence[Any]: ...
    async def commit_archive(
        self, values: dict[str, Any], start: datetime, end: datetime
    ) -> ArchiveRecord: ...
    async def archives_ended_before(
        self, cutoff: datetime, after: tuple[int, int], limit: int
    ) -> list[ArchiveRecord]: ...
    async def delete_archive_row(self, user_id: int, archive_id: int) -> bool: ...
    async def customer_slug(self, user_id: int, customer_id: int) -> str | None: ...


class PiccoloAuditRepository:
    @property
    def engine(self) -> Engine:
        return AuditLog._meta.db

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """A write transaction; inside an open one (the customer's write) it joins it."""
        engine = self.engine
        if isinstance(engine, SQLiteEngine):
            return engine.transaction(transaction_type=TransactionType.immediate)
        return engine.transaction()

    async def _raw(self, sql: QueryString) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await AuditLog.raw("{}", sql)
        return rows

    async def _fetch(self, template: str, *args: Any) -> Sequence[Any]:
        """``template`` with ``{}`` for each value: on PostgreSQL straight through asyncpg
        (the open transaction's connection, else one from the pool), elsewhere through
        Piccolo. For the archive job's hot loop, where Piccolo's per-row work shows."""
        engine = self.engine
        if isinstance(engine, PostgresEngine) and engine.pool is not None:
            sql = _numbered(template)
            connection = self._transaction_connection()
            if connection is not None:
                return await connection.fetch(sql, *args)
            async with engine.pool.acquire() as connection:
                return await connection.fetch(sql, *args)
        return await self._raw(QueryString(template, *args))

    # --- the chain -----------------------------------------------------------------------

    def _transaction_connection(self) -> Any | None:
        """The asyncpg connection of the PostgreSQL transaction open in this task, if any."""
        engine = self.engine
        if not isinstance(engine, PostgresEngine):
            return None
        transaction = engine.current_transaction.get()
        return getattr(transaction, "connection", None) if transaction else None

    async def lock_chain_head(self, user_id: int) -> ChainHead | None:
        """Take the user's chain lock (until the transaction ends), then read the head of
        their chain: the last entry in the database, else the end of the newest archive
        (archives are per day and made oldest first). Call it inside a transaction."""
        connection = self._transaction_connection()
        if connection is not None:
            rows = await connection.fetch(
                "SELECT hash, created_at FROM audit_chain_head($1, $2, $3)",
                user_id,
                CHAIN_LOCK_CLASS,
                user_id % _INT4,
            )
            return ChainHead(rows[0]["hash"], rows[0]["created_at"]) if rows else None
        if isinstance(self.engine, PostgresEngine):
            raise RuntimeError("lock_chain_head needs an open transaction")
        return await self.chain_head(user_id)

    async def append_one(
        self, user_id: int, draft: dict[str, Any], now: datetime
    ) -> AuditEntry | None:
        """One entry linked onto the user's chain and inserted in one round trip
        (PostgreSQL's ``audit_append``: the chain lock, the head, the hash and the
        INSERT); ``draft`` holds the entry's columns but created_at and the hashes. None
        where there is no such function (SQLite): the caller takes the two steps."""
        connection = self._transaction_connection()
        if connection is None:
            return None
        row = {**draft, "user_id": user_id}
        head, middle, tail = canonical_parts(row)
        found = await connection.fetchrow(
            "SELECT id, created_at, prev_hash, hash FROM audit_append("
            "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            CHAIN_LOCK_CLASS,
            user_id % _INT4,
            now,
            head,
            middle,
            tail,
            *entry_values(row, _UNLINKED),
        )
        return AuditEntry(
            **{name: row[name] for name in _UNLINKED},
            id=int(found["id"]),
            created_at=found["created_at"],
            prev_hash=found["prev_hash"],
            hash=found["hash"],
        )

    async def chain_head(self, user_id: int) -> ChainHead | None:
        """The head of the user's chain, without the lock (SQLite's write transaction holds
        the database's only write lock already)."""
        rows = await self._raw(
            QueryString(
                "SELECT 0 AS source, hash, created_at FROM ("
                " SELECT hash, created_at FROM audit_logs WHERE user_id = {}"
                " ORDER BY id DESC LIMIT 1) AS logged"
                " UNION ALL "
                "SELECT 1 AS source, last_hash AS hash, last_at AS created_at FROM ("
                " SELECT last_hash, last_at FROM audit_archives WHERE user_id = {}"
                " ORDER BY first_at DESC, id DESC LIMIT 1) AS archived",
                user_id,
                user_id,
            )
        )
        if not rows:
            return None
        row = min(rows, key=lambda found: int(found["source"]))
        return ChainHead(hash=row["hash"], created_at=as_datetime(row["created_at"]))

    async def insert_entries(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert entries (dicts of ENTRY_COLUMNS), a chunk per statement; their ids in
        the order given (ids are drawn in row order; RETURNING's order is not promised)."""
        ids: list[int] = []
        connection = self._transaction_connection()
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            values: list[Any] = []
            for row in chunk:
                values.extend(entry_values(row))
            if connection is not None:
                inserted = await connection.fetch(_insert_sql(len(chunk), numbered=True), *values)
            else:
                inserted = await self._raw(QueryString(_insert_sql(len(chunk)), *values))
            ids.extend(sorted(int(row["id"]) for row in inserted))
        return ids

    # --- reading entries ---------------------------------------------------------------

    async def get_entry(self, user_id: int, entry_id: int) -> AuditEntry | None:
        rows = await self._raw(
            QueryString(
                f"SELECT {_SELECT_ENTRY} FROM audit_logs WHERE user_id = {{}} AND id = {{}}",  # noqa: S608
                user_id,
                entry_id,
            )
        )
        return entry_from_row(rows[0]) if rows else None

    async def page(
        self,
        user_id: int,
        found: TrailFilter,
        before: tuple[datetime, int] | None,
        limit: int,
    ) -> list[AuditEntry]:
        """Newest first, strictly before ``before`` (created_at, id) when given."""
        conditions = _filters(user_id, found)
        if before is not None:
            conditions.append(QueryString("(created_at, id) < ({}, {})", *before))
        rows = await self._raw(
            QueryString(
                f"SELECT {_SELECT_ENTRY} FROM audit_logs WHERE {{}} "  # noqa: S608
                "ORDER BY created_at DESC, id DESC LIMIT {}",
                _and(conditions),
                limit,
            )
        )
        return [entry_from_row(row) for row in rows]

    async def walk(self, user_id: int, after_id: int, limit: int) -> list[AuditEntry]:
        """The user's entries in chain (id) order, after ``after_id``."""
        rows = await self._raw(
            QueryString(
                f"SELECT {_SELECT_ENTRY} FROM audit_logs "  # noqa: S608
                "WHERE user_id = {} AND id > {} ORDER BY id LIMIT {}",
                user_id,
                after_id,
                limit,
            )
        )
        return [entry_from_row(row) for row in rows]

    # --- the archive index ---------------------------------------------------------------

    async def archives(self, user_id: int) -> list[ArchiveRecord]:
        rows = await self._raw(
            QueryString(
                f"SELECT {_SELECT_ARCHIVE} FROM audit_archives "  # noqa: S608
                "WHERE user_id = {} ORDER BY first_id, id",
                user_id,
            )
        )
        return [archive_from_row(row) for row in rows]

    async def archives_before(
        self,
        user_id: int,
        found: TrailFilter,
        before: tuple[datetime, int] | None,
        limit: int,
    ) -> list[ArchiveRecord]:
        """Archives that may hold entries before ``before`` within the date range, newest
        first; ``before`` here is the (first_at, id) of the last archive already read."""
        conditions = [QueryString("user_id = {}", user_id)]
        if before is not None:
            conditions.append(QueryString("(first_at, id) < ({}, {})", *before))
        if found.start is not None:
            conditions.append(QueryString("last_at >= {}", found.start))
        if found.end is not None:
            conditions.append(QueryString("first_at < {}", found.end))
        rows = await self._raw(
            QueryString(
                f"SELECT {_SELECT_ARCHIVE} FROM audit_archives WHERE {{}} "  # noqa: S608
                "ORDER BY first_at DESC, id DESC LIMIT {}",
                _and(conditions),
                limit,
            )
        )
        return [archive_from_row(row) for row in rows]

    async def archive_holding(self, user_id: int, entry_id: int) -> ArchiveRecord | None:
        rows = await self._raw(
            QueryString(
                f"SELECT {_SELECT_ARCHIVE} FROM audit_archives "  # noqa: S608
                "WHERE user_id = {} AND first_id <= {} AND last_id >= {} LIMIT 1",
                user_id,
                entry_id,
                entry_id,
            )
        )
        return archive_from_row(rows[0]) if rows else None

    # --- the archive job -------------------------------------------------------------------

    async def next_user_with_entries(self, after_user_id: int) -> tuple[int, datetime] | None:
        """All users (a job's scan): the next user with entries, and their oldest one's time.
        One index probe on (user_id, created_at, id)."""
        rows = await self._fetch(
            "SELECT user_id, created_at FROM audit_logs WHERE user_id > {} "
            "ORDER BY user_id, created_at, id LIMIT 1",
            after_user_id,
        )
        if not rows:
            return None
        return int(rows[0]["user_id"]), as_datetime(rows[0]["created_at"])

    async def oldest_entry_at(self, user_id: int) -> datetime | None:
        rows = await self._fetch(
            "SELECT created_at FROM audit_logs WHERE user_id = {} ORDER BY created_at, id LIMIT 1",
            user_id,
        )
        return as_datetime(rows[0]["created_at"]) if rows else None

    async def day_rows(
        self, user_id: int, start: datetime, end: datetime, after_id: int, limit: int
    ) -> Sequence[Any]:
        """One user's day after ``after_id``, in id order: mappings of the entry's columns
        (JSON columns as text) and ``line``, the whole entry as one JSON object (text),
        which PostgreSQL builds (several times faster than Python does) and SQLite leaves
        to the caller (None)."""
        where = (
            "WHERE user_id = {} AND created_at >= {} AND created_at < {} AND id > {} "
            "ORDER BY id LIMIT {}"
        )
        if isinstance(self.engine, PostgresEngine):
            columns = f"{_SELECT_ENTRY}, {_PG_LINE} AS line"
        else:
            columns = f"{_SELECT_ENTRY}, NULL AS line"
        return await self._fetch(
            f"SELECT {columns} FROM audit_logs {where}",  # noqa: S608
            user_id,
            start,
            end,
            after_id,
            limit,
        )

    async def commit_archive(
        self, values: dict[str, Any], start: datetime, end: datetime
    ) -> ArchiveRecord:
        """One transaction: record the object in audit_archives and delete its entries.

        ``values`` are the row's columns. Raises ArchiveAlreadyRecorded (the object is
        already recorded) or ArchiveMismatch (the day's entries are not exactly the
        ``entries`` between first_id and last_id); either way nothing is changed.
        """
        columns = [name for name in ARCHIVE_COLUMNS if name in values]
        params = [
            json_text(values[name]) if name == "customer_ids" else values[name] for name in columns
        ]
        async with self.transaction():
            try:
                rows = await self._raw(
                    QueryString(
                        f"INSERT INTO audit_archives ({', '.join(columns)}) VALUES ("  # noqa: S608
                        + ", ".join("{}" for _ in columns)
                        + f") RETURNING {_SELECT_ARCHIVE}",
                        *params,
                    )
                )
            except Exception as error:
                if is_unique_violation(error):
                    raise ArchiveAlreadyRecorded(values["object_key"]) from error
                raise
            deleted = await self._delete_counting(
                QueryString(
                    "DELETE FROM audit_logs WHERE user_id = {} AND id >= {} AND id <= {} "
                    "AND created_at >= {} AND created_at < {}",
                    values["user_id"],
                    values["first_id"],
                    values["last_id"],
                    start,
                    end,
                )
            )
            if deleted != values["entries"]:
                raise ArchiveMismatch(
                    f"{values['object_key']}: {deleted} entries to delete, "
                    f"{values['entries']} in the object"
                )
        return archive_from_row(rows[0])

    async def _delete_counting(self, delete: QueryString) -> int:
        """Run a DELETE and return how many rows it removed (inside a transaction)."""
        if isinstance(self.engine, SQLiteEngine):
            await self._raw(delete)
            rows = await self._raw(QueryString("SELECT changes() AS n"))
        else:
            rows = await self._raw(
                QueryString("WITH gone AS ({} RETURNING 1) SELECT count(*) AS n FROM gone", delete)
            )
        return int(rows[0]["n"])

    # --- retention -----------------------------------------------------------------------

    async def archives_ended_before(
        self, cutoff: datetime, after: tuple[int, int], limit: int
    ) -> list[ArchiveRecord]:
        """All users (a job's scan): archives whose last entry is older than ``cutoff``,
        by user then chain order, after ``after`` (user_id, first_id)."""
        rows = await self._raw(
            QueryString(
                f"SELECT {_SELECT_ARCHIVE} FROM audit_archives "  # noqa: S608
                "WHERE last_at < {} AND (user_id, first_id) > ({}, {}) "
                "ORDER BY user_id, first_id LIMIT {}",
                cutoff,
                *after,
                limit,
            )
        )
        return [archive_from_row(row) for row in rows]

    async def delete_archive_row(self, user_id: int, archive_id: int) -> bool:
        async with self.transaction():
            deleted = await self._delete_counting(
                QueryString(
                    "DELETE FROM audit_archives WHERE user_id = {} AND id = {}",
                    user_id,
                    archive_id,
                )
            )
        return deleted > 0

    # --- customers, for restore ------------------------------------------------------------

    async def customer_slug(self, user_id: int, customer_id: int) -> str | None:
        """The slug of the user's customer with this id (restore finds it by the entry)."""
        rows = await self._raw(
            QueryString(
                "SELECT slug FROM customers WHERE user_id = {} AND id = {}", user_id, customer_id
            )
        )
        return str(rows[0]["slug"]) if rows else None


__all__ = [
    "ENTRY_COLUMNS",
    "INSERT_CHUNK",
    "ArchiveAlreadyRecorded",
    "ArchiveMismatch",
    "AuditArchive",
    "AuditRepository",
    "ChainHead",
    "PiccoloAuditRepository",
    "TrailFilter",
    "archive_from_row",
    "entry_from_row",
]

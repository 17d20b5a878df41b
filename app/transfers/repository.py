"""The only place that queries transfers, and the bulk customer queries an import makes.

Every method takes the owning user_id first. The bulk queries are one statement per
chunk of rows (under PostgreSQL's 32,767-parameter cap), never one per row:
``customers_by_email`` and ``slug_highest`` read what a chunk needs, ``insert_customers``
writes the new customers, ``update_customers`` is one UPDATE ... FROM (VALUES ...)
(PostgreSQL and SQLite 3.33+ alike; VALUES columns are column1, column2, ... in both).

On PostgreSQL the chunk's writes go straight to the open transaction's asyncpg
connection: the new customers are COPied into a temporary table and moved into
``customers`` by one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``, and the audit
entries are COPied into ``audit_logs`` (``copy_audit_entries``). Piccolo's per-value query
building would cost more than the database's work here. SQLite inserts with multi-row
INSERTs in the same transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.querystring import QueryString

from app.audit.models import AuditEntry
from app.audit.repository import ENTRY_COLUMNS, as_datetime, entry_from_row, entry_values
from app.customers.models import EDITABLE_FIELDS, Customer
from app.customers.repository import COLUMNS as CUSTOMER_COLUMNS
from app.customers.repository import customer_from_row
from app.transfers.tables import Transfer

MAX_PARAMETERS = 30_000
_SELECT_CUSTOMER = ", ".join(CUSTOMER_COLUMNS)
_INSERT_COLUMNS = (
    "user_id",
    "slug",
    "name",
    "email",
    "email_normalized",
    "phone",
    "organization",
    "job_title",
    "notes",
    "created_at",
    "updated_at",
)
TRANSFER_COLUMNS = (
    "id",
    "user_id",
    "kind",
    "status",
    "file_key",
    "original_filename",
    "options",
    "total_rows",
    "processed_rows",
    "created",
    "updated",
    "skipped",
    "failed",
    "error_report_key",
    "error_message",
    "checkpoint",
    "started_at",
    "finished_at",
    "expires_at",
    "created_at",
)
_JSON_COLUMNS = ("options", "checkpoint")
_SUFFIXED = re.compile(r"(.+)-([0-9]+)")
# The chunk's new customers, COPied in; emptied at every commit, created once per
# connection (a temporary table lives as long as the session).
_STAGING = "import_new_customers"
_STAGING_COLUMNS = (
    "slug",
    "name",
    "email",
    "email_normalized",
    "phone",
    "organization",
    "job_title",
    "notes",
)
_CREATE_STAGING = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} ("
    "ord integer, slug text, name text, email text, email_normalized text, phone text, "
    "organization text, job_title text, notes text) ON COMMIT DELETE ROWS"
)
_STAGED_INSERT = (
    f"INSERT INTO customers ({', '.join(_INSERT_COLUMNS)}) "  # noqa: S608
    f"SELECT $1, {', '.join(_STAGING_COLUMNS)}, $2, $2 FROM {_STAGING} ORDER BY ord "
    "ON CONFLICT DO NOTHING RETURNING id, slug, email_normalized"
)
# Collations where every string that starts with "base-" sorts in [base, base || '.'):
# code point order. Elsewhere the slug range is compared in "C" (correct, not indexed).
_CODE_POINT_COLLATIONS = frozenset(("C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic"))


def highest_suffixes(bases: Sequence[str], taken: Sequence[str]) -> dict[str, int]:
    """For each base, the highest N among the ``taken`` slugs ``base-N`` (``base`` itself
    counts as 1); 0 when none is taken: what ``next_free_slug`` computes, for many bases."""
    wanted = set(bases)
    highest: dict[str, int] = dict.fromkeys(wanted, 0)
    for slug in taken:
        if slug in wanted:
            highest[slug] = max(highest[slug], 1)
        found = _SUFFIXED.fullmatch(slug)
        if found is not None and found.group(1) in wanted:
            highest[found.group(1)] = max(highest[found.group(1)], int(found.group(2)))
    return highest


@dataclass(frozen=True)
class TransferRecord:
    id: int
    user_id: int
    kind: str
    status: str
    file_key: str | None
    original_filename: str
    options: dict[str, Any]
    total_rows: int | None
    processed_rows: int
    created: int
    updated: int
    skipped: int
    failed: int
    error_report_key: str | None
    error_message: str | None
    checkpoint: dict[str, Any] | None
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None
    created_at: datetime


def _json(value: Any) -> Any:
    if isinstance(value, str | bytes):
        return json.loads(value)
    return value


def _maybe_datetime(value: Any) -> datetime | None:
    return None if value is None else as_datetime(value)


def transfer_from_row(row: dict[str, Any]) -> TransferRecord:
    return TransferRecord(
        id=int(row["id"]),
        user_id=int(row["user_id"]),
        kind=row["kind"],
        status=row["status"],
        file_key=row["file_key"],
        original_filename=row["original_filename"] or "",
        options=_json(row["options"]) or {},
        total_rows=row["total_rows"],
        processed_rows=int(row["processed_rows"] or 0),
        created=int(row["created"] or 0),
        updated=int(row["updated"] or 0),
        skipped=int(row["skipped"] or 0),
        failed=int(row["failed"] or 0),
        error_report_key=row["error_report_key"],
        error_message=row["error_message"],
        checkpoint=_json(row["checkpoint"]),
        started_at=_maybe_datetime(row["started_at"]),
        finished_at=_maybe_datetime(row["finished_at"]),
        expires_at=_maybe_datetime(row["expires_at"]),
        created_at=as_datetime(row["created_at"]),
    )


def _param(name: str, value: Any) -> Any:
    if name in _JSON_COLUMNS and value is not None:
        return json.dumps(value)
    return value


class PiccoloTransferRepository:
    @property
    def engine(self) -> Engine:
        return Transfer._meta.db

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        engine = self.engine
        if isinstance(engine, SQLiteEngine):
            return engine.transaction(transaction_type=TransactionType.immediate)
        return engine.transaction()

    async def _raw(self, sql: QueryString) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await Transfer.raw("{}", sql)
        return rows

    def copy_connection(self) -> Any | None:
        """The asyncpg connection of the PostgreSQL transaction open in this task; None on
        SQLite or outside a transaction. (Piccolo keeps the open transaction in the
        engine's ``current_transaction`` context variable: not documented, so it is read
        in this one place.)"""
        engine = self.engine
        if not isinstance(engine, PostgresEngine):
            return None
        transaction = engine.current_transaction.get()
        return getattr(transaction, "connection", None) if transaction else None

    # --- transfers -------------------------------------------------------------------------

    async def create(self, user_id: int, values: dict[str, Any]) -> TransferRecord:
        values = {"user_id": user_id, "created_at": datetime.now(UTC), **values}
        names = list(values)
        rows = await self._raw(
            QueryString(
                f"INSERT INTO transfers ({', '.join(names)}) VALUES ("  # noqa: S608
                + ", ".join("{}" for _ in names)
                + f") RETURNING {', '.join(TRANSFER_COLUMNS)}",
                *[_param(name, values[name]) for name in names],
            )
        )
        return transfer_from_row(rows[0])

    async def get(self, user_id: int, transfer_id: int, kind: str) -> TransferRecord | None:
        rows = await self._raw(
            QueryString(
                f"SELECT {', '.join(TRANSFER_COLUMNS)} FROM transfers "  # noqa: S608
                "WHERE user_id = {} AND id = {} AND kind = {}",
                user_id,
                transfer_id,
                kind,
            )
        )
        return transfer_from_row(rows[0]) if rows else None

    async def list_transfers(
        self, user_id: int, kind: str, limit: int = 100
    ) -> list[TransferRecord]:
        rows = await self._raw(
            QueryString(
                f"SELECT {', '.join(TRANSFER_COLUMNS)} FROM transfers "  # noqa: S608
                "WHERE user_id = {} AND kind = {} ORDER BY created_at DESC, id DESC LIMIT {}",
                user_id,
                kind,
                limit,
            )
        )
        return [transfer_from_row(row) for row in rows]

    async def update(
        self,
        user_id: int,
        transfer_id: int,
        values: dict[str, Any],
        *,
        only_if_status: Sequence[str] | None = None,
    ) -> bool:
        """Set columns; with ``only_if_status``, only while the status is one of those.
        True when the row was changed."""
        names = list(values)
        sets = ", ".join(f"{name} = {{}}" for name in names)
        condition = "user_id = {} AND id = {}"
        params: list[Any] = [_param(name, values[name]) for name in names]
        params += [user_id, transfer_id]
        if only_if_status is not None:
            condition += " AND status IN (" + ", ".join("{}" for _ in only_if_status) + ")"
            params += list(only_if_status)
        rows = await self._raw(
            QueryString(
                f"UPDATE transfers SET {sets} WHERE {condition} RETURNING id",  # noqa: S608
                *params,
            )
        )
        return bool(rows)

    async def update_from_checkpoint(
        self, user_id: int, transfer_id: int, values: dict[str, Any], *, offset: int
    ) -> bool:
        """Set columns of an import only while its checkpoint is at ``offset`` (no checkpoint
        counts as 0): a chunk moves the checkpoint on only from where the chunk before it
        left it, never over a chunk that did not commit. On PostgreSQL the UPDATE waits for
        a transaction that is moving the row and reads the row it committed. True when
        the row was changed."""
        names = list(values)
        sets = ", ".join(f"{name} = {{}}" for name in names)
        at = (
            "CAST(json_extract(checkpoint, '$.offset') AS INTEGER)"
            if isinstance(self.engine, SQLiteEngine)
            else "CAST(checkpoint ->> 'offset' AS BIGINT)"
        )
        rows = await self._raw(
            QueryString(
                f"UPDATE transfers SET {sets} WHERE user_id = {{}} AND id = {{}} "  # noqa: S608
                f"AND COALESCE({at}, 0) = {{}} RETURNING id",
                *[_param(name, values[name]) for name in names],
                user_id,
                transfer_id,
                offset,
            )
        )
        return bool(rows)

    async def delete(self, user_id: int, transfer_id: int) -> None:
        await self._raw(
            QueryString(
                "DELETE FROM transfers WHERE user_id = {} AND id = {}", user_id, transfer_id
            )
        )

    # --- customers, in bulk ------------------------------------------------------------------

    async def customers_by_email(self, user_id: int, emails: Sequence[str]) -> dict[str, Customer]:
        """The user's customers with these normalized emails, by normalized email."""
        found: dict[str, Customer] = {}
        connection = self.copy_connection()
        if connection is not None:
            rows = await connection.fetch(
                f"SELECT {_SELECT_CUSTOMER}, email_normalized FROM customers "  # noqa: S608
                "WHERE user_id = $1 AND email_normalized = ANY($2::text[])",
                user_id,
                list(emails),
            )
            return {row["email_normalized"]: customer_from_row(row) for row in rows}
        step = MAX_PARAMETERS - 1
        for start in range(0, len(emails), step):
            part = list(emails[start : start + step])
            rows = await self._raw(
                QueryString(
                    f"SELECT {_SELECT_CUSTOMER}, email_normalized FROM customers "  # noqa: S608
                    "WHERE user_id = {} AND email_normalized IN ("
                    + ", ".join("{}" for _ in part)
                    + ")",
                    user_id,
                    *part,
                )
            )
            for row in rows:
                found[row["email_normalized"]] = customer_from_row(row)
        return found

    async def slugs_with_bases(self, user_id: int, bases: Sequence[str]) -> list[str]:
        """The user's slugs equal to one of ``bases`` or starting with ``base-``.
        Slugs are [a-z0-9-]: no LIKE wildcard can hide in a base."""
        slugs: list[str] = []
        # SQLite nests an OR chain one level per term and refuses more than 1,000 levels.
        step = 200 if isinstance(self.engine, SQLiteEngine) else (MAX_PARAMETERS - 1) // 2
        for start in range(0, len(bases), step):
            part = list(bases[start : start + step])
            conditions = " OR ".join("slug = {} OR slug LIKE {}" for _ in part)
            params: list[Any] = []
            for base in part:
                params += [base, base + "-%"]
            rows = await self._raw(
                QueryString(
                    f"SELECT slug FROM customers WHERE user_id = {{}} AND ({conditions})",  # noqa: S608
                    user_id,
                    *params,
                )
            )
            slugs.extend(row["slug"] for row in rows)
        return slugs

    async def commit_without_flush(self) -> None:
        """PostgreSQL: this transaction's COMMIT does not wait for its WAL to reach the disk.
        Safe for an import chunk: its rows, audit entries and checkpoint commit together,
        so a server crash loses all of them or none, and the job resumes from the
        checkpoint that survived. (WAL is written in order: the import's final, flushed
        update flushes every chunk before it.)"""
        connection = self.copy_connection()
        if connection is not None:
            await connection.execute("SET LOCAL synchronous_commit TO OFF")

    async def slug_highest(self, user_id: int, bases: Sequence[str]) -> dict[str, int]:
        """``highest_suffixes`` of the user's slugs for these bases, one row per base read."""
        connection = self.copy_connection()
        if connection is None:
            return highest_suffixes(bases, await self.slugs_with_bases(user_id, bases))
        collation = await self._collation(connection)
        # Every slug that starts with "base-" lies in [base, base || '.') in code point
        # order ('.' follows '-'); the (user_id, slug) index finds them.
        slug = "c.slug" if collation in _CODE_POINT_COLLATIONS else 'c.slug COLLATE "C"'
        # One index range scan per base, whatever the statistics say: the LATERAL
        # subquery with OFFSET 0 is not flattened into a join, which the planner, told by
        # stale statistics that the user has a few dozen customers while an import adds
        # thousands a second, ran as a nested loop over all of them for every base
        # (seconds per chunk, growing with the book).
        rows = await connection.fetch(
            "SELECT b.base, max(CASE WHEN s.slug = b.base THEN 1 "  # noqa: S608
            "ELSE substr(s.slug, length(b.base) + 2)::numeric END) AS highest "
            "FROM unnest($2::text[]) AS b(base) CROSS JOIN LATERAL ("
            "SELECT c.slug FROM customers c WHERE c.user_id = $1 "
            f"AND {slug} >= b.base AND {slug} < b.base || '.' OFFSET 0) AS s "
            "WHERE s.slug = b.base OR substr(s.slug, length(b.base) + 2) ~ '^[0-9]+$' "
            "GROUP BY b.base",
            user_id,
            list(bases),
        )
        highest = dict.fromkeys(bases, 0)
        for row in rows:
            highest[row["base"]] = int(row["highest"])
        return highest

    _database_collation: str | None = None

    async def _collation(self, connection: Any) -> str:
        if PiccoloTransferRepository._database_collation is None:
            PiccoloTransferRepository._database_collation = await connection.fetchval(
                "SELECT datcollate FROM pg_database WHERE datname = current_database()"
            )
        return PiccoloTransferRepository._database_collation or ""

    async def insert_new_customers(
        self, user_id: int, rows: Sequence[Sequence[str]], now: datetime
    ) -> list[tuple[int, str, str]] | None:
        """PostgreSQL, inside the chunk's transaction: COPY ``rows`` (values in the order
        of ``_STAGING_COLUMNS``) into the staging table, then one INSERT ... SELECT ... ON
        CONFLICT DO NOTHING into ``customers``. (id, slug, email_normalized) of each row
        written; a row another writer's slug or email stopped is missing from the answer.
        None on SQLite: use ``insert_customers``."""
        connection = self.copy_connection()
        if connection is None:
            return None
        await connection.execute(_CREATE_STAGING)
        await connection.copy_records_to_table(
            _STAGING,
            records=[(number, *row) for number, row in enumerate(rows)],
            columns=("ord", *_STAGING_COLUMNS),
        )
        inserted = await connection.fetch(_STAGED_INSERT, user_id, now)
        return [(int(row["id"]), row["slug"], row["email_normalized"]) for row in inserted]

    async def copy_audit_entries(self, rows: Sequence[dict[str, Any]]) -> None:
        """PostgreSQL, inside the chain-locked transaction: one COPY of the entries (dicts
        of the entry columns, in chain order). Their ids come from the column's default
        as COPY reads the rows, in order, so id order stays chain order (the user's chain
        lock keeps every other writer of this user's chain out meanwhile)."""
        connection = self.copy_connection()
        if connection is None:
            raise RuntimeError("copy_audit_entries needs an open PostgreSQL transaction")
        records = [entry_values(row) for row in rows]
        await connection.copy_records_to_table("audit_logs", records=records, columns=ENTRY_COLUMNS)

    async def insert_customers(
        self, user_id: int, rows: Sequence[dict[str, str]], now: datetime
    ) -> list[Customer]:
        """Insert customers (dicts of slug, email_normalized and the editable fields)."""
        inserted: list[Customer] = []
        step = MAX_PARAMETERS // len(_INSERT_COLUMNS)
        group = "(" + ", ".join("{}" for _ in _INSERT_COLUMNS) + ")"
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            params: list[Any] = []
            for row in part:
                params += [
                    user_id if name == "user_id" else now if name.endswith("_at") else row[name]
                    for name in _INSERT_COLUMNS
                ]
            found = await self._raw(
                QueryString(
                    f"INSERT INTO customers ({', '.join(_INSERT_COLUMNS)}) VALUES "  # noqa: S608
                    + ", ".join(group for _ in part)
                    + f" RETURNING {_SELECT_CUSTOMER}",
                    *params,
                )
            )
            inserted.extend(customer_from_row(row) for row in found)
        return inserted

    async def update_customers(
        self, user_id: int, rows: Sequence[tuple[int, dict[str, str]]], now: datetime
    ) -> list[Customer]:
        """Set the given fields (any editable one but email) of each (customer id,
        values) in one statement per chunk; the customers as they are now. A field left
        out of ``values`` keeps what the row holds when the statement runs, so a change
        made elsewhere since the row was read is not written over with what was read."""
        fields = [name for name in EDITABLE_FIELDS if name != "email"]
        width = len(fields) + 1
        step = (MAX_PARAMETERS - 2) // width
        updated: list[Customer] = []
        group = "(CAST({} AS BIGINT), " + ", ".join("{}" for _ in fields) + ")"
        sets = ", ".join(
            f"{name} = COALESCE(v.column{n + 2}, customers.{name})" for n, name in enumerate(fields)
        )
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            params: list[Any] = [now]
            for customer_id, values in part:
                params += [customer_id, *(values.get(name) for name in fields)]
            params.append(user_id)
            found = await self._raw(
                QueryString(
                    f"UPDATE customers SET {sets}, updated_at = {{}} FROM (VALUES "  # noqa: S608
                    + ", ".join(group for _ in part)
                    + ") AS v WHERE customers.id = v.column1 AND customers.user_id = {} "
                    + "RETURNING "
                    + ", ".join(f"customers.{name} AS {name}" for name in CUSTOMER_COLUMNS),
                    *params,
                )
            )
            updated.extend(customer_from_row(row) for row in found)
        return updated

    async def customers_by_id(self, user_id: int, ids: Sequence[int]) -> dict[int, Customer]:
        found: dict[int, Customer] = {}
        step = MAX_PARAMETERS - 1
        for start in range(0, len(ids), step):
            part = list(ids[start : start + step])
            rows = await self._raw(
                QueryString(
                    f"SELECT {_SELECT_CUSTOMER} FROM customers WHERE user_id = {{}} "  # noqa: S608
                    "AND id IN (" + ", ".join("{}" for _ in part) + ")",
                    user_id,
                    *part,
                )
            )
            for row in rows:
                customer = customer_from_row(row)
                found[customer.id] = customer
        return found

    async def delete_customers(self, user_id: int, ids: Sequence[int]) -> list[Customer]:
        deleted: list[Customer] = []
        step = MAX_PARAMETERS - 1
        for start in range(0, len(ids), step):
            part = list(ids[start : start + step])
            rows = await self._raw(
                QueryString(
                    "DELETE FROM customers WHERE user_id = {} AND id IN ("  # noqa: S608
                    + ", ".join("{}" for _ in part)
                    + f") RETURNING {_SELECT_CUSTOMER}",
                    user_id,
                    *part,
                )
            )
            deleted.extend(customer_from_row(row) for row in rows)
        return deleted

    # --- audit entries of an import ------------------------------------------------------------

    async def import_entries(
        self, user_id: int, import_id: int, event: str, after_id: int, limit: int
    ) -> list[AuditEntry]:
        from app.audit.repository import ENTRY_COLUMNS

        rows = await self._raw(
            QueryString(
                f"SELECT id, {', '.join(ENTRY_COLUMNS)} FROM audit_logs "  # noqa: S608
                "WHERE user_id = {} AND import_id = {} AND event = {} AND id > {} "
                "ORDER BY id LIMIT {}",
                user_id,
                import_id,
                event,
                after_id,
                limit,
            )
        )
        return [entry_from_row(row) for row in rows]

"""The reads and writes an export makes: its transfer row (through the transfers
repository), the customers it writes (the customers repository's own filter, search and
order, in keyset batches), the owner it notifies, and the expired exports.

Every method takes the owning user_id first, but ``due_for_expiry``: the scheduled
expiry job looks across users, as the maintenance purge does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from piccolo.engine.postgres import PostgresEngine
from piccolo.querystring import QueryString

from app.accounts.tables import User
from app.customers.models import ListQuery
from app.customers.repository import (
    ExportBatch,
    PiccoloCustomerRepository,
    export_after,
    export_batch,
    export_count,
    export_select,
)
from app.exports.writer import CSV_LINE_SQL, csv_rows
from app.transfers.repository import (
    TRANSFER_COLUMNS,
    PiccoloTransferRepository,
    TransferRecord,
    transfer_from_row,
)
from app.transfers.tables import Transfer, TransferKind, TransferStatus


@dataclass(frozen=True)
class CsvBatch:
    """One batch of an export as CSV lines (UTF-8), how many, and where the next starts."""

    data: bytes
    count: int
    after: tuple[Any, int] | None  # None: no more rows


@dataclass(frozen=True)
class Owner:
    name: str
    email: str


class PiccoloExportRepository(PiccoloTransferRepository):
    def __init__(self) -> None:
        self._customers = PiccoloCustomerRepository()

    async def get_export(self, user_id: int, transfer_id: int) -> TransferRecord | None:
        return await self.get(user_id, transfer_id, TransferKind.export)

    async def list_exports(self, user_id: int, limit: int = 100) -> list[TransferRecord]:
        return await self.list_transfers(user_id, TransferKind.export, limit)

    async def count_rows(self, user_id: int, query: ListQuery, slugs: Sequence[str] | None) -> int:
        return await export_count(self._customers, user_id, query, slugs)

    async def rows(
        self,
        user_id: int,
        query: ListQuery,
        after: tuple[Any, int] | None,
        limit: int,
        slugs: Sequence[str] | None,
    ) -> ExportBatch:
        return await export_batch(self._customers, user_id, query, after, limit, slugs)

    async def csv_batch(
        self,
        user_id: int,
        query: ListQuery,
        after: tuple[Any, int] | None,
        limit: int,
        slugs: Sequence[str] | None,
    ) -> CsvBatch:
        """The rows of ``rows`` as CSV lines. On PostgreSQL the database writes them (the
        same bytes as ``csv_rows``): one aggregated value per batch, so no Python runs per
        row; at a million rows, per-row Python was most of an export's time."""
        engine = self.engine
        if not isinstance(engine, PostgresEngine) or engine.pool is None:
            batch = await self.rows(user_id, query, after, limit, slugs)
            return CsvBatch(csv_rows(batch.rows), batch.count, batch.after)
        select = export_select(self._customers, user_id, query, after, limit, slugs)
        sql, args = QueryString(
            f"SELECT convert_to(string_agg({CSV_LINE_SQL}, '' ORDER BY {select.order}), "  # noqa: S608
            "'UTF8') AS data, count(*) AS n, "
            f"(array_agg(sort_key ORDER BY {select.last_first}))[1] AS sort_key, "
            f"(array_agg(id ORDER BY {select.last_first}))[1] AS id "
            "FROM ({}) AS b",
            select.sql,
        ).compile_string("postgres")
        async with engine.pool.acquire() as connection:
            row = await connection.fetchrow(sql, *args)
        count = int(row["n"])
        return CsvBatch(
            data=row["data"] or b"",
            count=count,
            after=export_after(select.column, row["sort_key"], row["id"])
            if count == limit
            else None,
        )

    async def progress(self, user_id: int, transfer_id: int, processed: int) -> bool:
        """Record progress while the export runs; False once it is no longer running
        (cancelled meanwhile): one statement does both."""
        return await self.update(
            user_id,
            transfer_id,
            {"processed_rows": processed},
            only_if_status=[TransferStatus.running],
        )

    async def owner(self, user_id: int) -> Owner | None:
        row = await User.select(User.name, User.email).where(User.id == user_id).first()
        return Owner(name=row["name"], email=row["email"]) if row else None

    async def due_for_expiry(self, now: datetime, limit: int) -> list[TransferRecord]:
        """Completed exports whose file has outlived EXPORT_TTL_HOURS, any user's."""
        rows = await Transfer.raw(
            "{}",
            QueryString(
                f"SELECT {', '.join(TRANSFER_COLUMNS)} FROM transfers "  # noqa: S608
                "WHERE kind = {} AND status = {} AND expires_at <= {} ORDER BY id LIMIT {}",
                TransferKind.export.value,
                TransferStatus.completed.value,
                now,
                limit,
            ),
        )
        return [transfer_from_row(row) for row in rows]

    async def mark_expired(self, transfer_ids: Sequence[int]) -> int:
        """The files of these exports are deleted: one statement marks them all."""
        if not transfer_ids:
            return 0
        rows = await Transfer.raw(
            "{}",
            QueryString(
                "UPDATE transfers SET status = {}, file_key = NULL "  # noqa: S608
                "WHERE kind = {} AND status = {} AND id IN ("
                + ", ".join("{}" for _ in transfer_ids)
                + ") RETURNING id",
                TransferStatus.expired.value,
                TransferKind.export.value,
                TransferStatus.completed.value,
                *transfer_ids,
            ),
        )
        return len(rows)

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

from piccolo.querystring import QueryString

from app.accounts.tables import User
from app.customers.models import ListQuery
from app.customers.repository import (
    ExportBatch,
    PiccoloCustomerRepository,
    export_batch,
    export_count,
)
from app.transfers.repository import (
    TRANSFER_COLUMNS,
    PiccoloTransferRepository,
    TransferRecord,
    transfer_from_row,
)
from app.transfers.tables import Transfer, TransferKind, TransferStatus


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

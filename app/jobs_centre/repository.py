"""The jobs centre's reads: the user's imports and exports together, newest first.

Both kinds come from the ``transfers`` table in one query (no per-kind query, no
per-row query), in keyset pages by (created_at, id), read off the index
transfers (user_id, created_at). Every method takes the owning user_id first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from piccolo.querystring import QueryString

from app.transfers.repository import TRANSFER_COLUMNS, TransferRecord, transfer_from_row
from app.transfers.tables import Transfer

_SELECT = f"SELECT {', '.join(TRANSFER_COLUMNS)} FROM transfers"  # noqa: S608 - fixed names


class PiccoloJobsRepository:
    async def _raw(self, sql: QueryString) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await Transfer.raw("{}", sql)
        return rows

    async def page(
        self, user_id: int, before: tuple[datetime, int] | None, limit: int
    ) -> list[TransferRecord]:
        """Up to ``limit`` transfers of either kind, newest first, older than ``before``."""
        if before is None:
            sql = QueryString(
                _SELECT + " WHERE user_id = {} ORDER BY created_at DESC, id DESC LIMIT {}",
                user_id,
                limit,
            )
        else:
            created_at, transfer_id = before
            sql = QueryString(
                _SELECT + " WHERE user_id = {} AND (created_at < {} "
                "OR (created_at = {} AND id < {})) ORDER BY created_at DESC, id DESC LIMIT {}",
                user_id,
                created_at,
                created_at,
                transfer_id,
                limit,
            )
        return [transfer_from_row(row) for row in await self._raw(sql)]

    async def get(self, user_id: int, transfer_id: int) -> TransferRecord | None:
        rows = await self._raw(
            QueryString(_SELECT + " WHERE user_id = {} AND id = {}", user_id, transfer_id)
        )
        return transfer_from_row(rows[0]) if rows else None

"""Housekeeping jobs that run on a schedule."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from app.transfers.tables import Transfer, TransferStatus

logger = logging.getLogger(__name__)

PURGE_BATCH_SIZE = 500
# A queued or running transfer is still using its file, whatever its expiry says.
_IN_USE = (TransferStatus.queued.value, TransferStatus.running.value)


async def purge_expired_files(ctx: dict[str, Any], batch_size: int = PURGE_BATCH_SIZE) -> int:
    """Delete the stored files of expired transfers and mark them "expired"; return how many.

    Safe to run twice, or twice at once: deleting a missing object is a no-op and a
    purged row no longer matches. A file that fails to delete keeps its row as it is
    for the next run.
    """
    storage = ctx["storage"]
    now = datetime.now(UTC)
    purged = 0
    after_id = 0
    while True:
        rows = (
            await Transfer.select(Transfer.id, Transfer.file_key, Transfer.error_report_key)
            .where(
                (Transfer.id > after_id)
                & (Transfer.expires_at < now)
                & Transfer.status.not_in(list(_IN_USE))
                & (Transfer.file_key.is_not_null() | Transfer.error_report_key.is_not_null())
            )
            .order_by(Transfer.id)
            .limit(batch_size)
        )
        if not rows:
            return purged
        after_id = rows[-1]["id"]
        deleted = []
        for row in rows:
            try:
                for key in (row["file_key"], row["error_report_key"]):
                    if key:
                        await storage.delete(key)
            except Exception:
                logger.exception("could not delete the files of transfer %s", row["id"])
            else:
                deleted.append(row["id"])
        if deleted:
            await Transfer.update(
                {
                    Transfer.file_key: None,
                    Transfer.error_report_key: None,
                    Transfer.status: TransferStatus.expired.value,
                }
            ).where(Transfer.id.is_in(deleted))
            purged += len(deleted)
        if len(rows) < batch_size:
            return purged

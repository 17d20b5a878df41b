"""Housekeeping jobs that run on a schedule."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from app.transfers.tables import Transfer, TransferKind, TransferStatus

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


async def requeue_lost_transfers(ctx: dict[str, Any]) -> int:
    """Queue again the job of every queued or running import and export; return how many.

    A job can vanish while its transfer row still says queued or running: Redis restarted
    empty (it keeps no disk copy), or the web process that held an in-process job
    stopped. Enqueueing under the transfer's key is safe for the others: a job still
    queued or running under that key is not queued twice. An import picks up from its
    checkpoint, an export starts its file again.
    """
    from app.exports import service as exports
    from app.lib.jobs import SaqJobRunner
    from app.transfers import service as imports
    from jobs.registry import JOBS

    # What runs each kind of transfer, and its job's key: the services' own.
    kinds = {
        TransferKind.import_: (imports.IMPORT_JOB, imports.job_key),
        TransferKind.export: (exports.EXPORT_JOB, exports.job_key),
    }

    rows = await Transfer.select(Transfer.id, Transfer.user_id, Transfer.kind).where(
        Transfer.status.is_in(list(_IN_USE))
    )
    if not rows:
        return 0
    runner = ctx.get("jobs")
    own = None
    if runner is None:
        settings = ctx["settings"]
        if not settings.redis_url:
            return 0  # nothing to queue on
        runner = own = SaqJobRunner(settings.redis_url, settings.jobs_queue, JOBS)
        await own.start()
    try:
        for row in rows:
            name, key = kinds[row["kind"]]
            await runner.enqueue(
                name,
                key=key(row["id"]),
                user_id=row["user_id"],
                transfer_id=row["id"],
            )
    finally:
        if own is not None:
            await own.stop()
    logger.info("made sure %d queued or running transfers have their job", len(rows))
    return len(rows)

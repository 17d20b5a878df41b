"""The export jobs: thin. They load nothing but ids and call the exporter or the service.

- ``export_customers``: writes the file; on its last attempt a failure is written to the
  transfer row in words (the detail goes to the log with the job id), so no export stays
  "running". When it completes it queues ``notify_export_ready``.
- ``notify_export_ready``: the mail with a link to the app's download route.
- ``expire_exports``: scheduled, deletes the files of exports past EXPORT_TTL_HOURS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any, cast

from app.exports.exporter import Exporter
from app.exports.mails import ExportMails
from app.exports.repository import PiccoloExportRepository
from app.exports.service import NOTIFY_JOB, ExportService, download_path
from app.lib.jobs import JobRunner, JobStatus, SaqJobRunner, heartbeat, was_aborted
from app.settings import Settings
from app.transfers.tables import TransferStatus

logger = logging.getLogger("crm.exports")

EXPORT_RETRIES = 3
HEARTBEAT_EVERY = 10.0  # seconds between heartbeats while batches flow
FAILED_MESSAGE = (
    "The export stopped because of an error on our side, three times in a row. No file "
    "was kept. Try again in a few minutes with the Retry button; if it fails again, "
    "contact support with the export number."
)

ABORTED_MESSAGE = "The export was stopped by an administrator. No file was kept."


async def export_customers(ctx: dict[str, Any], user_id: int, transfer_id: int) -> str:
    settings: Settings = ctx["settings"]
    last_beat = time.monotonic()

    async def beat() -> None:
        nonlocal last_beat
        if time.monotonic() - last_beat >= HEARTBEAT_EVERY:
            last_beat = time.monotonic()
            await heartbeat(ctx)

    jobs, own = await _runner(ctx, settings)
    exporter = Exporter(ctx["storage"], settings, jobs=jobs)
    try:
        return await exporter.run(user_id, transfer_id, heartbeat=beat)
    except asyncio.CancelledError:
        if await was_aborted(ctx):
            await PiccoloExportRepository().update(
                user_id,
                transfer_id,
                {
                    "status": TransferStatus.cancelled,
                    "finished_at": datetime.now(UTC),
                    "error_message": ABORTED_MESSAGE,
                },
                only_if_status=[TransferStatus.queued, TransferStatus.running],
            )
        raise
    except Exception:
        attempt = int(ctx.get("attempt") or 1)
        logger.exception(
            "export %s failed (job %s, attempt %d of %d)",
            transfer_id,
            ctx.get("job_id"),
            attempt,
            EXPORT_RETRIES,
        )
        if attempt >= EXPORT_RETRIES:
            await PiccoloExportRepository().update(
                user_id,
                transfer_id,
                {
                    "status": TransferStatus.failed,
                    "finished_at": datetime.now(UTC),
                    "error_message": FAILED_MESSAGE,
                },
                only_if_status=[TransferStatus.queued, TransferStatus.running],
            )
        raise
    finally:
        if own and jobs is not None:
            await jobs.stop()


async def _runner(ctx: dict[str, Any], settings: Settings) -> tuple[JobRunner | None, bool]:
    """What queues the notification: the process's own runner when the context has one,
    a SAQ connection of our own in a worker; None (send it inline) otherwise."""
    runner = ctx.get("jobs")
    if runner is not None:
        return runner, False
    if settings.redis_url:
        from jobs.registry import NOTIFY_EXPORT_READY

        saq = SaqJobRunner(settings.redis_url, settings.jobs_queue, [NOTIFY_EXPORT_READY])
        await saq.start()
        return saq, True
    return cast(JobRunner, _Inline(ctx)), False


class _Inline:
    """The embedded runner does not hand jobs a way to queue more: send the mail at once."""

    def __init__(self, ctx: dict[str, Any]) -> None:
        self._ctx = ctx

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def enqueue(self, name: str, *, key: str | None = None, **kwargs: Any) -> str:
        assert name == NOTIFY_JOB
        try:
            await notify_export_ready(self._ctx, **kwargs)
        except Exception:
            logger.exception("could not send the export-ready mail for %s", kwargs)
        return key or name

    async def status(self, job_id: str) -> JobStatus | None:
        return None

    async def check(self) -> None: ...


async def notify_export_ready(ctx: dict[str, Any], user_id: int, transfer_id: int) -> str:
    """Mail the owner a link to the app's download route (it makes a fresh 15-minute
    link when clicked, where a presigned URL in a mail would be dead by then)."""
    settings: Settings = ctx["settings"]
    repository = PiccoloExportRepository()
    transfer = await repository.get_export(user_id, transfer_id)
    owner = await repository.owner(user_id)
    if transfer is None or owner is None or transfer.status != TransferStatus.completed:
        return "skipped"
    expires = transfer.expires_at.strftime("%Y-%m-%d %H:%M") if transfer.expires_at else "-"
    await ExportMails(ctx["mail"], settings.mail_from).ready(
        to=owner.email,
        name=owner.name,
        filename=transfer.original_filename,
        rows=transfer.processed_rows,
        url=settings.app_url.rstrip("/") + download_path(transfer_id),
        expires=expires,
    )
    return "sent"


async def expire_exports(ctx: dict[str, Any]) -> int:
    service = ExportService(ctx["storage"], None, ctx["settings"])
    expired = await service.expire_due(datetime.now(UTC))
    if expired:
        logger.info("expired %d export(s)", expired)
    return expired

"""The import job: thin. Loads nothing but ids, runs the importer, which resumes from the
transfer's checkpoint when this is a retry. On the last attempt a failure is written to
the transfer row (status failed, a message in words), so no import stays "running"."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from litestar.stores.base import Store
from litestar.stores.redis import RedisStore
from redis.exceptions import RedisError

from app.customers.cached import CachedCustomerRepository
from app.customers.repository import PiccoloCustomerRepository
from app.lib.jobs import heartbeat, was_aborted
from app.lib.stores import build_stores
from app.settings import Settings
from app.transfers.importer import Importer
from app.transfers.repository import PiccoloTransferRepository
from app.transfers.tables import TransferStatus

logger = logging.getLogger("crm.imports")

IMPORT_RETRIES = 5
FAILED_MESSAGE = (
    "The import stopped because of an error on our side after several attempts. The rows "
    "imported before it stay; start a new import for the rest, or undo this one."
)

ABORTED_MESSAGE = (
    "The import was stopped by an administrator. The rows imported before it stay; undo "
    "the import to take them out, or start a new import for the rest."
)


async def import_customers(ctx: dict[str, Any], user_id: int, transfer_id: int) -> str:
    settings: Settings = ctx["settings"]

    async def beat() -> None:
        await heartbeat(ctx)

    store, own_store = _cache_store(ctx, settings)
    invalidate = None
    if store is not None:
        bump = CachedCustomerRepository(PiccoloCustomerRepository(), store)._bump

        async def invalidate(user_id: int) -> None:
            # The rows are committed; a Redis blip must not fail the import over the
            # cache. (A Redis that restarted empty holds no stale page anyway.)
            try:
                await bump(user_id)
            except RedisError as error:
                logger.warning(
                    "import %s: the customers cache was not refreshed: %s", transfer_id, error
                )

    importer = Importer(
        ctx["storage"], chunk_rows=settings.import_chunk_rows, invalidate=invalidate
    )
    try:
        return await importer.run(user_id, transfer_id, heartbeat=beat)
    except asyncio.CancelledError:
        if await was_aborted(ctx):
            await PiccoloTransferRepository().update(
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
        if int(ctx.get("attempt") or 1) >= IMPORT_RETRIES:
            logger.exception("import %s failed for good", transfer_id)
            await PiccoloTransferRepository().update(
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
        if own_store and isinstance(store, RedisStore):
            await store._redis.aclose()


def _cache_store(ctx: dict[str, Any], settings: Settings) -> tuple[Store | None, bool]:
    """The customers cache the web processes read, so an import's rows show at once: the
    app's own (in-process runner), else the shared Redis one (a SAQ worker); none when
    the cache is off or lives in another process's memory."""
    if not settings.cache_enabled:
        return None, False
    stores = ctx.get("stores")
    if stores is not None:
        return stores.get("cache"), False
    if settings.redis_url:
        return build_stores(settings)["cache"], True
    return None, False

"""The audit trail's scheduled jobs: archive old entries, apply retention to archives.

Both are safe to run twice, or twice at once (see app/audit/archive.py), and send
heartbeats while they work, so a big first run is not mistaken for a dead worker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.audit.service import AuditService
from app.lib.jobs import heartbeat
from app.settings import Settings


def _service(ctx: dict[str, Any]) -> AuditService:
    return AuditService(storage=ctx["storage"])


def _now(now: str | None) -> datetime | None:
    return datetime.fromisoformat(now) if now else None


async def archive_audit_logs(ctx: dict[str, Any], now: str | None = None) -> dict[str, int]:
    """Move entries older than AUDIT_ARCHIVE_AFTER_DAYS to storage, per user and day.
    ``now`` (ISO 8601) stands in for the current time (tests, catching up)."""
    settings: Settings = ctx["settings"]

    async def beat() -> None:
        await heartbeat(ctx)

    done = await _service(ctx).archive(
        settings.audit_archive_after_days, now=_now(now), heartbeat=beat
    )
    return {"archives": done.archives, "entries": done.entries}


async def apply_audit_retention(ctx: dict[str, Any], now: str | None = None) -> dict[str, int]:
    """Delete archives older than AUDIT_RETENTION_DAYS (0: never), recording each deletion."""
    settings: Settings = ctx["settings"]

    async def beat() -> None:
        await heartbeat(ctx)

    done = await _service(ctx).apply_retention(
        settings.audit_retention_days, now=_now(now), heartbeat=beat
    )
    return {"archives": done.archives, "entries": done.entries}

"""The export jobs as registered: sized for long runs, retried with backoff, failed in
words after the last attempt; the expiry schedule; 15-minute download links."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from app.exports.repository import PiccoloExportRepository
from app.exports.service import LINK_LIFETIME, ExportService
from app.lib.jobs import InProcessJobRunner
from app.lib.storage import LocalStorage, Storage, verify_download
from app.settings import Settings
from jobs.exports import FAILED_MESSAGE
from jobs.registry import EXPIRE_EXPORTS, EXPORT_CUSTOMERS, JOBS, NOTIFY_EXPORT_READY, SCHEDULED
from jobs.worker import build_job_context
from tests.exports.conftest import Run, seed
from tests.jobs.workers import RunnerUnderTest


def test_the_jobs_are_registered_for_long_runs_and_scheduled() -> None:
    assert {EXPORT_CUSTOMERS, NOTIFY_EXPORT_READY, EXPIRE_EXPORTS} <= set(JOBS)
    assert EXPORT_CUSTOMERS.retries == 3
    assert EXPORT_CUSTOMERS.retry_backoff
    assert EXPORT_CUSTOMERS.timeout >= 3600
    assert EXPORT_CUSTOMERS.heartbeat > 0
    schedules = {job.definition.name: job.cron for job in SCHEDULED}
    assert schedules["expire_exports"] == "*/15 * * * *"


async def _runner(settings: Settings, engine: Any, storage: Storage) -> InProcessJobRunner:
    context = await build_job_context(settings, engine=engine, storage=storage)
    definition = replace(EXPORT_CUSTOMERS, retry_delay=0.01, retry_backoff=0.05)
    runner = InProcessJobRunner([definition, NOTIFY_EXPORT_READY], context=context)
    await runner.start()
    return runner


async def test_three_failed_attempts_mark_the_export_failed_in_words(
    embedded: Settings,
    run: Run,
    user_id: int,
    engine: Any,
    storage: Storage,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await seed(user_id, [{"name": "Ana"}])
    transfer = await run.start()
    attempts: list[int] = []

    async def broken(self: Any, *args: Any) -> int:
        attempts.append(1)
        raise RuntimeError("connection to the database lost")

    monkeypatch.setattr(PiccoloExportRepository, "count_rows", broken)
    runner = await _runner(embedded, engine, storage)
    try:
        job = await runner.enqueue(
            "export_customers",
            key=f"export:{transfer.id}",
            user_id=user_id,
            transfer_id=transfer.id,
        )
        status = await RunnerUnderTest("in-process", runner, embedded).wait(job, timeout=30)
    finally:
        await runner.stop()
    assert status == "failed"
    assert len(attempts) == 3
    failed = await run.exports.get(user_id, transfer.id)
    assert failed.status == "failed"
    assert failed.error_message == FAILED_MESSAGE
    assert await storage.list("exports/") == []
    # The Retry button queues it again, from the start.
    monkeypatch.undo()
    again = await run.exports.retry(user_id, transfer.id)
    assert (again.status, again.error_message) == ("queued", None)


async def test_download_links_last_15_minutes_for_the_owner_only(
    run: Run, user_id: int, other_user_id: int, exports: ExportService, settings: Settings
) -> None:
    from app.exports.service import ExportNotFound, ExportUnavailable

    await seed(user_id, [{"name": "Ana"}])
    transfer = await run.start()
    with pytest.raises(ExportUnavailable, match="not finished"):
        await exports.download_url(user_id, transfer.id)
    done = await run.finish(transfer.id)
    with pytest.raises(ExportNotFound):
        await exports.download_url(other_user_id, done.id)
    url = await exports.download_url(user_id, done.id)
    params = parse_qs(urlsplit(url).query)
    if isinstance(exports.storage, LocalStorage):
        # The folder backend's signed app route: bound to key, expiry and file name.
        key = urlsplit(url).path.removeprefix("/files/")
        expires = int(params["expires"][0])
        assert abs(expires - (time.time() + LINK_LIFETIME.total_seconds())) < 5
        sig = params["sig"][0]
        name = params["filename"][0]
        assert name == done.original_filename
        assert verify_download(settings.secret_key, key, expires, sig, name)
        tampered = ("0" if sig[0] != "0" else "1") + sig[1:]
        assert not verify_download(settings.secret_key, key, expires, tampered, name)
        assert not verify_download(settings.secret_key, key, expires + 60, sig, name)
        assert not verify_download(
            settings.secret_key, key.replace(str(user_id), "9"), expires, sig, name
        )
        assert not verify_download(settings.secret_key, key, expires, sig, name, now=expires + 1)
    else:
        assert params["X-Amz-Expires"] == ["900"]
        assert done.original_filename in params["response-content-disposition"][0]
    # Expired: no link any more, in words.
    await exports.expire_due(done.expires_at)
    with pytest.raises(ExportUnavailable, match="expired") as raised:
        await exports.download_url(user_id, done.id)
    assert raised.value.expired

"""purge_expired_files on both profiles: SQLite + a folder, PostgreSQL + S3 (moto)."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.accounts.tables import User
from app.lib.jobs import SaqJobRunner
from app.settings import Settings
from app.transfers.tables import Transfer
from jobs.maintenance import purge_expired_files, requeue_lost_transfers
from jobs.registry import JOBS
from jobs.worker import build_job_context, close_job_context
from tests.fixtures.profiles import SECRET
from tests.fixtures.services import run_migrations, scratch_postgres
from tests.jobs.workers import RecordingJobs, RunnerUnderTest, running_worker, unique_queue

NOW = datetime.now(UTC)
PAST = NOW - timedelta(days=1)
FUTURE = NOW + timedelta(days=1)


@pytest.fixture(params=["embedded", "fullstack"])
def purge_settings(
    request: pytest.FixtureRequest, tmp_path: Path, embedded: Settings
) -> Iterator[Settings]:
    """A profile on a migrated database of this test's own (sync: the services use asyncio.run)."""
    if request.param == "embedded":
        yield embedded
        return
    server_url = request.getfixturevalue("postgres_server_url")
    s3_endpoint = request.getfixturevalue("s3_endpoint")
    # Its own database: the purge touches every user's rows, not only this test's.
    with scratch_postgres(server_url, "purge") as database_url:
        run_migrations(database_url)
        yield Settings(
            secret_key=SECRET,
            database_url=database_url,
            s3_endpoint=s3_endpoint,
            s3_access_key="testing",
            s3_secret_key="testing",
            s3_bucket=f"crm-{uuid.uuid4().hex[:12]}",
            s3_secure=False,
            storage_dir=str(tmp_path / "unused"),
        )


@pytest.fixture
async def ctx(purge_settings: Settings) -> AsyncIterator[dict[str, Any]]:
    context = await build_job_context(purge_settings)
    try:
        yield context
    finally:
        await close_job_context(context)


async def make_user() -> int:
    rows = await User.insert(
        User(name="Ada", email=f"ada-{uuid.uuid4().hex[:8]}@example.com", password_hash="x")
    )
    return int(rows[0]["id"])


async def make_transfer(ctx: dict[str, Any], user_id: int, **values: Any) -> int:
    for key in (values.get("file_key"), values.get("error_report_key")):
        if key and not key.startswith("missing/"):
            await ctx["storage"].put(key, io.BytesIO(b"name,email\n"), "text/csv")
    values.setdefault("kind", "export")
    values.setdefault("status", "completed")
    rows = await Transfer.insert(Transfer(user_id=user_id, **values))
    return int(rows[0]["id"])


async def stored_keys(ctx: dict[str, Any]) -> set[str]:
    return {info.key for info in await ctx["storage"].list("")}


async def transfer(transfer_id: int) -> dict[str, Any]:
    row = await Transfer.select().where(Transfer.id == transfer_id).first()
    assert row is not None
    return row


async def test_purge_deletes_expired_files_and_marks_the_rows(ctx: dict[str, Any]) -> None:
    user = await make_user()
    export = await make_transfer(
        ctx, user, file_key=f"exports/{user}/1/customers.csv", expires_at=PAST
    )
    imported = await make_transfer(
        ctx,
        user,
        kind="import",
        status="failed",
        file_key=f"imports/{user}/2/source.csv",
        error_report_key=f"imports/{user}/2/errors.csv",
        expires_at=PAST,
    )
    already_gone = await make_transfer(
        ctx, user, file_key=f"missing/{user}/3/customers.csv", expires_at=PAST
    )
    fresh = await make_transfer(
        ctx, user, file_key=f"exports/{user}/4/customers.csv", expires_at=FUTURE
    )
    running = await make_transfer(
        ctx,
        user,
        kind="import",
        status="running",
        file_key=f"imports/{user}/5/source.csv",
        expires_at=PAST,
    )
    purged_before = await make_transfer(ctx, user, status="expired", expires_at=PAST)

    assert await purge_expired_files(ctx) == 3

    for transfer_id in (export, imported, already_gone):
        row = await transfer(transfer_id)
        assert (row["status"], row["file_key"], row["error_report_key"]) == (
            "expired",
            None,
            None,
        )
    assert (await transfer(fresh))["status"] == "completed"
    assert (await transfer(running))["status"] == "running"
    assert (await transfer(purged_before))["status"] == "expired"
    assert await stored_keys(ctx) == {
        f"exports/{user}/4/customers.csv",
        f"imports/{user}/5/source.csv",
    }

    # A second run (or a retry after a crash) finds nothing left to do.
    assert await purge_expired_files(ctx) == 0


async def test_purge_works_through_every_batch(ctx: dict[str, Any]) -> None:
    user = await make_user()
    ids = [
        await make_transfer(ctx, user, file_key=f"exports/{user}/{n}/c.csv", expires_at=PAST)
        for n in range(5)
    ]

    assert await purge_expired_files(ctx, batch_size=2) == 5

    assert {(await transfer(i))["status"] for i in ids} == {"expired"}
    assert await stored_keys(ctx) == set()


async def test_the_real_worker_runs_the_registered_purge(
    redis_url: str, embedded: Settings, tmp_path: Path
) -> None:
    """``saq jobs.worker.settings``, as deployed, runs the purge against the same database."""
    settings = replace(embedded, redis_url=redis_url, jobs_queue=unique_queue())
    context = await build_job_context(settings)
    try:
        user = await make_user()
        expired = await make_transfer(
            context, user, file_key=f"exports/{user}/1/customers.csv", expires_at=PAST
        )
        runner = SaqJobRunner(redis_url, settings.jobs_queue, JOBS)
        with running_worker("jobs.worker.settings", settings, tmp_path) as worker:
            await runner.start()
            try:
                job_id = await runner.enqueue("purge_expired_files", key="purge-now")
                under_test = RunnerUnderTest("saq", runner, settings, worker)
                assert await under_test.wait(job_id) == "complete"
            finally:
                await runner.stop()
        assert (await transfer(expired))["status"] == "expired"
        assert await stored_keys(context) == set()
    finally:
        await close_job_context(context)


async def test_lost_transfers_get_their_job_back(ctx: dict[str, Any]) -> None:
    user = await make_user()
    queued_import = await make_transfer(ctx, user, kind="import", status="queued")
    running_export = await make_transfer(ctx, user, kind="export", status="running")
    for status in ("pending", "completed", "failed", "cancelled", "expired"):
        await make_transfer(ctx, user, kind="import", status=status)
    runner = RecordingJobs()

    assert await requeue_lost_transfers({**ctx, "jobs": runner}) == 2
    assert sorted(runner.enqueued) == sorted(
        [
            (
                "import_customers",
                f"import:{queued_import}",
                {"user_id": user, "transfer_id": queued_import},
            ),
            (
                "export_customers",
                f"export:{running_export}",
                {"user_id": user, "transfer_id": running_export},
            ),
        ]
    )

"""The archive and retention jobs as deployed: registered, scheduled daily, run by the
in-process runner (embedded) or by a real ``saq jobs.worker.settings`` process against
PostgreSQL and moto's S3 server (full stack)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from piccolo.engine.base import Engine

from app.audit.service import AuditService
from app.audit.tables import AuditArchive, AuditLog
from app.customers.models import CustomerInput
from app.customers.service import CustomerService
from app.lib.jobs import InProcessJobRunner, SaqJobRunner
from app.lib.storage import Storage
from app.settings import Settings
from jobs.registry import JOBS, SCHEDULED
from jobs.worker import build_job_context
from tests.audit.conftest import START, Clock
from tests.fixtures.services import ROOT
from tests.jobs.workers import (
    RunnerUnderTest,
    WorkerProcess,
    _drop_queue_keys,
    _wait_for_worker,
    unique_queue,
)


def test_both_jobs_are_registered_and_run_daily() -> None:
    definitions = {definition.name: definition for definition in JOBS}
    for name in ("archive_audit_logs", "apply_audit_retention"):
        definition = definitions[name]
        assert definition.timeout >= 3 * 3600
        assert 0 < definition.heartbeat <= 600
        assert definition.retries >= 2
    daily = {job.definition.name: job.cron for job in SCHEDULED}
    assert daily["archive_audit_logs"].endswith("* * *")
    assert daily["apply_audit_retention"].endswith("* * *")


@contextlib.contextmanager
def saq_worker(settings: Settings, home: Path) -> Iterator[WorkerProcess]:
    """``saq jobs.worker.settings`` with the profile's database, Redis and S3 bucket."""
    assert settings.redis_url
    assert settings.s3_endpoint
    env = {key: value for key, value in os.environ.items() if not key.startswith("S3_")}
    env |= {
        "REDIS_URL": settings.redis_url,
        "JOBS_QUEUE": settings.jobs_queue,
        "SECRET_KEY": settings.secret_key,
        "DATABASE_URL": settings.database_url,
        "MAIL_URL": settings.mail_url,
        "S3_ENDPOINT": settings.s3_endpoint,
        "S3_ACCESS_KEY": settings.s3_access_key or "",
        "S3_SECRET_KEY": settings.s3_secret_key or "",
        "S3_BUCKET": settings.s3_bucket,
        "S3_SECURE": "false",
        "AUDIT_ARCHIVE_AFTER_DAYS": str(settings.audit_archive_after_days),
        "AUDIT_RETENTION_DAYS": str(settings.audit_retention_days),
    }
    log = home / "worker.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "saq", "jobs.worker.settings", "--verbose"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess(process=process, queue=settings.jobs_queue, log=log, settings=settings)
    try:
        _wait_for_worker(worker, settings.redis_url)
        yield worker
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        _drop_queue_keys(settings.redis_url, settings.jobs_queue)


async def test_the_runner_archives_then_applies_retention(
    settings: Settings,
    engine: Engine,
    storage: Storage,
    customers: CustomerService,
    audit: AuditService,
    user_id: int,
    clock: Clock,
    tmp_path: Path,
) -> None:
    ana = await customers.create(user_id, CustomerInput(name="Ana", email="ana@x.test"))
    clock.advance(days=1)
    await customers.update(user_id, ana.slug, {"notes": "a day later"})
    before = (await audit.trail(user_id)).entries
    archive_now = (START + timedelta(days=91)).isoformat()  # the first day is old enough
    retention_now = (START + timedelta(days=3000)).isoformat()
    settings = replace(settings, audit_retention_days=2555, jobs_queue=unique_queue())

    if settings.redis_url:
        runner = SaqJobRunner(settings.redis_url, settings.jobs_queue, JOBS)
        with saq_worker(settings, tmp_path) as worker:
            await runner.start()
            try:
                under_test = RunnerUnderTest("saq", runner, settings, worker)
                job = await runner.enqueue("archive_audit_logs", now=archive_now)
                assert await under_test.wait(job, timeout=60) == "complete", worker.output()
                after_archive = (await audit.trail(user_id)).entries
                rows = await AuditArchive.select()
                job = await runner.enqueue("apply_audit_retention", now=retention_now)
                assert await under_test.wait(job, timeout=60) == "complete", worker.output()
            finally:
                await runner.stop()
    else:
        context = await build_job_context(settings, engine=engine, storage=storage)
        in_process = InProcessJobRunner(JOBS, context=context)
        await in_process.start()
        try:
            under_test = RunnerUnderTest("in-process", in_process, settings)
            job = await in_process.enqueue("archive_audit_logs", now=archive_now)
            assert await under_test.wait(job) == "complete"
            after_archive = (await audit.trail(user_id)).entries
            rows = await AuditArchive.select()
            job = await in_process.enqueue("apply_audit_retention", now=retention_now)
            assert await under_test.wait(job) == "complete"
        finally:
            await in_process.stop()

    # The archive run: the first day in storage, read back through the trail.
    assert len(rows) == 1
    assert [(e.id, e.hash) for e in after_archive] == [(e.id, e.hash) for e in before]
    assert [e.archived for e in after_archive] == [False, True]
    # The retention run: the archive is gone, and its deletion is in the trail.
    assert await AuditLog.count().where(AuditLog.user_id == user_id) == 2
    assert await AuditArchive.count() == 0
    assert await storage.list("audit/") == []
    latest = (await audit.trail(user_id)).entries
    assert [e.event for e in latest] == ["archive_deleted", "updated"]
    assert (await audit.verify_chain(user_id)).intact

"""The archive and retention jobs as deployed: registered, scheduled daily, run by the
in-process runner (embedded) or by a real ``saq jobs.worker.settings`` process against
PostgreSQL and moto's S3 server (full stack)."""

from __future__ import annotations

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
from tests.jobs.workers import RunnerUnderTest, deployed_worker, unique_queue


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
        with deployed_worker(settings, tmp_path) as worker:
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

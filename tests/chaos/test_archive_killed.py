"""A SAQ worker killed with SIGKILL in the middle of the audit archive run, once the first
archive objects exist, at a random point (mid-upload, mid-check or mid-commit). The next
daily run (a new enqueue, on a new worker) finishes the work. At the end every entry is
in exactly one place (an archive or the database), each object in storage has exactly one
audit_archives row with its sha256, and the user's hash chain verifies."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from piccolo.engine.base import Engine

from app.audit.archive import day_start
from app.audit.service import AuditService
from app.audit.tables import AuditArchive
from app.lib.jobs import SaqJobRunner
from app.lib.storage import Storage
from app.settings import Settings
from jobs.registry import JOBS
from tests.chaos.conftest import FULL_STACK_ONLY
from tests.chaos.helpers import check_archives, database_ids, seed_entries
from tests.jobs.workers import RunnerUnderTest, deployed_worker

pytestmark = FULL_STACK_ONLY

DAYS = 40
PER_DAY = 2_500  # 100,000 entries, one archive object a day
TIMEOUT = 150.0  # seconds for both runs


@pytest.fixture
async def runner(settings: Settings) -> AsyncIterator[SaqJobRunner]:
    assert settings.redis_url
    runner = SaqJobRunner(settings.redis_url, settings.jobs_queue, JOBS)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


async def archived_objects(user_id: int) -> int:
    return int(await AuditArchive.count().where(AuditArchive.user_id == user_id))


async def test_the_archive_survives_its_worker_being_killed(
    settings: Settings,
    engine: Engine,
    make_user: Callable[..., Any],
    storage: Storage,
    runner: SaqJobRunner,
    tmp_path: Path,
) -> None:
    rng = random.Random()
    user_id = int(await make_user("Archivist"))
    # Whole days well past AUDIT_ARCHIVE_AFTER_DAYS (the worker's default, 90).
    first_day = day_start(datetime.now(UTC)) - timedelta(days=settings.audit_archive_after_days)
    first_day -= timedelta(days=DAYS + 30)
    seeded = await seed_entries(settings.database_url, user_id, first_day, DAYS, PER_DAY)
    assert seeded == DAYS * PER_DAY
    ids = sorted(await database_ids(user_id))
    assert len(ids) == seeded
    before = await AuditService(storage=storage).verify_chain(user_id)
    assert before.intact, before
    assert before.entries == seeded, before

    deadline = time.monotonic() + TIMEOUT
    strike_after = rng.randint(1, 5)  # archive objects recorded before the kill
    (tmp_path / "first").mkdir()
    with deployed_worker(settings, tmp_path / "first", keep_queue=True) as worker:
        job = await runner.enqueue("archive_audit_logs")
        while await archived_objects(user_id) < strike_after:
            worker.assert_alive()
            assert await runner.status(job) not in ("complete", "failed"), worker.output()
            assert time.monotonic() < deadline, "the archive run did not start"
            await asyncio.sleep(0.02)
        # Somewhere inside the next object: its upload, its read-back or its commit.
        await asyncio.sleep(rng.uniform(0.0, 0.4))
        worker.process.kill()  # SIGKILL: no clean-up, no goodbye
        worker.process.wait(timeout=10)
    killed_at = await archived_objects(user_id)
    stored = len(await storage.list(f"audit/{user_id}/"))
    print(
        f"killed the worker after {killed_at} archive objects of {DAYS} were recorded; "
        f"{stored - killed_at} object(s) in storage without a row (the next run rewrites them)"
    )
    assert killed_at < DAYS, "the run ended before the kill: make it longer"

    # What the killed run left: every object recorded so far is whole and checks out.
    (tmp_path / "second").mkdir()
    with deployed_worker(settings, tmp_path / "second") as worker:
        # The next daily run: a job of its own (the killed one stays "active" until SAQ's
        # sweep sees its heartbeat go stale, minutes later).
        again = await runner.enqueue("archive_audit_logs")
        under_test = RunnerUnderTest("saq", runner, settings, worker)
        status = await under_test.wait(again, timeout=max(deadline - time.monotonic(), 10.0))
        assert status == "complete", worker.output()

    archived = await check_archives(storage, user_id)
    remaining = await database_ids(user_id)
    assert await archived_objects(user_id) == DAYS
    assert remaining == [], "whole days older than the cutoff stayed in the database"
    everywhere = archived + remaining
    assert len(everywhere) == len(set(everywhere)), "an entry is in two places"
    assert sorted(everywhere) == ids, "an entry is missing"
    report = await AuditService(storage=storage).verify_chain(user_id)
    assert report.intact, report
    assert (report.entries, report.archives) == (seeded, DAYS), report

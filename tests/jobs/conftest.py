"""Both job runners under test: in-process, and SAQ with a real ``saq`` worker process."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from app.lib.jobs import InProcessJobRunner, SaqJobRunner
from app.settings import Settings
from jobs.worker import build_job_context, close_job_context
from tests.fixtures.profiles import SECRET
from tests.jobs.sample_jobs import SAMPLE_JOBS, SAMPLE_SCHEDULED
from tests.jobs.workers import RunnerUnderTest, WorkerProcess, running_worker, unique_queue


@pytest.fixture(scope="module")
def saq_worker(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """``saq tests.jobs.worker_settings.settings`` on a queue of this module's own."""
    home = tmp_path_factory.mktemp("saq-worker")
    settings = Settings(
        secret_key=SECRET,
        database_url=f"sqlite:///{home / 'worker.sqlite3'}",
        redis_url=redis_url,
        jobs_queue=unique_queue(),
        storage_dir=str(home / "storage"),
        mail_url=f"file://{home / 'mail'}",
    )
    with running_worker("tests.jobs.worker_settings.settings", settings, home) as worker:
        yield worker


@pytest.fixture(params=["in-process", "saq"])
async def runner(
    request: pytest.FixtureRequest, embedded: Settings
) -> AsyncIterator[RunnerUnderTest]:
    if request.param == "in-process":
        context = await build_job_context(embedded)
        in_process = InProcessJobRunner(SAMPLE_JOBS, SAMPLE_SCHEDULED, context)
        await in_process.start()
        try:
            yield RunnerUnderTest("in-process", in_process, embedded)
        finally:
            await in_process.stop()
            await close_job_context(context)
        return
    worker: WorkerProcess = request.getfixturevalue("saq_worker")
    assert worker.settings.redis_url
    saq = SaqJobRunner(worker.settings.redis_url, worker.queue, SAMPLE_JOBS)
    await saq.start()
    try:
        yield RunnerUnderTest("saq", saq, worker.settings, worker)
    finally:
        with contextlib.suppress(Exception):
            await saq.stop()


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """A file the sample jobs append to; each line is one run."""
    return tmp_path / f"marker-{uuid.uuid4().hex[:8]}.log"

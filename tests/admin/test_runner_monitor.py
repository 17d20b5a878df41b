"""What the queue monitor reads and does, on both runners: the in-process runner and SAQ
with a real worker process. info() lists queued, active and failed jobs with their
attempts, times and errors; retry() runs a failed job again; abort() stops a queued or
active one; anything else is refused in words."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from app.lib.jobs import JobActionRefused, JobNotFoundError
from tests.jobs.sample_jobs import read_lines
from tests.jobs.workers import RunnerUnderTest


async def wait_for_lines(path: Path, count: int, timeout: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(read_lines(path)) >= count:
            return read_lines(path)
        await asyncio.sleep(0.05)
    pytest.fail(f"{path} has {read_lines(path) if path.exists() else []}, not {count} lines")


async def test_a_failed_job_is_listed_with_its_error_and_runs_again_on_retry(
    runner: RunnerUnderTest, marker: Path
) -> None:
    job_id = await runner.runner.enqueue("always_fail", path=str(marker))
    assert await runner.wait(job_id) == "failed"

    info = await runner.runner.info()
    (failed,) = [job for job in info.failed if job.id == job_id]
    assert failed.function == "always_fail"
    assert (failed.attempts, failed.retries) == (2, 2)
    assert "this job always fails" in (failed.error or "")
    assert failed.enqueued_at is not None
    assert failed.finished_at is not None
    assert info.counts["failed"] >= 1
    assert job_id not in {job.id for job in info.queued + info.active}
    assert info.workers, "no worker is listed"
    assert all(worker.last_heartbeat is not None for worker in info.workers)

    again = await runner.runner.retry(job_id)
    assert again.id == job_id
    assert again.status in ("queued", "active", "failed")
    assert await runner.wait(job_id, "failed") == "failed"
    # Both attempts again: the retry got the job's full number of attempts.
    assert await wait_for_lines(marker, 4) == ["1", "2", "1", "2"]


async def test_a_queued_or_active_job_is_listed_and_aborted(
    runner: RunnerUnderTest, marker: Path
) -> None:
    job_id = await runner.runner.enqueue("record", path=str(marker), delay=20.0)
    await runner.wait(job_id, "active")
    info = await runner.runner.info()
    (active,) = [job for job in info.active if job.id == job_id]
    assert active.function == "record"
    assert active.started_at is not None
    assert info.counts["active"] >= 1

    await runner.runner.abort(job_id)
    assert await runner.wait(job_id, "aborted", timeout=10) == "aborted"
    await asyncio.sleep(0.2)
    assert not marker.exists()  # it never got to write its line

    with pytest.raises(JobActionRefused, match="only queued or active jobs can be aborted"):
        await runner.runner.abort(job_id)
    with pytest.raises(JobActionRefused, match="only failed jobs can be retried"):
        await runner.runner.retry(job_id)


async def test_an_unknown_job_is_not_found(runner: RunnerUnderTest) -> None:
    with pytest.raises(JobNotFoundError):
        await runner.runner.retry("no-such-job")
    with pytest.raises(JobNotFoundError):
        await runner.runner.abort("no-such-job")

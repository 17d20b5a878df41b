"""What only the in-process runner has to show: graceful shutdown and its bound."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.lib.jobs import InProcessJobRunner, JobDefinition, retry_delay
from tests.jobs.sample_jobs import RECORD, SAMPLE_JOBS, read_lines


async def test_stop_waits_for_a_job_still_running(marker: Path) -> None:
    runner = InProcessJobRunner(SAMPLE_JOBS, context={})
    await runner.start()
    job_id = await runner.enqueue("record", path=str(marker), delay=0.5)

    await runner.stop()

    assert await runner.status(job_id) == "complete"
    assert read_lines(marker) == [f"{job_id} 1"]


async def test_stop_waits_for_queued_jobs_too(marker: Path) -> None:
    runner = InProcessJobRunner(SAMPLE_JOBS, context={}, concurrency=1)
    await runner.start()
    ids = [await runner.enqueue("record", path=str(marker), delay=0.2) for _ in range(3)]
    assert await runner.status(ids[-1]) == "queued"

    await runner.stop()

    assert [await runner.status(job_id) for job_id in ids] == ["complete"] * 3
    assert len(read_lines(marker)) == 3


async def test_stop_gives_up_on_a_job_after_its_bound(marker: Path) -> None:
    runner = InProcessJobRunner(SAMPLE_JOBS, context={}, shutdown_timeout=0.2)
    await runner.start()
    job_id = await runner.enqueue("record", path=str(marker), delay=30)
    await asyncio.sleep(0.05)

    await runner.stop()

    assert await runner.status(job_id) == "aborted"
    assert read_lines(marker) == []


async def test_a_stopped_runner_takes_no_new_jobs(marker: Path) -> None:
    runner = InProcessJobRunner(SAMPLE_JOBS, context={})
    await runner.start()
    await runner.stop()

    with pytest.raises(RuntimeError):
        await runner.enqueue("record", path=str(marker))
    with pytest.raises(RuntimeError):
        await runner.check()


async def test_kwargs_must_survive_json_as_they_would_through_saq(marker: Path) -> None:
    runner = InProcessJobRunner(SAMPLE_JOBS, context={})
    with pytest.raises(TypeError):
        await runner.enqueue("record", path=marker)  # a Path, not an id or a string
    await runner.stop()


async def test_the_job_gets_a_copy_of_the_context() -> None:
    seen: list[dict] = []

    async def spoil(ctx: dict) -> None:
        seen.append(dict(ctx))
        ctx["shared"] = "spoiled"

    runner = InProcessJobRunner([JobDefinition("spoil", spoil)], context={"shared": "clean"})
    first = await runner.enqueue("spoil")
    second = await runner.enqueue("spoil")
    await runner.stop()

    # Besides the shared context: its own id and attempt, and the runner (so a job can
    # queue another one, as a SAQ job does through its queue).
    assert seen == [
        {"shared": "clean", "jobs": runner, "job_id": first, "attempt": 1},
        {"shared": "clean", "jobs": runner, "job_id": second, "attempt": 1},
    ]


def test_retry_delays_double_and_respect_a_cap() -> None:
    doubling = JobDefinition("x", RECORD.function, retry_delay=1.0, retry_backoff=True)
    capped = JobDefinition("x", RECORD.function, retry_delay=1.0, retry_backoff=3.0)
    flat = JobDefinition("x", RECORD.function, retry_delay=2.0, retry_backoff=False)

    assert [retry_delay(doubling, n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert [retry_delay(capped, n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 3.0, 3.0]
    assert [retry_delay(flat, n) for n in (1, 2, 3)] == [2.0, 2.0, 2.0]

"""The JobRunner contract, held by both runners: in-process and SAQ with a real worker."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from app.lib.jobs import UnknownJobError
from tests.jobs.sample_jobs import read_lines, tick_path
from tests.jobs.workers import RunnerUnderTest


async def test_an_enqueued_job_runs_once(runner: RunnerUnderTest, marker: Path) -> None:
    job_id = await runner.runner.enqueue("record", path=str(marker))

    assert await runner.wait(job_id) == "complete"
    await asyncio.sleep(0.3)  # room for a second run, were there one
    assert read_lines(marker) == [f"{job_id} 1"]


async def test_a_duplicate_key_is_refused_while_queued_or_running(
    runner: RunnerUnderTest, marker: Path
) -> None:
    key = f"transfer-{uuid.uuid4().hex[:8]}"
    first = await runner.runner.enqueue("record", key=key, path=str(marker), delay=1.0)
    assert first == key
    # Still queued (or just picked up): refused.
    assert await runner.runner.enqueue("record", key=key, path=str(marker)) == key
    await runner.wait(key, "active")
    assert await runner.runner.enqueue("record", key=key, path=str(marker)) == key

    assert await runner.wait(key) == "complete"
    await asyncio.sleep(0.3)
    assert read_lines(marker) == [f"{key} 1"]

    # Once finished, the same key may run again (the next import of the same file).
    await runner.runner.enqueue("record", key=key, path=str(marker))
    assert await runner.wait(key) == "complete"
    assert len(read_lines(marker)) == 2


async def test_a_failing_job_is_retried_then_failed(runner: RunnerUnderTest, marker: Path) -> None:
    job_id = await runner.runner.enqueue("always_fail", path=str(marker))

    assert await runner.wait(job_id) == "failed"
    await asyncio.sleep(0.3)
    # retries=2: two attempts in all, numbered by the runner.
    assert read_lines(marker) == ["1", "2"]


async def test_a_job_past_its_timeout_fails(runner: RunnerUnderTest, marker: Path) -> None:
    started = time.monotonic()
    job_id = await runner.runner.enqueue("overrun", path=str(marker))

    assert await runner.wait(job_id, timeout=15) == "failed"
    assert time.monotonic() - started < 10
    assert read_lines(marker) == ["1"]


async def test_jobs_get_the_same_context_from_both_runners(
    runner: RunnerUnderTest, marker: Path
) -> None:
    job_id = await runner.runner.enqueue("context_keys", path=str(marker))

    assert await runner.wait(job_id) == "complete"
    keys = set(read_lines(marker)[0].split())
    assert {"settings", "engine", "storage", "mail", "job_id", "attempt"} <= keys


async def test_a_long_job_can_send_heartbeats(runner: RunnerUnderTest, marker: Path) -> None:
    job_id = await runner.runner.enqueue("beating", path=str(marker))

    assert await runner.wait(job_id) == "complete"
    assert read_lines(marker) == ["alive"]


async def test_scheduled_jobs_run_on_their_cron(runner: RunnerUnderTest) -> None:
    # The sample schedule fires every second, under its registered name.
    ticks = tick_path({"settings": runner.settings})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(read_lines(ticks)) < 2:
        await asyncio.sleep(0.1)
    assert len(read_lines(ticks)) >= 2


async def test_an_unknown_job_is_refused(runner: RunnerUnderTest) -> None:
    with pytest.raises(UnknownJobError):
        await runner.runner.enqueue("no_such_job")


async def test_an_unknown_id_has_no_status(runner: RunnerUnderTest) -> None:
    assert await runner.runner.status(f"missing-{uuid.uuid4().hex}") is None


async def test_the_runner_is_ready(runner: RunnerUnderTest) -> None:
    await runner.runner.check()

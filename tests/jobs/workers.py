"""A real ``saq`` worker in a subprocess, and a runner under test that can wait on jobs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pytest

from app.lib.jobs import FINISHED, JobRunner
from app.settings import Settings, environment_names
from tests.fixtures.services import ROOT


@dataclass
class WorkerProcess:
    """A ``saq`` worker subprocess serving one queue, and where it logs."""

    process: subprocess.Popen[bytes]
    queue: str
    log: Path
    settings: Settings

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def assert_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"the saq worker exited ({self.process.returncode}):\n{self.output()}")


def _drop_queue_keys(redis_url: str, queue: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        for pattern in (f"saq:{queue}:*", f"saq:job:{queue}:*"):
            keys = list(client.scan_iter(match=pattern, count=500))
            if keys:
                client.delete(*keys)
    finally:
        client.close()


def _wait_for_worker(worker: WorkerProcess, redis_url: str, timeout: float = 30.0) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            worker.assert_alive()
            # The worker writes its info as soon as its start-up hook has run.
            if any(client.scan_iter(match=f"saq:{worker.queue}:worker_info:*")):
                return
            time.sleep(0.1)
    finally:
        client.close()
    pytest.fail(f"the saq worker did not start within {timeout}s:\n{worker.output()}")


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes ``Settings.from_env()`` give ``settings`` back: this
    process's environment without any variable Settings reads, then every field."""
    names = set(environment_names())
    env = {key: value for key, value in os.environ.items() if key not in names}
    for item in fields(settings):
        value = getattr(settings, item.name)
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, tuple):
            value = ",".join(value)
        env[item.name.upper()] = str(value)
    return env


@contextlib.contextmanager
def running_worker(
    target: str, settings: Settings, home: Path, *, keep_queue: bool = False
) -> Iterator[WorkerProcess]:
    """``saq <target>`` in a subprocess whose environment says ``settings``; stopped after.
    The queue's keys are dropped then, unless ``keep_queue`` (a killed worker leaves its
    jobs to the next one)."""
    assert settings.redis_url, "a SAQ worker needs redis_url"
    log = home / f"worker-{settings.jobs_queue}-{uuid.uuid4().hex[:6]}.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "saq", target, "--verbose"],
            cwd=ROOT,
            env=settings_env(settings),
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
        if not keep_queue:
            _drop_queue_keys(settings.redis_url, settings.jobs_queue)


def deployed_worker(
    settings: Settings, home: Path, *, keep_queue: bool = False
) -> contextlib.AbstractContextManager[WorkerProcess]:
    """``saq jobs.worker.settings``, the worker as deployed, on the profile's database,
    Redis, storage, mail and the test's own queue."""
    return running_worker("jobs.worker.settings", settings, home, keep_queue=keep_queue)


@dataclass
class RecordingJobs:
    """A job runner that only records what was enqueued (the test runs the job itself)."""

    enqueued: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def enqueue(self, name: str, *, key: str | None = None, **kwargs: Any) -> str:
        self.enqueued.append((name, key, kwargs))
        return key or "job"

    async def status(self, job_id: str) -> None:
        return None

    async def check(self) -> None: ...


def unique_queue() -> str:
    return f"test-jobs-{uuid.uuid4().hex[:10]}"


@dataclass
class RunnerUnderTest:
    kind: str
    runner: JobRunner
    settings: Settings
    worker: WorkerProcess | None = None

    async def wait(self, job_id: str, *statuses: str, timeout: float = 20.0) -> str | None:
        """Poll until the job reaches one of ``statuses`` (default: any finished one)."""
        wanted = set(statuses or FINISHED)
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            if self.worker is not None:
                self.worker.assert_alive()
            status = await self.runner.status(job_id)
            if status in wanted:
                return status
            await asyncio.sleep(0.05)
        log = f"\nworker log:\n{self.worker.output()}" if self.worker else ""
        pytest.fail(f"job {job_id} is {status!r}, not {sorted(wanted)}, after {timeout}s{log}")

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
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.lib.jobs import FINISHED, JobRunner
from app.settings import Settings
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


@contextlib.contextmanager
def running_worker(target: str, settings: Settings, home: Path) -> Iterator[WorkerProcess]:
    """``saq <target>`` in a subprocess whose environment says ``settings``; stopped after."""
    assert settings.redis_url, "a SAQ worker needs redis_url"
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "JOBS_QUEUE": settings.jobs_queue,
        "SECRET_KEY": settings.secret_key,
        "DATABASE_URL": settings.database_url,
        "STORAGE_DIR": settings.storage_dir,
        "MAIL_URL": settings.mail_url,
        "APP_URL": settings.app_url,
    }
    for name in ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET"):
        env.pop(name, None)
    log = home / f"worker-{settings.jobs_queue}.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "saq", target, "--verbose"],
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

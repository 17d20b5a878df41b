"""The SAQ worker settings module and the choice of runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import redis

from app.lib.jobs import InProcessJobRunner, SaqJobRunner, build_job_runner
from app.settings import Settings, SettingsError
from jobs.registry import JOBS, SCHEDULED
from jobs.worker import make_worker_settings
from tests.fixtures.profiles import SECRET
from tests.fixtures.services import ROOT, free_port


def test_the_registry_names_are_unique_and_purge_runs_every_15_minutes() -> None:
    names = [definition.name for definition in JOBS]
    assert len(names) == len(set(names))
    assert {(job.definition.name, job.cron) for job in SCHEDULED} >= {
        ("purge_expired_files", "*/15 * * * *")
    }


def test_the_worker_module_builds_from_the_environment_without_redis_running() -> None:
    # Nothing listens on this port: building the settings must not connect.
    script = (
        "import json, jobs.worker as w; s = w.settings; "
        "print(json.dumps({'queue': s['queue'].name, "
        "'functions': sorted(name for name, _ in s['functions']), "
        "'cron': [[c.function.__qualname__, c.cron, c.timeout, c.retries] "
        "for c in s['cron_jobs']]}))"
    )
    env = {
        **os.environ,
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "JOBS_QUEUE": "crm-check",
        "SECRET_KEY": SECRET,
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    built = json.loads(done.stdout)

    assert built["queue"] == "crm-check"
    assert built["functions"] == sorted(definition.name for definition in JOBS)
    assert ["purge_expired_files", "*/15 * * * *", 900, 2] in built["cron"]


def test_the_worker_needs_redis() -> None:
    with pytest.raises(SettingsError, match="REDIS_URL"):
        make_worker_settings(Settings(secret_key=SECRET), JOBS, SCHEDULED)


def test_the_runner_follows_redis_url() -> None:
    embedded = Settings(secret_key=SECRET)
    fullstack = Settings(secret_key=SECRET, redis_url="redis://127.0.0.1:1/0", jobs_queue="q")

    assert isinstance(build_job_runner(embedded, JOBS, SCHEDULED, {}), InProcessJobRunner)
    saq = build_job_runner(fullstack, JOBS, SCHEDULED, {})
    assert isinstance(saq, SaqJobRunner)
    assert saq.queue.name == "q"


async def test_the_saq_runner_is_not_ready_without_redis() -> None:
    runner = SaqJobRunner(f"redis://127.0.0.1:{free_port()}/0", "crm-down", JOBS)
    with pytest.raises(redis.exceptions.ConnectionError):
        await runner.check()
    await runner.stop()


async def test_the_saq_runner_is_ready_with_redis(redis_url: str) -> None:
    runner = SaqJobRunner(redis_url, "crm-ready", JOBS)
    await runner.start()
    try:
        await runner.check()
    finally:
        await runner.stop()

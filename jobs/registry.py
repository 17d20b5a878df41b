"""Every job the app can enqueue, and the schedules: the one list both runners use."""

from __future__ import annotations

from app.lib.jobs import JobDefinition, ScheduledJob
from jobs.maintenance import purge_expired_files

PURGE_EXPIRED_FILES = JobDefinition(
    name="purge_expired_files",
    function=purge_expired_files,
    timeout=900,
    retries=2,
    retry_delay=30.0,
)

JOBS: list[JobDefinition] = [
    PURGE_EXPIRED_FILES,
]

SCHEDULED: list[ScheduledJob] = [
    ScheduledJob(PURGE_EXPIRED_FILES, cron="*/15 * * * *"),
]

"""Every job the app can enqueue, and the schedules: the one list both runners use."""

from __future__ import annotations

from app.lib.jobs import JobDefinition, ScheduledJob
from jobs.audit import apply_audit_retention, archive_audit_logs
from jobs.exports import EXPORT_RETRIES, expire_exports, export_customers, notify_export_ready
from jobs.imports import IMPORT_RETRIES, import_customers
from jobs.maintenance import purge_expired_files, requeue_lost_transfers

PURGE_EXPIRED_FILES = JobDefinition(
    name="purge_expired_files",
    function=purge_expired_files,
    timeout=900,
    retries=2,
    retry_delay=30.0,
)

# A first run on a large table may move millions of entries: hours of timeout, a
# heartbeat every few seconds while it works (at most every 10 s, see archive.py), and
# retries that resume where the last attempt stopped (done days are gone from the table).
ARCHIVE_AUDIT_LOGS = JobDefinition(
    name="archive_audit_logs",
    function=archive_audit_logs,
    timeout=6 * 3600,
    heartbeat=300,
    retries=3,
    retry_delay=60.0,
    retry_backoff=1800.0,
)
APPLY_AUDIT_RETENTION = JobDefinition(
    name="apply_audit_retention",
    function=apply_audit_retention,
    timeout=3 * 3600,
    heartbeat=300,
    retries=3,
    retry_delay=60.0,
    retry_backoff=1800.0,
)

# Imports of a million rows take minutes to hours: a timeout of hours, a heartbeat each
# chunk (every few seconds), retries that resume from the transfer's checkpoint.
IMPORT_CUSTOMERS = JobDefinition(
    name="import_customers",
    function=import_customers,
    timeout=6 * 3600,
    heartbeat=60,
    retries=IMPORT_RETRIES,
    retry_delay=5.0,
    retry_backoff=300.0,
)

# An export of millions of rows takes minutes: hours of timeout, a heartbeat while
# batches flow, 3 attempts with backoff (each starts over; a failed upload was aborted).
EXPORT_CUSTOMERS = JobDefinition(
    name="export_customers",
    function=export_customers,
    timeout=6 * 3600,
    heartbeat=60,
    retries=EXPORT_RETRIES,
    retry_delay=5.0,
    retry_backoff=300.0,
)
NOTIFY_EXPORT_READY = JobDefinition(
    name="notify_export_ready",
    function=notify_export_ready,
    timeout=60,
    retries=3,
    retry_delay=10.0,
    retry_backoff=600.0,
)
EXPIRE_EXPORTS = JobDefinition(
    name="expire_exports",
    function=expire_exports,
    timeout=900,
    retries=2,
    retry_delay=30.0,
)

# Every 5 minutes: a transfer whose job was lost (Redis restarted empty, the process
# holding an in-process job stopped) gets it back; the others are left alone.
REQUEUE_LOST_TRANSFERS = JobDefinition(
    name="requeue_lost_transfers",
    function=requeue_lost_transfers,
    timeout=120,
    retries=1,
)

JOBS: list[JobDefinition] = [
    REQUEUE_LOST_TRANSFERS,
    IMPORT_CUSTOMERS,
    EXPORT_CUSTOMERS,
    NOTIFY_EXPORT_READY,
    EXPIRE_EXPORTS,
    PURGE_EXPIRED_FILES,
    ARCHIVE_AUDIT_LOGS,
    APPLY_AUDIT_RETENTION,
]

SCHEDULED: list[ScheduledJob] = [
    ScheduledJob(PURGE_EXPIRED_FILES, cron="*/15 * * * *"),
    ScheduledJob(REQUEUE_LOST_TRANSFERS, cron="*/5 * * * *"),
    ScheduledJob(EXPIRE_EXPORTS, cron="*/15 * * * *"),
    # Daily, in the quiet hours (UTC); retention after the archive run.
    ScheduledJob(ARCHIVE_AUDIT_LOGS, cron="17 2 * * *"),
    ScheduledJob(APPLY_AUDIT_RETENTION, cron="47 4 * * *"),
]

"""The jobs seam: enqueue a named job, ask its status. SAQ on Redis, or in-process.

Both runners run the same ``async def fn(ctx, **kwargs)`` functions with the same
timeout, retries and backoff; callers never know which one is active. This module
knows nothing of features: the list of jobs comes from ``jobs.registry``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, cast

from croniter import croniter
from redis.exceptions import RedisError
from saq import Job, Queue
from saq.job import Status
from saq.queue.redis import RedisQueue

from app.settings import Settings

logger = logging.getLogger(__name__)

JobFunction = Callable[..., Awaitable[Any]]

JobStatus = Literal["queued", "active", "complete", "failed", "aborted"]

QUEUED: JobStatus = "queued"
ACTIVE: JobStatus = "active"
COMPLETE: JobStatus = "complete"
FAILED: JobStatus = "failed"
ABORTED: JobStatus = "aborted"
FINISHED: frozenset[JobStatus] = frozenset({COMPLETE, FAILED, ABORTED})


class UnknownJobError(LookupError):
    """A job name that is not in the registry the runner was built with."""


@dataclass(frozen=True)
class JobDefinition:
    """A job: its registry name, its function ``async def fn(ctx, **kwargs)`` and limits.

    ``retries`` counts attempts, as SAQ does: 3 means the first run and two retries.
    ``timeout`` and ``heartbeat`` are seconds, 0 meaning "none". ``retry_backoff`` True
    doubles ``retry_delay`` after each attempt; a number also caps the delay (seconds).
    SAQ draws each delay at random below that figure (jitter); in-process waits it out.
    """

    name: str
    function: JobFunction
    timeout: int = 300
    retries: int = 3
    retry_delay: float = 1.0
    retry_backoff: bool | float = True
    heartbeat: int = 0


@dataclass(frozen=True)
class ScheduledJob:
    """A job enqueued on a cron schedule (croniter syntax, UTC, optional seconds field)."""

    definition: JobDefinition
    cron: str

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron):
            raise ValueError(f"invalid cron {self.cron!r} for job {self.definition.name}")


def cron_key(name: str) -> str:
    """The dedupe key of a scheduled run: at most one queued or running at a time."""
    return f"cron:{name}"


# ------------------------------------------------------------------- introspection
# What the admin queue monitor shows and does, the same for both runners.


class JobNotFoundError(LookupError):
    """No job with that id (unknown, or forgotten after its time to live)."""


class JobActionRefused(Exception):
    """A retry or abort that does not apply to the job as it is now; says why in words."""


@dataclass(frozen=True)
class JobInfo:
    id: str
    function: str
    status: JobStatus
    attempts: int
    retries: int
    enqueued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    last_heartbeat: datetime | None
    complete: int
    failed: int
    retried: int
    aborted: int


@dataclass(frozen=True)
class QueueInfo:
    """A queue at one moment. ``counts`` has every JobStatus; finished jobs count while
    the runner still remembers them (SAQ: each job's ttl, 10 minutes by default; in
    process: ``keep_finished``). The job lists hold at most the ``limit`` asked for."""

    name: str
    backend: str
    counts: dict[JobStatus, int]
    workers: list[WorkerInfo]
    queued: list[JobInfo]
    active: list[JobInfo]
    failed: list[JobInfo]


def _from_epoch(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


def _newest_first(jobs: list[JobInfo]) -> list[JobInfo]:
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(jobs, key=lambda job: job.enqueued_at or epoch, reverse=True)


def _queue_info(
    name: str,
    backend: str,
    jobs: Iterable[JobInfo],
    workers: list[WorkerInfo],
    limit: int,
) -> QueueInfo:
    found = list(jobs)
    totals: dict[JobStatus, int] = dict.fromkeys((QUEUED, ACTIVE, COMPLETE, FAILED, ABORTED), 0)
    totals.update(Counter(job.status for job in found))

    def listed(status: JobStatus) -> list[JobInfo]:
        return _newest_first([job for job in found if job.status == status])[:limit]

    return QueueInfo(
        name=name,
        backend=backend,
        counts=totals,
        workers=workers,
        queued=listed(QUEUED),
        active=listed(ACTIVE),
        failed=listed(FAILED),
    )


def _refuse(action: str, job: JobInfo, allowed: str) -> JobActionRefused:
    return JobActionRefused(
        f"Job {job.id} ({job.function}) is {job.status}: only {allowed} jobs can be {action}."
    )


class JobRunner(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def enqueue(self, name: str, *, key: str | None = None, **kwargs: Any) -> str:
        """Queue job ``name`` with JSON-serialisable ``kwargs`` and return its id.

        With a ``key``, the id is the key, and a job with that key still queued or
        running is not queued again: its id is returned instead.
        """
        ...

    async def status(self, job_id: str) -> JobStatus | None:
        """queued, active, complete, failed or aborted; None once forgotten or unknown."""
        ...

    async def check(self) -> None:
        """Raise when the queue's backend cannot take jobs (readiness probe)."""
        ...

    async def info(self, limit: int = 50) -> QueueInfo:
        """Counts, workers and the newest ``limit`` queued, active and failed jobs."""
        ...

    async def retry(self, job_id: str) -> JobInfo:
        """Queue a failed job again, with its full number of attempts; runs it soon.
        Raises JobNotFoundError, or JobActionRefused when it has not failed."""
        ...

    async def abort(self, job_id: str) -> JobInfo:
        """Stop a queued or active job (it ends as aborted). Raises JobNotFoundError, or
        JobActionRefused when it has finished already."""
        ...


def _index(definitions: Iterable[JobDefinition]) -> dict[str, JobDefinition]:
    index: dict[str, JobDefinition] = {}
    for definition in definitions:
        if definition.name in index and index[definition.name] != definition:
            raise ValueError(f"two job definitions are named {definition.name!r}")
        index[definition.name] = definition
    return index


def _lookup(index: Mapping[str, JobDefinition], name: str) -> JobDefinition:
    try:
        return index[name]
    except KeyError:
        raise UnknownJobError(f"no job named {name!r} is registered") from None


async def heartbeat(ctx: Mapping[str, Any]) -> None:
    """Tell the runner a long job is alive; call it more often than its ``heartbeat``.

    Under SAQ a job with a heartbeat that stays silent longer is swept and retried; the
    in-process runner has no sweeper, so there it does nothing.
    """
    job = ctx.get("job")
    if isinstance(job, Job):
        await job.update()


async def was_aborted(ctx: Mapping[str, Any]) -> bool:
    """In a job that got ``CancelledError``: True when the job was aborted (from the queue
    monitor), so it will not run again; False when its worker is shutting down, after
    which the job is queued again and resumes."""
    job = ctx.get("job")
    if isinstance(job, Job):
        try:
            await job.refresh()
        except Exception:  # Redis gone too: assume a shutdown, the safe reading
            return False
        return job.status in (Status.ABORTING, Status.ABORTED)
    runner = ctx.get("jobs")
    if isinstance(runner, InProcessJobRunner):
        record = runner._records.get(str(ctx.get("job_id")))
        return record is not None and record.error == ABORTED_BY_ADMIN
    return False


# ----------------------------------------------------------------------------- SAQ

_SAQ_STATUS: dict[Status, JobStatus] = {
    Status.NEW: QUEUED,
    Status.QUEUED: QUEUED,
    Status.ACTIVE: ACTIVE,
    # Still running until the worker notices the abort.
    Status.ABORTING: ACTIVE,
    Status.ABORTED: ABORTED,
    Status.FAILED: FAILED,
    Status.COMPLETE: COMPLETE,
}


class SaqJobRunner:
    """Enqueues to a SAQ queue on Redis; ``saq jobs.worker.settings`` processes run the jobs."""

    def __init__(
        self, redis_url: str, queue_name: str, definitions: Iterable[JobDefinition]
    ) -> None:
        self._definitions = _index(definitions)
        # No connection is made until the first command.
        self.queue = Queue.from_url(redis_url, name=queue_name)

    async def start(self) -> None:
        await self.queue.connect()

    async def stop(self) -> None:
        try:
            await self.queue.disconnect()
        except (RedisError, OSError) as error:
            # Shutting down with Redis gone: nothing is left to release.
            logger.warning("could not disconnect from the job queue: %s", error)

    async def enqueue(self, name: str, *, key: str | None = None, **kwargs: Any) -> str:
        definition = _lookup(self._definitions, name)
        job = Job(
            function=definition.name,
            kwargs=kwargs,
            key=key or uuid.uuid4().hex,
            timeout=definition.timeout,
            heartbeat=definition.heartbeat,
            retries=definition.retries,
            retry_delay=definition.retry_delay,
            retry_backoff=definition.retry_backoff,
        )
        if await self.queue.enqueue(job) is None:
            logger.info("job %s %s is already queued or running: not queued again", name, job.key)
        return job.key

    async def status(self, job_id: str) -> JobStatus | None:
        job = await self.queue.job(job_id)
        return None if job is None else _SAQ_STATUS[job.status]

    async def check(self) -> None:
        async with asyncio.timeout(5):
            await self.queue.count("queued")

    # --- introspection (the admin queue monitor) ----------------------------------------

    def _job_info(self, job: Job) -> JobInfo:
        # SAQ keeps times as epoch milliseconds.
        return JobInfo(
            id=job.key,
            function=job.function,
            status=_SAQ_STATUS[job.status],
            attempts=job.attempts,
            retries=job.retries,
            enqueued_at=_from_epoch(job.queued / 1000),
            started_at=_from_epoch(job.started / 1000),
            finished_at=_from_epoch(job.completed / 1000),
            error=job.error,
        )

    async def _workers(self) -> list[WorkerInfo]:
        summary = await self.queue.info()
        beats: dict[str, datetime] = {}
        if isinstance(self.queue, RedisQueue):
            # A worker writes its info every 10 s (SAQ's default timer, which jobs.worker
            # keeps) to a sorted set scored with the write time plus its ttl of 11 s.
            scored = await self.queue.redis.zrangebyscore(
                self.queue.namespace("stats"), time.time() * 1000, "inf", withscores=True
            )
            for key, score in cast(list[tuple[bytes, float]], scored):
                worker_id = key.decode().rsplit(":", 1)[-1]
                beats[worker_id] = datetime.fromtimestamp(score / 1000 - SAQ_WORKER_INFO_TTL, UTC)
        workers = []
        for worker_id, info in sorted(summary["workers"].items()):
            stats: Mapping[str, Any] = info.get("stats") or {}
            workers.append(
                WorkerInfo(
                    id=worker_id,
                    last_heartbeat=beats.get(worker_id),
                    complete=int(stats.get("complete", 0)),
                    failed=int(stats.get("failed", 0)),
                    retried=int(stats.get("retried", 0)),
                    aborted=int(stats.get("aborted", 0)),
                )
            )
        return workers

    async def info(self, limit: int = 50) -> QueueInfo:
        # One SCAN over this queue's job keys: finished jobs live only there (each until
        # its ttl), so the failed list and the finished counts need it. Jobs waiting out
        # a retry delay count as queued.
        jobs = [self._job_info(job) async for job in self.queue.iter_jobs(batch_size=1000)]
        return _queue_info(self.queue.name, "SAQ on Redis", jobs, await self._workers(), limit)

    async def _job(self, job_id: str) -> Job:
        job = await self.queue.job(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return job

    async def retry(self, job_id: str) -> JobInfo:
        job = await self._job(job_id)
        if job.status != Status.FAILED:
            raise _refuse("retried", self._job_info(job), "failed")
        # A fresh job under the same key: all its attempts again, and no backoff wait.
        again = Job(
            function=job.function,
            kwargs=job.kwargs,
            key=job.key,
            timeout=job.timeout,
            heartbeat=job.heartbeat,
            retries=job.retries,
            ttl=job.ttl,
            retry_delay=job.retry_delay,
            retry_backoff=job.retry_backoff,
        )
        if await self.queue.enqueue(again) is None:
            raise _refuse("retried", self._job_info(await self._job(job_id)), "failed")
        return self._job_info(await self._job(job_id))

    async def abort(self, job_id: str) -> JobInfo:
        job = await self._job(job_id)
        if _SAQ_STATUS[job.status] not in (QUEUED, ACTIVE):
            raise _refuse("aborted", self._job_info(job), "queued or active")
        # Queued: ends at once. Active: the worker cancels it within a second.
        await job.abort(ABORTED_BY_ADMIN)
        return self._job_info(await self._job(job_id))


# A worker's info lives this long after each write (SAQ's worker_info timer + 1 s).
SAQ_WORKER_INFO_TTL = 11
ABORTED_BY_ADMIN = "aborted from the queue monitor"

# ---------------------------------------------------------------------- in-process


@dataclass
class _Record:
    id: str
    name: str
    status: JobStatus = QUEUED
    attempts: int = 0
    finished_at: float | None = None
    # For the queue monitor (times are epoch seconds).
    kwargs: dict[str, Any] = field(default_factory=dict)
    enqueued_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None


def retry_delay(definition: JobDefinition, attempts: int) -> float:
    """Seconds to wait after ``attempts`` failed runs (1 for the first failure)."""
    if definition.retry_backoff is False:
        return definition.retry_delay
    delay = definition.retry_delay * 2 ** max(attempts - 1, 0)
    if definition.retry_backoff is not True:
        delay = min(delay, float(definition.retry_backoff))
    return delay


class InProcessJobRunner:
    """Runs jobs as asyncio tasks of this process: the embedded default, no Redis needed.

    Jobs live in memory: a job still queued when the process dies is lost, which is
    why long jobs keep their progress in the database and resume from it.
    """

    def __init__(
        self,
        definitions: Iterable[JobDefinition],
        scheduled: Iterable[ScheduledJob] = (),
        context: Mapping[str, Any] | None = None,
        *,
        concurrency: int = 10,
        shutdown_timeout: float = 30.0,
        keep_finished: float = 600.0,
    ) -> None:
        self._scheduled = list(scheduled)
        self._definitions = _index(
            [*definitions, *(scheduled_job.definition for scheduled_job in self._scheduled)]
        )
        self._context = dict(context or {})
        self._slots = asyncio.Semaphore(concurrency)
        # stop() waits this long for running and queued jobs, then cancels them: no
        # longer than the longest job may run, nor than a process manager waits to kill.
        longest = max((d.timeout for d in self._definitions.values()), default=0)
        self._shutdown_timeout = min(shutdown_timeout, longest) if longest else shutdown_timeout
        self._keep_finished = keep_finished
        self._records: dict[str, _Record] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._schedulers: list[asyncio.Task[None]] = []
        self._accepting = True
        self._started = time.time()
        self._totals: Counter[JobStatus] = Counter()
        self._retried = 0

    async def start(self) -> None:
        self._accepting = True
        if not self._schedulers:
            self._schedulers = [
                asyncio.create_task(self._schedule(job), name=f"schedule:{job.definition.name}")
                for job in self._scheduled
            ]

    async def stop(self) -> None:
        self._accepting = False
        schedulers, self._schedulers = self._schedulers, []
        for task in schedulers:
            task.cancel()
        await asyncio.gather(*schedulers, return_exceptions=True)
        pending = set(self._tasks)
        if not pending:
            return
        _done, late = await asyncio.wait(pending, timeout=self._shutdown_timeout)
        if late:
            logger.warning(
                "%d job(s) still running after %.0fs of shutdown: cancelling them",
                len(late),
                self._shutdown_timeout,
            )
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def enqueue(self, name: str, *, key: str | None = None, **kwargs: Any) -> str:
        definition = _lookup(self._definitions, name)
        if not self._accepting:
            raise RuntimeError(f"job runner is stopping: {name} not queued")
        # The same round trip SAQ makes, so a kwarg that would break there breaks here.
        kwargs = json.loads(json.dumps(kwargs))
        self._forget_old()
        job_id = key or uuid.uuid4().hex
        existing = self._records.get(job_id)
        if existing is not None and existing.status not in FINISHED:
            logger.info("job %s %s is already queued or running: not queued again", name, job_id)
            return job_id
        record = _Record(id=job_id, name=name, kwargs=kwargs)
        self._records[job_id] = record
        task = asyncio.create_task(self._run(definition, record, kwargs), name=f"job:{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job_id

    async def status(self, job_id: str) -> JobStatus | None:
        record = self._records.get(job_id)
        return None if record is None else record.status

    async def check(self) -> None:
        if not self._accepting:
            raise RuntimeError("job runner is stopped")

    async def _run(self, definition: JobDefinition, record: _Record, kwargs: dict) -> None:
        try:
            while True:
                async with self._slots:
                    record.attempts += 1
                    record.status = ACTIVE
                    record.started_at = time.time()
                    ctx = {
                        **self._context,
                        "jobs": self,
                        "job_id": record.id,
                        "attempt": record.attempts,
                    }
                    try:
                        async with asyncio.timeout(definition.timeout or None):
                            await definition.function(ctx, **kwargs)
                    except Exception as error:
                        record.error = f"{type(error).__name__}: {error}"
                        logger.exception(
                            "job %s %s failed (attempt %d of %d)",
                            definition.name,
                            record.id,
                            record.attempts,
                            definition.retries,
                        )
                    else:
                        self._finish(record, COMPLETE)
                        return
                if record.attempts >= definition.retries:
                    self._finish(record, FAILED)
                    return
                record.status = QUEUED
                self._retried += 1
                await asyncio.sleep(retry_delay(definition, record.attempts))
        except asyncio.CancelledError:
            logger.warning("job %s %s aborted", definition.name, record.id)
            self._finish(record, ABORTED)
            raise

    def _finish(self, record: _Record, status: JobStatus) -> None:
        record.status = status
        record.finished_at = time.monotonic()
        record.ended_at = time.time()
        self._totals[status] += 1

    # --- introspection (the admin queue monitor) ----------------------------------------

    def _job_info(self, record: _Record) -> JobInfo:
        definition = self._definitions.get(record.name)
        return JobInfo(
            id=record.id,
            function=record.name,
            status=record.status,
            attempts=record.attempts,
            retries=definition.retries if definition else 0,
            enqueued_at=_from_epoch(record.enqueued_at),
            started_at=_from_epoch(record.started_at),
            finished_at=_from_epoch(record.ended_at),
            error=record.error,
        )

    async def info(self, limit: int = 50) -> QueueInfo:
        self._forget_old()
        # The web process is the one worker; it is alive while it answers.
        worker = WorkerInfo(
            id=f"in-process (pid {os.getpid()})",
            last_heartbeat=datetime.now(UTC) if self._accepting else None,
            complete=self._totals[COMPLETE],
            failed=self._totals[FAILED],
            retried=self._retried,
            aborted=self._totals[ABORTED],
        )
        jobs = [self._job_info(record) for record in self._records.values()]
        return _queue_info("in-process", "in-process runner", jobs, [worker], limit)

    def _record(self, job_id: str) -> _Record:
        record = self._records.get(job_id)
        if record is None:
            raise JobNotFoundError(job_id)
        return record

    async def retry(self, job_id: str) -> JobInfo:
        record = self._record(job_id)
        if record.status != FAILED:
            raise _refuse("retried", self._job_info(record), "failed")
        await self.enqueue(record.name, key=record.id, **record.kwargs)
        return self._job_info(self._record(job_id))

    async def abort(self, job_id: str) -> JobInfo:
        record = self._record(job_id)
        if record.status not in (QUEUED, ACTIVE):
            raise _refuse("aborted", self._job_info(record), "queued or active")
        tasks = {task for task in self._tasks if task.get_name() == f"job:{job_id}"}
        record.error = ABORTED_BY_ADMIN
        for task in tasks:
            task.cancel()
        # The task records the abort as it unwinds; wait (briefly) so callers see it.
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        return self._job_info(record)

    def _forget_old(self) -> None:
        horizon = time.monotonic() - self._keep_finished
        for job_id in [
            r.id
            for r in self._records.values()
            if r.finished_at is not None and r.finished_at < horizon
        ]:
            del self._records[job_id]

    async def _schedule(self, scheduled: ScheduledJob) -> None:
        name = scheduled.definition.name
        due = datetime.now(UTC)
        while True:
            now = datetime.now(UTC)
            # From the last due time too, so a sleep that wakes early cannot fire it twice.
            due = croniter(scheduled.cron, max(now, due)).get_next(datetime)
            await asyncio.sleep(max((due - now).total_seconds(), 0))
            with contextlib.suppress(RuntimeError):
                await self.enqueue(name, key=cron_key(name))


def build_job_runner(
    settings: Settings,
    definitions: Iterable[JobDefinition],
    scheduled: Iterable[ScheduledJob] = (),
    context: Mapping[str, Any] | None = None,
) -> JobRunner:
    """SAQ when REDIS_URL is set (the worker runs schedules and builds its own context)."""
    if settings.redis_url:
        return SaqJobRunner(settings.redis_url, settings.jobs_queue, definitions)
    return InProcessJobRunner(definitions, scheduled, context)

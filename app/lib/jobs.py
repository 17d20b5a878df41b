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
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from croniter import croniter
from redis.exceptions import RedisError
from saq import Job, Queue
from saq.job import Status

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


# ---------------------------------------------------------------------- in-process


@dataclass
class _Record:
    id: str
    name: str
    status: JobStatus = QUEUED
    attempts: int = 0
    finished_at: float | None = None


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
        record = _Record(id=job_id, name=name)
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
                    ctx = {**self._context, "job_id": record.id, "attempt": record.attempts}
                    try:
                        async with asyncio.timeout(definition.timeout or None):
                            await definition.function(ctx, **kwargs)
                    except Exception:
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
                await asyncio.sleep(retry_delay(definition, record.attempts))
        except asyncio.CancelledError:
            logger.warning("job %s %s aborted", definition.name, record.id)
            self._finish(record, ABORTED)
            raise

    def _finish(self, record: _Record, status: JobStatus) -> None:
        record.status = status
        record.finished_at = time.monotonic()

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

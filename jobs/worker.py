"""The SAQ worker: ``saq jobs.worker.settings`` runs the jobs of ``jobs.registry``.

``settings`` is built on first access, from ``Settings.from_env()``, so importing this
module (the web process may, for the job context) reads no environment and
needs no Redis. ``make_worker_settings`` builds the same dict for other job lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from piccolo.engine.base import Engine
from saq import CronJob, Queue

from app.lib.db import bind_tables, build_engine, close_database, open_database
from app.lib.jobs import JobDefinition, JobFunction, ScheduledJob
from app.lib.mail import Mailer, build_mailer
from app.lib.storage import Storage, build_storage
from app.settings import Settings, SettingsError
from jobs.registry import JOBS, SCHEDULED

DEFAULT_CONCURRENCY = 10


def job_context(
    settings: Settings, *, engine: Engine, storage: Storage, mailer: Mailer
) -> dict[str, Any]:
    """The keys every job finds in ``ctx``, for a process that built the parts itself."""
    return {"settings": settings, "engine": engine, "storage": storage, "mail": mailer}


async def build_job_context(
    settings: Settings,
    *,
    engine: Engine | None = None,
    storage: Storage | None = None,
    mailer: Mailer | None = None,
) -> dict[str, Any]:
    """What every job finds in ``ctx``: settings, engine, storage and mail.

    A process that already holds an open engine, storage or mailer (the web app) passes
    them in and they are used as they are; the missing ones are built and started here,
    and the engine is bound to every table. ``close_job_context`` closes the engine.
    """
    if engine is None:
        engine = build_engine(settings)
        bind_tables(engine)
        await open_database(engine, settings.database_pool_size)
    if storage is None:
        storage = build_storage(settings)
        await storage.start()
    if mailer is None:
        mailer = build_mailer(settings)
    return job_context(settings, engine=engine, storage=storage, mailer=mailer)


async def close_job_context(ctx: dict[str, Any]) -> None:
    engine = ctx.get("engine")
    if engine is not None:
        await close_database(engine)


def saq_function(definition: JobDefinition) -> JobFunction:
    """The definition's function as SAQ calls it, under its registry name.

    SAQ names cron jobs after ``__qualname__``; setting it makes the schedule enqueue
    the registered name. ``job_id`` and ``attempt`` match what the in-process runner gives.
    """

    async def run(ctx: dict[str, Any], **kwargs: Any) -> Any:
        job = ctx["job"]
        return await definition.function(
            {**ctx, "job_id": job.key, "attempt": job.attempts}, **kwargs
        )

    run.__name__ = run.__qualname__ = definition.name
    return run


@dataclass
class _CronJob(CronJob):
    # SAQ's worker passes every field of a CronJob on to the Job it enqueues; these two
    # give scheduled runs the same retry delays as enqueued ones.
    retry_delay: float | None = None
    retry_backoff: bool | float | None = None


def make_worker_settings(
    settings: Settings,
    definitions: Iterable[JobDefinition],
    scheduled: Iterable[ScheduledJob] = (),
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> dict[str, Any]:
    """A SAQ settings dict (``Worker(**settings)``) that runs ``definitions`` and ``scheduled``."""
    if not settings.redis_url:
        raise SettingsError(
            "REDIS_URL is not set: the SAQ worker needs Redis "
            "(without it the web process runs jobs itself)"
        )
    scheduled = list(scheduled)
    functions: dict[str, JobFunction] = {}
    for definition in [*definitions, *(job.definition for job in scheduled)]:
        if definition.name not in functions:
            functions[definition.name] = saq_function(definition)

    async def startup(ctx: dict[str, Any]) -> None:
        ctx.update(await build_job_context(settings))

    async def shutdown(ctx: dict[str, Any]) -> None:
        await close_job_context(ctx)

    return {
        "queue": Queue.from_url(settings.redis_url, name=settings.jobs_queue),
        "functions": list(functions.items()),
        "cron_jobs": [
            _CronJob(
                functions[job.definition.name],
                cron=job.cron,
                timeout=job.definition.timeout,
                heartbeat=job.definition.heartbeat,
                retries=job.definition.retries,
                retry_delay=job.definition.retry_delay,
                retry_backoff=job.definition.retry_backoff,
            )
            for job in scheduled
        ],
        "startup": startup,
        "shutdown": shutdown,
        "concurrency": concurrency,
    }


_settings: dict[str, Any] | None = None


def __getattr__(name: str) -> Any:
    # ``jobs.worker.settings``, built once when SAQ (or anyone) first asks for it.
    global _settings
    if name != "settings":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _settings is None:
        _settings = make_worker_settings(Settings.from_env(), JOBS, SCHEDULED)
    return _settings

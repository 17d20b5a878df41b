"""The import job as registered: sized for hours, retried with backoff, and a retry that
resumes from the checkpoint (in-process runner; the SAQ worker runs it in test_import_api)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from app.lib.jobs import InProcessJobRunner
from app.lib.storage import Storage
from app.settings import Settings
from app.transfers.importer import Importer
from jobs.imports import FAILED_MESSAGE
from jobs.registry import IMPORT_CUSTOMERS, JOBS
from jobs.worker import build_job_context
from tests.jobs.workers import RunnerUnderTest
from tests.transfers.conftest import Run, csv_bytes


def test_the_job_is_registered_for_long_runs() -> None:
    assert IMPORT_CUSTOMERS in JOBS
    assert IMPORT_CUSTOMERS.name == "import_customers"
    assert IMPORT_CUSTOMERS.timeout >= 3600
    assert IMPORT_CUSTOMERS.heartbeat == 60
    assert IMPORT_CUSTOMERS.retries == 5
    assert IMPORT_CUSTOMERS.retry_backoff


async def _runner(settings: Settings, engine: Any, storage: Storage) -> InProcessJobRunner:
    context = await build_job_context(settings, engine=engine, storage=storage)
    definition = replace(IMPORT_CUSTOMERS, retry_delay=0.01, retry_backoff=0.05)
    runner = InProcessJobRunner([definition], context=context)
    await runner.start()
    return runner


async def test_a_failed_attempt_is_retried_and_resumes(
    embedded: Settings, run: Run, engine: Any, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = replace(embedded, import_chunk_rows=2)
    data = csv_bytes("Name,Email", *[f"P{n},p{n}@x.test" for n in range(7)])
    transfer = await run.start(data)
    original = Importer._write_chunk
    calls: list[int] = []

    async def flaky(self: Importer, *args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        await original(self, *args, **kwargs)

    monkeypatch.setattr(Importer, "_write_chunk", flaky)
    runner = await _runner(settings, engine, storage)
    try:
        job = await runner.enqueue(
            "import_customers",
            key=f"import:{transfer.id}",
            user_id=run.user_id,
            transfer_id=transfer.id,
        )
        assert await RunnerUnderTest("in-process", runner, settings).wait(job) == "complete"
    finally:
        await runner.stop()
    done = await run.imports.get(run.user_id, transfer.id)
    assert (done.status, done.created, done.processed_rows) == ("completed", 7, 7)
    assert len(await run.entries(transfer.id)) == 7


async def test_the_last_failed_attempt_marks_the_import_failed(
    embedded: Settings, run: Run, engine: Any, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    transfer = await run.start(csv_bytes("Name,Email", "A,a@x.test"))

    async def broken(self: Importer, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("always")

    monkeypatch.setattr(Importer, "_write_chunk", broken)
    runner = await _runner(embedded, engine, storage)
    try:
        job = await runner.enqueue(
            "import_customers",
            key=f"import:{transfer.id}",
            user_id=run.user_id,
            transfer_id=transfer.id,
        )
        status = await RunnerUnderTest("in-process", runner, embedded).wait(job, timeout=30)
    finally:
        await runner.stop()
    assert status == "failed"
    done = await run.imports.get(run.user_id, transfer.id)
    assert done.status == "failed"
    assert done.error_message == FAILED_MESSAGE

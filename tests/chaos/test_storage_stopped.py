"""The S3 server stopped in the middle of a run (a moto server of the test's own, killed
and started again on the same port): exports fail cleanly, after their retries, with a
message in words; an import upload is refused with a clear message and leaves nothing;
the audit archive job fails, is retried, and loses no entry. Once S3 is back, all of it
works again.

moto keeps its objects in memory, so a restarted moto is an empty S3: each test puts the
bucket back (``storage.start``, as the app does at start-up) before using it again, and
"nothing half-written" is checked as what a user can see (no file offered, no row left),
not by listing objects that moto forgot anyway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from piccolo.querystring import QueryString

from app.audit.archive import day_start
from app.audit.service import AuditService
from app.audit.tables import AuditArchive
from app.lib.jobs import SaqJobRunner
from app.lib.storage import build_storage
from app.settings import Settings
from app.transfers.tables import Transfer
from jobs.exports import EXPORT_RETRIES, FAILED_MESSAGE
from jobs.registry import JOBS
from tests.accounts.conftest import html, sign_in
from tests.accounts.test_api import PASSWORD, bearer, in_app_loop, issue_token, verified_user
from tests.chaos.conftest import FULL_STACK_ONLY
from tests.chaos.helpers import (
    MotoServer,
    check_archives,
    database_ids,
    moto_server,
    seed_entries,
)
from tests.customers.conftest import token_of
from tests.customers.test_api import Person, sign_up
from tests.fixtures.mailbox import Mailbox
from tests.jobs.workers import deployed_worker
from tests.transfers.conftest import csv_bytes

pytestmark = FULL_STACK_ONLY

PEOPLE = csv_bytes(
    "Name,Email,Company",
    "Ada Lovelace,ada@engines.example,Analytical Engines",
    "Grace Hopper,grace@navy.example,US Navy",
)


@pytest.fixture
def moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, moto: MotoServer) -> Settings:
    """The full stack with the S3 server this test stops."""
    return replace(settings, s3_endpoint=moto.endpoint)


async def s3_back(moto: MotoServer, settings: Settings) -> None:
    """moto started again on its port, and the bucket put back (moto forgot it)."""
    moto.start()
    await build_storage(settings).start()


async def transfers_of(client: AsyncTestClient, user_id: int) -> int:
    rows = await in_app_loop(
        client,
        lambda: Transfer.raw(
            "{}", QueryString("SELECT COUNT(*) AS n FROM transfers WHERE user_id = {}", user_id)
        ),
    )
    return int(rows[0]["n"])


async def wait_export(person: Person, export_id: int, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await person.get(f"/api/v1/exports/{export_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
        assert time.monotonic() < deadline, f"export still {body['status']}"
        await asyncio.sleep(0.2)


async def test_an_export_fails_in_words_and_works_once_s3_is_back(
    client: AsyncTestClient,
    mailbox: Mailbox,
    settings: Settings,
    moto: MotoServer,
    tmp_path: Path,
) -> None:
    person = await sign_up(client, mailbox, "exporter")
    for number in range(5):
        await person.create(name=f"Person {number}", email=f"p{number}@export.example")
    with deployed_worker(settings, tmp_path) as worker:
        moto.stop()
        response = await person.post("/api/v1/exports", {"format": "csv"})
        assert response.status_code == 202, response.text
        failed = await wait_export(person, response.json()["id"])
        log = worker.log.read_text(errors="replace")
        # Every attempt was made (the job retried), then it failed in words.
        for attempt in range(1, EXPORT_RETRIES + 1):
            assert f"attempt {attempt} of {EXPORT_RETRIES}" in log, log[-3000:]
        assert failed["status"] == "failed", failed
        assert failed["error_message"] == FAILED_MESSAGE
        assert failed["download_url"] is None, failed
        assert failed["size_bytes"] in (None, 0), failed

        await s3_back(moto, settings)
        storage = build_storage(settings)
        assert [info.key for info in await storage.list("")] == [], "a half-written file"
        response = await person.post("/api/v1/exports", {"format": "csv"})
        assert response.status_code == 202, response.text
        done = await wait_export(person, response.json()["id"])
        assert done["status"] == "completed", (done, worker.output())
        assert done["rows"] == 5
        worker.assert_alive()
    # The failed one still says so, and offers no file.
    again = (await person.get(f"/api/v1/exports/{failed['id']}")).json()
    assert (again["status"], again["download_url"]) == ("failed", None)


async def test_an_import_upload_is_refused_in_words_while_s3_is_down(
    client: AsyncTestClient, mailbox: Mailbox, settings: Settings, moto: MotoServer
) -> None:
    # One person: a token for the API, a session for the pages.
    email = await verified_user(client, mailbox, "importer")
    token = (await issue_token(client, email))["token"]
    person = Person(
        client, int((await client.get("/api/v1/me", headers=bearer(token))).json()["id"]), token
    )
    assert (await sign_in(client, email, PASSWORD)).status_code == 303
    moto.stop()
    # Everything is checked, then the problems found are reported together.
    problems: list[str] = []

    # The API: 422 with the message on the file field, and no import kept.
    response = await client.post(
        "/api/v1/imports",
        files={"file": ("people.csv", PEOPLE, "text/csv")},
        headers=person.headers,
    )
    message = ""
    if response.status_code != 422:
        problems.append(f"the API answered {response.status_code}: {response.text[:200]}")
    else:
        message = response.json()["errors"]["file"]
        if "try again" not in message.lower():
            problems.append(f"the API's message does not say what to do: {message!r}")
    left = await transfers_of(client, person.user_id)
    if left:
        problems.append(f"the refused API upload left {left} import row(s)")

    # The page: the message beside the field, the form again, nothing in the list.
    page = html(await client.get("/imports/new"))
    response = await client.post(
        "/imports",
        files={"file": ("people.csv", PEOPLE, "text/csv")},
        data={"_csrf_token": token_of(page)},
        follow_redirects=False,
    )
    if response.status_code != 422:
        problems.append(f"the page answered {response.status_code}")
    else:
        refused = html(response)
        error = refused.select_one("#import-upload #file-error")
        if error is None or not error.get_text(strip=True):
            problems.append("the page shows no message beside the file field")
        elif message and message not in error.get_text(strip=True):
            # (The field's error starts with a visually hidden "Error:".)
            problems.append(f"the page says {error.get_text(strip=True)!r}, the API {message!r}")
    after_page = await transfers_of(client, person.user_id)
    if after_page > left:
        problems.append(f"the refused page upload left {after_page - left} import row(s)")
    listed = (await person.get("/api/v1/imports")).json()["data"]
    if listed:
        statuses = [item["status"] for item in listed]
        problems.append(f"the person's import list shows {statuses} for refused uploads")

    # S3 back: the same upload is taken.
    await s3_back(moto, settings)
    response = await client.post(
        "/api/v1/imports",
        files={"file": ("people.csv", PEOPLE, "text/csv")},
        headers=person.headers,
    )
    assert response.status_code == 202, response.text
    assert await transfers_of(client, person.user_id) == after_page + 1
    assert problems == [], problems


@pytest.fixture
async def runner(settings: Settings) -> AsyncIterator[SaqJobRunner]:
    assert settings.redis_url
    runner = SaqJobRunner(settings.redis_url, settings.jobs_queue, JOBS)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


async def test_the_archive_job_fails_retries_and_loses_nothing(
    settings: Settings,
    engine: Any,
    make_user: Callable[..., Any],
    moto: MotoServer,
    runner: SaqJobRunner,
    tmp_path: Path,
) -> None:
    days, per_day = 5, 1_000
    user_id = int(await make_user("Archived"))
    first_day = day_start(datetime.now(UTC)) - timedelta(
        days=settings.audit_archive_after_days + days + 10
    )
    seeded = await seed_entries(settings.database_url, user_id, first_day, days, per_day)
    ids = sorted(await database_ids(user_id))
    with deployed_worker(settings, tmp_path) as worker:
        moto.stop()
        key = await runner.enqueue("archive_audit_logs")
        # The first attempt fails, and the job goes back to the queue for another.
        deadline = time.monotonic() + 60
        while True:
            job = await runner.queue.job(key)
            assert job is not None
            if job.attempts >= 1 and job.status == "queued" and job.error:
                break
            assert job.status not in ("complete", "failed"), (job.status, job.error)
            assert time.monotonic() < deadline, worker.output()
            worker.assert_alive()
            await asyncio.sleep(0.1)
        print(f"attempt {job.attempts} failed with S3 down: {job.error.splitlines()[-1]}")
        assert sorted(await database_ids(user_id)) == ids, "entries left the database"
        assert await AuditArchive.count().where(AuditArchive.user_id == user_id) == 0

        await s3_back(moto, settings)
        # The retry (within the job's retry delay, a minute) archives everything.
        deadline = time.monotonic() + 120
        while (status := await runner.status(key)) not in ("complete", "failed"):
            assert time.monotonic() < deadline, worker.output()
            worker.assert_alive()
            await asyncio.sleep(0.2)
        assert status == "complete", worker.output()
        finished = await runner.queue.job(key)
        assert finished is not None
        assert finished.attempts >= 2, finished.attempts

    storage = build_storage(settings)
    archived = await check_archives(storage, user_id)
    assert await database_ids(user_id) == []
    assert sorted(archived) == ids
    assert len(archived) == len(set(archived))
    report = await AuditService(storage=storage).verify_chain(user_id)
    assert report.intact, report
    assert (report.entries, report.archives) == (seeded, days), report

"""Redis killed (SIGKILL) and started again while a signed-in person browses and an import
runs: the app under a real server (`crm serve`) and a real SAQ worker, on a
redis-server of the test's own (never the machine's shared one), PostgreSQL and moto S3.

While Redis is down, pages never answer 500 (a session may end: a redirect to the sign-in
page is fine, and so is a 503 that says to try again in a few seconds, with Retry-After)
and /readyz answers 503 naming redis. Once Redis is back (empty: no
persistence, as a crashed cache comes back), the web serves again after signing in again,
and jobs run again: a new import completes.

The import that was running when Redis went loses its job with Redis: the test prints
where it stopped, what /jobs offers for it, and what its Retry and Cancel buttons answer
(they must not answer 500). The recovery job (`requeue_lost_transfers`, every 5 minutes)
gives it its job back: cancelled by its owner meanwhile, it ends cancelled. The 500s, if
any, are asserted last so that the rest shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.lib.jobs import SaqJobRunner
from app.settings import Settings
from jobs.registry import JOBS
from tests.accounts.conftest import html, post_form, sign_in
from tests.accounts.test_api import PASSWORD, bearer, issue_token, verified_user
from tests.chaos.conftest import FULL_STACK_ONLY
from tests.chaos.test_worker_killed import big_csv, progress
from tests.customers.conftest import HX
from tests.customers.test_api import Person
from tests.fixtures.browser import start_server
from tests.fixtures.mailbox import Mailbox
from tests.fixtures.services import free_port, wait_for_port
from tests.jobs.workers import deployed_worker

pytestmark = FULL_STACK_ONLY

REDIS_SERVER = "/usr/bin/redis-server"
ROWS = 60_000  # an import that is still running when Redis goes
OUTAGE = 6.0  # seconds Redis stays down
FINISHED = ("completed", "failed", "cancelled")


class RedisServer:
    """A redis-server of the test's own, on a free port, without persistence."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        self.home = home
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.process is None
        self.process = subprocess.Popen(
            [
                *(REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.home)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def settings(settings: Settings, redis_server: RedisServer) -> Settings:
    return replace(settings, redis_url=redis_server.url)


@contextlib.contextmanager
def served(settings: Settings, home: Path) -> Iterator[str]:
    """The app under uvicorn on the full stack of ``settings``; its base URL."""
    assert settings.redis_url
    assert settings.s3_endpoint
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REDIS_", "S3_", "DATABASE_", "MAIL_"))
    }
    env |= {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "JOBS_QUEUE": settings.jobs_queue,
        "SECRET_KEY": settings.secret_key,
        "MAIL_URL": settings.mail_url,
        "S3_ENDPOINT": settings.s3_endpoint,
        "S3_ACCESS_KEY": settings.s3_access_key or "",
        "S3_SECRET_KEY": settings.s3_secret_key or "",
        "S3_BUCKET": settings.s3_bucket,
        "S3_SECURE": "false",
        "IMPORT_CHUNK_ROWS": str(settings.import_chunk_rows),
        "REGISTRATION_LIMIT": "10000",
        "API_RATE_LIMIT": "100000",
        "LOG_LEVEL": "INFO",
    }
    log = home / "server.log"
    process, url = start_server(env, log)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass
class Browsing:
    """What a signed-in person saw while browsing: every answer, by page and status."""

    seen: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def note(self, name: str, response: httpx.Response) -> None:
        self.seen[(name, response.status_code)] += 1
        if name == "readyz":
            return
        # "Not available for a moment, try again in N seconds" is an answer; a 500 (or a
        # 503 that does not say when to come back) is not.
        if response.status_code == 503 and response.headers.get("retry-after"):
            return
        if response.status_code >= 500:
            self.errors.append(f"{name}: {response.status_code}")


async def browse(web: httpx.AsyncClient, into: Browsing, stop: asyncio.Event) -> None:
    """The list, then search as you type, over and over, as a person would."""
    number = 0
    while not stop.is_set():
        number += 1
        into.note("customers", await web.get("/customers", follow_redirects=False))
        query = "person"[: 1 + number % 6]
        search = await web.get("/customers", params={"q": query}, headers=HX)
        into.note("search", search)
        await asyncio.sleep(0.05)


async def start_import(person: Person, data: bytes) -> int:
    response = await person.client.post(
        "/api/v1/imports", files={"file": ("people.csv", data, "text/csv")}, headers=person.headers
    )
    assert response.status_code == 202, response.text
    return int(response.json()["id"])


async def test_the_web_and_the_jobs_live_through_a_redis_restart(
    settings: Settings, mailbox: Mailbox, redis_server: RedisServer, tmp_path: Path
) -> None:
    (tmp_path / "worker").mkdir()
    with (
        served(settings, tmp_path) as url,
        deployed_worker(settings, tmp_path / "worker") as worker,
    ):
        async with (
            httpx.AsyncClient(base_url=url, timeout=30) as web,
            httpx.AsyncClient(base_url=url, timeout=30) as api,
        ):
            # One person: a token for the API (the import), a session for the pages. The
            # helpers take the test client, an httpx.AsyncClient too: this one is remote.
            remote = cast("AsyncTestClient[Any]", api)
            email = await verified_user(remote, mailbox, "restart")
            token = (await issue_token(remote, email))["token"]
            me = (await api.get("/api/v1/me", headers=bearer(token))).json()
            person = Person(remote, int(me["id"]), token)
            assert (await sign_in(web, email, PASSWORD)).status_code == 303
            assert (await web.get("/customers")).status_code == 200
            assert (await web.get("/readyz")).status_code == 200

            running = await start_import(person, big_csv(ROWS))
            deadline = time.monotonic() + 60
            while (body := await progress(person, running))["processed_rows"] == 0:
                assert body["status"] not in FINISHED, body
                assert time.monotonic() < deadline, body
                worker.assert_alive()
                await asyncio.sleep(0.05)

            browsing, stop = Browsing(), asyncio.Event()
            browser = asyncio.create_task(browse(web, browsing, stop))
            await asyncio.sleep(1.0)
            redis_server.kill()
            down_at = time.monotonic()
            readiness: list[dict[str, Any]] = []
            while time.monotonic() - down_at < OUTAGE:
                ready = await web.get("/readyz")
                assert ready.status_code == 503, ready.text
                readiness.append(ready.json())
                await asyncio.sleep(0.5)
            redis_server.start()
            await asyncio.sleep(2.0)
            stop.set()
            await browser
            print(f"while Redis went and came back: {dict(browsing.seen)}")
            assert all("redis" in body["down"] for body in readiness), readiness
            assert readiness[-1]["checks"]["redis"].startswith("down")

            # Back: ready again; the session may have ended with Redis: sign in again.
            deadline = time.monotonic() + 30
            while (await web.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "/readyz stays down after Redis is back"
                await asyncio.sleep(0.5)
            listed = await web.get("/customers", follow_redirects=False)
            if listed.status_code != 200:
                assert listed.status_code in (302, 303), listed.text[:300]
                assert "/login" in listed.headers["location"]
                assert (await sign_in(web, email, PASSWORD)).status_code == 303
                listed = await web.get("/customers", follow_redirects=False)
            assert listed.status_code == 200, listed.text[:300]
            assert (await web.get("/customers", params={"q": "per"}, headers=HX)).status_code == 200

            # The import that was running: its job lived in Redis, which came back empty.
            body = await progress(person, running)
            print(f"the import that was running when Redis went: {body}")
            worker.assert_alive()
            # What its owner can do: /jobs lists it with its buttons; the import's page
            # answers, and so do those buttons.
            jobs = await web.get("/jobs")
            assert jobs.status_code == 200, jobs.text[:300]
            row = html(jobs).select_one(f"#job-{running}")
            assert row is not None, "the lost import is not on /jobs"
            buttons = [button.get_text(strip=True) for button in row.select("button")]
            print(f"/jobs shows the lost import as {row['data-status']!r} with {buttons}")
            page = f"/imports/{running}"
            assert (await web.get(page)).status_code == 200
            for action in ("retry", "cancel"):
                done = await post_form(web, f"{page}/{action}", {}, form_page=page)
                print(f"POST {page}/{action} on the import Redis lost: {done.status_code}")
                assert done.status_code < 500, done.text[:300]

            # Jobs run again: a new import completes.
            fresh = await start_import(person, big_csv(500).replace(b"chaos", b"again"))
            deadline = time.monotonic() + 90
            while (again := await progress(person, fresh))["status"] not in FINISHED:
                assert time.monotonic() < deadline, (again, worker.output())
                worker.assert_alive()
                await asyncio.sleep(0.2)
            assert again["status"] == "completed", (again, worker.output())
            assert (again["created"], again["failed"]) == (500, 0), again
            body = await progress(person, running)
            print(f"the lost import, after the retry and cancel, and a new import: {body}")

            # The scheduled recovery (every 5 minutes) gives the lost import its job back;
            # run it now. Its owner asked to cancel it: it stops at its next chunk, with
            # the rows it had committed kept.
            runner = SaqJobRunner(settings.redis_url, settings.jobs_queue, JOBS)
            await runner.start()
            try:
                await runner.enqueue("requeue_lost_transfers", key="recovery-now")
            finally:
                await runner.stop()
            deadline = time.monotonic() + 90
            while (lost := await progress(person, running))["status"] not in FINISHED:
                assert time.monotonic() < deadline, (lost, worker.output())
                await asyncio.sleep(0.2)
            print(f"the lost import after the recovery job: {lost}")
            assert lost["status"] == "cancelled", lost
            assert lost["processed_rows"] >= body["processed_rows"], lost
    # Last, so that a failure here still shows everything above working (or not).
    assert browsing.errors == [], f"pages answered 500 while Redis was down: {browsing.seen}"

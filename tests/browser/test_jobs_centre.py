"""The jobs centre in a real browser: a running import's row on /jobs follows the
transfer row by itself until it finishes (then stops polling), the Download and Undo
actions are reached with the keyboard alone, the badge on the Jobs link, the page with
JavaScript off; screenshots of /jobs and /admin/queues (set SCREENSHOTS_DIR to keep them).

The job's progress is written straight into the live server's database, as a running
import writes it: states like "60 % done" are reached and held deterministically."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_customers import no_sideways_scroll, sign_up, watch_errors

pytestmark = pytest.mark.browser


def database(live_server: Any) -> Path:
    return Path(live_server.env["DATABASE_URL"].removeprefix("sqlite:///"))


def stamp(when: datetime) -> str:
    # How Piccolo writes a timestamptz into SQLite: str() of the UTC datetime.
    return str(when.astimezone(UTC))


def execute(live_server: Any, sql: str, *params: Any) -> Any:
    with closing(sqlite3.connect(database(live_server), timeout=10)) as conn:
        cursor = conn.execute(sql, params)
        conn.commit()
        return cursor.lastrowid


def user_id(live_server: Any, email: str) -> int:
    with closing(sqlite3.connect(database(live_server), timeout=10)) as conn:
        return int(conn.execute("SELECT id FROM users WHERE email = ?", (email,)).fetchone()[0])


def add_transfer(live_server: Any, owner: int, **values: Any) -> int:
    now = datetime.now(UTC)
    values = {
        "user_id": owner,
        "kind": "import",
        "status": "queued",
        "original_filename": "people.csv",
        "options": "{}",
        "processed_rows": 0,
        "created": 0,
        "updated": 0,
        "skipped": 0,
        "failed": 0,
        "created_at": stamp(now),
    } | values
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    sql = f"INSERT INTO transfers ({names}) VALUES ({marks})"  # noqa: S608 - fixed names
    return int(execute(live_server, sql, *values.values()))


def update_transfer(live_server: Any, transfer_id: int, **values: Any) -> None:
    sets = ", ".join(f"{name} = ?" for name in values)
    sql = f"UPDATE transfers SET {sets} WHERE id = ?"  # noqa: S608 - fixed names
    execute(live_server, sql, *values.values(), transfer_id)


def focused(page: Any) -> str:
    return str(page.evaluate("() => document.activeElement && document.activeElement.id"))


def tab_to(page: Any, element_id: str, limit: int = 80) -> int:
    """Press Tab until the element with ``element_id`` has the focus; how many presses."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if focused(page) == element_id:
            return presses
    raise AssertionError(f"#{element_id} was not reached in {limit} presses of Tab")


def test_a_running_import_updates_itself_and_the_actions_are_keyboard_reachable(
    live_server, browser
):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        errors = watch_errors(page)
        row_requests: list[str] = []
        page.on("request", lambda r: row_requests.append(r.url) if "/row" in r.url else None)
        email = sign_up(page, live_server, "Jo Jobs")
        owner = user_id(live_server, email)
        started = datetime.now(UTC) - timedelta(minutes=5)
        export_id = add_transfer(
            live_server,
            owner,
            kind="export",
            status="completed",
            original_filename="customers-20260501-0900.csv",
            processed_rows=3,
            total_rows=3,
            options=json.dumps({"size_bytes": 420}),
            created_at=stamp(started),
            started_at=stamp(started),
            finished_at=stamp(started + timedelta(seconds=2)),
        )
        import_id = add_transfer(
            live_server,
            owner,
            status="running",
            total_rows=200,
            processed_rows=20,
            created_at=stamp(started + timedelta(minutes=1)),
            started_at=stamp(started),
        )

        page.goto(live_server.url + "/jobs")
        row = page.locator(f"#job-{import_id}")
        expect(row.locator(".job-status-label")).to_have_text("Running")
        expect(row.locator("progress")).to_have_attribute("value", "20")

        update_transfer(live_server, import_id, processed_rows=120, created=120)
        expect(row.locator("progress")).to_have_attribute("value", "120", timeout=5000)
        expect(row.locator(".job-status-detail")).to_contain_text("120 of 200 rows (60 %)")

        update_transfer(
            live_server,
            import_id,
            status="completed",
            processed_rows=200,
            created=190,
            failed=10,
            finished_at=stamp(datetime.now(UTC)),
        )
        expect(row.locator(".job-status-label")).to_have_text("Finished", timeout=5000)
        expect(row.locator("progress")).to_have_attribute("value", "200")
        # Finished: the row came back without its trigger, so it asks no more.
        polled = len(row_requests)
        assert polled >= 2
        page.wait_for_timeout(2500)
        assert len(row_requests) == polled, "the finished row is still polling"

        # From the top of the page, with the keyboard alone: Download, then Undo import.
        page.goto(live_server.url + "/jobs")
        tab_to(page, f"job-{export_id}-download")
        expect(page.locator(f"#job-{export_id}-download")).to_be_focused()
        tab_to(page, f"job-{import_id}-undo")
        expect(page.locator(f"#job-{import_id}-undo")).to_have_text("Undo import")
        assert errors == [], errors
    finally:
        context.close()


def test_the_badge_picks_up_a_job_that_finishes_while_elsewhere(live_server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        errors = watch_errors(page)
        email = sign_up(page, live_server, "Bea Badge")
        running = add_transfer(live_server, user_id(live_server, email), status="running")
        page.goto(live_server.url + "/customers")
        badge = page.locator("nav #jobs-badge")
        expect(badge).to_have_attribute("hx-trigger", "every 10s")
        expect(badge.locator("[aria-hidden=true]")).to_have_count(0)

        update_transfer(
            live_server, running, status="completed", finished_at=stamp(datetime.now(UTC))
        )
        # The next poll (at most 10 s away) brings the count, and polling stops.
        expect(badge.locator("[aria-hidden=true]")).to_have_text("1", timeout=12000)
        expect(page.locator("nav #jobs-badge")).not_to_have_attribute("hx-trigger", "every 10s")
        expect(
            page.get_by_role("link", name="Jobs (1 finished job you have not seen)", exact=True)
        ).to_be_visible()
        assert errors == [], errors
    finally:
        context.close()


def test_the_badge_and_the_page_without_javascript(live_server, browser):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, java_script_enabled=False
    )
    try:
        page = context.new_page()
        email = sign_up(page, live_server, "Noa Noscript")
        owner = user_id(live_server, email)
        for name in ("a.csv", "b.csv"):
            add_transfer(
                live_server,
                owner,
                status="completed",
                original_filename=name,
                finished_at=stamp(datetime.now(UTC)),
            )
        running = add_transfer(live_server, owner, status="running", total_rows=10)
        page.goto(live_server.url + "/customers")
        badge = page.locator("nav #jobs-badge")
        expect(badge.locator("[aria-hidden=true]")).to_have_text("2")
        expect(
            page.get_by_role("link", name="Jobs (2 finished jobs you have not seen)", exact=True)
        ).to_be_visible()

        page.get_by_role(
            "link", name="Jobs (2 finished jobs you have not seen)", exact=True
        ).click()
        expect(page.locator("h1")).to_have_text("Jobs")
        expect(page.locator("table.jobs-table tbody tr")).to_have_count(3)
        expect(page.locator("nav #jobs-badge [aria-hidden=true]")).to_have_count(0)
        # Without JavaScript the page does not update itself: Refresh does.
        update_transfer(
            live_server,
            running,
            status="completed",
            processed_rows=10,
            finished_at=stamp(datetime.now(UTC)),
        )
        page.get_by_role("link", name="Refresh").click()
        expect(page.locator(f"#job-{running} .job-status-label")).to_have_text("Finished")
    finally:
        context.close()


def test_screenshots_of_jobs_and_queues(live_server, browser, tmp_path):
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    setup = browser.new_context(viewport={"width": 1440, "height": 900})
    page = setup.new_page()
    email = sign_up(page, live_server, "Sam Screens")
    owner = user_id(live_server, email)
    execute(live_server, "UPDATE users SET is_admin = 1 WHERE id = ?", owner)
    base = datetime.now(UTC) - timedelta(hours=2)
    samples = [
        {
            "status": "completed",
            "original_filename": "google-contacts.csv",
            "total_rows": 1250,
            "processed_rows": 1250,
            "created": 1180,
            "updated": 40,
            "skipped": 25,
            "failed": 5,
            "error_report_key": "imports/errors.csv",
        },
        {
            "kind": "export",
            "status": "failed",
            "original_filename": "customers-20260501-0915.csv",
            "error_message": "The storage service did not answer; try again in a minute.",
        },
        {
            "status": "cancelled",
            "original_filename": "outlook-export.csv",
            "total_rows": 9000,
            "processed_rows": 5000,
            "created": 4990,
            "skipped": 10,
        },
        {
            "kind": "export",
            "status": "completed",
            "original_filename": "customers-20260501-1010.csv",
            "total_rows": 1230,
            "processed_rows": 1230,
            "options": json.dumps({"size_bytes": 181234}),
        },
        {
            "status": "running",
            "original_filename": "hubspot-all-contacts.csv",
            "total_rows": 100000,
            "processed_rows": 35000,
            "created": 34000,
            "updated": 900,
            "skipped": 100,
        },
    ]
    for n, values in enumerate(samples):
        when = base + timedelta(minutes=20 * n)
        finished = None if values["status"] == "running" else stamp(when + timedelta(minutes=3))
        add_transfer(
            live_server,
            owner,
            created_at=stamp(when),
            started_at=stamp(when),
            finished_at=finished,
            **values,
        )
    state = setup.storage_state()
    setup.close()
    for width in (360, 1440):
        context = browser.new_context(viewport={"width": width, "height": 900}, storage_state=state)
        try:
            page = context.new_page()
            errors = watch_errors(page)
            page.goto(live_server.url + "/jobs")
            expect(page.locator("table.jobs-table tbody tr")).to_have_count(5)
            page.screenshot(path=str(folder / f"jobs-{width}.png"), full_page=True)
            assert no_sideways_scroll(page) <= 0, f"/jobs scrolls sideways at {width} px"
            page.goto(live_server.url + "/admin/queues")
            expect(page.locator("h1")).to_have_text("Queues")
            page.screenshot(path=str(folder / f"admin-queues-{width}.png"), full_page=True)
            assert no_sideways_scroll(page) <= 0, f"/admin/queues scrolls sideways at {width} px"
            assert errors == [], errors
        finally:
            context.close()


def test_screenshot_of_the_monitor_on_a_saq_queue(browser, redis_url, tmp_path):
    """The same page over a real SAQ queue: a server with REDIS_URL set, and a ``saq``
    worker running the sample jobs (one fails every time, one runs for a minute)."""
    import asyncio
    import threading

    from app.lib.jobs import SaqJobRunner
    from app.settings import Settings
    from tests.fixtures.browser import LiveServer, start_server
    from tests.fixtures.services import run_migrations
    from tests.jobs.sample_jobs import SAMPLE_JOBS
    from tests.jobs.workers import running_worker, unique_queue

    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    queue = unique_queue()
    database_url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    run_migrations(database_url)
    secret = "browser-test-secret-key-0123456789abcdef"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REDIS_", "S3_", "DATABASE_", "MAIL_", "JOBS_"))
    } | {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JOBS_QUEUE": queue,
        "STORAGE_DIR": str(tmp_path / "storage"),
        "MAIL_URL": f"file://{tmp_path / 'mail'}",
        "SECRET_KEY": secret,
    }
    process, url = start_server(env, tmp_path / "server.log")
    server = LiveServer(url=url, env=env, log=tmp_path / "server.log")
    worker_settings = Settings(
        secret_key=secret,
        database_url=database_url,
        redis_url=redis_url,
        jobs_queue=queue,
        storage_dir=str(tmp_path / "storage"),
        mail_url=f"file://{tmp_path / 'mail'}",
    )

    def in_thread(work: Any) -> Any:
        # Playwright's sync API holds this thread's event loop: asyncio runs beside it.
        found: list[Any] = []
        thread = threading.Thread(target=lambda: found.append(asyncio.run(work())))
        thread.start()
        thread.join(30)
        return found[0]

    async def enqueue() -> list[str]:
        runner = SaqJobRunner(redis_url, queue, SAMPLE_JOBS)
        await runner.start()
        try:
            marker = str(tmp_path / "marker.log")
            ids = [await runner.enqueue("always_fail", path=marker) for _ in range(2)]
            ids.append(await runner.enqueue("record", path=marker, delay=60.0))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                states = [await runner.status(job_id) for job_id in ids]
                if states == ["failed", "failed", "active"]:
                    return ids
                await asyncio.sleep(0.1)
            raise AssertionError(f"the sample jobs are {states}")
        finally:
            await runner.stop()

    try:
        with running_worker("tests.jobs.worker_settings.settings", worker_settings, tmp_path):
            in_thread(enqueue)
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            try:
                page = context.new_page()
                errors = watch_errors(page)
                email = sign_up(page, server, "Ari Admin")
                execute(server, "UPDATE users SET is_admin = 1 WHERE email = ?", email)
                page.goto(server.url + "/admin/queues")
                expect(page.locator("#failed-jobs tbody tr")).to_have_count(2)
                expect(page.locator("#active-jobs tbody tr")).to_have_count(1)
                expect(page.locator("#workers tbody tr")).to_have_count(1)
                page.screenshot(path=str(folder / "admin-queues-saq-1440.png"), full_page=True)
                page.set_viewport_size({"width": 360, "height": 900})
                page.screenshot(path=str(folder / "admin-queues-saq-360.png"), full_page=True)
                assert no_sideways_scroll(page) <= 0, "/admin/queues scrolls sideways at 360 px"
                assert errors == [], errors
            finally:
                context.close()
    finally:
        process.terminate()
        process.wait(timeout=15)

"""/admin/queues: 404 for everyone but admins; admins see the queue, its workers and its
jobs, and retry or abort them with buttons (POST, CSRF, 303 back with a flash)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from app.lib.jobs import InProcessJobRunner, JobRunner, SaqJobRunner
from app.settings import Settings
from tests.accounts.conftest import csrf_token, flashes, sign_out
from tests.admin.conftest import html, make_admin
from tests.jobs.sample_jobs import SAMPLE_JOBS, read_lines
from tests.jobs.workers import WorkerProcess, unique_queue


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The profile's settings with a job queue of the test's own (full stack)."""
    return replace(settings, jobs_queue=unique_queue())


def section(page: Any, kind: str) -> Any:
    found = page.select_one(f"section[aria-labelledby={kind}-heading]")
    assert found is not None, f"no {kind} section"
    return found


def listed(page: Any, kind: str) -> list[str]:
    return [row["data-job-id"] for row in section(page, kind).select("tr[data-job-id]")]


async def press(client: Any, page: Any, kind: str, job_id: str) -> Any:
    """Press the button in the job's row, as a browser submits its form."""
    row = section(page, kind).select_one(f'tr[data-job-id="{job_id}"]')
    assert row is not None, f"{job_id} is not in the {kind} list"
    form = row.select_one("form[method=post]")
    data = {field["name"]: field["value"] for field in form.select("input[type=hidden]")}
    return await client.post(form["action"], data=data, follow_redirects=False)


async def test_the_monitor_is_not_found_for_everyone_but_admins(client, member) -> None:
    page = html(await client.get("/customers"))
    token = csrf_token(page)
    for path in ("/admin/queues",):
        assert (await client.get(path)).status_code == 404
    for action in ("retry", "abort"):
        response = await client.post(
            f"/admin/queues/{action}", data={"job_id": "x", "_csrf_token": token}
        )
        assert response.status_code == 404
    await sign_out(client)
    assert (await client.get("/admin/queues", follow_redirects=False)).status_code == 404


async def test_an_admin_sees_the_apps_own_queue_and_aborts_a_queued_job(
    client, member, settings: Settings
) -> None:
    make_admin(client, member.email)
    page = html(await client.get("/admin/queues"))
    assert page.select_one("h1").get_text(strip=True) == "Queues"
    counts = page.select_one("#queue-counts tbody tr")
    statuses = [cell["data-status"] for cell in counts.select("td[data-status]")]
    assert statuses == ["queued", "active", "complete", "failed", "aborted"]
    runner: JobRunner = client.app.state.jobs
    if not settings.redis_url:
        assert "in-process runner" in counts.get_text(" ", strip=True)
        workers = page.select("#workers tbody tr")
        assert len(workers) == 1
        assert "in-process" in workers[0].get_text(" ", strip=True)
        return
    # Full stack: no worker serves this test's queue, so a job waits there.
    assert counts.select_one("th code").get_text(strip=True) == settings.jobs_queue
    assert "No worker has reported" in section(page, "workers").get_text(" ", strip=True)
    job_id = client.blocking_portal.call(runner.enqueue, "purge_expired_files")
    page = html(await client.get("/admin/queues"))
    assert listed(page, "queued") == [job_id]
    assert counts_of(page)["queued"] == "1"

    response = await press(client, page, "queued", job_id)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/queues"
    page = html(await client.get("/admin/queues"))
    assert flashes(page) == [f"Job {job_id} (purge_expired_files) was aborted."]
    assert listed(page, "queued") == []
    assert counts_of(page)["aborted"] == "1"
    assert client.blocking_portal.call(runner.status, job_id) == "aborted"


def counts_of(page: Any) -> dict[str, str]:
    cells = page.select("#queue-counts td[data-status]")
    return {cell["data-status"]: cell.get_text(strip=True) for cell in cells}


# ------------------------------------------------- both runners, with the sample jobs


@pytest.fixture(params=["in-process", "saq"])
def sample_runner(request: pytest.FixtureRequest, app: Any) -> Iterator[Any]:
    """The app's job runner swapped for one that knows the sample jobs (an always-failing
    one, a slow one): the in-process runner, or SAQ with a real worker on its own queue.
    Built on the app's event loop by ``with_runner`` below."""
    if request.param == "in-process":
        yield lambda: InProcessJobRunner(SAMPLE_JOBS, context={})
        return
    worker: WorkerProcess = request.getfixturevalue("saq_worker")
    assert worker.settings.redis_url
    yield lambda: SaqJobRunner(worker.settings.redis_url, worker.queue, SAMPLE_JOBS)


def wait(client: Any, runner: JobRunner, job_id: str, status: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.blocking_portal.call(runner.status, job_id) == status:
            return
        time.sleep(0.05)
    pytest.fail(f"job {job_id} did not become {status}")


async def test_an_admin_retries_a_failed_job_and_aborts_an_active_one(
    client, member, sample_runner, tmp_path
) -> None:
    runner = sample_runner()
    client.blocking_portal.call(runner.start)
    client.app.state.jobs = runner
    try:
        make_admin(client, member.email)
        marker = tmp_path / "failing.log"
        failing = client.blocking_portal.call(
            lambda: runner.enqueue("always_fail", path=str(marker))
        )
        wait(client, runner, failing, "failed")
        page = html(await client.get("/admin/queues"))
        assert failing in listed(page, "failed")
        row = section(page, "failed").select_one(f'tr[data-job-id="{failing}"]')
        text = row.get_text(" ", strip=True)
        assert "always_fail" in text
        assert "2 of 2" in text
        assert "this job always fails" in row.select_one(".queue-error").get_text()

        response = await press(client, page, "failed", failing)
        assert response.status_code == 303
        page = html(await client.get("/admin/queues"))
        assert flashes(page) == [f"Job {failing} (always_fail) is queued again."]
        deadline = time.monotonic() + 20
        while len(read_lines(marker)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert read_lines(marker) == ["1", "2", "1", "2"]

        slow_marker = tmp_path / "slow.log"
        slow = client.blocking_portal.call(
            lambda: runner.enqueue("record", path=str(slow_marker), delay=20.0)
        )
        wait(client, runner, slow, "active")
        page = html(await client.get("/admin/queues"))
        assert slow in listed(page, "active")
        response = await press(client, page, "active", slow)
        assert response.status_code == 303
        page = html(await client.get("/admin/queues"))
        assert f"Job {slow} (record)" in flashes(page)[0]
        wait(client, runner, slow, "aborted", timeout=10)
        assert not slow_marker.exists()

        # Retrying what has not failed is refused in words, and nothing happens.
        response = await client.post(
            "/admin/queues/retry",
            data={"job_id": slow, "_csrf_token": csrf_token(page)},
            follow_redirects=False,
        )
        assert response.status_code == 303
        page = html(await client.get("/admin/queues"))
        assert flashes(page) == [
            f"Job {slow} (record) is aborted: only failed jobs can be retried."
        ]
        response = await client.post(
            "/admin/queues/abort",
            data={"job_id": "gone-long-ago", "_csrf_token": csrf_token(page)},
            follow_redirects=False,
        )
        page = html(await client.get("/admin/queues"))
        assert "is not in the queue any more" in flashes(page)[0]
    finally:
        client.blocking_portal.call(runner.stop)

"""Exports as people and programs see them, with the jobs really run: by the app's
in-process runner (embedded) or by a real ``saq jobs.worker.settings`` process with S3
and SMTP (full stack)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.customers.models import ListQuery
from app.exports.service import ExportService
from tests.accounts.conftest import account_by_email, csrf_token, html, in_app
from tests.customers.conftest import HX, fragment_roots, isolated_cache
from tests.customers.test_api import Person, sign_up
from tests.exports.conftest import AWKWARD, HEADER, listed, parse_csv, seed
from tests.fixtures.mailbox import Mailbox
from tests.jobs.workers import WorkerProcess

API = "/api/v1/exports"
FIELDS = {
    "id",
    "status",
    "format",
    "filename",
    "rows",
    "total_rows",
    "size_bytes",
    "download_url",
    "expires_at",
    "error_message",
    "created_at",
    "started_at",
    "finished_at",
}
BOOK = AWKWARD + [{"name": f"Person {n}", "organization": "Acme, Inc."} for n in range(12)]


@pytest.fixture
def app(app: Litestar) -> Litestar:
    return isolated_cache(app)


async def wait_done(
    person: Person, export_id: int, worker: WorkerProcess | None, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await person.get(f"{API}/{export_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
        if worker is not None:
            worker.assert_alive()
        assert time.monotonic() < deadline, f"export still {body['status']}"
        await asyncio.sleep(0.1)


async def fetch(client: AsyncTestClient, url: str) -> httpx.Response:
    """A download link: the app's signed route (folder storage) or S3's presigned URL."""
    if url.startswith(str(client.base_url)):
        return await client.get(url)
    async with httpx.AsyncClient() as outside:
        return await outside.get(url)


async def in_loop(client: AsyncTestClient, function: Any, *args: Any) -> Any:
    return await asyncio.to_thread(in_app, client, function, *args)


async def test_export_through_the_api_to_the_file_and_the_mail(
    client: AsyncTestClient, mailbox: Mailbox, job_worker: WorkerProcess | None
) -> None:
    person = await sign_up(client, mailbox)
    await in_loop(client, seed, person.user_id, BOOK)
    body = {"q": "person", "organization": "Acme, Inc.", "sort": "name", "format": "csv"}
    response = await person.post(API, body)
    assert response.status_code == 202, response.text
    queued = response.json()
    assert set(queued) == {"id", "status"}
    assert queued["status"] == "queued"
    assert response.headers["location"] == f"{API}/{queued['id']}"
    done = await wait_done(person, queued["id"], job_worker)
    assert set(done) == FIELDS
    assert done["status"] == "completed", done
    wanted = await in_loop(
        client,
        listed,
        person.user_id,
        ListQuery(q="person", organization="Acme, Inc.", sort="name"),
    )
    assert done["rows"] == len(wanted) == 12
    assert done["filename"].startswith("customers-")
    assert done["filename"].endswith(".csv")
    download = await fetch(client, done["download_url"])
    assert download.status_code == 200
    assert len(download.content) == done["size_bytes"]
    if done["download_url"].startswith(str(client.base_url)):
        # The folder backend's signed route refuses a link whose signature was touched.
        url = done["download_url"]
        sig = parse_qs(urlsplit(url).query)["sig"][0]
        tampered = url.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
        assert (await client.get(tampered)).status_code == 404
    rows = parse_csv(download.content)
    assert rows[0] == HEADER
    assert [row[8] for row in rows[1:]] == [c.slug for c in wanted]
    # The list shows it, newest first.
    listing = (await person.get(API)).json()["data"]
    assert [item["id"] for item in listing] == [done["id"]]
    # The mail links to the app's download route, which makes a fresh link when clicked.
    link = mailbox.last_link("", f"/exports/{done['id']}/download")
    assert urlsplit(link).path == f"/exports/{done['id']}/download"


async def test_invalid_requests_are_refused_in_words(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    person = await sign_up(client, mailbox)
    response = await person.post(API, {"format": "pdf", "sort": "height"})
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert "sort" in errors
    response = await person.post(API, {"format": "pdf"})
    assert response.status_code == 422
    assert response.json()["errors"]["format"] == "Choose the format: csv or xlsx."
    response = await person.post(API, {"created_from": "yesterday"})
    assert response.status_code == 422
    assert "date" in response.json()["errors"]["created_from"]
    response = await person.post(API, {"slugs": []})
    assert response.json()["errors"]["slugs"] == "Select the customers to export first."
    assert (await person.get(API)).json()["data"] == []
    assert (await client.get(API)).status_code == 401


async def test_another_users_export_is_not_found_anywhere(
    client: AsyncTestClient, mailbox: Mailbox, job_worker: WorkerProcess | None
) -> None:
    owner = await sign_up(client, mailbox, "owner")
    await in_loop(client, seed, owner.user_id, BOOK[:3])
    created = (await owner.post(API, {"format": "csv"})).json()
    await wait_done(owner, created["id"], job_worker)
    other = await sign_up(client, mailbox, "other")
    assert (await other.get(f"{API}/{created['id']}")).status_code == 404
    assert (await other.get(API)).json()["data"] == []


# --- the browser pages ------------------------------------------------------------------


async def signed_in(client: AsyncTestClient, mailbox: Mailbox, label: str) -> int:
    from tests.accounts.conftest import Person as Visitor
    from tests.accounts.conftest import register, unique_email

    visitor = Visitor(name=f"{label.title()} Lima", email=unique_email(label))
    assert (await register(client, visitor)).status_code == 303
    response = await client.get(
        mailbox.last_link(visitor.email, "/verify-email/"), follow_redirects=False
    )
    assert response.status_code == 303
    account = await account_by_email(client, visitor.email)
    return int(account.id)


async def wait_page_done(client: AsyncTestClient, url: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(url + "/progress", headers=HX)
        assert response.status_code == 200
        roots = fragment_roots(response)
        status = roots[0]["data-status"]
        if status not in ("queued", "running"):
            return roots[0]
        assert roots[0].get("hx-trigger") == "load delay:1s"
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)


async def test_export_the_filtered_dashboard_and_download_it(
    client: AsyncTestClient, mailbox: Mailbox, job_worker: WorkerProcess | None
) -> None:
    user_id = await signed_in(client, mailbox, "ana")
    await in_loop(client, seed, user_id, BOOK)
    dashboard = html(await client.get("/customers?organization=Acme%2C+Inc.&sort=name&q=person"))
    form = dashboard.select_one("form#export-form")
    assert form is not None
    assert form["action"] == "/exports"
    hidden = {i["name"]: i["value"] for i in form.select("input[type=hidden]")}
    assert hidden == {
        "_csrf_token": csrf_token(dashboard, form),
        "q": "person",
        "organization": "Acme, Inc.",
        "sort": "name",
    }
    assert [o["value"] for o in form.select("select[name=format] option")] == [
        "csv",
        "csv_bom",
        "xlsx",
    ]
    selected = dashboard.select_one("#bulk-form button[data-export-selected]")
    assert selected is not None
    assert selected["formaction"] == "/exports"
    response = await client.post(
        "/exports", data={**hidden, "format": "csv_bom"}, follow_redirects=False
    )
    assert response.status_code == 303
    page_url = response.headers["location"]
    assert page_url.startswith("/exports/")
    page = html(await client.get(page_url))
    assert "Exporting your list" in page.select_one(".flashes").get_text()
    assert page.select_one("#export-progress") is not None
    assert "Search “person”" in page.select_one(".export-facts").get_text()
    finished = await wait_page_done(client, page_url)
    assert finished["data-status"] == "completed"
    assert finished.select_one("progress")["value"] == "100"
    # The whole page without HX-Request, only the fragment with it.
    assert html(await client.get(page_url + "/progress")).find("html") is not None
    link = finished.select_one("a[data-export-download]")
    assert link["href"] == f"{page_url}/download"
    response = await client.get(link["href"], follow_redirects=False)
    assert response.status_code == 303
    download = await fetch(client, response.headers["location"])
    assert download.content.startswith(b"\xef\xbb\xbf")
    rows = parse_csv(download.content[3:])
    wanted = await in_loop(
        client, listed, user_id, ListQuery(q="person", organization="Acme, Inc.", sort="name")
    )
    assert [row[8] for row in rows[1:]] == [c.slug for c in wanted]


async def test_export_selected_and_the_pages_of_another_user(
    client: AsyncTestClient, mailbox: Mailbox, job_worker: WorkerProcess | None
) -> None:
    user_id = await signed_in(client, mailbox, "ana")
    await in_loop(client, seed, user_id, BOOK[:4])
    dashboard = html(await client.get("/customers"))
    slugs = [box["value"] for box in dashboard.select("input[data-row-select]")][:2]
    bulk = dashboard.select_one("#bulk-form")
    response = await client.post(
        "/exports",
        data={"_csrf_token": csrf_token(dashboard, bulk), "scope": "selected", "slugs": slugs},
        follow_redirects=False,
    )
    assert response.status_code == 303
    page_url = response.headers["location"]
    assert "2 selected customers" in html(await client.get(page_url)).get_text()
    await wait_page_done(client, page_url)
    # Nothing selected: back to the list, saying so.
    response = await client.post(
        "/exports",
        data={"_csrf_token": csrf_token(dashboard, bulk), "scope": "selected"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/customers"
    # Someone else sees none of it.
    await client.post("/logout", data={"_csrf_token": csrf_token(dashboard, bulk)})
    await signed_in(client, mailbox, "bo")
    for suffix in ("", "/progress", "/download"):
        assert (await client.get(page_url + suffix, follow_redirects=False)).status_code == 404
    token = csrf_token(html(await client.get("/customers")))
    for action in ("cancel", "retry"):
        response = await client.post(
            f"{page_url}/{action}", data={"_csrf_token": token}, follow_redirects=False
        )
        assert response.status_code == 404


async def test_an_expired_export_says_so_with_410(
    client: AsyncTestClient, mailbox: Mailbox, job_worker: WorkerProcess | None, app: Litestar
) -> None:
    user_id = await signed_in(client, mailbox, "ana")
    await in_loop(client, seed, user_id, BOOK[:2])
    token = csrf_token(html(await client.get("/customers")))
    response = await client.post(
        "/exports", data={"_csrf_token": token, "format": "xlsx"}, follow_redirects=False
    )
    page_url = response.headers["location"]
    await wait_page_done(client, page_url)
    service = ExportService(app.state.storage, None, app.state.settings)
    later = datetime.now(UTC) + timedelta(hours=25)
    # One database serves the whole full-stack run: other tests' exports expire too.
    assert await in_loop(client, service.expire_due, later) >= 1
    transfer_id = int(page_url.rsplit("/", 1)[1])
    transfer = await in_loop(client, service.get, user_id, transfer_id)
    assert (transfer.status, transfer.file_key) == ("expired", None)
    assert await app.state.storage.list(f"exports/{user_id}/") == []
    response = await client.get(page_url + "/download", follow_redirects=False)
    assert response.status_code == 410
    assert "expired" in html(response).select_one("main").get_text()
    # Running it again changes nothing (safe to run twice).
    await in_loop(client, service.expire_due, later)
    assert (await client.get(page_url + "/download", follow_redirects=False)).status_code == 410

"""The import pages in HTML on both profiles: the drop zone form, the mapping page, the
progress fragment and its polling, the result (error report, cancel, undo, retry), CSRF
and isolation. The job really runs: the app's in-process runner (embedded) or a real
``saq jobs.worker.settings`` process (full stack); where a test needs an import caught
in a state (queued, running, failed) it drives the importer itself, as the job would."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from saq import Job, Queue
from saq.job import Status

from app.accounts.repository import PiccoloAccountRepository
from app.main import create_app
from app.settings import Settings
from app.transfers.importer import Importer
from app.transfers.repository import PiccoloTransferRepository
from app.transfers.service import ImportService, job_key
from app.transfers.tables import TransferStatus
from jobs.imports import FAILED_MESSAGE
from tests.accounts.conftest import Person, html
from tests.customers.conftest import HX, become, fragment_roots, token_of
from tests.fixtures.app import BASE_URL
from tests.fixtures.mailbox import Mailbox
from tests.jobs.workers import WorkerProcess
from tests.transfers.conftest import CHUNK_ROWS, RecordingJobs, csv_bytes

PEOPLE = csv_bytes(
    "Full Name;E-mail Address;Company;Mobile",
    "Ada Lovelace;ada@engines.example;Analytical Engines;+44 20 1",
    "Grace Hopper;grace@navy.example;US Navy;+1 555 2",
    "Bob Broken;bob@;Nowhere;",
    "Alan Turing;alan@bletchley.example;Bletchley Park;",
    "Ada Again;ADA@engines.example;Duplicate Ltd;",
    "Linus Torvalds;linus@kernel.example;Linux Foundation;",
)
# The PNG signature and the start of its header chunk: what a renamed picture starts with.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)


@pytest.fixture
async def member(client: AsyncTestClient, mailbox: Mailbox) -> Person:
    """Someone registered, with the address confirmed, and signed in on ``client``."""
    return await become(client, mailbox, "Ana Lima")


async def user_id_of(person: Person) -> int:
    account = await PiccoloAccountRepository().get_by_email(person.email)
    assert account is not None
    return account.id


async def upload(
    client: AsyncTestClient, data: bytes, filename: str = "people.csv", token: str | None = None
) -> Any:
    if token is None:
        token = token_of(html(await client.get("/imports/new")))
    return await client.post(
        "/imports",
        files={"file": (filename, data, "text/csv")},
        data={"_csrf_token": token},
        follow_redirects=False,
    )


async def uploaded(client: AsyncTestClient, data: bytes = PEOPLE) -> int:
    response = await upload(client, data)
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


def selected_targets(page: Any) -> list[str]:
    return [
        select.select_one("option[selected]")["value"]
        for select in page.select("#import-mapping select[name=target]")
    ]


async def wait_finished(
    client: AsyncTestClient, transfer_id: int, worker: WorkerProcess | None, timeout: float = 60
) -> Any:
    """Poll the progress fragment as the page does, until it stops polling."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/imports/{transfer_id}/progress", headers=HX)
        assert response.status_code == 200, response.text
        section = html(response).select_one("#import-progress")
        if not section.has_attr("hx-trigger"):
            return section
        if worker is not None:
            worker.assert_alive()
        assert time.monotonic() < deadline, f"import still {section['data-status']}"
        await asyncio.sleep(0.1)


def on_app(client: AsyncTestClient, function: Any, *args: Any) -> Any:
    """Await ``function(*args)`` on the app's event loop, where its database pool lives."""
    return client.blocking_portal.call(function, *args)


def imports_service(client: AsyncTestClient) -> tuple[ImportService, RecordingJobs]:
    """The app's storage and settings with a runner that only records: the import stays
    queued until the test runs the importer itself."""
    jobs = RecordingJobs()
    state = client.app.state
    return ImportService(state.storage, jobs, state.settings), jobs


# --- the list and the drop zone ------------------------------------------------------------


async def test_the_list_starts_empty_and_says_what_to_do(client, member) -> None:
    response = await client.get("/imports")
    assert response.status_code == 200
    page = html(response)
    empty = page.select_one("#imports .empty-state")
    assert "No imports yet" in empty.get_text()
    assert [a["href"] for a in empty.select("a")] == ["/imports/new"]
    assert page.select_one("nav a[aria-current=page]")["href"] == "/imports"


async def test_the_drop_zone_is_a_real_multipart_form(client, member) -> None:
    page = html(await client.get("/imports/new"))
    form = page.select_one("main form[data-upload-form]")
    assert form["method"] == "post"
    assert form["action"] == "/imports"
    assert form["enctype"] == "multipart/form-data"
    assert form.select_one("[data-dropzone] input[type=file][name=file]")["id"] == "file"
    assert page.select_one("label[for=file]").get_text(strip=True) == "CSV file"
    assert form.select_one("button[type=submit]") is not None
    assert form.select_one("input[name=_csrf_token]") is not None
    assert form.select_one("progress") is not None  # the upload's bar, shown by the script
    # The script is deferred, from our own origin, and only on the import pages.
    script = page.select_one("script[src*=imports]")
    assert script.has_attr("defer")
    assert html(await client.get("/customers")).select_one("script[src*=imports]") is None


async def test_the_customers_page_offers_the_import(client, member) -> None:
    page = html(await client.get("/customers"))
    actions = {a.get_text(strip=True): a["href"] for a in page.select(".page-actions a")}
    assert actions["Import a CSV"] == "/imports/new"


# --- upload: good and bad files -------------------------------------------------------------


async def test_upload_shows_the_mapping_page_with_a_preview(client, member) -> None:
    response = await upload(client, PEOPLE)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/imports/")
    page = html(await client.get(response.headers["location"]))
    mapping = page.select_one("#import-mapping")
    assert "Map the columns of people.csv" in mapping.select_one("h1").get_text()
    detected = " ".join(mapping.select_one("#detected").get_text().split())
    assert "UTF-8" in detected
    assert "semicolons" in detected
    header = [th.get_text(strip=True) for th in mapping.select("thead th")]
    assert header == ["Full Name", "E-mail Address", "Company", "Mobile"]
    rows = [[td.get_text() for td in tr.select("td")] for tr in mapping.select("tbody tr")]
    assert len(rows) == 5  # the first five rows, not more
    assert rows[0] == ["Ada Lovelace", "ada@engines.example", "Analytical Engines", "+44 20 1"]
    assert selected_targets(page) == ["name", "email", "organization", "phone"]
    options = [o["value"] for o in mapping.select("select[name=target]")[0].select("option")]
    assert options == [
        "name",
        "first_name",
        "last_name",
        "email",
        "phone",
        "organization",
        "job_title",
        "notes",
        "ignore",
    ]
    labels = [label.get_text(strip=True) for label in mapping.select("label[for^=target-]")]
    assert labels[0] == "Field for the column “Full Name”"
    policy = mapping.select("input[name=on_duplicate]")
    assert [(i["value"], i.has_attr("checked")) for i in policy] == [
        ("skip", True),
        ("update", False),
        ("merge", False),
    ]
    assert mapping.select_one("button[type=submit]").get_text(strip=True) == "Start import"
    listed = html(await client.get("/imports")).select("#imports tbody tr")
    assert len(listed) == 1
    assert "Waiting for its mapping" in listed[0].get_text()


async def test_a_bad_file_is_refused_beside_the_field(client, member) -> None:
    for data, filename, words in [
        (PNG, "photo.csv", "PNG"),
        (b"", "empty.csv", "empty"),
        (b"Name,Email\r\n", "header.csv", "no rows"),
    ]:
        response = await upload(client, data, filename)
        assert response.status_code == 422, (filename, response.text)
        page = html(response)
        error = page.select_one("#import-upload #file-error")
        assert error is not None, filename
        assert words in error.get_text(), (filename, error.get_text())
        assert page.select_one("#file")["aria-invalid"] == "true"
        assert "file-error" in page.select_one("#file")["aria-describedby"]
        assert page.select_one("form[data-upload-form]") is not None  # the form, again
    # Nothing was kept of any of them.
    assert html(await client.get("/imports")).select_one("#imports .empty-state") is not None


async def test_a_file_over_the_default_body_limit_is_taken(client, member) -> None:
    # Litestar refuses bodies over 10 MB by default; this route takes up to the import limit.
    row = "Somebody Withalongname;somebody@example.com;Some Company;+1 555 0100\r\n"
    data = PEOPLE + row.encode() * (11 * 1024 * 1024 // len(row))
    assert len(data) > 11 * 1024 * 1024
    response = await upload(client, data, "big.csv")
    assert response.status_code == 303, response.text[:300]
    page = html(await client.get(response.headers["location"]))
    assert page.select_one("#import-mapping") is not None


async def test_a_file_over_the_import_limit_is_refused_and_not_kept(
    settings: Settings, mailbox: Mailbox
) -> None:
    small = create_app(replace(settings, import_max_bytes=1024))
    async with AsyncTestClient(app=small, base_url=BASE_URL) as client:
        await become(client, mailbox, "Ola Small")
        response = await upload(client, PEOPLE + b"x;y@z.example;;\r\n" * 100)
        assert response.status_code == 422
        error = html(response).select_one("#file-error").get_text()
        assert "larger than 1 KB" in error
        listed = html(await client.get("/imports"))
        assert listed.select_one("#imports .empty-state") is not None


async def test_no_file_chosen_says_so(client, member) -> None:
    token = token_of(html(await client.get("/imports/new")))
    response = await client.post(
        "/imports",
        files={"file": ("", b"", "application/octet-stream")},
        data={"_csrf_token": token},
    )
    assert response.status_code == 422
    assert "Choose a CSV file" in html(response).select_one("#file-error").get_text()


async def test_the_upload_answers_a_fragment_to_htmx(client, member) -> None:
    token = token_of(html(await client.get("/imports/new")))
    response = await client.post(
        "/imports",
        files={"file": ("x.csv", PNG, "text/csv")},
        data={"_csrf_token": token},
        headers=HX,
    )
    assert response.status_code == 422
    assert "HX-Request" in response.headers["vary"]
    roots = fragment_roots(response)
    assert [root.get("id") for root in roots] == ["import-upload"]


# --- the mapping, start, progress and the result ---------------------------------------------


async def test_start_without_an_email_column_keeps_the_choices(client, member) -> None:
    transfer_id = await uploaded(client)
    page = html(await client.get(f"/imports/{transfer_id}"))
    response = await client.post(
        f"/imports/{transfer_id}/start",
        data={
            "_csrf_token": token_of(page),
            "target": ["name", "ignore", "notes", "phone"],
            "on_duplicate": "merge",
        },
        follow_redirects=False,
    )
    assert response.status_code == 422
    page = html(response)
    error = page.select_one("#import-mapping #mapping-error")
    assert "Map a column to Email" in error.get_text()
    assert selected_targets(page) == ["name", "ignore", "notes", "phone"]
    assert page.select_one("input[name=on_duplicate][checked]")["value"] == "merge"
    assert page.select_one("select[name=target]")["aria-describedby"] == "mapping-error"
    # Nothing started.
    again = html(await client.get(f"/imports/{transfer_id}"))
    assert again.select_one("#import-mapping") is not None


async def test_the_whole_flow_to_the_result_and_undo(
    client, member, job_worker: WorkerProcess | None
) -> None:
    transfer_id = await uploaded(client)
    page = html(await client.get(f"/imports/{transfer_id}"))
    # The person changes one select: the phone column goes to the notes.
    response = await client.post(
        f"/imports/{transfer_id}/start",
        data={
            "_csrf_token": token_of(page),
            "target": ["name", "email", "organization", "notes"],
            "on_duplicate": "skip",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/imports/{transfer_id}"
    section = await wait_finished(client, transfer_id, job_worker)
    assert section["data-status"] == "completed"
    assert section.select_one("progress")["value"] == "100"
    counts = {dd["data-count"]: dd.get_text(strip=True) for dd in section.select("dd[data-count]")}
    assert counts == {"created": "4", "updated": "0", "skipped": "0", "failed": "2"}
    assert "6 of 6 rows processed" in " ".join(section.get_text().split())

    page = html(await client.get(f"/imports/{transfer_id}"))
    result = page.select_one("#import-progress")
    assert not result.has_attr("hx-trigger")
    assert result.select_one("meta") is None
    link = result.select_one("a[data-error-report]")
    assert link.get_text(strip=True) == "Download error report (errors.csv)"
    assert link["href"] == f"/imports/{transfer_id}/errors.csv"
    listed = html(await client.get("/imports")).select_one(f"#import-{transfer_id}")
    assert listed.select_one("a[href$='errors.csv']")["href"] == link["href"]
    assert not listed.has_attr("hx-trigger")

    report = await client.get(link["href"], follow_redirects=False)
    assert report.status_code == 303
    location = report.headers["location"]
    assert "errors.csv" in location
    if client.app.state.settings.s3_endpoint is None:
        text = (await client.get(location.removeprefix(BASE_URL))).text
        assert 'line 4: email ""bob@"" is not a valid address' in text
        assert "line 6" in text
        assert "duplicate of line 2" in text

    book = html(await client.get("/customers")).select("#results tbody tr")
    assert len(book) == 4

    # Undo: a confirmation step first (a page: it works without JavaScript).
    token = token_of(page)
    response = await client.post(f"/imports/{transfer_id}/undo", data={"_csrf_token": token})
    assert response.status_code == 200
    confirm = html(response).select_one("#import-undo")
    assert "Undo the import of people.csv?" in confirm.get_text()
    assert "4 customers" in " ".join(confirm.get_text().split())
    assert confirm.select_one("input[name=confirm]")["value"] == "yes"
    assert html(await client.get("/customers")).select("#results tbody tr")  # still there
    response = await client.post(
        f"/imports/{transfer_id}/undo",
        data={"_csrf_token": token, "confirm": "yes"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/imports/{transfer_id}"
    page = html(await client.get(f"/imports/{transfer_id}"))
    flashes = page.select_one("#flashes").get_text()
    assert "Import undone: 4 customers it created deleted" in flashes
    assert "This import was undone" in page.select_one("#import-progress").get_text()
    assert page.select_one("form[action$='/undo']") is None
    assert html(await client.get("/customers")).select_one("#results .empty-state") is not None


async def test_progress_polls_while_running_and_stops_when_finished(client, member) -> None:
    user_id = on_app(client, user_id_of, member)
    service, jobs = imports_service(client)
    data = csv_bytes("Name,Email", *[f"P{n},p{n}@x.test" for n in range(9)])
    transfer = on_app(client, service.upload, user_id, "many.csv", io.BytesIO(data))
    on_app(client, service.start, user_id, transfer.id)
    assert jobs.enqueued == [
        ("import_customers", job_key(transfer.id), {"user_id": user_id, "transfer_id": transfer.id})
    ]

    # Queued: the fragment polls, and says it waits.
    response = await client.get(f"/imports/{transfer.id}/progress", headers=HX)
    section = fragment_roots(response)[0]
    assert section["hx-trigger"] == "every 1s"
    assert section["hx-get"] == f"/imports/{transfer.id}/progress"
    assert "Waiting for a worker" in section.get_text()
    assert section.select_one("button").get_text(strip=True) == "Cancel import"

    # Running: two chunks written, then the worker "dies".
    def crash(number: int, stage: str) -> None:
        if number == 2 and stage == "committed":
            raise RuntimeError("the worker died")

    importer = Importer(service.storage, chunk_rows=CHUNK_ROWS, fault=crash)
    with contextlib.suppress(RuntimeError):
        on_app(client, importer.run, user_id, transfer.id)
    response = await client.get(f"/imports/{transfer.id}/progress", headers=HX)
    assert "HX-Request" in response.headers["vary"]
    roots = fragment_roots(response)
    section = roots[0]
    assert section["data-status"] == "running"
    assert section["hx-trigger"] == "every 1s"
    text = " ".join(section.get_text().split())
    assert "4 of about" in text, text
    assert "rows/s" in text
    assert "left" in text
    assert int(section.select_one("progress")["value"]) < 100
    live = [root for root in roots if root.get("id") == "import-live"]
    assert live
    assert live[0]["hx-swap-oob"] == "innerHTML"
    assert "Importing many.csv" in live[0].get_text()
    # The list's row polls too.
    row = html(await client.get("/imports")).select_one(f"#import-{transfer.id}")
    assert row["hx-trigger"] == "every 1s"
    assert row["hx-get"] == f"/imports/{transfer.id}/row"
    row_fragment = fragment_roots(await client.get(row["hx-get"], headers=HX))
    assert row_fragment[0]["id"] == f"import-{transfer.id}"
    # Without JavaScript: a Refresh link, and the page reloads itself while it runs.
    page = html(await client.get(f"/imports/{transfer.id}"))
    assert page.select_one("#import-progress a[data-refresh]")["href"] == f"/imports/{transfer.id}"
    assert "refresh" in str(page.select_one("#import-progress noscript"))

    # Finished: rendered without the trigger, so the polling stops.
    on_app(client, Importer(service.storage, chunk_rows=CHUNK_ROWS).run, user_id, transfer.id)
    response = await client.get(f"/imports/{transfer.id}/progress", headers=HX)
    section = fragment_roots(response)[0]
    assert section["data-status"] == "completed"
    assert not section.has_attr("hx-trigger")
    assert section.select_one("progress")["value"] == "100"
    assert "9 of 9 rows processed" in " ".join(section.get_text().split())
    assert section.select_one("noscript") is None
    row = html(await client.get("/imports")).select_one(f"#import-{transfer.id}")
    assert not row.has_attr("hx-trigger")
    # Without HX-Request, the whole page.
    assert html(await client.get(f"/imports/{transfer.id}/progress")).select_one("html")


async def test_cancel_before_it_starts(client, member) -> None:
    user_id = on_app(client, user_id_of, member)
    service, _jobs = imports_service(client)
    transfer = on_app(client, service.upload, user_id, "later.csv", io.BytesIO(PEOPLE))
    on_app(client, service.start, user_id, transfer.id)
    page = html(await client.get(f"/imports/{transfer.id}"))
    form = page.select_one("#import-progress form[action$='/cancel']")
    response = await client.post(
        form["action"], data={"_csrf_token": token_of(page)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/imports/{transfer.id}"
    page = html(await client.get(response.headers["location"]))
    assert "cancelled before it started" in page.select_one("#flashes").get_text()
    section = page.select_one("#import-progress")
    assert section["data-status"] == "cancelled"
    assert not section.has_attr("hx-trigger")
    # Again: nothing to cancel, said in words.
    response = await client.post(form["action"], data={"_csrf_token": token_of(page)})
    assert "nothing to cancel" in html(response).select_one("#flashes").get_text()


async def test_cancel_while_running_stops_at_the_next_chunk(client, member) -> None:
    user_id = on_app(client, user_id_of, member)
    service, _jobs = imports_service(client)
    transfer = on_app(client, service.upload, user_id, "big.csv", io.BytesIO(PEOPLE))
    on_app(client, service.start, user_id, transfer.id)
    on_app(
        client,
        PiccoloTransferRepository().update,
        user_id,
        transfer.id,
        {"status": TransferStatus.running},
    )
    page = html(await client.get(f"/imports/{transfer.id}"))
    response = await client.post(
        f"/imports/{transfer.id}/cancel", data={"_csrf_token": token_of(page)}
    )
    page = html(response)
    assert "stops after the rows it is writing now" in page.select_one("#flashes").get_text()
    assert "Cancelling" in page.select_one("#import-progress h2").get_text()
    assert page.select_one("#import-progress form[action$='/cancel']") is None
    on_app(client, Importer(service.storage, chunk_rows=CHUNK_ROWS).run, user_id, transfer.id)
    section = html(await client.get(f"/imports/{transfer.id}")).select_one("#import-progress")
    assert section["data-status"] == "cancelled"
    assert "rows before it stay imported" in section.select_one("[data-error-message]").get_text()


async def test_retry_of_a_failed_import_resumes_it(
    client, member, job_worker: WorkerProcess | None
) -> None:
    user_id = on_app(client, user_id_of, member)
    service, _jobs = imports_service(client)
    data = csv_bytes("Name,Email", *[f"P{n},p{n}@x.test" for n in range(7)])
    transfer = on_app(client, service.upload, user_id, "flaky.csv", io.BytesIO(data))
    on_app(client, service.start, user_id, transfer.id)

    def crash(number: int, stage: str) -> None:
        if number == 2 and stage == "committed":
            raise RuntimeError("the database went away")

    with contextlib.suppress(RuntimeError):
        importer = Importer(service.storage, chunk_rows=CHUNK_ROWS, fault=crash)
        on_app(client, importer.run, user_id, transfer.id)
    # What the job does on its last attempt.
    on_app(
        client,
        PiccoloTransferRepository().update,
        user_id,
        transfer.id,
        {
            "status": TransferStatus.failed,
            "finished_at": datetime.now(UTC),
            "error_message": FAILED_MESSAGE,
        },
    )
    settings = client.app.state.settings
    if settings.redis_url:
        # SAQ still holds the failed job under the import's key, as after its last attempt.
        queue = Queue.from_url(settings.redis_url, name=settings.jobs_queue)
        await queue.connect()
        try:
            held = Job(
                function="import_customers",
                key=job_key(transfer.id),
                kwargs={"user_id": user_id, "transfer_id": transfer.id},
                scheduled=int(time.time()) + 3600,
            )
            assert await queue.enqueue(held) is not None
            await queue.finish(held, Status.FAILED, error="RuntimeError")
            assert (await queue.job(held.key)).status == Status.FAILED
        finally:
            await queue.disconnect()

    page = html(await client.get(f"/imports/{transfer.id}"))
    section = page.select_one("#import-progress")
    assert section["data-status"] == "failed"
    assert FAILED_MESSAGE in section.select_one("[data-error-message]").get_text()
    form = section.select_one("form[action$='/retry']")
    assert form.select_one("button").get_text(strip=True) == "Try again"
    response = await client.post(
        form["action"], data={"_csrf_token": token_of(page)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/imports/{transfer.id}"
    section = await wait_finished(client, transfer.id, job_worker)
    assert section["data-status"] == "completed"
    counts = {dd["data-count"]: dd.get_text(strip=True) for dd in section.select("dd[data-count]")}
    assert counts == {"created": "7", "updated": "0", "skipped": "0", "failed": "0"}
    assert section.select_one("[data-error-message]") is None
    book = html(await client.get("/customers")).select("#results tbody tr")
    assert len(book) == 7  # the four rows before the failure were not imported twice
    # Only a failed import can be tried again.
    response = await client.post(form["action"], data={"_csrf_token": token_of(page)})
    assert "Only an import that failed" in html(response).select_one("#flashes").get_text()


# --- protections ---------------------------------------------------------------------------


async def test_a_form_without_its_csrf_token_is_refused(client, member) -> None:
    transfer_id = await uploaded(client)
    for path in ("cancel", "start", "undo", "retry"):
        response = await client.post(f"/imports/{transfer_id}/{path}", data={"confirm": "yes"})
        assert response.status_code == 403, path
    response = await client.post("/imports", files={"file": ("a.csv", PEOPLE, "text/csv")})
    assert response.status_code == 403
    page = html(await client.get(f"/imports/{transfer_id}"))
    assert page.select_one("#import-mapping") is not None  # still pending, untouched


async def test_another_users_import_is_not_found_on_every_route(
    client, member, mailbox: Mailbox
) -> None:
    transfer_id = await uploaded(client)
    await become(client, mailbox, "Cy Dee")
    token = token_of(html(await client.get("/imports/new")))
    for path in ("", "/progress", "/errors.csv", "/row"):
        response = await client.get(f"/imports/{transfer_id}{path}", headers=HX)
        assert response.status_code == 404, path
        response = await client.get(f"/imports/{transfer_id}{path}", follow_redirects=False)
        assert response.status_code == 404, path
    for path in ("start", "cancel", "undo", "retry"):
        response = await client.post(
            f"/imports/{transfer_id}/{path}",
            data={"_csrf_token": token, "confirm": "yes", "target": ["name"] * 4},
            follow_redirects=False,
        )
        assert response.status_code == 404, path
    assert html(await client.get("/imports")).select_one("#imports .empty-state") is not None

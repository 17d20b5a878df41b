"""The imports API as a program sees it, with the job really run: by the app's in-process
runner (embedded) or by a real ``saq jobs.worker.settings`` process (full stack)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

from litestar.testing import AsyncTestClient

from app.main import create_app
from app.settings import Settings
from tests.customers.test_api import Person, sign_up
from tests.fixtures.app import BASE_URL
from tests.fixtures.mailbox import Mailbox
from tests.jobs.workers import WorkerProcess
from tests.transfers.conftest import FILES, csv_bytes

API = "/api/v1/imports"
FIELDS = {
    "id",
    "status",
    "filename",
    "total_rows",
    "total_is_estimate",
    "processed_rows",
    "created",
    "updated",
    "skipped",
    "failed",
    "on_duplicate",
    "error_report_url",
    "error_message",
    "undone",
    "created_at",
    "started_at",
    "finished_at",
}


async def upload(person: Person, data: bytes, filename: str = "people.csv", **fields: str) -> Any:
    return await person.client.post(
        API,
        files={"file": (filename, data, "text/csv")},
        data=fields,
        headers=person.headers,
    )


async def wait_done(
    person: Person, import_id: int, worker: WorkerProcess | None, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await person.get(f"{API}/{import_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
        if worker is not None:
            worker.assert_alive()
        assert time.monotonic() < deadline, f"import still {body['status']}"
        await asyncio.sleep(0.1)


async def test_upload_import_and_follow_it_to_the_end(
    client: AsyncTestClient, mailbox: Mailbox, job_worker: WorkerProcess | None
) -> None:
    person = await sign_up(client, mailbox)
    response = await upload(person, (FILES / "hubspot_contacts.csv").read_bytes())
    assert response.status_code == 202, response.text
    started = response.json()
    assert set(started) == FIELDS
    assert started["status"] == "queued"
    assert response.headers["location"] == f"{API}/{started['id']}"
    done = await wait_done(person, started["id"], job_worker)
    assert done["status"] == "completed", done
    assert (done["created"], done["failed"], done["processed_rows"], done["total_rows"]) == (
        2,
        2,
        4,
        4,
    )
    assert done["error_report_url"]
    if client.app.state.settings.s3_endpoint is None:
        report = await client.get(done["error_report_url"].removeprefix(BASE_URL))
        assert report.status_code == 200
        assert 'line 3: email ""bob@"" is not a valid address' in report.text
    customers = (await person.get("/api/v1/customers")).json()["data"]
    assert {c["email"] for c in customers} == {
        "grace@whitfieldfoods.example",
        "yuki.tanaka@sakura-design.example",
    }
    listed = (await person.get(API)).json()["data"]
    assert [item["id"] for item in listed] == [started["id"]]

    undone = await person.client.post(f"{API}/{started['id']}/undo", headers=person.headers)
    assert undone.status_code == 200, undone.text
    assert undone.json() == {"id": started["id"], "deleted": 2, "restored": 0}
    assert (await person.get("/api/v1/customers")).json()["data"] == []
    again = await person.client.post(f"{API}/{started['id']}/undo", headers=person.headers)
    assert again.status_code == 422


async def test_an_explicit_mapping_and_policy(
    client: AsyncTestClient, mailbox: Mailbox, job_worker: WorkerProcess | None
) -> None:
    person = await sign_up(client, mailbox)
    await person.create(name="Old Name", email="a@x.test", phone="")
    data = csv_bytes("Who,Mail,Tel", "New Name,a@x.test,123", "Bo,b@x.test,")
    mapping = json.dumps({"Who": "name", "Mail": "email", "Tel": "phone"})
    response = await upload(person, data, mapping=mapping, on_duplicate="merge")
    assert response.status_code == 202, response.text
    done = await wait_done(person, response.json()["id"], job_worker)
    assert (done["created"], done["updated"], done["on_duplicate"]) == (1, 1, "merge")
    customers = {c["email"]: c for c in (await person.get("/api/v1/customers")).json()["data"]}
    assert (customers["a@x.test"]["name"], customers["a@x.test"]["phone"]) == ("Old Name", "123")


async def test_invalid_uploads_are_422_and_keep_nothing(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    person = await sign_up(client, mailbox)
    response = await upload(person, csv_bytes("Company,Phone", "Acme,1"))
    assert response.status_code == 422
    message = response.json()["errors"]["mapping"]
    assert "Name" in message
    assert "Email" in message
    response = await upload(person, b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "photo.csv")
    assert response.status_code == 422
    assert "PNG image" in response.json()["errors"]["file"]
    response = await upload(person, b"")
    assert response.status_code == 422
    assert "empty" in response.json()["errors"]["file"]
    response = await upload(person, csv_bytes("Name,Email", "A,a@x.test"), mapping="{not json")
    assert response.status_code == 422
    assert "mapping" in response.json()["errors"]
    response = await upload(person, csv_bytes("Name,Email", "A,a@x.test"), on_duplicate="nah")
    assert response.status_code == 422
    assert "on_duplicate" in response.json()["errors"]
    response = await person.client.post(
        API, files={"other": ("a.txt", b"x", "text/plain")}, headers=person.headers
    )
    assert response.status_code == 422, response.text
    assert "file" in response.json()["errors"]
    response = await person.client.post(API, data={"x": "y"}, headers=person.headers)
    # Not multipart at all: invalid input, answered like any other on the API.
    assert response.status_code == 422, response.text
    assert response.json()["errors"]["body"]
    assert (await person.get(API)).json()["data"] == []
    storage = client.app.state.storage
    assert await _list(client, storage, person.user_id) == []


async def _list(client: AsyncTestClient, storage: Any, user_id: int) -> list[Any]:
    from tests.accounts.test_api import in_app_loop

    found: list[Any] = await in_app_loop(client, lambda: storage.list(f"imports/{user_id}/"))
    return found


async def test_another_users_import_is_not_found(
    client: AsyncTestClient, mailbox: Mailbox, job_worker: WorkerProcess | None
) -> None:
    owner = await sign_up(client, mailbox, "owner")
    response = await upload(owner, csv_bytes("Name,Email", "A,a@x.test"))
    import_id = response.json()["id"]
    await wait_done(owner, import_id, job_worker)
    stranger = await sign_up(client, mailbox, "stranger")
    assert (await stranger.get(f"{API}/{import_id}")).status_code == 404
    for action in ("cancel", "undo"):
        answer = await stranger.client.post(f"{API}/{import_id}/{action}", headers=stranger.headers)
        assert answer.status_code == 404
    assert (await stranger.get(API)).json()["data"] == []
    assert (await owner.get(f"{API}/{import_id}")).status_code == 200
    assert (await client.get(f"{API}/{import_id}")).status_code == 401


async def test_a_file_over_import_max_bytes_is_refused(
    settings: Settings, mailbox: Mailbox
) -> None:
    app = create_app(replace(settings, import_max_bytes=1024))
    async with AsyncTestClient(app=app, base_url=BASE_URL) as client:
        person = await sign_up(client, mailbox)
        data = csv_bytes("Name,Email", *[f"P{n},p{n}@x.test" for n in range(200)])
        response = await upload(person, data)
        assert response.status_code == 422, response.text
        assert response.json()["errors"]["file"].startswith("The file is larger than 1 KB")
        assert (await person.get(API)).json()["data"] == []
        assert await _list(client, app.state.storage, person.user_id) == []

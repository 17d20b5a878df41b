"""`GET /metrics` as Prometheus scrapes it: behind METRICS_TOKEN, requests per route
template, imports and exports by status, the queue's depth. Both profiles."""

from __future__ import annotations

import dataclasses
import re

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.main import create_app
from app.settings import Settings
from tests.accounts.test_api import bearer, issue_token, verified_user
from tests.fixtures.mailbox import Mailbox

TOKEN = "metrics-token-0123456789abcdef"
CSV = b"Name,Email\r\nAna Souza,ana.souza@example.com\r\n"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, metrics_token=TOKEN)


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` whose labels include ``labels``."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        found = re.fullmatch(r"([a-z_]+)(\{(.*)\})? (\S+)", line)
        assert found, line
        if found.group(1) != name:
            continue
        given = dict(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', found.group(3) or ""))
        if all(given.get(key) == value for key, value in labels.items()):
            return float(found.group(4))
    return None


async def scrape(client: AsyncTestClient) -> str:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


async def test_metrics_need_the_token(client: AsyncTestClient) -> None:
    assert (await client.get("/metrics")).status_code == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in wrong.text


async def test_without_a_token_configured_there_is_no_metrics_page(embedded: Settings) -> None:
    app = create_app(embedded)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 404


async def test_requests_jobs_and_queue_are_reported(
    client: AsyncTestClient, app: Litestar, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox, "metrics")
    auth = bearer((await issue_token(client, email))["token"])
    statuses = ("queued", "running", "completed")

    def imports_in(text: str) -> float:
        # The full-stack database is shared by the run's tests: compare, do not count.
        return sum(
            sample(text, "crm_transfer_jobs", kind="import", status=s) or 0 for s in statuses
        )

    before = imports_in(await scrape(client))
    for slug in ("first-one", "second-one", "third-one"):
        assert (await client.get(f"/api/v1/customers/{slug}", headers=auth)).status_code == 404
    started = await client.post(
        "/api/v1/imports", files={"file": ("people.csv", CSV, "text/csv")}, headers=auth
    )
    assert started.status_code == 202, started.text

    text = await scrape(client)
    route = "/api/v1/customers/{slug}"
    # One series for the route, not one per slug.
    assert sample(text, "crm_http_requests_total", method="GET", route=route, status="404") == 3
    assert sample(text, "crm_http_request_duration_seconds_count", method="GET", route=route) == 3
    assert (
        sample(
            text, "crm_http_request_duration_seconds_bucket", method="GET", route=route, le="+Inf"
        )
        == 3
    )
    assert "first-one" not in text
    assert imports_in(text) == before + 1
    assert sample(text, "crm_up", part="database") == 1
    assert sample(text, "crm_up", part="queue") == 1
    assert sample(text, "crm_queue_jobs", status="queued") is not None
    # Every family is declared once, with its type.
    declared = re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE)
    assert len(declared) == len({name for name, _ in declared})

"""The audit API as a program sees it, on both profiles: a customer's history and the
whole trail with filters, one entry by id, cursor pages, 422 for bad parameters, and 404
for another user's slugs and entry ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar

from tests.audit.test_web import isolated_cache
from tests.customers.test_api import Person, sign_up

CUSTOMERS = "/api/v1/customers"
AUDIT = "/api/v1/audit"
ENTRY_FIELDS = {
    "id",
    "event",
    "customer_id",
    "customer_slug",
    "customer_label",
    "actor_id",
    "actor",
    "ip",
    "user_agent",
    "request_id",
    "import_id",
    "old_values",
    "new_values",
    "created_at",
    "archived",
}


@pytest.fixture
def app(app: Litestar) -> Litestar:
    return isolated_cache(app)


async def trail(person: Person, path: str = AUDIT, **params: Any) -> dict[str, Any]:
    response = await person.get(path, **params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    assert set(page) == {"data", "next_cursor"}
    return page


async def walk(person: Person, path: str = AUDIT, **params: Any) -> list[dict[str, Any]]:
    pages = [await trail(person, path, **params)]
    while pages[-1]["next_cursor"]:
        assert len(pages) < 50
        pages.append(await trail(person, path, **params, cursor=pages[-1]["next_cursor"]))
    return [entry for page in pages for entry in page["data"]]


async def test_a_customers_history_has_the_entry_shape(client, mailbox):
    ana = await sign_up(client, mailbox, "ana")
    rosa = await ana.create(name="Rosa Diaz", email="rosa@example.com")
    response = await ana.patch(f"{CUSTOMERS}/{rosa['slug']}", {"job_title": "Sergeant"})
    assert response.status_code == 200
    page = await trail(ana, f"{CUSTOMERS}/{rosa['slug']}/audit")
    assert page["next_cursor"] is None
    updated, created = page["data"]
    assert set(updated) == ENTRY_FIELDS
    assert updated["event"] == "updated"
    assert created["event"] == "created"
    assert updated["old_values"] == {"job_title": ""}
    assert updated["new_values"] == {"job_title": "Sergeant"}
    assert updated["customer_slug"] == rosa["slug"]
    assert updated["customer_label"] == "Rosa Diaz <rosa@example.com>"
    assert updated["actor"] == {"id": ana.user_id, "name": updated["actor"]["name"]}
    assert updated["actor"]["name"]
    assert updated["actor_id"] == ana.user_id
    assert updated["ip"]
    assert updated["archived"] is False
    assert datetime.fromisoformat(updated["created_at"]).tzinfo is not None

    one = await ana.get(f"{AUDIT}/{updated['id']}")
    assert one.status_code == 200
    assert one.json() == updated


async def test_the_trail_filters_and_pages_by_cursor(client, mailbox):
    ana = await sign_up(client, mailbox, "ana")
    rosa = await ana.create(name="Rosa Diaz", email="rosa@example.com")
    jake = await ana.create(name="Jake Peralta", email="jake@example.com")
    for number in range(30):
        await ana.patch(f"{CUSTOMERS}/{rosa['slug']}", {"notes": f"note {number}"})
    await ana.delete(f"{CUSTOMERS}/{jake['slug']}")

    everything = await walk(ana, limit=7)
    assert len(everything) == 33
    ids = [entry["id"] for entry in everything]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 33

    updates = await walk(ana, event="updated", limit=100)
    assert len(updates) == 30
    assert {e["customer_slug"] for e in await walk(ana, customer=rosa["slug"])} == {rosa["slug"]}
    # A deleted customer: no slug any more, its id still filters.
    deleted = (await trail(ana, event="deleted"))["data"][0]
    assert deleted["customer_slug"] is None
    history = await walk(ana, customer=str(deleted["customer_id"]))
    assert [e["event"] for e in history] == ["deleted", "created"]
    today = datetime.now(UTC).date()
    assert len(await walk(ana, **{"from": str(today), "to": str(today), "limit": 100})) == 33
    assert await walk(ana, to=str(today - timedelta(days=1))) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"event": "exploded"}, "event"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "to"),
    ],
)
async def test_bad_parameters_are_422_with_words(client, mailbox, params, field):
    ana = await sign_up(client, mailbox, "ana")
    rosa = await ana.create(name="Rosa Diaz", email="rosa@example.com")
    for path in (AUDIT, f"{CUSTOMERS}/{rosa['slug']}/audit"):
        if path != AUDIT and set(params) - {"limit", "cursor"}:
            continue
        response = await ana.get(path, **params)
        assert response.status_code == 422, (path, response.text)
        errors = response.json()["errors"]
        assert set(errors) == {field}, errors
        assert errors[field].strip()


async def test_another_users_slugs_and_entries_are_not_found(client, mailbox):
    ana = await sign_up(client, mailbox, "ana")
    eve = await sign_up(client, mailbox, "eve")
    rosa = await ana.create(name="Rosa Diaz", email="rosa@example.com")
    await ana.patch(f"{CUSTOMERS}/{rosa['slug']}", {"job_title": "Sergeant"})
    ana_entries = (await trail(ana))["data"]
    for entry in ana_entries:
        assert (await eve.get(f"{AUDIT}/{entry['id']}")).status_code == 404
    assert (await eve.get(f"{CUSTOMERS}/{rosa['slug']}/audit")).status_code == 404
    assert (await eve.get(AUDIT, customer=rosa["slug"])).status_code == 404
    assert (await eve.get(f"{AUDIT}/999999")).status_code == 404
    # Ana's customer id filters only Eve's own (empty) trail.
    assert (await trail(eve, customer=str(ana_entries[0]["customer_id"])))["data"] == []
    assert (await trail(eve))["data"] == []
    # No token at all: 401.
    assert (await client.get(AUDIT)).status_code == 401

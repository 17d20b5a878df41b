"""Two people, one API: neither can read, change, delete, find or count the other's customers.

A slug of someone else's is "not found", exactly like a slug nobody has. Runs on both
profiles, with the customers cache on as the app binds it (Redis in the full stack).
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.customers.test_api import API, Person, sign_up
from tests.fixtures.mailbox import Mailbox

SECRET_WORD = "zanzibarite"


@pytest.fixture
async def people(client: AsyncTestClient, mailbox: Mailbox) -> tuple[Person, Person]:
    return await sign_up(client, mailbox, "alice"), await sign_up(client, mailbox, "bob")


@pytest.fixture
async def alices_customer(people: tuple[Person, Person]) -> dict[str, Any]:
    alice, _ = people
    return await alice.create(
        name="Quinn Secret",
        email="quinn@hidden.test",
        organization="Hidden Org",
        job_title="Spy",
        notes=f"Only Alice knows the word {SECRET_WORD}.",
    )


def same_error(response: Any, other: Any) -> None:
    """Two 404s that tell nothing apart but their request ids."""
    assert response.status_code == other.status_code == 404
    first, second = response.json(), other.json()
    assert first.pop("request_id") != second.pop("request_id")
    assert first == second


async def test_another_users_slug_is_not_found_on_every_route(
    people: tuple[Person, Person], alices_customer: dict[str, Any]
) -> None:
    _, bob = people
    slug = alices_customer["slug"]

    same_error(await bob.get(f"{API}/{slug}"), await bob.get(f"{API}/no-such-slug"))
    same_error(
        await bob.patch(f"{API}/{slug}", {"name": "Stolen"}),
        await bob.patch(f"{API}/no-such-slug", {"name": "Stolen"}),
    )
    same_error(await bob.delete(f"{API}/{slug}"), await bob.delete(f"{API}/no-such-slug"))


async def test_bobs_attempts_leave_alices_customer_untouched(
    people: tuple[Person, Person], alices_customer: dict[str, Any]
) -> None:
    alice, bob = people
    slug = alices_customer["slug"]

    await bob.patch(f"{API}/{slug}", {"name": "Stolen", "email": "bob@evil.test"})
    await bob.delete(f"{API}/{slug}")

    seen_by_alice = await alice.get(f"{API}/{slug}")
    assert seen_by_alice.status_code == 200
    assert seen_by_alice.json() == alices_customer
    assert (await alice.list())["count"] == 1


async def test_the_same_slug_in_two_books_are_two_customers(
    people: tuple[Person, Person], alices_customer: dict[str, Any]
) -> None:
    alice, bob = people
    # Same name and email in Bob's book: allowed, and Bob gets the slug in his namespace.
    bobs = await bob.create(name="Quinn Secret", email="quinn@hidden.test", notes="Bob's own")
    assert bobs["slug"] == alices_customer["slug"]

    changed = await bob.patch(f"{API}/{bobs['slug']}", {"job_title": "Bob's pick"})
    assert changed.json()["notes"] == "Bob's own"
    assert (await bob.delete(f"{API}/{bobs['slug']}")).status_code == 204

    assert (await alice.get(f"{API}/{alices_customer['slug']}")).json() == alices_customer
    assert (await bob.get(f"{API}/{alices_customer['slug']}")).status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": SECRET_WORD},
        {"q": "quinn"},
        {"q": "quinn@hidden.test"},
        {"q": "hidd"},
        {"organization": "Hidden Org"},
        {"sort": "name"},
        {"sort": "-updated", "limit": "100"},
    ],
    ids=["all", "notes-word", "name", "email", "prefix", "organization", "by-name", "updated"],
)
async def test_alices_customers_never_in_bobs_lists_searches_or_counts(
    people: tuple[Person, Person], alices_customer: dict[str, Any], params: dict[str, str]
) -> None:
    alice, bob = people
    await bob.create(name="Bob's Own", email="own@bob.test", organization="Bob Org")

    # Alice asks first, so with the cache on her page is cached under these very params.
    alices = await alice.list(**params)
    bobs = await bob.list(**params)

    assert alices_customer["slug"] in {c["slug"] for c in alices["data"]}
    assert "Quinn Secret" not in {c["name"] for c in bobs["data"]}
    assert all(c["email"] != "quinn@hidden.test" for c in bobs["data"])
    assert bobs["count"] == len(bobs["data"])
    assert bobs["count"] == (1 if not params.get("q") and "organization" not in params else 0)


async def test_a_cursor_from_alices_list_shows_bob_only_his_own(
    people: tuple[Person, Person], alices_customer: dict[str, Any]
) -> None:
    alice, bob = people
    await bob.create(name="Bob's Own", email="own@bob.test")
    for number in range(30):
        await alice.create(name=f"Alice Customer {number}", email=f"a{number}@alice.test")
    cursor = (await alice.list())["next_cursor"]
    assert cursor

    # A cursor is only a position in a sort order: in Bob's book it reads Bob's rows.
    page = await bob.list(cursor=cursor)

    assert [c["name"] for c in page["data"]] == ["Bob's Own"]
    assert page["count"] == 1

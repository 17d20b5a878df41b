"""Restore from the browser, on both profiles: the values of an update (a real form, 303
and a flash; with htmx the customer's page in place and customerUpdated), a deleted
customer (under a new slug when the old one is taken), refusals in words, CSRF, and
another person's entries and customers answering 404 on every audit route."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar

from tests.accounts.conftest import (
    csrf_token,
    flashes,
    html,
)
from tests.accounts.conftest import (
    member as member,
)
from tests.audit.test_web import add_customer, edit_cell, entries_of, entry_ids
from tests.customers.conftest import HX, become, isolated_cache


@pytest.fixture
def app(app: Litestar) -> Litestar:
    return isolated_cache(app)


async def timeline(client: Any, slug: str) -> Any:
    return html(await client.get(f"/customers/{slug}/timeline", headers=HX))


async def post_restore(client: Any, action: str, *, htmx: bool = False, token: bool = True) -> Any:
    page = html(await client.get("/audit"))
    data = {"_csrf_token": csrf_token(page)} if token else {}
    return await client.post(
        action, data=data, headers=HX if htmx else None, follow_redirects=False
    )


async def test_restore_these_values_without_javascript(client, member):
    slug = await add_customer(client, "Rosa Diaz", "rosa@example.com", job_title="Detective")
    await edit_cell(client, slug, "job_title", "Sergeant")
    newest = entries_of(await timeline(client, slug))[0]
    form = newest.select_one("form.audit-restore")
    assert form.select_one("button").get_text(strip=True) == "Restore these values"
    assert form["method"] == "post"

    response = await post_restore(client, form["action"])
    assert response.status_code == 303
    assert response.headers["location"] == f"/customers/{slug}"
    page = html(await client.get(response.headers["location"]))
    assert flashes(page) == ["Restored the earlier values of Rosa Diaz."]
    assert page.select_one(".subtitle").get_text(strip=True) == "Detective"

    restored = entries_of(await timeline(client, slug))[0]
    assert restored.select_one(".audit-event").get_text(strip=True) == "Restored"
    assert [
        " ".join(li.get_text(" ", strip=True).split()) for li in restored.select(".audit-change")
    ] == ["Job title: Sergeant → changed to Detective"]


async def test_restore_with_htmx_refreshes_the_customer_in_place(client, member):
    slug = await add_customer(client, "Rosa Diaz", "rosa@example.com", job_title="Detective")
    await edit_cell(client, slug, "job_title", "Sergeant")
    form = entries_of(await timeline(client, slug))[0].select_one("form.audit-restore")
    assert form["hx-target"] == "#customer"
    response = await post_restore(client, form["hx-post"], htmx=True)
    assert response.status_code == 200
    assert "customerUpdated" in response.headers["hx-trigger"]
    article = html(response).select_one("article#customer")
    assert article.select_one(".subtitle").get_text(strip=True) == "Detective"
    assert article.select_one("section#timeline") is not None


async def test_refusals_are_flashed_in_words_not_500(client, member):
    rosa = await add_customer(client, "Rosa Diaz", "rosa@example.com")
    await edit_cell(client, rosa, "email", "rosa.diaz@example.com")
    # The old email now belongs to someone else: restoring it would duplicate it.
    await add_customer(client, "Another Rosa", "rosa@example.com")
    entries = entries_of(await timeline(client, rosa))
    update, created = entries[0], entries[-1]
    response = await post_restore(client, update.select_one("form.audit-restore")["action"])
    assert response.status_code == 303
    page = html(await client.get(response.headers["location"]))
    [message] = flashes(page)
    assert message.startswith("Could not restore:")
    assert page.select_one("#flashes .flash-error") is not None

    # A "created" entry has no values to restore; asked anyway (a hand-made form).
    response = await post_restore(client, f"/audit/{created['data-entry-id']}/restore")
    assert response.status_code == 303
    page = html(await client.get(response.headers["location"]))
    assert flashes(page) == ["Only the values of an update can be restored."]
    response = await post_restore(
        client, f"/audit/{created['data-entry-id']}/restore-customer", htmx=True
    )
    assert response.status_code == 200
    assert response.headers["hx-reswap"] == "none"
    oob = html(response).select_one("#flashes")
    assert oob["hx-swap-oob"] == "true"
    assert "Only a deleted customer" in oob.get_text()


async def test_restore_a_deleted_customer_under_a_new_slug_when_taken(client, member):
    slug = await add_customer(client, "Rosa Diaz", "rosa@example.com")
    page = html(await client.get(f"/customers/{slug}/delete"))
    await client.post(f"/customers/{slug}/delete", data={"_csrf_token": csrf_token(page)})
    # Someone new with the same name takes the slug.
    assert await add_customer(client, "Rosa Diaz", "rosa.two@example.com") == slug
    deleted = next(e for e in entries_of(html(await client.get("/audit?event=deleted"))))
    response = await post_restore(client, deleted.select_one("form.audit-restore")["action"])
    assert response.status_code == 303
    new_slug = response.headers["location"].rsplit("/", 1)[1]
    assert new_slug != slug
    assert new_slug.startswith(slug)
    restored = entries_of(html(await client.get("/audit?event=restored")))
    assert len(restored) == 1


async def test_restore_posts_need_the_csrf_token(client, member):
    slug = await add_customer(client, "Rosa Diaz", "rosa@example.com", job_title="Detective")
    await edit_cell(client, slug, "job_title", "Sergeant")
    action = entries_of(await timeline(client, slug))[0].select_one("form.audit-restore")["action"]
    response = await post_restore(client, action, token=False)
    assert response.status_code == 403
    assert (
        html(await client.get(f"/customers/{slug}")).select_one(".subtitle").get_text(strip=True)
        == "Sergeant"
    )


async def test_another_persons_entries_and_customers_are_not_found(client, mailbox):
    await become(client, mailbox, "Ana Owner")
    slug = await add_customer(client, "Rosa Diaz", "rosa@example.com", job_title="Detective")
    await edit_cell(client, slug, "job_title", "Sergeant")
    ids = entry_ids(await timeline(client, slug))
    page = html(await client.get(f"/customers/{slug}/delete"))
    await client.post(f"/customers/{slug}/delete", data={"_csrf_token": csrf_token(page)})
    deleted_id = entry_ids(html(await client.get("/audit?event=deleted")))[0]
    customer_id = html(await client.get("/audit")).select_one("a.audit-history-link")["href"]

    await become(client, mailbox, "Eve Other")
    await add_customer(client, "Someone", "someone@example.com")
    ana = {*ids, deleted_id}
    assert (await client.get(f"/customers/{slug}/timeline")).status_code == 404
    assert (await client.get(f"/customers/{slug}/timeline", headers=HX)).status_code == 404
    for entry_id in sorted(ana):
        for route in ("restore", "restore-customer"):
            response = await post_restore(client, f"/audit/{entry_id}/{route}")
            assert response.status_code == 404, (entry_id, route)
            response = await post_restore(client, f"/audit/{entry_id}/{route}", htmx=True)
            assert response.status_code == 404
    # Ana's customer id only ever filters Eve's own trail.
    assert not set(entry_ids(html(await client.get(customer_id)))) & ana
    assert not set(entry_ids(html(await client.get("/audit")))) & ana
    # Ana's slug names no customer of Eve's: the same answer as a made-up one.
    response = await client.get(f"/audit?customer={slug}")
    made_up = await client.get("/audit?customer=zz-no-such-customer")
    assert response.status_code == made_up.status_code == 422

"""Two people, one app, both profiles: the second finds none of the first's customers at any
customer URL (404, never 403), in searches, counts or the organization filter, and can
delete none of them."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar

from tests.accounts.conftest import flashes, html, sign_in, sign_out
from tests.customers.conftest import HX, become, isolated_cache, seed_customers, token_of


@pytest.fixture
def app(app: Litestar) -> Litestar:
    return isolated_cache(app)


SECRET = {
    "name": "Zed Secretary",
    "email": "zed@hidden.example",
    "organization": "Hidden Corp",
    "job_title": "Keeper",
    "notes": "classified orbital plans",
}


async def test_another_person_finds_none_of_my_customers(client, mailbox):
    owner = await become(client, mailbox, "Olga Owner")
    seed_customers(client, owner.email, [SECRET])
    # Cached pages of the owner exist before the other person looks.
    assert "Zed Secretary" in (await client.get("/customers?q=orbital")).text

    await become(client, mailbox, "Ivan Intruder")
    slug = "zed-secretary"
    gets = [
        f"/customers/{slug}",
        f"/customers/{slug}/edit",
        f"/customers/{slug}/delete",
        f"/customers/{slug}/cells/name",
        f"/customers/{slug}/cells/email/edit",
    ]
    for path in gets:
        for headers in ({}, HX):
            response = await client.get(path, headers=headers)
            assert response.status_code == 404, path
            assert "Zed" not in response.text, path

    page = html(await client.get("/customers"))
    token = token_of(page)
    posts = {
        f"/customers/{slug}/edit": {"name": "Pwned", "email": "p@example.com"},
        f"/customers/{slug}/delete": {},
        f"/customers/{slug}/cells/name": {"name": "Pwned"},
    }
    for path, data in posts.items():
        for headers in ({}, HX):
            response = await client.post(
                path, data={**data, "_csrf_token": token}, headers=headers, follow_redirects=False
            )
            assert response.status_code == 404, path

    # Bulk delete: the other's slugs are not found, so nothing is asked and nothing deleted.
    response = await client.post(
        "/customers/bulk-delete",
        data={"slugs": [slug], "_csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert flashes(html(await client.get("/customers"))) == [
        "Select the customers to delete first."
    ]
    response = await client.post(
        "/customers/bulk-delete",
        data={"slugs": [slug], "confirm": "yes", "_csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert flashes(html(await client.get("/customers"))) == ["Deleted 0 customers."]

    # Searches, counts and the organization filter know nothing of the owner's book.
    for q in ("orbital", "zed", "hidden", "zed@hidden.example", ""):
        for headers in ({}, HX):
            response = await client.get("/customers", params={"q": q}, headers=headers)
            assert response.status_code == 200
            assert "Zed" not in response.text
            assert "Hidden Corp" not in response.text
    response = await client.get("/customers?organization=Hidden+Corp")
    results = html(response).select_one("#results")
    assert results.select("tbody tr") == []
    assert results.select_one(".empty-state") is not None

    # The intruder's own customer of the same name gets the same slug, in their own book.
    created = await client.post(
        "/customers",
        data={"name": "Zed Secretary", "email": "zed@hidden.example", "_csrf_token": token},
        follow_redirects=False,
    )
    assert created.headers["location"] == "/customers/zed-secretary"
    page = html(await client.get("/customers"))
    assert page.select_one("#results-count").get_text(strip=True) == "1 customer"
    assert [o["value"] for o in page.select("select#organization option")] == [""]

    # The owner's customer is untouched.
    await sign_out(client)
    await sign_in(client, owner.email)
    page = html(await client.get("/customers/zed-secretary"))
    assert page.select_one("h1").get_text(strip=True) == "Zed Secretary"
    details: dict[str, Any] = {
        d.dt.get_text(strip=True): d.dd.get_text(strip=True) for d in page.select("dl > div")
    }
    assert details["Organization"] == "Hidden Corp"
    page = html(await client.get("/customers"))
    assert page.select_one("#results-count").get_text(strip=True) == "1 customer"
    assert [o["value"] for o in page.select("select#organization option")] == ["", "Hidden Corp"]

"""The customer pages and their forms on both profiles, each with and without HX-Request:
new, show, edit, delete, bulk delete, and the dashboard's cells edited in place."""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar import Litestar

from tests.accounts.conftest import field_error, field_value, flashes, html, post_form
from tests.customers.conftest import (
    HX,
    fragment_roots,
    isolated_cache,
    seed_customers,
    token_of,
)


@pytest.fixture
def app(app: Litestar) -> Litestar:
    return isolated_cache(app)


ANA = {
    "name": "Ana Smith",
    "email": "ana@example.com",
    "phone": "+44 20 7946 0000",
    "organization": "Acme",
    "job_title": "Buyer",
    "notes": "First line\n<script>alert(1)</script> & more",
}


async def hx_post(client: Any, path: str, data: dict[str, str], *, token_page: str) -> Any:
    """Post as htmx does: the CSRF token in the header that <body hx-headers> sets."""
    token = token_of(html(await client.get(token_page)))
    return await client.post(
        path, data=data, headers={**HX, "X-CSRFToken": token}, follow_redirects=False
    )


def textarea_value(page: Any, name: str) -> str:
    """What a browser shows in the textarea: HTML drops one newline right after the tag."""
    text = page.select_one(f"textarea[name={name}]").get_text()
    return text.removeprefix("\n")


def triggered(response: Any) -> dict[str, Any]:
    return json.loads(response.headers.get("hx-trigger", "{}"))


async def test_create_a_customer_without_javascript(client, member):
    page = html(await client.get("/customers/new"))
    form = page.select_one("main form[method=post]")
    assert form["action"] == "/customers"
    assert form["hx-post"] == "/customers"
    assert form["hx-target"] == "#customer"
    names = [field["name"] for field in form.select("input, textarea") if field.get("name")]
    assert names == [
        "_csrf_token",
        "name",
        "email",
        "phone",
        "organization",
        "job_title",
        "notes",
    ]
    response = await post_form(client, "/customers", ANA, form_page="/customers/new")
    assert response.status_code == 303
    assert response.headers["location"] == "/customers/ana-smith"

    response = await client.get("/customers/ana-smith")
    page = html(response)
    assert flashes(page) == ["Customer Ana Smith created."]
    assert page.select_one("h1").get_text(strip=True) == "Ana Smith"
    details = {
        div.dt.get_text(strip=True): div.dd.get_text(strip=True)
        for div in page.select("dl.details > div")
    }
    assert details["Email"] == "ana@example.com"
    assert details["Phone"] == "+44 20 7946 0000"
    assert details["Organization"] == "Acme"
    # Notes: escaped text, line breaks kept (white-space: pre-wrap).
    notes = page.select_one(".notes")
    assert notes.get_text() == ANA["notes"]
    assert page.select_one("main script") is None
    assert "&lt;script&gt;" in response.text
    assert page.select_one("#timeline h2").get_text(strip=True) == "History"


async def test_create_a_customer_with_htmx_swaps_the_details_in(client, member):
    response = await hx_post(client, "/customers", ANA, token_page="/customers/new")
    assert response.status_code == 200
    assert response.headers["hx-push-url"] == "/customers/ana-smith"
    assert triggered(response) == {"customerCreated": {"slug": "ana-smith"}}
    assert "HX-Request" in response.headers["vary"]
    roots = fragment_roots(response)
    assert [(root.name, root["id"]) for root in roots] == [("article", "customer")]
    assert roots[0].select_one(".notice").get_text(strip=True) == "Customer created."
    assert roots[0].select_one("h1").get_text(strip=True) == "Ana Smith"
    assert html(response).title.get_text() == "Ana Smith · CRM"
    # No flash waits for the next page: the notice was shown in place.
    assert flashes(html(await client.get("/customers"))) == []


async def test_invalid_input_is_shown_beside_the_fields_with_what_was_typed(client, member):
    typed = {**ANA, "name": "  ", "email": "not-an-email", "notes": "Keep\nthis"}
    response = await post_form(client, "/customers", typed, form_page="/customers/new")
    assert response.status_code == 422
    page = html(response)
    assert field_error(page, "name") == "Enter a name."
    assert field_error(page, "email") == "Enter an email address like name@example.com."
    assert field_error(page, "phone") is None
    assert field_value(page, "email") == "not-an-email"
    assert field_value(page, "organization") == "Acme"
    assert textarea_value(page, "notes") == "Keep\nthis"
    summary = [a["href"] for a in page.select(".error-summary a")]
    assert summary == ["#name", "#email"]

    response = await hx_post(client, "/customers", typed, token_page="/customers/new")
    assert response.status_code == 422
    roots = fragment_roots(response)
    assert roots[0]["id"] == "customer"
    assert field_error(roots[0], "name") == "Enter a name."
    assert "hx-trigger" not in response.headers


async def test_a_duplicate_email_is_refused_beside_the_field(client, member):
    seed_customers(client, member.email, [{"name": "Ana Smith", "email": "ana@example.com"}])
    data = {"name": "Another Ana", "email": " ANA@example.com "}
    response = await post_form(client, "/customers", data, form_page="/customers/new")
    assert response.status_code == 422
    assert field_error(html(response), "email") == (
        "You already have a customer with this email: Ana Smith."
    )


async def test_a_customer_named_like_a_page_keeps_its_own_address(client, member):
    response = await post_form(
        client,
        "/customers",
        {"name": "New", "email": "new@example.com"},
        form_page="/customers/new",
    )
    assert response.headers["location"] == "/customers/new-2"
    page = html(await client.get("/customers/new-2"))
    assert page.select_one("h1").get_text(strip=True) == "New"
    assert html(await client.get("/customers/new")).select_one("h1").get_text() == "New customer"


async def test_show_returns_the_details_fragment_for_htmx(client, member):
    seed_customers(client, member.email, [ANA])
    response = await client.get("/customers/ana-smith", headers=HX)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["vary"]
    roots = fragment_roots(response)
    assert [root["id"] for root in roots] == ["customer"]
    assert roots[0].select_one("#timeline") is not None
    edit = roots[0].find("a", string="Edit")
    assert edit["href"] == edit["hx-get"] == "/customers/ana-smith/edit"
    assert edit["hx-target"] == "#customer"
    assert (await client.get("/customers/nobody")).status_code == 404


async def test_edit_a_customer_without_javascript(client, member):
    seed_customers(client, member.email, [ANA])
    page = html(await client.get("/customers/ana-smith/edit"))
    assert field_value(page, "name") == "Ana Smith"
    assert field_value(page, "email") == "ana@example.com"
    assert textarea_value(page, "notes") == ANA["notes"]

    changed = {**ANA, "name": "Ana Jones", "organization": ""}
    response = await post_form(
        client, "/customers/ana-smith/edit", changed, form_page="/customers/ana-smith/edit"
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/customers/ana-smith"
    page = html(await client.get("/customers/ana-smith"))
    assert flashes(page) == ["Your changes have been saved."]
    assert page.select_one("h1").get_text(strip=True) == "Ana Jones"

    response = await post_form(
        client,
        "/customers/ana-smith/edit",
        {**changed, "email": ""},
        form_page="/customers/ana-smith/edit",
    )
    assert response.status_code == 422
    page = html(response)
    assert field_error(page, "email") == "Enter an email address."
    assert field_value(page, "name") == "Ana Jones"


async def test_edit_a_customer_in_place_with_htmx(client, member):
    seed_customers(client, member.email, [ANA])
    response = await client.get("/customers/ana-smith/edit", headers=HX)
    assert response.status_code == 200
    roots = fragment_roots(response)
    assert roots[0]["id"] == "customer"
    form = roots[0].select_one("form")
    assert form["hx-post"] == "/customers/ana-smith/edit"
    cancel = roots[0].find("a", string="Cancel")
    assert cancel["hx-get"] == "/customers/ana-smith"

    response = await hx_post(
        client,
        "/customers/ana-smith/edit",
        {**ANA, "job_title": "Head buyer"},
        token_page="/customers/ana-smith/edit",
    )
    assert response.status_code == 200
    assert triggered(response) == {"customerUpdated": {"slug": "ana-smith"}}
    assert response.headers["hx-push-url"] == "/customers/ana-smith"
    roots = fragment_roots(response)
    assert roots[0]["id"] == "customer"
    assert "Head buyer" in roots[0].select_one(".subtitle").get_text()

    response = await hx_post(
        client,
        "/customers/ana-smith/edit",
        {**ANA, "name": "x" * 201},
        token_page="/customers/ana-smith/edit",
    )
    assert response.status_code == 422
    assert field_error(fragment_roots(response)[0], "name") == "Use at most 200 characters."


async def test_delete_a_customer_without_javascript(client, member):
    seed_customers(client, member.email, [ANA, {"name": "Bo Chen", "email": "bo@example.com"}])
    page = html(await client.get("/customers/ana-smith/delete"))
    assert page.select_one("h1").get_text(strip=True) == "Delete Ana Smith?"
    form = page.select_one("main form[method=post]")
    assert form["action"] == "/customers/ana-smith/delete"
    response = await post_form(
        client, "/customers/ana-smith/delete", {}, form_page="/customers/ana-smith/delete"
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/customers"
    page = html(await client.get("/customers"))
    assert flashes(page) == ["Deleted Ana Smith."]
    assert [a.get_text() for a in page.select("#results .customer-link")] == ["Bo Chen"]
    assert (await client.get("/customers/ana-smith")).status_code == 404


async def test_delete_a_customer_with_htmx(client, member):
    seed_customers(client, member.email, [ANA])
    response = await client.get("/customers/ana-smith/delete", headers=HX)
    roots = fragment_roots(response)
    assert roots[0]["id"] == "customer"
    assert roots[0].select_one("form")["hx-post"] == "/customers/ana-smith/delete"
    response = await hx_post(
        client, "/customers/ana-smith/delete", {}, token_page="/customers/ana-smith/delete"
    )
    assert response.status_code == 200
    assert response.headers["hx-redirect"] == "/customers"
    assert triggered(response) == {"customerDeleted": {"slugs": ["ana-smith"]}}
    page = html(await client.get("/customers"))
    assert flashes(page) == ["Deleted Ana Smith."]


def bulk_form(page: Any) -> Any:
    form = page.select_one("form#bulk-form")
    assert form is not None
    return form


async def test_bulk_delete_without_javascript_asks_on_a_page_then_deletes(client, member):
    seed_customers(
        client,
        member.email,
        [
            {"name": "Ana Smith", "email": "ana@example.com", "organization": "Acme"},
            {"name": "Bo Chen", "email": "bo@example.com", "organization": "Acme"},
            {"name": "Cy Dee", "email": "cy@example.com", "organization": "Acme"},
        ],
    )
    page = html(await client.get("/customers?organization=Acme&sort=name"))
    form = bulk_form(page)
    assert form["action"] == "/customers/bulk-delete"
    hidden = {i["name"]: i["value"] for i in form.select("input[type=hidden]")}
    assert hidden["organization"] == "Acme"
    assert hidden["sort"] == "name"
    boxes = page.select("#results tbody input[name=slugs]")
    assert all(box["form"] == "bulk-form" for box in boxes)

    data = {**hidden, "slugs": ["ana-smith", "cy-dee"], "_csrf_token": token_of(page)}
    response = await client.post("/customers/bulk-delete", data=data)
    assert response.status_code == 200
    confirm = html(response)
    assert confirm.select_one("h1").get_text(strip=True) == "Delete 2 customers?"
    listed = [li.strong.get_text() for li in confirm.select(".bulk-list li")]
    assert listed == ["Ana Smith", "Cy Dee"]
    # Nothing is deleted until the confirmation is sent.
    assert len(html(await client.get("/customers")).select("#results tbody tr")) == 3

    form = confirm.select_one("main form[method=post]")
    fields: dict[str, Any] = {}
    for field in form.select("input[type=hidden]"):
        fields.setdefault(field["name"], []).append(field["value"])
    assert fields["confirm"] == ["yes"]
    assert fields["slugs"] == ["ana-smith", "cy-dee"]
    response = await client.post("/customers/bulk-delete", data=fields, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/customers?organization=Acme&sort=name"
    page = html(await client.get(response.headers["location"]))
    assert flashes(page) == ["Deleted 2 customers."]
    assert [a.get_text() for a in page.select("#results .customer-link")] == ["Bo Chen"]


async def test_bulk_delete_with_nothing_selected_says_so(client, member):
    seed_customers(client, member.email, [ANA])
    page = html(await client.get("/customers?q=ana"))
    response = await client.post(
        "/customers/bulk-delete",
        data={"q": "ana", "_csrf_token": token_of(page)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/customers?q=ana"
    assert flashes(html(await client.get("/customers"))) == [
        "Select the customers to delete first."
    ]


async def test_bulk_delete_with_htmx_announces_and_the_table_reloads(client, member):
    seed_customers(
        client,
        member.email,
        [ANA, {"name": "Bo Chen", "email": "bo@example.com"}, {"name": "Cy", "email": "c@x.io"}],
    )
    page = html(await client.get("/customers"))
    form = bulk_form(page)
    assert form["hx-post"] == "/customers/bulk-delete"
    assert form["hx-swap"] == "none"
    assert form["data-confirm-dialog"] == "bulk-confirm"
    assert page.select_one("#results")["hx-trigger"] == "customerDeleted from:body"

    # Not confirmed (no dialog ran): the confirmation replaces the page's main content.
    unconfirmed = {"slugs": ["ana-smith"], "confirm": ""}
    response = await hx_post(client, "/customers/bulk-delete", unconfirmed, token_page="/customers")
    assert response.status_code == 200
    assert response.headers["hx-retarget"] == "#main"
    roots = fragment_roots(response)
    assert roots[0]["id"] == "bulk-delete"

    confirmed = {"slugs": ["ana-smith", "bo-chen"], "confirm": "yes"}
    response = await hx_post(client, "/customers/bulk-delete", confirmed, token_page="/customers")
    assert response.status_code == 200
    event = triggered(response)["customerDeleted"]
    assert sorted(event["slugs"]) == ["ana-smith", "bo-chen"]
    assert event["message"] == "Deleted 2 customers."
    roots = fragment_roots(response)
    assert roots[0]["id"] == "flashes"
    assert roots[0]["hx-swap-oob"] == "true"
    assert roots[0].get_text(strip=True) == "Deleted 2 customers."
    # The message was shown out of band: it does not wait in the session too.
    page = html(await client.get("/customers"))
    assert flashes(page) == []
    assert [a.get_text() for a in page.select("#results .customer-link")] == ["Cy"]


# --- cells ------------------------------------------------------------------------------


async def test_a_cell_becomes_an_input_and_back(client, member):
    seed_customers(client, member.email, [ANA])
    page = html(await client.get("/customers"))
    cell = page.select_one("#cell-ana-smith-email")
    assert cell["hx-get"] == "/customers/ana-smith/cells/email/edit"
    assert cell["hx-trigger"] == "cell-edit"
    assert cell["hx-swap"] == "outerHTML"
    assert [c["data-field"] for c in page.select("#customer-ana-smith [data-cell]")] == [
        "name",
        "email",
        "organization",
        "job_title",
    ]

    response = await client.get("/customers/ana-smith/cells/email/edit", headers=HX)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["vary"]
    roots = fragment_roots(response)
    assert [(r.name, r["id"]) for r in roots] == [("td", "cell-ana-smith-email")]
    form = roots[0].select_one("form")
    assert form["hx-post"] == form["action"] == "/customers/ana-smith/cells/email"
    assert form["hx-target"] == "closest .cell"
    assert form.select_one("input[name=email]")["value"] == "ana@example.com"
    cancel = form.select_one("[data-cell-cancel]")
    assert cancel["hx-get"] == "/customers/ana-smith/cells/email"

    # Without htmx, the same cell on a page of its own.
    page = html(await client.get("/customers/ana-smith/cells/email/edit"))
    assert page.select_one("html") is not None
    assert page.select_one("main td#cell-ana-smith-email input[name=email]") is not None

    # Escape asks for the display cell again.
    response = await client.get("/customers/ana-smith/cells/email", headers=HX)
    roots = fragment_roots(response)
    assert roots[0]["id"] == "cell-ana-smith-email"
    assert roots[0].has_attr("data-cell")
    assert "cell-saved" not in roots[0]["class"]
    page = html(await client.get("/customers/ana-smith/cells/email"))
    assert page.select_one("main #cell-ana-smith-email") is not None

    # The name is a row header, with the link to the customer.
    response = await client.get("/customers/ana-smith/cells/name", headers=HX)
    root = fragment_roots(response)[0]
    assert (root.name, root["scope"]) == ("th", "row")
    assert root.select_one("a.customer-link")["href"] == "/customers/ana-smith"


async def test_saving_a_cell_returns_the_display_cell_that_flashes(client, member):
    seed_customers(client, member.email, [ANA])
    response = await hx_post(
        client,
        "/customers/ana-smith/cells/organization",
        {"organization": "  Globex  "},
        token_page="/customers",
    )
    assert response.status_code == 200
    root = fragment_roots(response)[0]
    assert root["id"] == "cell-ana-smith-organization"
    assert "cell-saved" in root["class"]
    assert root.select_one(".cell-value").get_text() == "Globex"
    assert triggered(response) == {
        "customerUpdated": {"slug": "ana-smith", "fields": ["organization"]}
    }
    # Saving the same value again changes nothing: no flash, no event.
    response = await hx_post(
        client,
        "/customers/ana-smith/cells/organization",
        {"organization": "Globex"},
        token_page="/customers",
    )
    root = fragment_roots(response)[0]
    assert "cell-saved" not in root["class"]
    assert "hx-trigger" not in response.headers
    # An emptied optional cell shows a dash.
    response = await hx_post(
        client, "/customers/ana-smith/cells/job_title", {"job_title": ""}, token_page="/customers"
    )
    assert fragment_roots(response)[0].select_one(".cell-empty") is not None
    page = html(await client.get("/customers/ana-smith"))
    details = {
        d.dt.get_text(strip=True): d.dd.get_text(strip=True) for d in page.select("dl > div")
    }
    assert details["Organization"] == "Globex"
    assert details["Job title"] == "—"


async def test_an_invalid_cell_stays_open_with_its_message(client, member):
    seed_customers(client, member.email, [ANA, {"name": "Bo Chen", "email": "bo@example.com"}])
    for field, value, message in [
        ("name", "   ", "Enter a name."),
        ("email", "nope", "Enter an email address like name@example.com."),
        ("email", "BO@example.com", "You already have a customer with this email: Bo Chen."),
        ("organization", "o" * 201, "Use at most 200 characters."),
    ]:
        response = await hx_post(
            client, f"/customers/ana-smith/cells/{field}", {field: value}, token_page="/customers"
        )
        assert response.status_code == 422, field
        root = fragment_roots(response)[0]
        assert root["id"] == f"cell-ana-smith-{field}"
        assert root.has_attr("data-cell-editing")
        field_input = root.select_one(f"input[name={field}]")
        assert field_input["value"] == value
        assert field_input["aria-invalid"] == "true"
        error = root.find(id=field_input["aria-describedby"])
        assert error.get_text(strip=True).removeprefix("Error:") == message
    page = html(await client.get("/customers/ana-smith"))
    assert page.select_one("h1").get_text(strip=True) == "Ana Smith"


async def test_a_cell_saved_without_javascript_goes_to_the_customer(client, member):
    seed_customers(client, member.email, [ANA])
    response = await post_form(
        client,
        "/customers/ana-smith/cells/job_title",
        {"job_title": "Chief buyer"},
        form_page="/customers/ana-smith/cells/job_title/edit",
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/customers/ana-smith"
    page = html(await client.get("/customers/ana-smith"))
    assert flashes(page) == ["Job title saved."]
    response = await post_form(
        client,
        "/customers/ana-smith/cells/name",
        {"name": ""},
        form_page="/customers/ana-smith/cells/name/edit",
    )
    assert response.status_code == 422
    assert (
        html(response).select_one("main .cell-error").get_text(strip=True).endswith("Enter a name.")
    )


async def test_only_the_table_s_cells_can_be_edited_in_place(client, member):
    seed_customers(client, member.email, [ANA])
    for path in (
        "/customers/ana-smith/cells/notes/edit",
        "/customers/ana-smith/cells/slug",
        "/customers/ana-smith/cells/user_id/edit",
    ):
        assert (await client.get(path, headers=HX)).status_code == 404, path
    response = await hx_post(
        client, "/customers/ana-smith/cells/slug", {"slug": "mine"}, token_page="/customers"
    )
    assert response.status_code == 404


async def test_every_form_needs_its_csrf_token(client, member):
    seed_customers(client, member.email, [ANA])
    posts = {
        "/customers": ANA,
        "/customers/ana-smith/edit": ANA,
        "/customers/ana-smith/delete": {},
        "/customers/ana-smith/cells/name": {"name": "Eve"},
        "/customers/bulk-delete": {"slugs": "ana-smith", "confirm": "yes"},
    }
    for path, data in posts.items():
        for headers in ({}, HX):
            response = await client.post(path, data=data, headers=headers, follow_redirects=False)
            assert response.status_code == 403, path
            response = await client.post(
                path,
                data=data,
                headers={**headers, "X-CSRFToken": "forged"},
                follow_redirects=False,
            )
            assert response.status_code == 403, path
    page = html(await client.get("/customers/ana-smith"))
    assert page.select_one("h1").get_text(strip=True) == "Ana Smith"

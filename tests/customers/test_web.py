"""The dashboard in HTML on both profiles: the empty book, the table, search as you type
(the fragment with HX-Request, the page without), filters, keyset pages walked through
their links, invalid filters in words, and a constant number of queries per page."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar import Litestar

from app.customers.models import ListQuery, Page
from app.customers.web import BAD_CURSOR, Filters
from tests.accounts.conftest import html
from tests.customers.conftest import (
    HX,
    counting_queries,
    fragment_roots,
    isolated_cache,
    numbered,
    seed_customers,
)


@pytest.fixture
def app(app: Litestar) -> Litestar:
    return isolated_cache(app)


def row_slugs(page: Any) -> list[str]:
    return [row["id"].removeprefix("customer-") for row in page.select("#results tbody tr")]


def row_names(page: Any) -> list[str]:
    return [a.get_text(strip=True) for a in page.select("#results tbody .customer-link")]


def results_of(response: Any) -> Any:
    """The results section, whether the response is the page or the fragment."""
    section = html(response).select_one("section#results")
    assert section is not None, response.text[:500]
    return section


async def test_the_dashboard_is_for_verified_people_only(client, newcomer):
    response = await client.get("/customers", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/verify-email"
    await client.post(
        "/logout",
        data={"_csrf_token": html(await client.get("/")).select_one("nav input")["value"]},
    )
    response = await client.get("/customers?q=ana", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fcustomers%3Fq%3Dana"
    # htmx would swap the sign-in page into the table: the whole window goes instead.
    response = await client.get("/customers", headers=HX, follow_redirects=False)
    assert response.headers["hx-redirect"] == "/login?next=%2Fcustomers"


async def test_a_new_book_is_empty_and_says_what_to_do(client, member):
    response = await client.get("/customers")
    assert response.status_code == 200
    page = html(response)
    empty = page.select_one("#results .empty-state")
    assert empty is not None
    assert "Your book is empty" in empty.get_text()
    assert [a["href"] for a in empty.select("a")] == ["/customers/new", "/imports/new"]
    # Nothing to search yet.
    assert page.select_one("form#filters") is None
    assert page.select_one("#results table") is None
    nav = [a.get_text(strip=True) for a in page.select("nav .nav-links a")]
    assert nav == ["Customers", "Audit", "Imports", "Jobs", "Settings"]
    assert page.select_one("nav a[aria-current=page]")["href"] == "/customers"


async def test_home_leads_a_verified_person_to_the_book(client, member):
    # "/" stays the home page (sign-in lands there); its first button opens the book.
    page = html(await client.get("/"))
    assert page.select_one("main .home-book a")["href"] == "/customers"
    assert page.select_one("nav .nav-links a").get_text(strip=True) == "Customers"


async def test_the_empty_book_offers_the_import(client, member):
    empty = html(await client.get("/customers")).select_one("#results .empty-state")
    links = {a.get_text(strip=True): a["href"] for a in empty.select("a")}
    assert links == {"Add a customer": "/customers/new", "Import a CSV": "/imports/new"}


async def test_markup_in_a_customers_values_is_shown_as_text_in_the_table(client, member):
    hostile = {
        "name": "Zoe \"><img src=x onerror=alert(1)> O'Neil & Co",
        "email": "zoe@example.com",
        "organization": "<b>Acme</b> & Sons",
        "job_title": '"Chief" <script>alert(2)</script>',
    }
    seed_customers(client, member.email, [hostile])
    for headers in ({}, HX):
        response = await client.get("/customers", headers=headers)
        assert response.status_code == 200
        page = html(response)
        table = page.select_one("#results table")
        assert table.select("img, script, b") == []
        row = table.select_one("tbody tr")
        cells = {
            cell["data-field"]: cell.select_one(".customer-link, .cell-value").get_text()
            for cell in row.select("[data-cell]")
        }
        assert cells["name"] == hostile["name"]
        assert cells["organization"] == hostile["organization"]
        assert cells["job_title"] == hostile["job_title"]
        assert row.select_one("input[type=checkbox]")["aria-label"] == f"Select {hostile['name']}"
        edit_label = row.select_one(".cell-name .visually-hidden").get_text()
        assert edit_label == f" Edit name of {hostile['name']}"


async def test_the_table_shows_the_book_with_its_count(client, member):
    seed_customers(
        client,
        member.email,
        [
            {"name": "Ana Smith", "email": "ana@example.com", "organization": "Acme"},
            {"name": "Bo Chen", "email": "bo@example.com", "job_title": "CTO"},
            {"name": "Cy Dee", "email": "cy@example.com"},
        ],
    )
    response = await client.get("/customers")
    assert response.status_code == 200
    assert "HX-Request" in response.headers["vary"]
    page = html(response)
    assert page.select_one("#results-count").get_text(strip=True) == "3 customers"
    # Newest first by default.
    assert row_names(page) == ["Cy Dee", "Bo Chen", "Ana Smith"]
    headers = [th.get_text(strip=True) for th in page.select("#results thead th")]
    assert headers == ["", "Name", "Email", "Organization", "Job title", "Created"]
    ana = page.select_one("#customer-ana-smith")
    cells = {
        cell["data-field"]: cell.get_text(" ", strip=True) for cell in ana.select("[data-cell]")
    }
    assert cells["email"].startswith("ana@example.com")
    assert cells["organization"].startswith("Acme")
    assert ana.select_one(".customer-link")["href"] == "/customers/ana-smith"
    assert ana.select_one("input[type=checkbox]")["value"] == "ana-smith"
    # One row is in the Tab order: the first (roving tabindex, static/app.js).
    assert [row["tabindex"] for row in page.select("#results tbody tr")] == ["0", "-1", "-1"]
    assert page.select_one("form#filters")["hx-get"] == "/customers"
    # The keyboard help and the bulk confirmation are dialogs of the page.
    assert page.select_one("dialog#shortcuts-help") is not None
    assert page.select_one("dialog#bulk-confirm") is not None
    # "Export selected" posts the same selection to the export.
    export = page.select_one("#bulk-form button[data-export-selected]")
    assert export["formaction"] == "/exports"
    assert not export.has_attr("disabled")


async def test_one_customer_is_counted_in_the_singular(client, member):
    seed_customers(client, member.email, numbered(1))
    page = html(await client.get("/customers"))
    assert page.select_one("#results-count").get_text(strip=True) == "1 customer"


def test_counts_beyond_the_cap_are_shown_as_a_floor():
    from app.customers.web import _count_text

    capped = Page(items=[], next_cursor=None, prev_cursor=None, count=10_000, count_capped=True)
    assert _count_text(capped, ListQuery()) == "10,000+ customers"
    exact = dataclasses.replace(capped, count=9_999, count_capped=False)
    assert _count_text(exact, ListQuery()) == "9,999 customers"
    # A search by best match with more matches than that is shown newest first, and says so.
    assert _count_text(capped, ListQuery(q="smith")) == (
        "10,000+ customers, newest first. Add a word to rank them by best match"
    )
    ranked = dataclasses.replace(exact, sort="relevance")
    assert _count_text(ranked, ListQuery(q="smith")) == "9,999 customers"
    # Asked for newest first, it needs no explanation.
    assert _count_text(capped, ListQuery(q="smith", sort="-created")) == "10,000+ customers"


async def test_search_as_you_type_returns_the_results_fragment(client, member):
    seed_customers(
        client,
        member.email,
        [
            {"name": "Ana Smith", "email": "ana@example.com", "notes": "Met at the orbital expo."},
            {"name": "Bo Chen", "email": "bo@example.com", "notes": "Prefers tea."},
        ],
    )
    # The search box asks for the fragment as you type, and the URL follows.
    page = html(await client.get("/customers"))
    search = page.select_one("form#filters input#q")
    assert search["type"] == "search"
    assert search["hx-get"] == "/customers"
    assert search["hx-trigger"] == "search, keyup changed delay:200ms"
    assert search["hx-target"] == "#results"
    assert search["hx-push-url"] == "true"
    assert search["hx-include"] == "closest form"
    for name in ("organization", "created_from", "created_to", "sort", "per_page"):
        assert page.select_one(f"form#filters [name={name}]")["hx-trigger"] == "change", name

    response = await client.get("/customers?q=orbi", headers=HX)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["vary"]
    roots = fragment_roots(response)
    assert [(root.name, root.get("id")) for root in roots] == [("section", "results")]
    assert html(response).title.get_text() == "“orbi” · Customers · CRM"
    results = roots[0]
    assert row_names(results) == ["Ana Smith"]
    snippet = results.select_one("#customer-ana-smith .snippet")
    assert snippet.select_one("mark").get_text() == "orbital"
    assert results.select_one("#results-count").get_text(strip=True) == "1 customer"
    # The results reload themselves, with the same search, when customers are deleted.
    assert results["hx-get"] == "/customers?q=orbi"
    assert results["hx-trigger"] == "customerDeleted from:body"

    # Without HX-Request the same URL is the whole page, the search filled in.
    response = await client.get("/customers?q=orbi")
    page = html(response)
    assert page.select_one("html") is not None
    assert page.select_one("input#q")["value"] == "orbi"
    assert row_names(page) == ["Ana Smith"]

    # A search by email, whole or begun.
    for q in ("bo@example.com", "bo@exa"):
        assert row_names(results_of(await client.get("/customers", params={"q": q}))) == ["Bo Chen"]


async def test_a_search_that_finds_nothing_says_so(client, member):
    seed_customers(client, member.email, numbered(2))
    for headers in ({}, HX):
        results = results_of(await client.get("/customers?q=zebra", headers=headers))
        empty = results.select_one(".empty-state")
        assert "No customers match" in empty.get_text()
        assert "“zebra”" in empty.get_text()
        assert empty.select_one("a")["href"] == "/customers"
        assert results.select_one("table") is None


@pytest.mark.parametrize("char", list("\"':*&|!()\\%"))
async def test_special_characters_in_a_search_are_plain_text(client, member, char):
    seed_customers(client, member.email, [{"name": "Ana Smith", "email": "ana@example.com"}])
    for q in (char, f"ana{char}", f"{char}ana", f"ana {char}", f"{char}{char} smi"):
        for headers in ({}, HX):
            response = await client.get("/customers", params={"q": q}, headers=headers)
            assert response.status_code == 200, (q, response.text[:300])
            results_of(response)


async def test_filters_narrow_the_list_and_stay_in_the_form(client, member):
    seed_customers(
        client,
        member.email,
        [
            {"name": "Ana Smith", "email": "ana@example.com", "organization": "Acme"},
            {"name": "Bo Chen", "email": "bo@example.com", "organization": "Globex"},
            {"name": "Cy Dee", "email": "cy@example.com", "organization": "Acme"},
            {"name": "Di Eve", "email": "di@example.com"},
        ],
    )
    page = html(await client.get("/customers"))
    options = [o["value"] for o in page.select("select#organization option")]
    assert options == ["", "Acme", "Globex"]

    page = html(await client.get("/customers?organization=Acme&sort=name"))
    assert row_names(page) == ["Ana Smith", "Cy Dee"]
    assert page.select_one("select#organization option[selected]")["value"] == "Acme"
    assert page.select_one("select#sort option[selected]")["value"] == "name"
    page = html(await client.get("/customers?sort=-name"))
    assert row_names(page) == ["Di Eve", "Cy Dee", "Bo Chen", "Ana Smith"]

    # Created today, in UTC: all of them; from tomorrow on: none.
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    page = html(await client.get(f"/customers?created_from={today}&created_to={today}"))
    assert len(row_names(page)) == 4
    assert page.select_one("input#created_from")["value"] == str(today)
    tomorrow = today + timedelta(days=1)
    page = html(await client.get(f"/customers?created_from={tomorrow}"))
    assert row_names(page) == []
    assert page.select_one("#results .empty-state") is not None

    # Per page: the select keeps the choice and the page holds that many.
    seed_customers(client, member.email, numbered(50))
    page = html(await client.get("/customers?per_page=50"))
    assert len(row_names(page)) == 50
    assert page.select_one("select#per_page option[selected]")["value"] == "50"
    assert page.select_one("#results-count").get_text(strip=True) == "54 customers"


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("created_from=yesterday", "created_from", "Enter a date like 2026-03-01."),
        ("created_to=2026-02-30", "created_to", "Enter a date like 2026-03-01."),
        (
            "created_from=2026-03-02&created_to=2026-03-01",
            "created_to",
            "The end date is before the start date.",
        ),
        ("per_page=1000", "per_page", "Show 25, 50 or 100 customers per page."),
        ("per_page=lots", "per_page", "Show 25, 50 or 100 customers per page."),
        ("sort=shoe-size", "sort", "Sort by name, created or updated (add - for descending)."),
    ],
)
async def test_invalid_filters_are_explained_not_a_server_error(
    client, member, query, field, message
):
    seed_customers(client, member.email, numbered(2))
    response = await client.get(f"/customers?{query}")
    assert response.status_code == 422
    page = html(response)
    control = page.select_one(f"form#filters [name={field}]")
    assert control["aria-invalid"] == "true"
    described = page.find(id=control["aria-describedby"])
    assert described.get_text(strip=True).removeprefix("Error:") == message
    assert message in page.select_one("#results .error-summary").get_text()
    assert page.select_one("#results table") is None

    response = await client.get(f"/customers?{query}", headers=HX)
    assert response.status_code == 422
    roots = fragment_roots(response)
    assert roots[0]["id"] == "results"
    assert message in roots[0].select_one(".error-summary").get_text()


async def test_a_page_link_that_is_not_valid_shows_the_first_page(client, member):
    seed_customers(client, member.email, numbered(3))
    for cursor in ("garbage", "eyJzIjoibmFtZSJ9", "%00%ff"):
        for headers in ({}, HX):
            response = await client.get(f"/customers?cursor={cursor}", headers=headers)
            assert response.status_code == 400
            results = results_of(response)
            assert BAD_CURSOR in results.select_one(".error-summary").get_text()
            assert len(row_names(results)) == 3


async def walk(client: Any, url: str, rel: str, headers: dict[str, str]) -> list[list[str]]:
    """Follow the rel=next (or prev) links from ``url``; the slugs of each page."""
    pages = []
    while url:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, response.text[:500]
        results = results_of(response)
        pages.append(row_slugs(results))
        link = results.select_one(f".pagination a[rel={rel}]")
        if link is not None:
            assert link["hx-get"] == link["href"]
            assert link["hx-push-url"] == "true"
        url = link["href"] if link is not None else None
        assert len(pages) < 20, "the links go round in circles"
    return pages


@pytest.mark.parametrize(
    "query",
    ["", "?sort=name", "?sort=-updated&per_page=25", "?q=person&organization=Acme"],
)
async def test_page_links_walk_every_row_exactly_once(client, member, query):
    seed_customers(client, member.email, numbered(60, organization="Acme"))
    for headers in ({}, HX):
        forward = await walk(client, f"/customers{query}", "next", headers)
        assert [len(page) for page in forward] == [25, 25, 10]
        slugs = [slug for page in forward for slug in page]
        assert len(slugs) == len(set(slugs)) == 60
        # Every link keeps the filters, and the cursor is opaque.
        last = html(await client.get(f"/customers{query}")).select_one(".pagination a[rel=next]")
        params = parse_qs(urlsplit(last["href"]).query)
        for name, values in parse_qs(urlsplit(query).query).items():
            assert params[name] == values
        assert set(params) - set(parse_qs(urlsplit(query).query)) == {"cursor"}

        # And back again from the last page, the same pages in reverse.
        last_page_url = f"/customers{query}"
        for _ in range(2):
            response = await client.get(last_page_url)
            last_page_url = html(response).select_one(".pagination a[rel=next]")["href"]
        backward = await walk(client, last_page_url, "prev", headers)
        assert backward == list(reversed(forward))


def test_the_filter_form_keeps_links_short_and_shareable():
    filters = Filters.from_params({"q": " ana ", "organization": "", "per_page": "50", "x": "y"})
    assert filters.q == "ana"
    assert filters.url("/customers") == "/customers?q=ana&per_page=50"
    assert filters.url("/customers", cursor="abc") == "/customers?q=ana&per_page=50&cursor=abc"
    assert Filters().url("/customers") == "/customers"


async def test_a_list_page_makes_the_same_number_of_queries_whatever_its_size(client, member, app):
    seed_customers(client, member.email, numbered(120, organization="Acme", notes="alpha"))
    # The organization list is cached after the first page; count the pages after it.
    assert (await client.get("/customers")).status_code == 200
    for kind, headers in (("sort=name", {}), ("q=alpha", HX), ("organization=Acme", HX)):
        counts = {}
        for size in (25, 50, 100):
            with counting_queries(app.state.engine) as counted:
                response = await client.get(f"/customers?{kind}&per_page={size}", headers=headers)
            assert response.status_code == 200
            assert len(html(response).select("#results tbody tr")) == size
            counts[size] = counted.count
        assert len(set(counts.values())) == 1, (kind, counts)
        # The signed-in account, the page, its count: nothing per row.
        assert counts[25] <= 3, (kind, counts)

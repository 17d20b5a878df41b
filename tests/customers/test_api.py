"""The customers API as a program using it sees it: CRUD by slug, partial PATCH, validation
answers, cursor pages, search and filters, bearer tokens and rate-limit headers.

Runs on both profiles. People sign up through the accounts API (the verification link is
read from the mail really sent); bulk rows go straight into the table.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from piccolo.querystring import QueryString

from app.customers.tables import Customer as CustomerTable
from tests.accounts.test_api import bearer, in_app_loop, issue_token, verified_user
from tests.fixtures.mailbox import Mailbox

API = "/api/v1/customers"
CUSTOMER_FIELDS = {
    "slug",
    "name",
    "email",
    "phone",
    "organization",
    "job_title",
    "notes",
    "created_at",
    "updated_at",
}
PAGE_FIELDS = {"data", "next_cursor", "prev_cursor", "count", "count_capped", "sort"}
BASE_TIME = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RATE_LIMIT_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")


# --- helpers, shared with test_api_isolation ---------------------------------------------------


class Person:
    """Someone with a verified account and an API token."""

    def __init__(self, client: AsyncTestClient, user_id: int, token: str) -> None:
        self.client = client
        self.user_id = user_id
        self.headers = bearer(token)

    async def get(self, path: str, **params: Any) -> Any:
        return await self.client.get(path, params=params or None, headers=self.headers)

    async def post(self, path: str, body: Any) -> Any:
        return await self.client.post(path, json=body, headers=self.headers)

    async def patch(self, path: str, body: Any) -> Any:
        return await self.client.patch(path, json=body, headers=self.headers)

    async def delete(self, path: str) -> Any:
        return await self.client.delete(path, headers=self.headers)

    async def create(self, **fields: str) -> dict[str, Any]:
        response = await self.post(API, fields)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def list(self, **params: Any) -> dict[str, Any]:
        response = await self.get(API, **params)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        assert set(page) == PAGE_FIELDS
        return page

    async def walk(self, **params: Any) -> tuple[list[str], list[dict[str, Any]]]:
        """Follow next_cursor from the first page to the last: the slugs in order."""
        pages = [await self.list(**params)]
        while pages[-1]["next_cursor"]:
            assert len(pages) < 60, "pagination does not end"
            pages.append(await self.list(**params, cursor=pages[-1]["next_cursor"]))
        return [customer["slug"] for page in pages for customer in page["data"]], pages


async def sign_up(client: AsyncTestClient, mailbox: Mailbox, label: str = "owner") -> Person:
    email = await verified_user(client, mailbox, label)
    issued = await issue_token(client, email)
    me = await client.get("/api/v1/me", headers=bearer(issued["token"]))
    assert me.status_code == 200, me.text
    return Person(client, int(me.json()["id"]), issued["token"])


async def seed(client: AsyncTestClient, user_id: int, rows: Iterable[dict[str, Any]]) -> list[str]:
    """Insert rows straight into the table (test data, not a service call): their slugs."""
    objects = []
    for number, row in enumerate(rows):
        email = row.get("email", f"{uuid.uuid4().hex[:10]}@seed.test")
        created = row.get("created_at", BASE_TIME + timedelta(minutes=number))
        values = {
            "user_id": user_id,
            "slug": row.get("slug", f"seed-{number}-{uuid.uuid4().hex[:6]}"),
            "name": row.get("name", f"Customer {number}"),
            "email": email,
            "email_normalized": email.lower(),
            "phone": row.get("phone", ""),
            "organization": row.get("organization", ""),
            "job_title": row.get("job_title", ""),
            "notes": row.get("notes", ""),
            "created_at": created,
            "updated_at": row.get("updated_at", created),
        }
        objects.append(CustomerTable(**values))

    async def insert() -> list[str]:
        rows = await CustomerTable.insert(*objects).returning(CustomerTable.slug)
        return [row["slug"] for row in rows]

    slugs: list[str] = await in_app_loop(client, insert)
    return slugs


async def seed_many(client: AsyncTestClient, user_id: int, count: int) -> None:
    """``count`` plain rows in one statement, on either database."""
    sql = QueryString(
        """
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {})
        INSERT INTO customers (user_id, slug, name, email, email_normalized, phone,
                               organization, job_title, notes, created_at, updated_at)
        SELECT {}, 'bulk-' || i, 'Bulk ' || i, 'bulk' || i || '@bulk.test',
               'bulk' || i || '@bulk.test', '', 'Bulk Inc', '', 'filler', {}, {}
        FROM n
        """,
        count,
        user_id,
        BASE_TIME,
        BASE_TIME,
    )
    await in_app_loop(client, lambda: CustomerTable.raw("{}", sql))


def ana(**overrides: str) -> dict[str, str]:
    return {"name": "Ana Smith", "email": "ana@example.com"} | overrides


@pytest.fixture
async def owner(client: AsyncTestClient, mailbox: Mailbox) -> Person:
    return await sign_up(client, mailbox, "owner")


# --- CRUD ------------------------------------------------------------------------------------


async def test_create_read_change_delete(owner: Person) -> None:
    created = await owner.post(
        API,
        ana(
            phone="+1 555 0100",
            organization="Acme",
            job_title="CTO",
            notes="Met at the fair.\nLikes tea.",
        ),
    )

    assert created.status_code == 201, created.text
    customer = created.json()
    assert set(customer) == CUSTOMER_FIELDS  # no id, no user id, no email_normalized
    assert customer["slug"] == "ana-smith"
    assert customer["notes"] == "Met at the fair.\nLikes tea."
    created_at = datetime.fromisoformat(customer["created_at"])
    assert created_at.tzinfo is not None
    assert abs(datetime.now(UTC) - created_at) < timedelta(minutes=1)
    assert customer["updated_at"] == customer["created_at"]
    location = created.headers["location"]
    assert location.endswith(f"{API}/ana-smith")
    for name in ("ratelimit-limit", "ratelimit-remaining"):
        assert created.headers[name]

    read = await owner.get(location)
    assert read.status_code == 200
    assert read.json() == customer

    changed = await owner.patch(f"{API}/ana-smith", {"job_title": "CEO"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["job_title"] == "CEO"
    assert datetime.fromisoformat(changed.json()["updated_at"]) > created_at
    assert (await owner.get(f"{API}/ana-smith")).json() == changed.json()

    deleted = await owner.delete(f"{API}/ana-smith")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await owner.get(f"{API}/ana-smith")).status_code == 404
    assert (await owner.delete(f"{API}/ana-smith")).status_code == 404
    assert (await owner.list())["count"] == 0


async def test_patch_changes_only_the_fields_sent(owner: Person) -> None:
    before = await owner.create(**ana(phone="555", organization="Acme", notes="Keep me."))

    renamed = await owner.patch(f"{API}/ana-smith", {"name": "Ana Jones", "phone": ""})

    assert renamed.status_code == 200, renamed.text
    after = renamed.json()
    assert after["name"] == "Ana Jones"
    assert after["phone"] == ""  # "" clears an optional field
    # The slug stays, so old links keep working; the fields not sent keep their values.
    assert after["slug"] == "ana-smith"
    for name in ("email", "organization", "job_title", "notes", "created_at"):
        assert after[name] == before[name], name

    unchanged = await owner.patch(f"{API}/ana-smith", {})
    assert unchanged.status_code == 200
    assert unchanged.json() == after


async def test_values_are_trimmed_and_the_email_compared_without_case(owner: Person) -> None:
    customer = await owner.create(name="  Bo Li ", email=" Bo@Example.com ")
    assert (customer["name"], customer["email"]) == ("Bo Li", "Bo@Example.com")

    duplicate = await owner.post(API, {"name": "Another Bo", "email": "bo@example.COM"})

    assert duplicate.status_code == 422
    assert duplicate.json() == {
        "errors": {"email": "You already have a customer with this email: Bo Li."}
    }


async def test_a_change_to_a_taken_email_is_refused(owner: Person) -> None:
    await owner.create(**ana())
    await owner.create(name="Bob Jones", email="bob@example.com")

    response = await owner.patch(f"{API}/bob-jones", {"email": "ANA@example.com"})

    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"email"}
    assert (await owner.get(f"{API}/bob-jones")).json()["email"] == "bob@example.com"


async def test_the_same_name_gets_the_next_slug(owner: Person) -> None:
    first = await owner.create(**ana())
    second = await owner.create(**ana(email="ana2@example.com"))
    assert (first["slug"], second["slug"]) == ("ana-smith", "ana-smith-2")


# --- invalid input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"email": "ana@example.com"}, {"name"}),
        ({"name": "Ana"}, {"email"}),
        ({"name": " ", "email": "not an email"}, {"name", "email"}),
        ({"name": "A" * 201, "email": "ana@example.com", "notes": "n" * 10_001}, {"name", "notes"}),
        ({"name": "Ana", "email": "ana@example.com", "phone": 5}, {"phone"}),
        ({"name": "Ana", "email": "ana@example.com", "slug": "mine"}, {"slug"}),
        (["Ana", "ana@example.com"], {"body"}),
    ],
    ids=["no-name", "no-email", "blank-and-bad", "too-long", "wrong-type", "unknown", "list"],
)
async def test_an_invalid_new_customer_is_422_field_by_field(
    owner: Person, body: Any, fields: set[str]
) -> None:
    response = await owner.post(API, body)

    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert set(errors) == fields
    assert all(isinstance(message, str) and message for message in errors.values())
    assert (await owner.list())["count"] == 0


async def test_a_body_that_is_not_json_is_422(owner: Person) -> None:
    response = await owner.client.post(
        API, content=b"name=Ana", headers={**owner.headers, "content-type": "application/json"}
    )
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"body"}


@pytest.mark.parametrize(
    ("body", "field"),
    [({"name": ""}, "name"), ({"email": "nope"}, "email"), ({"slug": "x"}, "slug")],
)
async def test_an_invalid_change_is_422_and_changes_nothing(
    owner: Person, body: dict[str, str], field: str
) -> None:
    before = await owner.create(**ana())
    response = await owner.patch(f"{API}/ana-smith", {"job_title": "CEO", **body})
    assert response.status_code == 422, response.text
    assert set(response.json()["errors"]) == {field}
    assert (await owner.get(f"{API}/ana-smith")).json() == before


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"sort": "email"}, "sort"),
        ({"limit": "30"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"created_from": "yesterday"}, "created_from"),
        ({"created_to": "2026-02-30"}, "created_to"),
        ({"created_from": "2026-03-05", "created_to": "2026-03-01"}, "created_to"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
async def test_invalid_list_parameters_are_422_by_name(
    owner: Person, params: dict[str, str], parameter: str
) -> None:
    response = await owner.get(API, **params)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert list(errors) == [parameter]
    assert isinstance(errors[parameter], str)
    assert errors[parameter]


async def test_a_cursor_of_another_sort_is_422(owner: Person, client: AsyncTestClient) -> None:
    await seed(client, owner.user_id, [{} for _ in range(30)])
    by_name = await owner.list(sort="name")
    response = await owner.get(API, sort="-created", cursor=by_name["next_cursor"])
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["cursor"]


# --- pages -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", ["-created", "name", "updated"])
async def test_next_cursors_walk_every_row_exactly_once(
    owner: Person, client: AsyncTestClient, sort: str
) -> None:
    # Creation times and names tie in groups of five, so the order must break ties.
    rows = [
        {
            "name": ["Ana", "Bob", "Cy"][n % 3],
            "created_at": BASE_TIME + timedelta(hours=n // 5),
            "updated_at": BASE_TIME - timedelta(hours=n // 5),
        }
        for n in range(57)
    ]
    seeded = await seed(client, owner.user_id, rows)

    slugs, pages = await owner.walk(sort=sort, limit=25)

    assert [len(page["data"]) for page in pages] == [25, 25, 7]
    assert sorted(slugs) == sorted(seeded)
    assert len(set(slugs)) == len(slugs)
    assert all(page["count"] == 57 and page["count_capped"] is False for page in pages)
    assert pages[0]["prev_cursor"] is None
    assert pages[-1]["next_cursor"] is None

    # And back again from the last page with prev_cursor.
    back = [pages[-1]]
    while back[0]["prev_cursor"]:
        assert len(back) < 10
        back.insert(0, await owner.list(sort=sort, limit=25, cursor=back[0]["prev_cursor"]))
    assert [c["slug"] for page in back for c in page["data"]] == slugs


async def test_the_default_order_is_newest_first_and_limit_picks_the_page_size(
    owner: Person, client: AsyncTestClient
) -> None:
    seeded = await seed(client, owner.user_id, [{} for _ in range(60)])
    page = await owner.list(limit=50)
    assert [c["slug"] for c in page["data"]] == list(reversed(seeded))[:50]
    created = [c["created_at"] for c in page["data"]]
    assert created == sorted(created, reverse=True)


async def test_the_count_is_exact_up_to_10000_then_capped(
    owner: Person, client: AsyncTestClient
) -> None:
    await seed_many(client, owner.user_id, 10_001)
    await seed(client, owner.user_id, [{"notes": "rare orchid"}] * 3)

    everything = await owner.list()
    assert (everything["count"], everything["count_capped"]) == (10_000, True)
    found = await owner.list(q="orchid")
    assert (found["count"], found["count_capped"]) == (3, False)


# --- search and filters ----------------------------------------------------------------------


@pytest.fixture
async def book(owner: Person, client: AsyncTestClient) -> dict[str, str]:
    """A small book: name -> slug."""
    rows = [
        {
            "name": "Ana Smith",
            "email": "ana.smith@acme.test",
            "organization": "Acme",
            "job_title": "CTO",
            "notes": "Loves gardening and orchids.",
            "created_at": datetime(2026, 3, 1, 9, tzinfo=UTC),
        },
        {
            "name": "Bob Jones",
            "email": "bob@globex.test",
            "organization": "Globex",
            "job_title": "Buyer",
            "notes": "Asked about garden furniture.",
            "created_at": datetime(2026, 3, 2, 23, 59, tzinfo=UTC),
        },
        {
            "name": "Cy Young",
            "email": "cy@acme.test",
            "organization": "Acme",
            "job_title": "Engineer",
            "notes": "Plays baseball; O'Brien's friend (50% off!)",
            "created_at": datetime(2026, 3, 3, 0, 0, tzinfo=UTC),
        },
        {
            "name": "Dee Smith",
            "email": "dee@initech.test",
            "organization": "Initech",
            "job_title": "CTO",
            "notes": "",
            "created_at": datetime(2026, 3, 4, 12, tzinfo=UTC),
        },
    ]
    slugs = await seed(client, owner.user_id, rows)
    return {row["name"]: slug for row, slug in zip(rows, slugs, strict=True)}


async def names(owner: Person, **params: Any) -> tuple[set[str], int]:
    page = await owner.list(**params)
    return {c["name"] for c in page["data"]}, page["count"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "smith"}, {"Ana Smith", "Dee Smith"}),  # one word
        ({"q": "smith cto"}, {"Ana Smith", "Dee Smith"}),  # two words, both must match
        ({"q": "smith garden"}, {"Ana Smith"}),  # the last word as a prefix: gardening
        ({"q": "gard"}, {"Ana Smith", "Bob Jones"}),  # prefix into the notes
        ({"q": "ana.smith@acme.test"}, {"Ana Smith"}),  # a whole email
        ({"q": "ana.smith@ac"}, {"Ana Smith"}),  # an email begun
        ({"q": "O'Brien's (50% off!)"}, {"Cy Young"}),  # special characters are text
        ({"q": "nobody-like-this"}, set()),
        ({"organization": "Acme"}, {"Ana Smith", "Cy Young"}),
        ({"organization": "Acme", "q": "engineer"}, {"Cy Young"}),
        ({"created_from": "2026-03-02", "created_to": "2026-03-03"}, {"Bob Jones", "Cy Young"}),
        ({"created_from": "2026-03-04"}, {"Dee Smith"}),
        ({"created_to": "2026-03-01", "q": "smith"}, {"Ana Smith"}),
        ({"q": "&|!:*", "organization": "Initech"}, {"Dee Smith"}),  # punctuation: no query
    ],
)
async def test_search_and_filters_find_the_right_customers(
    owner: Person, book: dict[str, str], params: dict[str, str], expected: set[str]
) -> None:
    found, count = await names(owner, **params)
    assert found == expected
    assert count == len(expected)


async def test_search_ranks_a_name_hit_above_a_notes_hit(
    owner: Person, client: AsyncTestClient
) -> None:
    await seed(
        client,
        owner.user_id,
        [{"name": "Paul Notes", "notes": "garden"}, {"name": "Garden Person", "notes": "x"}],
    )
    page = await owner.list(q="garden")
    assert [c["name"] for c in page["data"]] == ["Garden Person", "Paul Notes"]


# --- the door --------------------------------------------------------------------------------

ROUTES = [
    ("GET", API),
    ("POST", API),
    ("GET", f"{API}/ana-smith"),
    ("PATCH", f"{API}/ana-smith"),
    ("DELETE", f"{API}/ana-smith"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_needs_a_token(client: AsyncTestClient, method: str, path: str) -> None:
    for headers in ({}, bearer("1|" + "x" * 50), {"Authorization": "Basic abc"}):
        response = await client.request(method, path, json={}, headers=headers)
        assert response.status_code == 401, (method, path, headers)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert set(response.json()) == {"error", "status", "request_id"}


async def test_every_route_sends_rate_limit_headers(owner: Person) -> None:
    await owner.create(**ana())
    responses = [
        await owner.get(API),
        await owner.post(API, ana(email="ana2@example.com")),
        await owner.get(f"{API}/ana-smith"),
        await owner.patch(f"{API}/ana-smith", {"phone": "1"}),
        await owner.delete(f"{API}/ana-smith"),
        await owner.get(f"{API}/nobody"),  # errors count too
        await owner.get(API, limit="7"),
    ]
    assert [r.status_code for r in responses] == [200, 201, 200, 200, 204, 404, 422]
    remaining = [int(r.headers["ratelimit-remaining"]) for r in responses]
    assert remaining == sorted(remaining, reverse=True)
    for response in responses:
        for name in RATE_LIMIT_HEADERS:
            assert response.headers[name], name


# --- the published schema --------------------------------------------------------------------


async def test_the_customer_operations_are_documented(client: AsyncTestClient) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    components = schema["components"]["schemas"]

    def model(node: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = components[node["$ref"].rsplit("/", 1)[-1]]
        return found

    collection = schema["paths"][API]
    item = schema["paths"][API + "/{slug}"]
    operations = [collection["get"], collection["post"], item["get"], item["patch"]]
    operations.append(item["delete"])
    for found in operations:
        assert found["tags"] == ["customers"]
        assert found["summary"]
        assert found["security"] == [{"bearer": []}]
        assert {"401", "429"} <= set(found["responses"])

    listed = model(collection["get"]["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(listed["properties"]) == PAGE_FIELDS
    parameters = {p["name"] for p in collection["get"]["parameters"]}
    expected = {"q", "organization", "created_from", "created_to", "sort", "limit", "cursor"}
    assert expected <= parameters
    assert "422" in collection["get"]["responses"]

    created = collection["post"]["responses"]["201"]
    assert set(model(created["content"]["application/json"]["schema"])["properties"]) == (
        CUSTOMER_FIELDS
    )
    assert "Location" in created["headers"]
    new = model(collection["post"]["requestBody"]["content"]["application/json"]["schema"])
    assert set(new["required"]) == {"name", "email"}
    change = model(item["patch"]["requestBody"]["content"]["application/json"]["schema"])
    assert not change.get("required")
    assert set(change["properties"]) == CUSTOMER_FIELDS - {"slug", "created_at", "updated_at"}
    assert "204" in item["delete"]["responses"]
    for found in (item["get"], item["patch"], item["delete"]):
        assert "404" in found["responses"]

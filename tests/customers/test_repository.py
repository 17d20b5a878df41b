"""PiccoloCustomerRepository on both profiles: unique keys, keyset pagination, counts,
organizations, filters, isolation between users, and a constant number of queries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from app.customers.models import CustomerInput, ListQuery, Page
from app.customers.repository import (
    Cursor,
    EmailTaken,
    InvalidCursor,
    PiccoloCustomerRepository,
    SlugTaken,
)
from app.lib.validation import ValidationFailed
from tests.customers.conftest import BASE_TIME

SORTS = ["name", "-name", "created", "-created", "updated", "-updated"]


async def walk(
    repository: PiccoloCustomerRepository, user_id: int, query: ListQuery
) -> tuple[list[int], list[Page]]:
    """Follow Next from the first page to the last: the ids in the order shown."""
    pages = [await repository.list_page(user_id, query)]
    while pages[-1].next_cursor:
        assert len(pages) < 50, "pagination does not end"
        pages.append(
            await repository.list_page(
                user_id, ListQuery(**{**vars(query), "cursor": pages[-1].next_cursor})
            )
        )
    return [item.customer.id for page in pages for item in page.items], pages


async def walk_back(
    repository: PiccoloCustomerRepository, user_id: int, query: ListQuery, last: Page
) -> list[int]:
    """Follow Previous from ``last`` to the first page: the ids in the order shown."""
    pages = [last]
    while pages[0].prev_cursor:
        assert len(pages) < 50, "pagination does not end"
        pages.insert(
            0,
            await repository.list_page(
                user_id, ListQuery(**{**vars(query), "cursor": pages[0].prev_cursor})
            ),
        )
    return [item.customer.id for page in pages for item in page.items]


def seed_rows(count: int) -> list[dict[str, Any]]:
    """Names, creation and update times that tie in groups, so the id must break ties."""
    names = ["Ana Smith", "Bob Jones", "Cy Young", "ana smith", "Ana Smith-Lee"]
    return [
        {
            "name": names[n % len(names)],
            "created_at": BASE_TIME + timedelta(seconds=n // 4),
            "updated_at": BASE_TIME + timedelta(seconds=(count - n) // 3, microseconds=n % 2),
            "organization": ["Acme", "Globex", ""][n % 3],
        }
        for n in range(count)
    ]


def expected_order(rows: list[dict[str, Any]], ids: list[int], sort: str) -> list[int]:
    column = {"name": "name", "created": "created_at", "updated": "updated_at"}[sort.lstrip("-")]
    # Names are ASCII: the databases' collations (C.UTF-8, SQLite BINARY) agree with Python.
    keyed = sorted(zip(ids, rows, strict=True), key=lambda pair: (pair[1][column], pair[0]))
    ordered = [row_id for row_id, _ in keyed]
    return ordered[::-1] if sort.startswith("-") else ordered


# --- unique keys ---------------------------------------------------------------------------


async def test_unique_violations_are_told_apart(
    repository: PiccoloCustomerRepository, user_id: int, other_user_id: int
):
    data = CustomerInput(name="Ana", email="ana@example.com")
    await repository.insert(user_id, "ana", data, "ana@example.com")
    with pytest.raises(SlugTaken):
        await repository.insert(user_id, "ana", data, "other@example.com")
    with pytest.raises(EmailTaken):
        await repository.insert(user_id, "ana-2", data, "ana@example.com")
    # (user_id, ...) keys: another user may hold both.
    theirs = await repository.insert(other_user_id, "ana", data, "ana@example.com")
    assert theirs.slug == "ana"
    await repository.insert(user_id, "bob", data, "bob@example.com")
    with pytest.raises(EmailTaken):
        await repository.update(user_id, "bob", {"email_normalized": "ana@example.com"})


async def test_delete_returns_the_deleted_rows(repository: PiccoloCustomerRepository, user_id: int):
    data = CustomerInput(name="Ana", email="ana@example.com")
    created = await repository.insert(user_id, "ana", data, "ana@example.com")
    assert await repository.delete(user_id, "ana") == [created]
    assert await repository.delete(user_id, "ana") == []


# --- keyset pagination -------------------------------------------------------------------------


@pytest.mark.parametrize("sort", SORTS)
async def test_pages_walk_every_row_once_forwards_and_backwards(
    repository: PiccoloCustomerRepository, user_id: int, other_user_id: int, seed: Any, sort: str
):
    rows = seed_rows(60)
    ids = await seed(user_id, rows)
    await seed(other_user_id, seed_rows(7))
    query = ListQuery(sort=sort, limit=25)

    forwards, pages = await walk(repository, user_id, query)
    assert forwards == expected_order(rows, ids, sort)
    assert [len(page.items) for page in pages] == [25, 25, 10]
    assert pages[0].prev_cursor is None
    assert pages[-1].next_cursor is None
    assert all(page.count == 60 and page.sort == sort for page in pages)

    assert await walk_back(repository, user_id, query, pages[-1]) == forwards


async def test_previous_from_the_second_page_is_the_first_page(
    repository: PiccoloCustomerRepository, user_id: int, seed: Any
):
    await seed(user_id, seed_rows(30))
    first = await repository.list_page(user_id, ListQuery())
    second = await repository.list_page(user_id, ListQuery(cursor=first.next_cursor))
    back = await repository.list_page(user_id, ListQuery(cursor=second.prev_cursor))
    assert back.customers == first.customers
    assert back.prev_cursor is None
    assert back.next_cursor is not None


async def test_the_default_sort_is_newest_first(
    repository: PiccoloCustomerRepository, user_id: int, seed: Any
):
    ids = await seed(user_id, [{"name": "Old"}, {"name": "New"}])
    page = await repository.list_page(user_id, ListQuery())
    assert page.sort == "-created"
    assert [c.id for c in page.customers] == ids[::-1]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "e30",  # {}
        Cursor("name", True, 3, 1).encode(),  # a name that is not text
        Cursor("created", True, "not a date", 1).encode(),
        Cursor("-created", True, "2026-01-01T00:00:00+00:00", 1).encode(),  # another sort
    ],
)
async def test_a_cursor_this_app_did_not_make_is_refused(
    repository: PiccoloCustomerRepository, user_id: int, cursor: str
):
    with pytest.raises(InvalidCursor):
        await repository.list_page(user_id, ListQuery(sort="created", cursor=cursor))


def test_list_query_refuses_what_it_cannot_do():
    with pytest.raises(ValidationFailed) as failed:
        ListQuery(
            sort="email", limit=10, created_from=date(2026, 3, 2), created_to=date(2026, 3, 1)
        )
    assert set(failed.value.errors) == {"sort", "limit", "created_to"}


# --- counts ------------------------------------------------------------------------------------


async def test_count_is_exact_below_the_cap_and_capped_above(
    repository: PiccoloCustomerRepository, user_id: int, seed: Any
):
    await seed(user_id, [{"notes": "alpha"} for _ in range(7)] + [{"notes": "beta"}] * 2)
    everything = ListQuery()
    assert (await repository.count(user_id, everything)).value == 9
    capped = await repository.count(user_id, everything, cap=5)
    assert (capped.value, capped.capped) == (5, True)
    exact = await repository.count(user_id, everything, cap=9)
    assert (exact.value, exact.capped) == (9, False)
    searched = await repository.count(user_id, ListQuery(q="alpha"), cap=6)
    assert (searched.value, searched.capped) == (6, True)
    page = await repository.list_page(user_id, ListQuery(q="alpha"), count_cap=6)
    assert page.count_label == "6+"
    page = await repository.list_page(user_id, ListQuery(q="beta"), count_cap=6)
    assert (page.count_label, page.count_capped) == ("2", False)


async def test_a_search_with_more_matches_than_the_cap_comes_newest_first(
    repository: PiccoloCustomerRepository, user_id: int, seed: Any
):
    # 30 matches: some with "orchid" in the name (the best matches), most in the notes.
    rows = [
        {"name": f"Orchid Grower {n}" if n % 10 == 0 else f"Customer {n}", "notes": "orchid"}
        for n in range(30)
    ] + [{"notes": "tulips"}] * 3
    ids = await seed(user_id, rows)
    matching = ids[:30]
    newest_first = list(reversed(matching))  # seeded a minute apart, oldest first

    def asked(cursor: str | None = None) -> ListQuery:
        return ListQuery(q="orchid", cursor=cursor)

    first = await repository.list_page(user_id, asked(), count_cap=20)
    assert (first.count_label, first.sort) == ("20+", "-created")
    assert [item.customer.id for item in first.items] == newest_first[:25]
    assert all(item.rank is None for item in first.items)
    second = await repository.list_page(user_id, asked(first.next_cursor), count_cap=20)
    assert second.sort == "-created"
    assert [item.customer.id for item in second.items] == newest_first[25:]
    assert second.next_cursor is None
    back = await repository.list_page(user_id, asked(second.prev_cursor), count_cap=20)
    assert [item.customer.id for item in back.items] == newest_first[:25]

    # Under the cap the same search is ranked: the names that match come first.
    ranked = await repository.list_page(user_id, asked(), count_cap=100)
    assert (ranked.count_label, ranked.sort) == ("30", "relevance")
    named = {matching[n] for n in range(0, 30, 10)}
    assert {item.customer.id for item in ranked.items[:3]} == named
    ranks = [item.rank for item in ranked.items]
    assert ranks == sorted(ranks, reverse=True)
    walked, _ = await walk(repository, user_id, asked())
    assert sorted(walked) == sorted(matching)


# --- filters -------------------------------------------------------------------------------------


async def test_created_date_range_is_inclusive_whole_utc_days(
    repository: PiccoloCustomerRepository, user_id: int, seed: Any
):
    rows = [
        {"name": "before", "created_at": datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=UTC)},
        {"name": "first instant", "created_at": datetime(2026, 3, 1, tzinfo=UTC)},
        {
            "name": "last instant",
            "created_at": datetime(2026, 3, 2, 23, 59, 59, 999999, tzinfo=UTC),
        },
        {"name": "after", "created_at": datetime(2026, 3, 3, tzinfo=UTC)},
    ]
    await seed(user_id, rows)
    query = ListQuery(created_from=date(2026, 3, 1), created_to=date(2026, 3, 2), sort="name")
    page = await repository.list_page(user_id, query)
    assert [c.name for c in page.customers] == ["first instant", "last instant"]
    only_from = await repository.list_page(user_id, ListQuery(created_from=date(2026, 3, 2)))
    assert [c.name for c in only_from.customers] == ["after", "last instant"]
    only_to = await repository.list_page(user_id, ListQuery(created_to=date(2026, 2, 28)))
    assert [c.name for c in only_to.customers] == ["before"]


async def test_organizations_are_distinct_sorted_and_ones_own(
    repository: PiccoloCustomerRepository, user_id: int, other_user_id: int, seed: Any
):
    await seed(
        user_id,
        [{"organization": org} for org in ["Globex", "Acme", "", "Acme", "Initech", "Globex"]],
    )
    await seed(other_user_id, [{"organization": "Umbrella"}])
    assert await repository.organizations(user_id) == ["Acme", "Globex", "Initech"]
    assert await repository.organizations(other_user_id) == ["Umbrella"]
    page = await repository.list_page(user_id, ListQuery(organization="Acme"))
    assert page.count == 2
    assert {c.organization for c in page.customers} == {"Acme"}


# --- isolation and query counts -------------------------------------------------------------------


async def test_another_user_never_sees_the_first_users_customers(
    repository: PiccoloCustomerRepository, user_id: int, other_user_id: int, seed: Any
):
    await seed(
        user_id,
        [
            {
                "name": "Secret Person",
                "email": "secret@hidden.test",
                "slug": "secret-person",
                "organization": "Hidden Co",
                "notes": "confidential",
            }
        ],
    )
    for q in ["", "secret", "secret@hidden", "confidential", "Hidden"]:
        page = await repository.list_page(other_user_id, ListQuery(q=q))
        assert (page.items, page.count) == ([], 0)
        assert (await repository.count(other_user_id, ListQuery(q=q))).value == 0
    assert await repository.organizations(other_user_id) == []
    assert await repository.get_by_slug(other_user_id, "secret-person") is None
    assert await repository.get_by_email_normalized(other_user_id, "secret@hidden.test") is None
    assert await repository.update(other_user_id, "secret-person", {"name": "Mine"}) is None
    assert await repository.delete_many(other_user_id, ["secret-person"]) == []
    assert (await repository.get_by_slug(user_id, "secret-person")) is not None


@pytest.mark.parametrize("q", ["", "alpha", "alpha bet"])
async def test_a_page_costs_the_same_queries_whatever_its_size(
    repository: PiccoloCustomerRepository, user_id: int, seed: Any, queries: Any, q: str
):
    await seed(user_id, [{"notes": "alpha beta", "organization": "Acme"} for _ in range(120)])
    counts = []
    for limit in (25, 100):
        with queries() as counted:
            page = await repository.list_page(user_id, ListQuery(q=q, limit=limit))
        assert len(page.items) == limit
        counts.append(counted.count)
    if q:
        # A search by best match counts first (beyond the cap it is not ranked), then
        # reads its page.
        assert counts == [2, 2], "the count, then one query for the page"
    else:
        assert counts == [1, 1], "one query for the rows and their count"

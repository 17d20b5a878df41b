"""Full-text search on both engines: words, prefixes, emails, filters, special characters,
ranking, snippets and relevance paging."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from bs4 import BeautifulSoup

from app.customers.models import CustomerInput, ListQuery
from app.customers.repository import PiccoloCustomerRepository
from app.customers.search import postgres_tsquery, search_words, snippet, sqlite_match
from app.customers.service import CustomerService
from tests.customers.test_repository import walk, walk_back

SPECIAL = ['"', "'", ":", "*", "&", "|", "!", "(", ")", "\\", "%"]


@pytest.fixture
async def book(service: CustomerService, user_id: int) -> dict[str, Any]:
    """A small book made through the service, as a person would make it."""
    people = [
        CustomerInput(
            name="Jane Doe",
            email="jane.doe@example.com",
            organization="Acme Rockets",
            job_title="Chief Engineer",
            notes="Prefers email. Interested in the orbital package.",
        ),
        CustomerInput(
            name="Jean-Luc O'Brien",
            email="jl.obrien+crm@mail-host.example.org",
            organization="Starfleet",
            job_title="Captain",
            notes="Tea, Earl Grey, hot. Offered 100% discount (once).",
        ),
        CustomerInput(
            name="Bob Stone",
            email="bob@stone.test",
            organization="Acme Rockets",
            notes="Met Jane at the fair; wants a quote for orbital rockets.",
        ),
        CustomerInput(name="Orbital Ventures", email="hello@orbital.test"),
    ]
    created = [await service.create(user_id, person) for person in people]
    return {customer.name: customer for customer in created}


async def names(service: CustomerService, user_id: int, **query: Any) -> list[str]:
    page = await service.list_page(user_id, ListQuery(**query))
    return [item.customer.name for item in page.items]


# --- the query builders (pure) -----------------------------------------------------------------


def test_search_words_drop_words_without_letters_or_digits():
    assert search_words(None) == []
    assert search_words("  ") == []
    assert search_words("\" & | ! ( ) \\ % * : '") == []
    assert search_words("jane  doe&co (x") == ["jane", "doe&co", "(x"]
    assert len(search_words(" ".join(["w"] * 40))) == 16


def test_postgres_tsquery_quotes_every_word_and_prefixes_the_last():
    assert postgres_tsquery(["jane", "doe"]) == "'jane' & 'doe':*"
    assert postgres_tsquery(["o'brien"]) == "('o''brien':* | 'o' & 'brien':*)"
    assert postgres_tsquery(["a\\b", "x"]) == "('a\\\\b' | 'a' & 'b') & 'x':*"


def test_sqlite_match_quotes_every_word_and_prefixes_the_last():
    assert sqlite_match(["jane", "doe"]) == '"jane" "doe"*'
    assert sqlite_match(['say"hi', "x:y"]) == '"say""hi" "x:y"*'


# --- finding -----------------------------------------------------------------------------------


async def test_a_word_in_the_notes_finds_the_customer(
    service: CustomerService, user_id: int, book: Any
):
    assert await names(service, user_id, q="earl") == ["Jean-Luc O'Brien"]
    assert await names(service, user_id, q="GREY") == ["Jean-Luc O'Brien"]


async def test_the_last_word_matches_as_a_prefix(service: CustomerService, user_id: int, book: Any):
    assert await names(service, user_id, q="capt") == ["Jean-Luc O'Brien"]
    assert await names(service, user_id, q="starf") == ["Jean-Luc O'Brien"]
    # Only the last word: an earlier word must be whole.
    assert await names(service, user_id, q="capt starfleet") == []


async def test_every_word_must_match(service: CustomerService, user_id: int, book: Any):
    assert sorted(await names(service, user_id, q="acme rockets")) == ["Bob Stone", "Jane Doe"]
    assert await names(service, user_id, q="acme chief") == ["Jane Doe"]
    assert await names(service, user_id, q="acme captain") == []


@pytest.mark.parametrize(
    "typed",
    [
        "jane.doe@example.com",
        "JANE.DOE@EXAMPLE.COM",
        "jane.doe@example.co",
        "jane.doe@exa",
        "jane.doe@",
        "jane.do",
        "example.com",
    ],
)
async def test_an_email_whole_or_begun_finds_the_customer(
    service: CustomerService, user_id: int, book: Any, typed: str
):
    assert await names(service, user_id, q=typed) == ["Jane Doe"]


async def test_an_email_begun_finds_its_owner_first(
    service: CustomerService, user_id: int, book: Any
):
    # "jane." is the word jane: Bob's notes mention Jane, ranked below her own address.
    assert await names(service, user_id, q="jane.") == ["Jane Doe", "Bob Stone"]


@pytest.mark.parametrize(
    "typed",
    [
        "jl.obrien+crm@mail-host.example.org",
        "jl.obrien+crm@mail-host.ex",
        "jl.obrien+crm@mail-h",
        "jl.obrien+c",
        "jl.obrien",
        "mail-host",
    ],
)
async def test_an_email_with_plus_and_hyphen_found_as_it_is_typed(
    service: CustomerService, user_id: int, book: Any, typed: str
):
    assert await names(service, user_id, q=typed) == ["Jean-Luc O'Brien"]


async def test_search_combines_with_organization_dates_and_sort(
    service: CustomerService, user_id: int, book: Any, seed: Any
):
    march = datetime(2026, 3, 10, 9, tzinfo=UTC)
    await seed(
        user_id,
        [
            {"name": "Old Orbital", "organization": "Acme Rockets", "notes": "orbital",
             "created_at": march},
            {"name": "Old Other Org", "organization": "Globex", "notes": "orbital",
             "created_at": march},
        ],
    )  # fmt: skip
    everything = await names(service, user_id, q="orbital", sort="name")
    assert everything == [
        "Bob Stone",
        "Jane Doe",
        "Old Orbital",
        "Old Other Org",
        "Orbital Ventures",
    ]
    acme = await names(service, user_id, q="orbital", organization="Acme Rockets", sort="name")
    assert acme == ["Bob Stone", "Jane Doe", "Old Orbital"]
    in_march = await names(
        service,
        user_id,
        q="orbital",
        organization="Acme Rockets",
        created_from=date(2026, 3, 1),
        created_to=date(2026, 3, 31),
    )
    assert in_march == ["Old Orbital"]
    page = await service.list_page(
        user_id, ListQuery(q="orbital", organization="Acme Rockets", sort="-name")
    )
    assert [c.name for c in page.customers] == ["Old Orbital", "Jane Doe", "Bob Stone"]
    assert page.count == 3


@pytest.mark.parametrize(
    "typed",
    [
        *SPECIAL,
        "".join(SPECIAL),
        " ".join(SPECIAL),
        *(f"jane{char}" for char in SPECIAL),
        *(f"{char}jane" for char in SPECIAL),
        *(f"ja{char}ne" for char in SPECIAL),
        "jane & | ! doe",
        "(jane",
        "jane)",
        "jane:*",
        "jane:A",
        "!jane",
        "'jane'",
        '"jane',
        "jane\\",
        "\\'",
        "''",
        "<->",
        "jane <-> doe",
        "jane NEAR/2 doe",
        "jane OR doe",
        "NOT jane",
        "name:jane",
        "^jane",
        "j%",
        "_",
        "100%",
    ],
)
async def test_special_characters_are_text_never_syntax(
    service: CustomerService, user_id: int, book: Any, typed: str
):
    page = await service.list_page(user_id, ListQuery(q=typed))
    assert page.count == len(page.items)


async def test_special_characters_match_as_the_text_around_them(
    service: CustomerService, user_id: int, book: Any
):
    assert await names(service, user_id, q="o'brien") == ["Jean-Luc O'Brien"]
    assert await names(service, user_id, q="jean-luc") == ["Jean-Luc O'Brien"]
    assert await names(service, user_id, q="100%") == ["Jean-Luc O'Brien"]
    assert await names(service, user_id, q="(once)") == ["Jean-Luc O'Brien"]
    assert await names(service, user_id, q='"earl grey"') == ["Jean-Luc O'Brien"]
    assert sorted(await names(service, user_id, q="jane:")) == ["Bob Stone", "Jane Doe"]


async def test_a_query_of_punctuation_only_is_no_query(
    service: CustomerService, user_id: int, book: Any
):
    page = await service.list_page(user_id, ListQuery(q=" & | ! "))
    assert page.sort == "-created"
    assert page.count == 4
    assert all(item.snippet is None for item in page.items)


# --- ranking and snippets ----------------------------------------------------------------------


async def test_a_name_hit_ranks_above_a_notes_hit(
    service: CustomerService, user_id: int, book: Any
):
    page = await service.list_page(user_id, ListQuery(q="orbital"))
    assert page.sort == "relevance"
    ranked = [item.customer.name for item in page.items]
    assert ranked[0] == "Orbital Ventures"
    assert sorted(ranked[1:]) == ["Bob Stone", "Jane Doe"]
    ranks = [item.rank for item in page.items]
    assert all(rank is not None for rank in ranks)
    assert ranks == sorted(ranks, reverse=True)  # type: ignore[type-var]


async def test_the_snippet_highlights_matches_and_escapes_the_notes(
    service: CustomerService, user_id: int
):
    notes = '<script>alert("x")</script> Loves <b>pizza</b> & pizzas & "pasta".'
    await service.create(
        user_id, CustomerInput(name="Mallory", email="mallory@example.com", notes=notes)
    )
    page = await service.list_page(user_id, ListQuery(q="pizz"))
    html = page.items[0].snippet
    assert html is not None
    parsed = BeautifulSoup(html, "html.parser")
    assert [mark.get_text() for mark in parsed.find_all("mark")] == ["pizza", "pizzas"]
    assert parsed.find("script") is None
    assert parsed.find("b") is None
    assert "&lt;script&gt;" in html
    assert "&amp;" in html
    assert parsed.get_text() == notes, "the whole note, as text, nothing lost or added"
    assert page.items[0].snippet_html is not None
    assert str(page.items[0].snippet_html) == html


async def test_no_snippet_when_the_notes_do_not_match(
    service: CustomerService, user_id: int, book: Any
):
    page = await service.list_page(user_id, ListQuery(q="starfleet"))
    assert [item.snippet for item in page.items] == [None]
    plain = await service.list_page(user_id, ListQuery())
    assert all(item.snippet is None for item in plain.items)


def test_snippet_shows_the_text_around_the_first_match():
    notes = " ".join(f"word{n}" for n in range(100)) + " needle " + "tail " * 80
    excerpt = snippet(notes, ["needle"])
    assert excerpt is not None
    assert excerpt.startswith("… ")
    assert excerpt.endswith(" …")
    assert "<mark>needle</mark>" in excerpt
    assert len(excerpt) < 260
    assert (
        snippet("short note about a needle", ["needle"]) == "short note about a <mark>needle</mark>"
    )
    assert snippet("Zoë's café", ["cafe"]) == "Zoë&#x27;s <mark>café</mark>"
    assert snippet("line one\n\nline   two", ["two"]) == "line one line <mark>two</mark>"
    assert snippet("nothing here", ["absent"]) is None
    assert snippet("", ["x"]) is None


# --- relevance paging ---------------------------------------------------------------------------


async def test_relevance_pages_walk_every_hit_once_both_ways(
    repository: PiccoloCustomerRepository, user_id: int, other_user_id: int, seed: Any
):
    # Ranks tie in groups (same text), so the id has to break the ties.
    rows = [
        {"name": f"Person {n}", "notes": " ".join(["alpha"] * (1 + n % 4)) + " filler"}
        for n in range(55)
    ]
    rows += [{"name": "Alpha Prime"}, {"name": "Nobody", "notes": "beta"}]
    ids = await seed(user_id, rows)
    await seed(other_user_id, [{"name": "Alpha Elsewhere", "notes": "alpha"}])
    query = ListQuery(q="alpha")
    forwards, pages = await walk(repository, user_id, query)
    assert sorted(forwards) == sorted(ids[:56])
    assert len(forwards) == len(set(forwards)) == 56
    assert forwards[0] == ids[55], "the name hit first"
    ranks = [item.rank for page in pages for item in page.items]
    assert ranks == sorted(ranks, reverse=True)  # type: ignore[type-var]
    assert all(page.sort == "relevance" and page.count == 56 for page in pages)
    assert await walk_back(repository, user_id, query, pages[-1]) == forwards

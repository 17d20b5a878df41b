"""The audit trail in the browser, on both profiles: a customer's timeline (the fragment
with HX-Request, the page without), an inline edit showing up in it at once, "Load older"
across the archive boundary, /audit and its filters, and a constant number of queries a
page."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar import Litestar

from app.audit.context import AuditContext
from app.audit.service import AuditService
from app.audit.tables import AuditLog
from jobs.audit import archive_audit_logs
from tests.accounts.conftest import (
    csrf_token,
    flashes,
    html,
    in_app,
)
from tests.accounts.conftest import (
    member as member,
)
from tests.audit.conftest import counting_statements
from tests.customers.conftest import HX, fragment_roots, isolated_cache

ADDRESS = "198.51.100.40"


@pytest.fixture
def app(app: Litestar) -> Litestar:
    return isolated_cache(app)


# --- helpers, shared with the other audit web tests ----------------------------------------


async def add_customer(client: Any, name: str, email: str, **values: str) -> str:
    """Add a customer through the new-customer form; its slug."""
    page = html(await client.get("/customers/new"))
    form = {"name": name, "email": email, **values, "_csrf_token": csrf_token(page)}
    response = await client.post("/customers", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    return str(response.headers["location"]).rsplit("/", 1)[1]


async def edit_cell(client: Any, slug: str, field: str, value: str, *, htmx: bool = True) -> Any:
    """Edit one cell of the dashboard in place, as its inline form does."""
    page = html(await client.get("/customers"))
    headers = {**(HX if htmx else {}), "x-forwarded-for": ADDRESS}
    return await client.post(
        f"/customers/{slug}/cells/{field}",
        data={field: value, "_csrf_token": csrf_token(page)},
        headers=headers,
        follow_redirects=False,
    )


def entries_of(soup: Any) -> list[Any]:
    return list(soup.select("li.audit-entry"))


def change_texts(entry: Any) -> list[str]:
    return [" ".join(li.get_text(" ", strip=True).split()) for li in entry.select(".audit-change")]


def entry_ids(soup: Any) -> list[int]:
    return [int(li["data-entry-id"]) for li in entries_of(soup)]


async def user_id_of(client: Any, email: str) -> int:
    from app.accounts.repository import PiccoloAccountRepository

    account = in_app(client, PiccoloAccountRepository().get_by_email, email)
    return int(account.id)


def customer_service(client: Any, user_id: int) -> Any:
    """The app's customer service, audited as this user's own writes would be."""
    from app.customers.dependencies import customer_repository_of

    audit = AuditService(
        storage=client.app.state.storage,
        customers=customer_repository_of(client.app),
        emit=client.app.emit,
    )
    return audit.customer_service(AuditContext(actor_id=user_id, ip="192.0.2.1"))


# --- the timeline -------------------------------------------------------------------------------


async def test_the_customer_page_loads_its_timeline_lazily_or_links_to_it(client, member):
    slug = await add_customer(client, "Rosa Diaz", "rosa@example.com")
    page = html(await client.get(f"/customers/{slug}"))
    section = page.select_one("section#timeline")
    assert section is not None
    assert section["hx-get"] == f"/customers/{slug}/timeline"
    triggers = [t.strip() for t in section["hx-trigger"].split(",")]
    assert triggers == ["revealed", "customerUpdated from:body"]
    # Without JavaScript, a plain link to the whole history.
    link = section.select_one("a.timeline-link")
    assert link is not None
    assert link.get_text(strip=True) == "Show history"
    assert link["href"] == f"/customers/{slug}/timeline"


async def test_timeline_is_a_fragment_for_htmx_and_a_page_without(client, member):
    slug = await add_customer(client, "Rosa Diaz", "rosa@example.com")
    response = await client.get(f"/customers/{slug}/timeline", headers=HX)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["vary"]
    roots = fragment_roots(response)
    assert [root.name for root in roots] == ["ol"]
    [created] = entries_of(html(response))
    assert created.select_one(".audit-event").get_text(strip=True) == "Created"
    assert created.select_one(".audit-actor").get_text(strip=True) == member.name

    page = html(await client.get(f"/customers/{slug}/timeline"))
    assert page.select_one("h1").get_text(strip=True) == "History of Rosa Diaz"
    assert len(entries_of(page)) == 1


async def test_an_inline_edit_appears_at_once_with_old_new_actor_and_ip(client, member):
    slug = await add_customer(client, "Rosa Diaz", "rosa@example.com", organization="")
    response = await edit_cell(client, slug, "organization", "Nine-Nine <b>Precinct</b>")
    assert response.status_code == 200
    assert "customerUpdated" in response.headers["hx-trigger"]

    fragment = html(await client.get(f"/customers/{slug}/timeline", headers=HX))
    newest = entries_of(fragment)[0]
    assert newest.select_one(".audit-event").get_text(strip=True) == "Updated"
    assert change_texts(newest) == ["Organization: — → changed to Nine-Nine <b>Precinct</b>"]
    assert newest.select_one(".audit-new b") is None  # escaped, not markup
    assert newest.select_one(".audit-actor").get_text(strip=True) == member.name
    ip = newest.select_one(".audit-ip").get_text(strip=True)
    assert ip.startswith("IP ")
    assert ip != "IP "
    when = newest.select_one("time.audit-when")
    assert when.get_text(strip=True).endswith(" UTC")
    assert datetime.fromisoformat(when["datetime"]).tzinfo is not None

    await edit_cell(client, slug, "organization", "")
    newest = entries_of(html(await client.get(f"/customers/{slug}/timeline", headers=HX)))[0]
    assert change_texts(newest) == ["Organization: Nine-Nine <b>Precinct</b> → changed to —"]


async def test_load_older_walks_every_entry_once_across_the_archive_boundary(
    client, member, settings
):
    slug = await add_customer(client, "Rosa Diaz", "rosa@example.com")
    user_id = await user_id_of(client, member.email)
    service = customer_service(client, user_id)

    async def edits() -> None:
        for number in range(1, 60):
            await service.update(user_id, slug, {"job_title": f"Detective {number}"})

    in_app(client, edits)

    async def age_oldest_half() -> list[int]:
        rows = (
            await AuditLog.select(AuditLog.id, AuditLog.created_at)
            .where(AuditLog.user_id == user_id)
            .order_by(AuditLog.id)
        )
        ids = [int(row["id"]) for row in rows]
        # The oldest 30 move 200 days back, a minute apart, keeping their order.
        start = datetime.now(UTC) - timedelta(days=200)
        for number, entry_id in enumerate(ids[:30]):
            await AuditLog.update({AuditLog.created_at: start + timedelta(minutes=number)}).where(
                AuditLog.id == entry_id
            )
        return ids

    all_ids = in_app(client, age_oldest_half)
    assert len(all_ids) == 60

    async def archive() -> dict[str, int]:
        ctx = {
            "settings": replace(settings, audit_archive_after_days=30),
            "engine": client.app.state.engine,
            "storage": client.app.state.storage,
        }
        return await archive_audit_logs(ctx)

    done = in_app(client, archive)
    assert done["entries"] == 30

    seen: list[int] = []
    archived: list[bool] = []
    url: str | None = f"/customers/{slug}/timeline"
    pages = 0
    while url:
        soup = html(await client.get(url, headers=HX))
        seen += entry_ids(soup)
        archived += [bool(li.select_one(".audit-archived")) for li in entries_of(soup)]
        more = soup.select_one(".load-older a")
        url = more["hx-get"] if more else None
        pages += 1
    assert seen == sorted(all_ids, reverse=True)
    assert archived == [False] * 30 + [True] * 30
    assert pages == 3

    # Without JavaScript the same walk follows the links' href.
    page = html(await client.get(f"/customers/{slug}/timeline"))
    href = page.select_one(".load-older a")["href"]
    query = parse_qs(urlsplit(href).query)
    assert set(query) == {"cursor"}
    older = html(await client.get(href))
    assert entry_ids(older) == sorted(all_ids, reverse=True)[25:50]


async def test_a_timeline_page_costs_the_same_queries_for_25_or_100_entries(
    client, member, settings
):
    slug = await add_customer(client, "Rosa Diaz", "rosa@example.com")
    user_id = await user_id_of(client, member.email)
    service = customer_service(client, user_id)

    async def edits() -> None:
        for number in range(120):
            await service.update(user_id, slug, {"job_title": f"Detective {number}"})

    in_app(client, edits)
    engine = client.app.state.engine

    async def count(limit: int) -> int:
        await client.get(f"/customers/{slug}/timeline?limit={limit}", headers=HX)  # warm caches
        with counting_statements(engine) as statements:
            response = await client.get(f"/customers/{slug}/timeline?limit={limit}", headers=HX)
        assert len(entries_of(html(response))) == limit
        return len(statements)

    small, large = await count(25), await count(100)
    assert small == large
    assert small <= 6


async def test_another_persons_timeline_and_a_bad_cursor(client, member):
    slug = await add_customer(client, "Rosa Diaz", "rosa@example.com")
    response = await client.get(f"/customers/{slug}/timeline?cursor=nonsense", headers=HX)
    assert response.status_code == 400
    assert len(entries_of(html(response))) == 1
    assert (await client.get("/customers/no-such-one/timeline")).status_code == 404


# --- /audit --------------------------------------------------------------------------------------


async def test_audit_lists_filters_and_pages_without_javascript(client, member):
    rosa = await add_customer(client, "Rosa Diaz", "rosa@example.com")
    jake = await add_customer(client, "Jake Peralta", "jake@example.com")
    await edit_cell(client, rosa, "job_title", "Sergeant")
    await edit_cell(client, jake, "job_title", "Detective")

    page = html(await client.get("/audit"))
    assert page.select_one("nav a[aria-current=page]").get_text(strip=True) == "Audit"
    assert len(entries_of(page)) == 4
    assert page.select_one("#audit-filters select[name=event]") is not None

    updated = html(await client.get("/audit?event=updated"))
    assert [e.select_one(".audit-event").get_text(strip=True) for e in entries_of(updated)] == [
        "Updated",
        "Updated",
    ]
    by_slug = html(await client.get(f"/audit?customer={rosa}"))
    labels = {e.select_one(".audit-customer a").get_text(strip=True) for e in entries_of(by_slug)}
    assert labels == {"Rosa Diaz <rosa@example.com>"}
    by_text = html(await client.get("/audit?customer=Peralta"))
    assert len(entries_of(by_text)) == 2
    today = datetime.now(UTC).date()
    dated = html(await client.get(f"/audit?date_from={today}&date_to={today}"))
    assert len(entries_of(dated)) == 4
    yesterday = today - timedelta(days=1)
    assert entries_of(html(await client.get(f"/audit?date_to={yesterday}"))) == []

    response = await client.get("/audit?date_from=soon&customer=nobody-at-all")
    assert response.status_code == 422
    soup = html(response)
    assert soup.select_one("#date_from-error") is not None

    # Keyset pages: Next goes on, each entry once.
    async def edits() -> None:
        user_id = await _user_id(member.email)
        service = customer_service(client, user_id)
        for number in range(30):
            await service.update(user_id, rosa, {"notes": f"note {number}"})

    async def _user_id(email: str) -> int:
        from app.accounts.repository import PiccoloAccountRepository

        account = await PiccoloAccountRepository().get_by_email(email)
        assert account is not None
        return int(account.id)

    in_app(client, edits)
    first = html(await client.get("/audit"))
    next_link = first.select_one("a[rel=next]")
    second = html(await client.get(next_link["href"]))
    ids = entry_ids(first) + entry_ids(second)
    assert len(ids) == 34
    assert len(set(ids)) == 34
    assert ids == sorted(ids, reverse=True)
    assert second.select_one("a[rel=next]") is None


async def test_audit_results_are_a_fragment_for_htmx(client, member):
    await add_customer(client, "Rosa Diaz", "rosa@example.com")
    response = await client.get("/audit?event=created", headers=HX)
    assert response.status_code == 200
    roots = fragment_roots(response)
    assert [(root.name, root.get("id")) for root in roots] == [("section", "audit-results")]
    form = html(await client.get("/audit")).select_one("form#audit-filters")
    assert form["hx-push-url"] == "true"
    assert form["method"] == "get"


async def test_a_deleted_customers_history_stays_reachable_and_restorable(client, member):
    slug = await add_customer(client, "Rosa Diaz", "rosa@example.com")
    await edit_cell(client, slug, "job_title", "Sergeant")
    page = html(await client.get(f"/customers/{slug}/delete"))
    response = await client.post(
        f"/customers/{slug}/delete",
        data={"_csrf_token": csrf_token(page)},
        follow_redirects=False,
    )
    assert response.status_code == 303

    trail = html(await client.get("/audit"))
    deleted = entries_of(trail)[0]
    assert deleted.select_one(".audit-event").get_text(strip=True) == "Deleted"
    assert "(deleted)" in deleted.select_one(".audit-customer").get_text(" ", strip=True)
    history = deleted.select_one("a.audit-history-link")["href"]
    only_rosa = html(await client.get(history))
    assert len(entries_of(only_rosa)) == 3
    # An update of a deleted customer offers no restore of values; the deletion does.
    assert [
        e.select_one("button").get_text(strip=True) if e.select_one("button") else None
        for e in entries_of(only_rosa)
    ] == ["Restore customer", None, None]

    form = deleted.select_one("form.audit-restore")
    response = await client.post(
        form["action"], data={"_csrf_token": csrf_token(trail, form)}, follow_redirects=False
    )
    assert response.status_code == 303
    new_slug = response.headers["location"].rsplit("/", 1)[1]
    shown = html(await client.get(response.headers["location"]))
    assert shown.select_one("h1").get_text(strip=True) == "Rosa Diaz"
    assert flashes(shown) == ["Restored Rosa Diaz as a customer."]
    timeline = html(await client.get(f"/customers/{new_slug}/timeline", headers=HX))
    events = [e.select_one(".audit-event").get_text(strip=True) for e in entries_of(timeline)]
    # The newest entry is the restore (SQLite may give the new row the old id back, and
    # with it the old history; PostgreSQL never reuses an id).
    assert events[0] == "Restored"


async def test_two_requests_at_once_do_not_break_a_page(client, member):
    slug = await add_customer(client, "Rosa Diaz", "rosa@example.com")
    responses = await asyncio.gather(
        client.get(f"/customers/{slug}/timeline", headers=HX), client.get("/audit", headers=HX)
    )
    assert [r.status_code for r in responses] == [200, 200]


async def test_markup_in_recorded_values_is_shown_as_text(client, member):
    name = 'Zoe "><img src=x onerror=alert(1)> & Co'
    slug = await add_customer(client, name, "zoe@example.com", job_title="<b>Boss</b>")
    await edit_cell(client, slug, "job_title", "<script>alert(2)</script>")
    for path in (f"/customers/{slug}/timeline", "/audit"):
        page = html(await client.get(path, headers=HX))
        entries = entries_of(page)
        assert entries, path
        assert page.select("img, script, b") == [], path
        change = entries[0].select_one(".audit-change")
        assert change.select_one(".audit-old").get_text() == "<b>Boss</b>"
        assert change.select_one(".audit-new").get_text() == "<script>alert(2)</script>"
    customer = html(await client.get("/audit")).select_one(".audit-customer a")
    assert customer.get_text() == f"{name} <zoe@example.com>"

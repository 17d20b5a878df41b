"""Reading a trail (filters, keyset pages, one cursor) and restoring from it; another
user's entries are not found, wherever they are asked for."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.audit.context import AuditContext
from app.audit.models import AuditEntry
from app.audit.service import (
    AuditEntryNotFound,
    AuditService,
    InvalidCursor,
    RestoreRefused,
)
from app.customers.models import CustomerInput
from app.customers.service import CustomerService
from app.lib.validation import ValidationFailed
from tests.audit.conftest import START, Clock

ANA = CustomerInput(name="Ana Smith", email="ana@example.com", organization="Acme")
BO = CustomerInput(name="Bo Lund", email="bo@example.com")


async def walk(audit: AuditService, user_id: int, **filters: object) -> list[AuditEntry]:
    """Every page, following next_cursor."""
    found: list[AuditEntry] = []
    cursor = None
    for _ in range(100):
        page = await audit.trail(user_id, cursor=cursor, **filters)  # type: ignore[arg-type]
        found += page.entries
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor
    raise AssertionError("pagination does not end")


async def test_pages_run_newest_first_and_filter(
    customers: CustomerService, audit: AuditService, user_id: int, clock: Clock
) -> None:
    ana = await customers.create(user_id, ANA)
    bo = await customers.create(user_id, BO)
    for number in range(6):
        clock.advance(days=1)
        await customers.update(user_id, ana.slug, {"notes": f"note {number}"})
    clock.advance(days=1)
    await customers.delete(user_id, bo.slug)

    everything = await walk(audit, user_id, limit=3)
    assert [e.id for e in everything] == sorted((e.id for e in everything), reverse=True)
    assert len(everything) == 9
    first = await audit.trail(user_id, limit=3)
    assert len(first.entries) == 3
    assert first.next_cursor

    assert [e.event for e in await walk(audit, user_id, customer_id=bo.id, limit=1)] == [
        "deleted",
        "created",
    ]
    assert len(await walk(audit, user_id, event="updated", limit=4)) == 6
    day = (START + timedelta(days=2)).date()
    in_range = await walk(audit, user_id, date_from=day, date_to=day + timedelta(days=1))
    assert [e.new_values for e in in_range] == [{"notes": "note 2"}, {"notes": "note 1"}]


async def test_bad_filters_and_cursors_are_refused_in_words(
    audit: AuditService, user_id: int
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await audit.trail(user_id, event="renamed")
    assert "event" in refused.value.errors
    with pytest.raises(ValidationFailed):
        await audit.trail(user_id, date_from=date(2026, 2, 2), date_to=date(2026, 2, 1))
    with pytest.raises(ValidationFailed):
        await audit.trail(user_id, limit=0)
    for cursor in ("not-a-cursor", "eyJrIjpbMSwyXX0", ""):
        if cursor:
            with pytest.raises(InvalidCursor):
                await audit.trail(user_id, cursor=cursor)


async def test_restore_an_update_applies_the_old_values_as_a_restored_entry(
    customers: CustomerService,
    audit: AuditService,
    user_id: int,
    context: AuditContext,
) -> None:
    ana = await customers.create(user_id, ANA)
    await customers.update(user_id, ana.slug, {"organization": "Globex", "job_title": "CFO"})
    await customers.update(user_id, ana.slug, {"job_title": "CEO"})
    first_update = (await audit.trail(user_id, event="updated")).entries[-1]

    restored = await audit.restore_update(user_id, first_update.id, context)

    assert (restored.organization, restored.job_title) == ("Acme", "")
    latest = (await audit.trail(user_id, limit=1)).entries[0]
    assert latest.event == "restored"
    assert latest.old_values == {"organization": "Globex", "job_title": "CEO"}
    assert latest.new_values == {"organization": "Acme", "job_title": ""}
    assert (latest.actor_id, latest.ip, latest.customer_id) == (user_id, "203.0.113.9", ana.id)
    # Restoring values that are already there writes nothing.
    await audit.restore_update(user_id, first_update.id, context)
    assert (await audit.trail(user_id, limit=1)).entries[0].id == latest.id
    # The restore can itself be undone.
    undone = await audit.restore_update(user_id, latest.id, context)
    assert (undone.organization, undone.job_title) == ("Globex", "CEO")
    assert (await audit.verify_chain(user_id)).intact


async def test_restore_a_deleted_customer_recreates_it_under_a_free_slug(
    customers: CustomerService,
    audit: AuditService,
    user_id: int,
    context: AuditContext,
) -> None:
    ana = await customers.create(user_id, ANA)
    await customers.delete(user_id, ana.slug)
    deletion = (await audit.trail(user_id, event="deleted")).entries[0]
    # Someone else now has the slug (another Ana Smith), not the email.
    other = await customers.create(user_id, CustomerInput(name="Ana Smith", email="a2@x.test"))
    assert other.slug == ana.slug

    back = await audit.restore_deleted(user_id, deletion.id, context)

    assert back.slug == "ana-smith-2"
    assert (back.name, back.email, back.organization) == ("Ana Smith", "ana@example.com", "Acme")
    latest = (await audit.trail(user_id, limit=1)).entries[0]
    assert (latest.event, latest.customer_id) == ("restored", back.id)
    assert latest.old_values is None
    assert latest.new_values == back.editable_values()
    # Twice is refused: the email is taken, by the customer restored the first time.
    with pytest.raises(ValidationFailed):
        await audit.restore_deleted(user_id, deletion.id, context)


async def test_restore_refuses_entries_it_cannot_apply(
    customers: CustomerService, audit: AuditService, user_id: int, context: AuditContext
) -> None:
    ana = await customers.create(user_id, ANA)
    await customers.update(user_id, ana.slug, {"notes": "x"})
    created, updated = sorted((await audit.trail(user_id)).entries, key=lambda e: e.id)
    with pytest.raises(RestoreRefused):
        await audit.restore_update(user_id, created.id, context)
    with pytest.raises(RestoreRefused):
        await audit.restore_deleted(user_id, updated.id, context)
    await customers.delete(user_id, ana.slug)
    with pytest.raises(RestoreRefused, match="deleted"):
        await audit.restore_update(user_id, updated.id, context)


async def test_another_users_entries_are_not_found(
    customers: CustomerService,
    audit: AuditService,
    user_id: int,
    other_user_id: int,
    context: AuditContext,
) -> None:
    ana = await customers.create(user_id, ANA)
    await customers.update(user_id, ana.slug, {"notes": "x"})
    await customers.delete(user_id, ana.slug)
    mine = (await audit.trail(user_id)).entries
    intruder = AuditContext(actor_id=other_user_id)

    for entry in mine:
        with pytest.raises(AuditEntryNotFound):
            await audit.get_entry(other_user_id, entry.id)
        with pytest.raises(AuditEntryNotFound):
            await audit.restore_update(other_user_id, entry.id, intruder)
        with pytest.raises(AuditEntryNotFound):
            await audit.restore_deleted(other_user_id, entry.id, intruder)
    assert (await audit.trail(other_user_id, customer_id=ana.id)).entries == []
    assert (await audit.trail(other_user_id)).entries == []
    # A cursor made from my trail shows nothing of mine to them.
    cursor = (await audit.trail(user_id, limit=1)).next_cursor
    assert (await audit.trail(other_user_id, cursor=cursor)).entries == []
    with pytest.raises(AuditEntryNotFound):
        await audit.get_entry(user_id, 10**12)

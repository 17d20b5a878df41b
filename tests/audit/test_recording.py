"""Every customer write records exactly its entries, in the same transaction, chained."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from app.audit.context import AuditContext
from app.audit.models import AuditEntry
from app.audit.repository import INSERT_CHUNK
from app.audit.service import AuditService
from app.customers.models import CustomerChange, CustomerInput
from app.customers.repository import PiccoloCustomerRepository
from app.customers.service import CustomerService
from app.customers.tables import Customer as CustomerTable
from app.lib.validation import ValidationFailed
from tests.audit.conftest import START, Clock, EventLog, counting_statements

ANA = CustomerInput(
    name="Ana Smith",
    email="ana@example.com",
    phone="+1 555 0100",
    organization="Acme",
    job_title="CTO",
    notes="Met at the fair.",
)


async def entries_of(audit: AuditService, user_id: int) -> list[AuditEntry]:
    return await audit.repository.walk(user_id, 0, 100_000)


async def test_create_update_delete_record_their_values_actor_and_request(
    customers: CustomerService, audit: AuditService, user_id: int, clock: Clock
) -> None:
    created = await customers.create(user_id, ANA)
    clock.advance(minutes=1)
    await customers.update(user_id, created.slug, {"job_title": "CEO", "notes": "Met twice."})
    clock.advance(minutes=1)
    await customers.delete(user_id, created.slug)

    made, changed, deleted = await entries_of(audit, user_id)

    assert made.event == "created"
    assert made.old_values is None
    assert made.new_values == ANA.values()
    assert changed.event == "updated"
    assert changed.old_values == {"job_title": "CTO", "notes": "Met at the fair."}
    assert changed.new_values == {"job_title": "CEO", "notes": "Met twice."}
    assert deleted.event == "deleted"
    assert deleted.old_values == {**ANA.values(), "job_title": "CEO", "notes": "Met twice."}
    assert deleted.new_values is None
    for entry in (made, changed, deleted):
        assert entry.user_id == user_id
        assert entry.actor_id == user_id
        assert entry.customer_id == created.id
        assert entry.customer_label == "Ana Smith <ana@example.com>"
        assert (entry.ip, entry.user_agent, entry.request_id) == (
            "203.0.113.9",
            "pytest/1.0",
            "req-0001",
        )
        assert entry.import_id is None
    assert [e.created_at for e in (made, changed, deleted)] == [
        START,
        START.replace(minute=31),
        START.replace(minute=32),
    ]


async def test_the_label_is_the_name_and_email_at_the_time(
    customers: CustomerService, audit: AuditService, user_id: int
) -> None:
    created = await customers.create(user_id, ANA)
    await customers.update(user_id, created.slug, {"name": "Ana Jones", "email": "aj@example.com"})

    made, changed = await entries_of(audit, user_id)

    assert made.customer_label == "Ana Smith <ana@example.com>"
    assert changed.customer_label == "Ana Jones <aj@example.com>"
    assert changed.old_values == {"name": "Ana Smith", "email": "ana@example.com"}


async def test_a_save_that_changes_nothing_records_nothing(
    customers: CustomerService, audit: AuditService, user_id: int
) -> None:
    created = await customers.create(user_id, ANA)
    await customers.update(user_id, created.slug, ANA)
    await customers.update(user_id, created.slug, {"name": "  Ana Smith  "})

    assert [e.event for e in await entries_of(audit, user_id)] == ["created"]


async def test_bulk_delete_records_its_entries_with_one_insert(
    customers: CustomerService, audit: AuditService, user_id: int, engine: Engine
) -> None:
    for number in range(5):
        await customers.create(user_id, CustomerInput(name="Bo", email=f"bo{number}@example.com"))

    with counting_statements(engine) as statements:
        deleted = await customers.delete_many(user_id, ["bo", "bo-3", "bo-5", "nobody"])

    inserts = [s for s in statements if "INSERT INTO audit_logs" in s]
    assert len(inserts) == 1
    entries = await entries_of(audit, user_id)
    assert [e.event for e in entries] == ["created"] * 5 + ["deleted"] * 3
    assert sorted(e.customer_id for e in entries[5:]) == sorted(c.id for c in deleted)
    assert {e.old_values["email"] for e in entries[5:] if e.old_values} == {
        "bo0@example.com",
        "bo2@example.com",
        "bo4@example.com",
    }
    assert (await audit.verify_chain(user_id)).intact


async def test_bulk_records_are_chunked_under_the_parameter_cap(
    audit: AuditService, context: AuditContext, user_id: int, engine: Engine
) -> None:
    count = INSERT_CHUNK * 2 + 7
    changes = [
        CustomerChange(
            event="customer.deleted",
            user_id=user_id,
            customer_id=number,
            slug=f"c-{number}",
            label=f"C {number}",
            old_values={"name": f"C {number}"},
        )
        for number in range(1, count + 1)
    ]
    with counting_statements(engine) as statements:
        recorded = await audit.record_many(changes, context)

    assert len([s for s in statements if "INSERT INTO audit_logs" in s]) == 3
    assert [e.customer_id for e in recorded] == list(range(1, count + 1))
    assert [e.id for e in recorded] == sorted(e.id for e in recorded)
    stored = await entries_of(audit, user_id)
    assert [(e.id, e.hash) for e in stored] == [(e.id, e.hash) for e in recorded]
    assert (await audit.verify_chain(user_id)).intact


async def test_a_failing_audit_write_undoes_the_customer_write(
    customers: CustomerService,
    audit: AuditService,
    user_id: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created = await customers.create(user_id, ANA)

    async def refuse(*args: Any) -> list[int]:
        raise RuntimeError("the audit table is full")

    # Both ways an entry is written: a single one in one statement (PostgreSQL), many
    # (or any on SQLite) by INSERT after the chain's head is read.
    monkeypatch.setattr(audit.repository, "append_one", refuse)
    monkeypatch.setattr(audit.repository, "insert_entries", refuse)
    with pytest.raises(RuntimeError, match="audit table is full"):
        await customers.update(user_id, created.slug, {"notes": "changed"})
    with pytest.raises(RuntimeError):
        await customers.create(user_id, CustomerInput(name="Cy", email="cy@example.com"))
    with pytest.raises(RuntimeError):
        await customers.delete_many(user_id, [created.slug])
    monkeypatch.undo()

    assert (await customers.get_by_slug(user_id, created.slug)).notes == "Met at the fair."
    assert await customers.find_by_slug(user_id, "cy") is None
    assert [e.event for e in await entries_of(audit, user_id)] == ["created"]


async def test_a_failing_customer_write_keeps_no_entry(
    audit: AuditService, context: AuditContext, user_id: int
) -> None:
    """The entry is written, then the transaction fails: both are rolled back."""
    emitted = EventLog()
    on_write, _ = audit.hooks(context)

    async def record_then_fail(tx: Any, change: CustomerChange) -> None:
        await on_write(tx, change)
        assert [e.event for e in await entries_of(audit, user_id)] == ["created"]
        raise RuntimeError("the disk is full")

    failing = CustomerService(PiccoloCustomerRepository(), emit=emitted, on_write=record_then_fail)
    with pytest.raises(RuntimeError, match="disk is full"):
        await failing.create(user_id, ANA)

    assert await entries_of(audit, user_id) == []
    assert await CustomerTable.count().where(CustomerTable.user_id == user_id) == 0
    assert emitted.events == []


async def test_a_refused_write_records_nothing(
    customers: CustomerService, audit: AuditService, user_id: int
) -> None:
    await customers.create(user_id, ANA)
    other = await customers.create(user_id, CustomerInput(name="Bo", email="bo@example.com"))
    with pytest.raises(ValidationFailed):
        await customers.update(user_id, other.slug, {"email": "ANA@example.com"})
    with pytest.raises(ValidationFailed):
        await customers.create(user_id, CustomerInput(name="Ana", email="ana@example.com"))

    assert [e.event for e in await entries_of(audit, user_id)] == ["created", "created"]


async def test_entries_of_a_deleted_customer_remain_in_its_trail(
    customers: CustomerService, audit: AuditService, user_id: int
) -> None:
    created = await customers.create(user_id, ANA)
    await customers.update(user_id, created.slug, {"phone": "+1 555 0199"})
    await customers.delete(user_id, created.slug)

    page = await audit.trail(user_id, customer_id=created.id)

    assert [e.event for e in page.entries] == ["deleted", "updated", "created"]
    assert page.next_cursor is None


async def test_concurrent_writers_of_one_user_do_not_fork_the_chain(
    customers: CustomerService, audit: AuditService, user_id: int, engine: Engine
) -> None:
    made = [
        await customers.create(user_id, CustomerInput(name=f"P{n}", email=f"p{n}@example.com"))
        for n in range(12)
    ]

    async def edit(number: int) -> None:
        await customers.update(user_id, made[number].slug, {"notes": f"edit {number}"})

    await asyncio.gather(*(edit(n) for n in range(12)))
    await customers.delete_many(user_id, [c.slug for c in made[:4]])

    entries = await entries_of(audit, user_id)
    assert len(entries) == 12 + 12 + 4
    assert len({e.prev_hash for e in entries}) == len(entries)  # no two share a parent
    report = await audit.verify_chain(user_id)
    assert report.intact, report.first_break
    assert report.entries == 28
    if isinstance(engine, PostgresEngine):
        # Concurrency was real: the pool gave the writers connections of their own.
        assert engine.pool is not None


async def test_the_chain_time_never_runs_backwards(
    customers: CustomerService, audit: AuditService, user_id: int, clock: Clock
) -> None:
    created = await customers.create(user_id, ANA)
    clock.advance(seconds=-30)  # another machine whose clock is behind
    await customers.update(user_id, created.slug, {"notes": "later"})

    made, changed = await entries_of(audit, user_id)
    assert changed.created_at == made.created_at
    assert changed.id > made.id


async def test_each_user_has_a_chain_of_their_own(
    audit: AuditService, context: AuditContext, user_id: int, other_user_id: int
) -> None:
    mine = audit.customer_service(context)
    theirs = audit.customer_service(AuditContext(actor_id=other_user_id))
    await mine.create(user_id, ANA)
    await theirs.create(other_user_id, ANA)
    await mine.create(user_id, CustomerInput(name="Bo", email="bo@example.com"))

    first, second = await entries_of(audit, user_id)
    (other,) = await entries_of(audit, other_user_id)
    assert second.prev_hash == first.hash
    assert other.prev_hash == first.prev_hash == "0" * 64
    assert other.actor_id == other_user_id

"""CustomerService on both profiles: CRUD, slug rules, the same-name race, normalization,
validation messages, duplicate emails, the audit hook and the events."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app.accounts.tables import User
from app.customers.cached import CachedCustomerRepository
from app.customers.events import log_customer_change, run_listeners
from app.customers.models import CustomerChange, CustomerInput, ListQuery
from app.customers.repository import PiccoloCustomerRepository
from app.customers.service import (
    CustomerNotFound,
    CustomerService,
    next_free_slug,
    slug_base,
)
from app.customers.tables import Customer as CustomerTable
from app.lib.validation import ValidationFailed
from app.main import create_app
from app.settings import Settings
from tests.customers.conftest import EventLog


def ana(**overrides: str) -> CustomerInput:
    values = {"name": "Ana Smith", "email": "ana@example.com"} | overrides
    return CustomerInput(**values)


@pytest.fixture(params=["plain", "cached"])
def any_service(
    request: pytest.FixtureRequest,
    repository: PiccoloCustomerRepository,
    cached_repository: CachedCustomerRepository,
    emitted: EventLog,
) -> CustomerService:
    """The service over the plain repository and over the cached one: same behaviour."""
    chosen = repository if request.param == "plain" else cached_repository
    return CustomerService(chosen, emit=emitted)


# --- CRUD ----------------------------------------------------------------------------------


async def test_create_then_read_back(any_service: CustomerService, user_id: int):
    created = await any_service.create(
        user_id,
        CustomerInput(
            name="Ana Smith",
            email="ana@example.com",
            phone="+1 555 0100",
            organization="Acme",
            job_title="CTO",
            notes="Met at the fair.",
        ),
    )
    assert created.slug == "ana-smith"
    assert created.user_id == user_id
    assert created.created_at == created.updated_at
    assert created.created_at.tzinfo is not None
    found = await any_service.get_by_slug(user_id, "ana-smith")
    assert found == created
    assert await any_service.find_by_slug(user_id, "nobody") is None
    with pytest.raises(CustomerNotFound):
        await any_service.get_by_slug(user_id, "nobody")


async def test_update_changes_the_given_fields_and_keeps_the_slug(
    any_service: CustomerService, user_id: int, emitted: EventLog
):
    created = await any_service.create(user_id, ana(organization="Acme"))
    updated = await any_service.update(
        user_id, "ana-smith", {"name": "Ana Jones", "job_title": "CEO", "organization": "Acme"}
    )
    assert (updated.name, updated.job_title, updated.organization) == ("Ana Jones", "CEO", "Acme")
    assert updated.slug == "ana-smith", "old links keep working after a rename"
    assert updated.updated_at > created.updated_at
    assert updated.created_at == created.created_at
    assert await any_service.get_by_slug(user_id, "ana-smith") == updated

    name, change = emitted.events[-1]
    assert name == "customer.updated"
    assert change.changed_fields == ["job_title", "name"]
    assert change.old_values == {"name": "Ana Smith", "job_title": ""}
    assert change.new_values == {"name": "Ana Jones", "job_title": "CEO"}
    assert (change.user_id, change.slug) == (user_id, "ana-smith")


async def test_an_update_that_changes_nothing_writes_and_emits_nothing(
    any_service: CustomerService, user_id: int, emitted: EventLog, queries: Any
):
    created = await any_service.create(user_id, ana(phone="123"))
    with queries() as counted:
        same = await any_service.update(
            user_id, "ana-smith", {"phone": " 123 ", "name": "Ana Smith"}
        )
    assert same == created
    assert not any(s.lstrip().upper().startswith("UPDATE") for s in counted.statements)
    assert emitted.names == ["customer.created"]


async def test_update_with_a_customer_input_replaces_every_field(
    service: CustomerService, user_id: int
):
    await service.create(user_id, ana(phone="1", notes="old"))
    updated = await service.update(user_id, "ana-smith", CustomerInput(name="Ana", email="a@b.co"))
    assert (updated.phone, updated.notes, updated.email) == ("", "", "a@b.co")


async def test_update_of_a_missing_customer_is_not_found(service: CustomerService, user_id: int):
    with pytest.raises(CustomerNotFound):
        await service.update(user_id, "nobody", {"name": "X"})


async def test_update_refuses_fields_that_are_not_editable(service: CustomerService, user_id: int):
    await service.create(user_id, ana())
    with pytest.raises(ValidationFailed) as failed:
        await service.update(user_id, "ana-smith", {"slug": "mine", "user_id": "2"})
    assert failed.value.errors == {
        "slug": "This field cannot be changed.",
        "user_id": "This field cannot be changed.",
    }


async def test_delete_returns_the_customer_and_removes_it(
    any_service: CustomerService, user_id: int, emitted: EventLog
):
    created = await any_service.create(user_id, ana())
    deleted = await any_service.delete(user_id, "ana-smith")
    assert deleted == created
    assert await any_service.find_by_slug(user_id, "ana-smith") is None
    with pytest.raises(CustomerNotFound):
        await any_service.delete(user_id, "ana-smith")
    name, change = emitted.events[-1]
    assert name == "customer.deleted"
    assert change.old_values["email"] == "ana@example.com"
    assert change.new_values == {}


async def test_delete_many_deletes_in_one_statement_and_ignores_unknown_slugs(
    service: CustomerService, user_id: int, other_user_id: int, emitted: EventLog, queries: Any
):
    for number in range(4):
        await service.create(user_id, ana(email=f"ana{number}@example.com"))
    theirs = await service.create(other_user_id, ana())
    with queries() as counted:
        deleted = await service.delete_many(
            user_id, ["ana-smith", "ana-smith-3", "ana-smith-3", "nobody", theirs.slug]
        )
    assert sorted(c.slug for c in deleted) == ["ana-smith", "ana-smith-3"]
    deletes = [s for s in counted.statements if s.lstrip().upper().startswith("DELETE")]
    assert len(deletes) == 1
    remaining = await service.list_page(user_id, ListQuery())
    assert sorted(c.slug for c in remaining.customers) == ["ana-smith-2", "ana-smith-4"]
    assert await service.get_by_slug(other_user_id, theirs.slug) == theirs
    assert emitted.names.count("customer.deleted") == 2
    assert await service.delete_many(user_id, []) == []


async def test_delete_many_is_one_transaction(repository: PiccoloCustomerRepository, user_id: int):
    """A failure on the second row's audit entry undoes the first row's delete too."""
    setup = CustomerService(repository, emit=EventLog())
    for number in range(3):
        await setup.create(user_id, ana(email=f"ana{number}@example.com"))
    seen: list[str] = []

    async def failing_audit(tx: Any, change: CustomerChange) -> None:
        seen.append(change.slug)
        if len(seen) == 2:
            raise RuntimeError("the audit table is full")

    emitted = EventLog()
    service = CustomerService(repository, emit=emitted, on_write=failing_audit)
    with pytest.raises(RuntimeError):
        await service.delete_many(user_id, ["ana-smith", "ana-smith-2", "ana-smith-3"])
    assert len(seen) == 2
    page = await service.list_page(user_id, ListQuery())
    assert page.count == 3
    assert emitted.events == []


# --- slugs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Ana Smith", "ana-smith"),
        ("  Zoë  Ångström-Élan ", "zoe-angstrom-elan"),
        ("Łukasz Żółć", "lukasz-zolc"),
        ("Ана Смирнова", "ana-smirnova"),
        ("O'Brien & Sons, Ltd.", "o-brien-sons-ltd"),
        ("!!!", "customer"),
        ("😀", "customer"),
    ],
)
def test_slug_base_is_ascii(name: str, slug: str):
    assert slug_base(name) == slug


def test_next_free_slug():
    assert next_free_slug("ana", []) == "ana"
    assert next_free_slug("ana", ["ana"]) == "ana-2"
    assert next_free_slug("ana", ["ana", "ana-2", "ana-7", "anabel", "ana-smith"]) == "ana-8"
    # A deleted "ana" is not handed out while a higher suffix exists.
    assert next_free_slug("ana", ["ana-2"]) == "ana-3"


async def test_slug_collisions_get_suffixes_per_user(
    any_service: CustomerService, user_id: int, other_user_id: int
):
    slugs = [
        (await any_service.create(user_id, ana(email=f"a{n}@example.com"))).slug for n in range(3)
    ]
    assert slugs == ["ana-smith", "ana-smith-2", "ana-smith-3"]
    # Another user's book is another namespace.
    theirs = await any_service.create(other_user_id, ana())
    assert theirs.slug == "ana-smith"
    accented = await any_service.create(user_id, ana(name="Zoë Ångström", email="z@example.com"))
    assert accented.slug == "zoe-angstrom"
    nameless = await any_service.create(user_id, ana(name="???", email="q@example.com"))
    assert nameless.slug == "customer"


async def test_same_name_created_concurrently_gets_distinct_slugs(
    any_service: CustomerService, user_id: int, emitted: EventLog
):
    created = await asyncio.gather(
        *(any_service.create(user_id, ana(email=f"ana{n}@example.com")) for n in range(10))
    )
    slugs = {customer.slug for customer in created}
    assert slugs == {"ana-smith", *(f"ana-smith-{n}" for n in range(2, 11))}
    page = await any_service.list_page(user_id, ListQuery(limit=25))
    assert page.count == 10
    assert emitted.names == ["customer.created"] * 10


class StaleSlugLook(PiccoloCustomerRepository):
    """Sees no existing slug on its first look, as a writer that lost a race would."""

    def __init__(self) -> None:
        self.looks = 0

    async def slugs_starting_with(self, user_id: int, base: str) -> list[str]:
        self.looks += 1
        return [] if self.looks == 1 else await super().slugs_starting_with(user_id, base)


async def test_a_slug_taken_between_the_look_and_the_insert_is_retried(
    service: CustomerService, user_id: int
):
    await service.create(user_id, ana())
    racing = StaleSlugLook()
    created = await CustomerService(racing, emit=EventLog()).create(
        user_id, ana(email="second@example.com")
    )
    assert created.slug == "ana-smith-2"
    assert racing.looks == 2


# --- normalization and validation --------------------------------------------------------------


async def test_values_are_trimmed_and_email_normalized(service: CustomerService, user_id: int):
    created = await service.create(
        user_id,
        CustomerInput(
            name="  Ana Smith\t",
            email="  Ana.Smith@Example.COM ",
            phone=" 555 ",
            organization=" Acme ",
            job_title=" CEO ",
            notes="\r\n first line\r\nsecond line \r\n",
        ),
    )
    assert created.name == "Ana Smith"
    assert created.email == "Ana.Smith@Example.COM"
    assert (created.phone, created.organization, created.job_title) == ("555", "Acme", "CEO")
    assert created.notes == "first line\nsecond line"
    rows = await CustomerTable.select(CustomerTable.email_normalized).where(
        CustomerTable.id == created.id
    )
    assert rows[0]["email_normalized"] == "ana.smith@example.com"


@pytest.mark.parametrize(
    ("values", "errors"),
    [
        ({"name": "", "email": ""}, {"name": "Enter a name.", "email": "Enter an email address."}),
        ({"name": "   ", "email": "ana@example.com"}, {"name": "Enter a name."}),
        ({"name": "A" * 201, "email": "ana@example.com"}, {"name": "Use at most 200 characters."}),
        (
            {"name": "Ana", "email": "ana at example"},
            {"email": "Enter an email address like name@example.com."},
        ),
        (
            {"name": "Ana", "email": "a" * 250 + "@x.io"},
            {"email": "Use at most 254 characters."},
        ),
        (
            {"name": "Ana", "email": "a@b.co", "phone": "1" * 51},
            {"phone": "Use at most 50 characters."},
        ),
        (
            {"name": "Ana", "email": "a@b.co", "organization": "O" * 201},
            {"organization": "Use at most 200 characters."},
        ),
        (
            {"name": "Ana", "email": "a@b.co", "job_title": "J" * 201},
            {"job_title": "Use at most 200 characters."},
        ),
        (
            {"name": "Ana", "email": "a@b.co", "notes": "n" * 10_001},
            {"notes": "Use at most 10,000 characters."},
        ),
    ],
)
async def test_validation_messages(
    service: CustomerService, user_id: int, values: dict[str, str], errors: dict[str, str]
):
    with pytest.raises(ValidationFailed) as failed:
        await service.create(user_id, CustomerInput(**values))
    assert failed.value.errors == errors
    assert (await service.list_page(user_id, ListQuery())).count == 0


async def test_limits_are_inclusive_and_count_after_trimming(
    service: CustomerService, user_id: int
):
    created = await service.create(
        user_id,
        CustomerInput(name=" " + "A" * 200 + " ", email="a@b.co", notes="n" * 10_000),
    )
    assert len(created.name) == 200


async def test_update_validates_only_the_fields_it_is_given(service: CustomerService, user_id: int):
    await service.create(user_id, ana())
    with pytest.raises(ValidationFailed) as failed:
        await service.update(user_id, "ana-smith", {"name": " ", "phone": "1" * 51})
    assert failed.value.errors == {"name": "Enter a name.", "phone": "Use at most 50 characters."}
    assert (await service.update(user_id, "ana-smith", {"phone": "5"})).phone == "5"


async def test_duplicate_email_is_refused_case_insensitively(
    any_service: CustomerService, user_id: int, other_user_id: int
):
    await any_service.create(user_id, ana(email="Ana@Example.com"))
    with pytest.raises(ValidationFailed) as failed:
        await any_service.create(user_id, ana(name="Other Ana", email="  ana@EXAMPLE.com "))
    assert failed.value.errors == {
        "email": "You already have a customer with this email: Ana Smith."
    }
    # Another user may hold the same address.
    await any_service.create(other_user_id, ana(email="ana@example.com"))

    await any_service.create(user_id, ana(name="Bob", email="bob@example.com"))
    with pytest.raises(ValidationFailed) as failed:
        await any_service.update(user_id, "bob", {"email": "ANA@example.com"})
    assert failed.value.errors["email"].endswith(": Ana Smith.")
    # Changing the case of one's own address is not a duplicate.
    updated = await any_service.update(user_id, "ana-smith", {"email": "ana@example.com"})
    assert updated.email == "ana@example.com"


async def test_concurrent_creates_with_one_email_let_one_through(
    repository: PiccoloCustomerRepository, user_id: int
):
    """On PostgreSQL the losers pass the duplicate check together and are stopped by the
    unique key; they still get the message in words."""
    service = CustomerService(repository, emit=EventLog())
    results = await asyncio.gather(
        *(service.create(user_id, ana(name=f"Ana {n}")) for n in range(4)),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 3
    for failure in failures:
        assert isinstance(failure, ValidationFailed)
        assert failure.errors["email"].startswith("You already have a customer with this email")


# --- the audit hook and the events -----------------------------------------------------------


async def test_the_audit_hook_runs_inside_the_transaction(
    repository: PiccoloCustomerRepository, user_id: int
):
    seen: list[tuple[str, bool]] = []
    emitted = EventLog()

    async def audit(tx: Any, change: CustomerChange) -> None:
        engine = CustomerTable._meta.db
        seen.append((change.event, engine.current_transaction.get() is tx))
        # What the hook reads through Piccolo sees the write it is auditing.
        rows = await CustomerTable.select(CustomerTable.id).where(
            CustomerTable.id == change.customer_id
        )
        assert bool(rows) == (change.event != "customer.deleted")
        assert emitted.events == [] or emitted.events[-1][1] is not change

    service = CustomerService(repository, emit=emitted, on_write=audit)
    await service.create(user_id, ana())
    await service.update(user_id, "ana-smith", {"notes": "hello"})
    await service.delete(user_id, "ana-smith")
    assert seen == [
        ("customer.created", True),
        ("customer.updated", True),
        ("customer.deleted", True),
    ]
    assert emitted.names == ["customer.created", "customer.updated", "customer.deleted"]


async def test_a_failing_audit_hook_undoes_the_write_and_emits_nothing(
    repository: PiccoloCustomerRepository, user_id: int
):
    async def broken(tx: Any, change: CustomerChange) -> None:
        raise RuntimeError("audit unavailable")

    emitted = EventLog()
    service = CustomerService(repository, emit=emitted, on_write=broken)
    with pytest.raises(RuntimeError):
        await service.create(user_id, ana())
    assert await repository.get_by_slug(user_id, "ana-smith") is None
    assert emitted.events == []


async def test_events_carry_user_slug_and_changed_fields(
    service: CustomerService, user_id: int, emitted: EventLog
):
    created = await service.create(user_id, ana(organization="Acme"))
    name, change = emitted.events[0]
    assert name == change.event == "customer.created"
    assert (change.user_id, change.slug, change.customer_id) == (user_id, "ana-smith", created.id)
    assert change.new_values == created.editable_values()
    assert change.old_values == {}
    assert change.after == created


async def test_an_emitter_that_fails_does_not_undo_the_committed_write(
    repository: PiccoloCustomerRepository, user_id: int, caplog: pytest.LogCaptureFixture
):
    def broken_emit(event: str, change: CustomerChange) -> None:
        raise RuntimeError("no emitter")

    service = CustomerService(repository, emit=broken_emit)
    with caplog.at_level(logging.ERROR, logger="crm.customers"):
        created = await service.create(user_id, ana())
    assert await repository.get_by_slug(user_id, "ana-smith") == created
    assert "could not emit customer.created" in caplog.text


async def test_an_async_emit_is_awaited(repository: PiccoloCustomerRepository, user_id: int):
    received: list[str] = []

    async def emit(event: str, change: CustomerChange) -> None:
        received.append(event)

    await CustomerService(repository, emit=emit).create(user_id, ana())
    assert received == ["customer.created"]


async def test_run_listeners_logs_for_jobs_and_the_cli(
    repository: PiccoloCustomerRepository, user_id: int, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.INFO, logger="crm.customers"):
        await CustomerService(repository, emit=run_listeners).create(user_id, ana())
    assert "customer.created ana-smith" in caplog.text
    assert log_customer_change.event_ids == {
        "customer.created",
        "customer.updated",
        "customer.deleted",
    }


async def test_the_app_emits_through_litestar_to_the_logging_listener(
    settings: Settings, caplog: pytest.LogCaptureFixture
):
    """The app as create_app wires it: the bound repository, app.emit, the listener."""
    app = create_app(settings)

    async def scenario() -> None:
        # Runs on the test client's event loop, where the lifespan opened the database.
        rows = await User.insert(
            User(name="Owner", email=f"{uuid.uuid4().hex}@people.test", password_hash="-")
        ).returning(User.id)
        service = CustomerService(app.state.customer_repository, emit=app.emit)
        await service.create(int(rows[0]["id"]), ana())
        for _ in range(200):
            if "customer.created ana-smith" in caplog.text:
                return
            await asyncio.sleep(0.01)

    with caplog.at_level(logging.INFO, logger="crm.customers"):
        async with AsyncTestClient(app=app) as client:
            await asyncio.to_thread(client.blocking_portal.call, scenario)
    assert isinstance(app.state.customer_repository, CachedCustomerRepository)
    assert "customer.created ana-smith" in caplog.text

"""Customers on both profiles: the profile's database bound to the tables, people to own
customers, the profile's cache store, and a way to count the database queries made."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from piccolo.engine.base import Engine

from app.customers.cached import CachedCustomerRepository
from app.customers.models import CustomerChange
from app.customers.repository import PiccoloCustomerRepository
from app.customers.service import CustomerService
from app.customers.tables import Customer as CustomerTable
from app.settings import Settings


@dataclass
class EventLog:
    """An emit callable that records what the service announces."""

    events: list[tuple[str, CustomerChange]] = field(default_factory=list)

    def __call__(self, event: str, change: CustomerChange) -> None:
        self.events.append((event, change))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.events]


@pytest.fixture
def emitted() -> EventLog:
    return EventLog()


@pytest.fixture
def repository(engine: Engine) -> PiccoloCustomerRepository:
    return PiccoloCustomerRepository()


@pytest.fixture
def service(repository: PiccoloCustomerRepository, emitted: EventLog) -> CustomerService:
    return CustomerService(repository, emit=emitted)


def _redis_store(settings: Settings, namespace: str) -> RedisStore:
    assert settings.redis_url
    return RedisStore.with_client(url=settings.redis_url, namespace=namespace).with_namespace(
        "cache"
    )


@pytest.fixture
async def cache_stores(settings: Settings) -> AsyncIterator[tuple[Store, Store]]:
    """Two handles on one cache, as two processes of the profile would hold it: two Redis
    clients on the same keys (full stack), or the one MemoryStore (embedded).

    Each test gets a namespace of its own on the shared Redis: user ids restart with
    every test database, and a page cached by an earlier run must not be found.
    """
    if not settings.redis_url:
        store = MemoryStore()
        yield store, store
        return
    namespace = f"crm-test-{uuid.uuid4().hex[:12]}"
    first, second = _redis_store(settings, namespace), _redis_store(settings, namespace)
    try:
        yield first, second
    finally:
        await first.delete_all()
        await first._redis.aclose()
        await second._redis.aclose()


@pytest.fixture
def cache_store(cache_stores: tuple[Store, Store]) -> Store:
    return cache_stores[0]


@pytest.fixture
def cached_repository(
    repository: PiccoloCustomerRepository, cache_store: Store
) -> CachedCustomerRepository:
    return CachedCustomerRepository(repository, cache_store, ttl=60)


@dataclass
class QueryCount:
    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def counting_queries(engine: Engine) -> Iterator[QueryCount]:
    """Count every statement Piccolo sends to ``engine``.

    Every Piccolo query, raw ones included, in a transaction or not, ends in
    ``engine.run_querystring`` (``run_ddl`` for DDL); engines have __slots__, so the
    methods are wrapped on the class, counting only calls on this engine.
    """
    counted = QueryCount()
    engine_class = type(engine)
    originals = {name: getattr(engine_class, name) for name in ("run_querystring", "run_ddl")}

    def wrap(name: str) -> Any:
        original = originals[name]

        async def run(self: Engine, query: Any, *args: Any, **kwargs: Any) -> Any:
            if self is engine:
                counted.statements.append(str(query))
            return await original(self, query, *args, **kwargs)

        return run

    for name in originals:
        setattr(engine_class, name, wrap(name))
    try:
        yield counted
    finally:
        for name, original in originals.items():
            setattr(engine_class, name, original)


@pytest.fixture
def queries(engine: Engine) -> Callable[[], Any]:
    return lambda: counting_queries(engine)


BASE_TIME = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def seed(engine: Engine) -> Callable[..., Any]:
    """Insert rows straight into the table (test data, not a service call), with the
    timestamps given, in one statement. Each row: a dict of column values."""

    async def insert(user_id: int, rows: list[dict[str, Any]]) -> list[int]:
        objects = []
        for number, row in enumerate(rows):
            email = row.get("email", f"{uuid.uuid4().hex[:10]}@seed.test")
            created = row.get("created_at", BASE_TIME + timedelta(minutes=number))
            values = {
                "user_id": user_id,
                "name": row.get("name", f"Customer {number}"),
                "email": email,
                "email_normalized": email.strip().lower(),
                "slug": row.get("slug", f"seed-{uuid.uuid4().hex[:12]}"),
                "phone": row.get("phone", ""),
                "organization": row.get("organization", ""),
                "job_title": row.get("job_title", ""),
                "notes": row.get("notes", ""),
                "created_at": created,
                "updated_at": row.get("updated_at", created),
            }
            objects.append(CustomerTable(**values))
        inserted = await CustomerTable.insert(*objects).returning(CustomerTable.id)
        return [int(row["id"]) for row in inserted]

    return insert


# --- the browser pages (tests/customers/test_web*.py) -----------------------------------

from tests.accounts.conftest import (  # noqa: E402
    Person,
    html,
    member,  # noqa: F401  (a fixture)
    newcomer,  # noqa: F401  (a fixture)
    register,
    sign_out,
    unique_email,
)

HX = {"HX-Request": "true"}


def isolated_cache(app: Any) -> Any:
    """Give ``app`` a cache namespace of its own on the shared Redis.

    User ids restart with every run's database while the cache outlives the run: without
    this, a new user could be served a page cached for the same id minutes earlier."""
    from litestar.stores.redis import RedisStore as _RedisStore

    from app.customers.dependencies import build_customer_repository

    cache = app.stores.get("cache")
    if isinstance(cache, _RedisStore):
        app.stores.register("cache", cache.with_namespace(uuid.uuid4().hex), allow_override=True)
        app.state.customer_repository = build_customer_repository(app.state.settings, app.stores)
    return app


def seed_customers(client: Any, email: str, rows: list[dict[str, str]]) -> list[Any]:
    """Create customers for the account with this email through the app's own service,
    on the app's event loop (where its database pool lives), as a person would one by one."""
    from app.accounts.repository import PiccoloAccountRepository
    from app.customers.models import CustomerInput

    async def create() -> list[Any]:
        account = await PiccoloAccountRepository().get_by_email(email)
        assert account is not None, f"no account {email}"
        service = CustomerService(client.app.state.customer_repository, emit=client.app.emit)
        return [await service.create(account.id, CustomerInput(**row)) for row in rows]

    return list(client.blocking_portal.call(create))


def numbered(count: int, **values: str) -> list[dict[str, str]]:
    """``count`` customers with distinct names and emails."""
    return [
        {"name": f"Person {n:03d}", "email": f"person{n:03d}-{uuid.uuid4().hex[:6]}@example.com"}
        | values
        for n in range(count)
    ]


async def become(client: Any, mailbox: Any, name: str) -> Person:
    """Sign whoever is signed in out, then register someone new and confirm the address."""
    page = html(await client.get("/"))
    if page.select_one("nav form[action='/logout']") is not None:
        await sign_out(client)
    person = Person(name=name, email=unique_email(name.split()[0].lower()))
    response = await register(client, person)
    assert response.status_code == 303, response.text
    response = await client.get(
        mailbox.last_link(person.email, "/verify-email/"), follow_redirects=False
    )
    assert response.status_code == 303
    return person


def token_of(page: Any) -> str:
    field = page.find("input", attrs={"name": "_csrf_token"})
    assert field is not None, "no CSRF field on the page"
    return str(field["value"])


def fragment_roots(response: Any) -> list[Any]:
    """The top-level elements of an htmx fragment (its <title> left out)."""
    from bs4 import Tag

    soup = html(response)
    assert soup.find("html") is None, "a whole page, not a fragment"
    assert soup.find("body") is None, "a whole page, not a fragment"
    return [node for node in soup.contents if isinstance(node, Tag) and node.name != "title"]

"""CachedCustomerRepository on both profiles (MemoryStore embedded, Redis full stack):
repeated reads make no query, and no write leaves a stale page for any process."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from typing import Any

from litestar.stores.base import Store
from litestar.stores.registry import StoreRegistry

from app.customers.cached import CachedCustomerRepository
from app.customers.dependencies import build_customer_repository
from app.customers.models import CustomerInput, ListQuery
from app.customers.repository import PiccoloCustomerRepository
from app.customers.service import CustomerService
from app.settings import Settings
from tests.customers.conftest import EventLog


def ana(n: int = 0, **overrides: str) -> CustomerInput:
    values = {"name": "Ana Smith", "email": f"ana{n}@example.com"} | overrides
    return CustomerInput(**values)


def two_processes(cache_stores: tuple[Store, Store]) -> tuple[CustomerService, CustomerService]:
    """Two services as two app processes hold them: each its own cached repository and
    store handle, over one database and one cache."""
    first, second = cache_stores
    return (
        CustomerService(
            CachedCustomerRepository(PiccoloCustomerRepository(), first), emit=EventLog()
        ),
        CustomerService(
            CachedCustomerRepository(PiccoloCustomerRepository(), second), emit=EventLog()
        ),
    )


async def test_a_repeated_page_is_served_without_a_database_query(
    cached_repository: CachedCustomerRepository, user_id: int, seed: Any, queries: Any
):
    rows = [{"name": f"P{n}", "organization": "Acme", "notes": "alpha"} for n in range(30)]
    await seed(user_id, [{**row, "slug": f"p{n}"} for n, row in enumerate(rows)])
    slug = "p0"
    reads = [
        lambda: cached_repository.list_page(user_id, ListQuery()),
        lambda: cached_repository.list_page(user_id, ListQuery(q="alph", organization="Acme")),
        lambda: cached_repository.count(user_id, ListQuery(q="alpha")),
        lambda: cached_repository.organizations(user_id),
        lambda: cached_repository.get_by_slug(user_id, slug),
        lambda: cached_repository.get_by_slug(user_id, "nobody"),
    ]
    for read in reads:
        with queries() as first:
            fresh = await read()
        with queries() as again:
            cached = await read()
        assert cached == fresh
        assert first.count >= 1, "the counter sees the first, uncached read"
        assert again.count == 0, f"a cached read queried the database: {again.statements}"

    # The next page is a page of its own: cached after its first read.
    first_page = await cached_repository.list_page(user_id, ListQuery())
    second = ListQuery(cursor=first_page.next_cursor)
    await cached_repository.list_page(user_id, second)
    with queries() as again:
        await cached_repository.list_page(user_id, second)
    assert again.count == 0


async def test_a_write_moves_every_cached_read_of_that_user_on(
    cached_repository: CachedCustomerRepository, user_id: int, other_user_id: int, queries: Any
):
    service = CustomerService(cached_repository, emit=EventLog())
    await service.create(other_user_id, ana())
    before = await service.list_page(user_id, ListQuery())
    assert before.count == 0
    assert await service.organizations(user_id) == []
    await service.create(user_id, ana(organization="Acme"))
    after = await service.list_page(user_id, ListQuery())
    assert [c.slug for c in after.customers] == ["ana-smith"]
    assert await service.organizations(user_id) == ["Acme"]
    # The other user's cached reads were not touched by this user's write.
    await service.list_page(other_user_id, ListQuery())
    await service.create(user_id, ana(1))
    with queries() as counted:
        await service.list_page(other_user_id, ListQuery())
    assert counted.count == 0


async def test_two_processes_never_serve_a_stale_page_after_the_others_write(
    cache_stores: tuple[Store, Store], engine: Any, user_id: int, other_user_id: int
):
    reader, writer = two_processes(cache_stores)

    async def shown(q: str = "") -> list[tuple[str, str]]:
        page = await reader.list_page(user_id, ListQuery(q=q))
        return [(c.slug, c.name) for c in page.customers]

    assert await shown() == []
    await writer.create(user_id, ana(notes="likes orbital rockets"))
    assert await shown() == [("ana-smith", "Ana Smith")]
    assert await shown("orbital") == [("ana-smith", "Ana Smith")]
    assert (await reader.get_by_slug(user_id, "ana-smith")).notes == "likes orbital rockets"

    await writer.update(user_id, "ana-smith", {"name": "Ana Jones", "notes": "tea"})
    assert await shown() == [("ana-smith", "Ana Jones")]
    assert await shown("orbital") == []
    assert (await reader.get_by_slug(user_id, "ana-smith")).notes == "tea"

    await writer.create(user_id, ana(1, name="Bob", organization="Globex"))
    assert await reader.organizations(user_id) == ["Globex"]
    await writer.delete(user_id, "bob")
    assert await reader.organizations(user_id) == []
    assert await reader.find_by_slug(user_id, "bob") is None

    await writer.create(user_id, ana(2, name="Cy"))
    assert len(await shown()) == 2
    await writer.delete_many(user_id, ["ana-smith", "cy"])
    assert await shown() == []

    # And back the other way: the reader writes, the writer's cache moves on too.
    await writer.list_page(user_id, ListQuery())
    await reader.create(user_id, ana(3, name="Dee"))
    assert [c.slug for c in (await writer.list_page(user_id, ListQuery())).customers] == ["dee"]
    # Isolation holds in the cache: the other user sees nothing of this one.
    assert (await reader.list_page(other_user_id, ListQuery())).count == 0
    assert await reader.find_by_slug(other_user_id, "dee") is None


async def test_a_page_read_during_a_write_does_not_outlive_the_commit(
    cache_stores: tuple[Store, Store], engine: Any, user_id: int
):
    """A reader in another process reads (and caches) the page while the write is still
    open; after the commit it must not be served that page again."""
    first, second = cache_stores
    writer = CachedCustomerRepository(PiccoloCustomerRepository(), first)
    reader = CachedCustomerRepository(PiccoloCustomerRepository(), second)
    assert (await reader.list_page(user_id, ListQuery())).count == 0
    async with writer.transaction():
        await writer.insert(user_id, "ana", ana(), "ana0@example.com")
        # A fresh context: not this transaction's connection, as another process reads.
        during = await asyncio.create_task(
            reader.list_page(user_id, ListQuery()), context=contextvars.Context()
        )
        assert during.count == 0, "uncommitted rows are not visible to others"
    after = await reader.list_page(user_id, ListQuery())
    assert [c.slug for c in after.customers] == ["ana"]


async def test_reads_inside_a_write_transaction_see_its_writes_and_are_not_cached(
    cached_repository: CachedCustomerRepository, user_id: int, queries: Any
):
    async with cached_repository.transaction():
        await cached_repository.insert(user_id, "ana", ana(), "ana0@example.com")
        inside = await cached_repository.get_by_slug(user_id, "ana")
        assert inside is not None
        with queries() as counted:
            assert await cached_repository.get_by_slug(user_id, "ana") == inside
        assert counted.count == 1
    assert await cached_repository.get_by_slug(user_id, "ana") == inside


async def test_a_rolled_back_write_leaves_no_trace_in_the_cache(
    cached_repository: CachedCustomerRepository, user_id: int
):
    assert await cached_repository.get_by_slug(user_id, "ana") is None
    try:
        async with cached_repository.transaction():
            await cached_repository.insert(user_id, "ana", ana(), "ana0@example.com")
            raise RuntimeError("undo")
    except RuntimeError:
        pass
    assert await cached_repository.get_by_slug(user_id, "ana") is None


def test_the_app_binds_the_cached_repository_unless_the_cache_is_off(settings: Settings):
    stores = StoreRegistry()
    assert isinstance(build_customer_repository(settings, stores), CachedCustomerRepository)
    off = dataclasses.replace(settings, cache_enabled=False)
    assert isinstance(build_customer_repository(off, stores), PiccoloCustomerRepository)
    assert (
        Settings.from_env({"CACHE_ENABLED": "false", "SECRET_KEY": "k" * 40}).cache_enabled is False
    )
    assert Settings.from_env({"SECRET_KEY": "k" * 40}).cache_enabled is True

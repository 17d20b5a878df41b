"""A cache over any CustomerRepository, shared by every process through the "cache" store.

Reads (a customer by slug, list/search pages with their count, the organization list)
are cached under keys that hold the user's version: ``customers:{user}:v{version}:...``.
Every write moves the version on, so all of that user's cached reads are left behind at
once and expire on their own; no key listing, no stale page, in any process.

The version moves when the write happens *and* again after its transaction ends: a
reader that fetched the version just before the commit, and so cached pre-commit rows
under it, is left behind by the second move.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import msgspec
from litestar.stores.base import Store
from litestar.stores.redis import RedisStore

from app.customers.models import COUNT_CAP, CountResult, Customer, CustomerInput, ListQuery, Page
from app.customers.repository import CustomerRepository

DEFAULT_TTL = 300
T = TypeVar("T")

# (repository, user_id) written in the open write transaction of this task; None when
# no transaction is open. Module-level: a ContextVar per instance would never be freed.
_written_in_transaction: ContextVar[list[tuple[CachedCustomerRepository, int]] | None] = ContextVar(
    "customers_written_in_transaction", default=None
)


class CachedCustomerRepository:
    def __init__(
        self,
        inner: CustomerRepository,
        store: Store,
        ttl: int = DEFAULT_TTL,
        prefix: str = "customers",
    ) -> None:
        self.inner = inner
        self.store = store
        self.ttl = ttl
        self.prefix = prefix

    # --- versions --------------------------------------------------------------------

    def _version_key(self, user_id: int) -> str:
        return f"{self.prefix}:{user_id}:version"

    async def _version(self, user_id: int) -> str:
        raw = await self.store.get(self._version_key(user_id))
        return raw.decode() if raw else "0"

    async def _bump(self, user_id: int) -> None:
        key = self._version_key(user_id)
        if isinstance(self.store, RedisStore):
            # Atomic across processes. No expiry: a version that vanished would restart
            # at 1 and could meet pages still cached under 1.
            await self.store._redis.incr(self.store._make_key(key))
        else:
            # Any other store: a fresh random version, written without reading, so two
            # writers can never both produce the same "next" value (no lost update).
            await self.store.set(key, secrets.token_hex(8))

    async def _written(self, user_id: int) -> None:
        await self._bump(user_id)
        pending = _written_in_transaction.get()
        if pending is not None:
            pending.append((self, user_id))

    async def _cached(
        self,
        user_id: int,
        kind: str,
        params: Any,
        load: Callable[[], Awaitable[T]],
        type_: Any,
    ) -> T:
        if _written_in_transaction.get() is not None:
            # Inside a write transaction reads must see its own writes, and what they see
            # is not committed yet: straight to the database, nothing stored.
            return await load()
        digest = hashlib.sha256(
            json.dumps(params, sort_keys=True, default=str).encode()
        ).hexdigest()[:32]
        key = f"{self.prefix}:{user_id}:v{await self._version(user_id)}:{kind}:{digest}"
        raw = await self.store.get(key)
        if raw is not None:
            decoded: T = msgspec.json.decode(raw, type=type_)
            return decoded
        value = await load()
        await self.store.set(key, msgspec.json.encode(value), expires_in=self.ttl)
        return value

    # --- transaction -------------------------------------------------------------------

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        return self._transaction()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Any]:
        if _written_in_transaction.get() is not None:
            # Nested: the outermost transaction commits, and bumps after it.
            async with self.inner.transaction() as tx:
                yield tx
            return
        written: list[tuple[CachedCustomerRepository, int]] = []
        token = _written_in_transaction.set(written)
        try:
            async with self.inner.transaction() as tx:
                yield tx
        finally:
            _written_in_transaction.reset(token)
            # After commit (or rollback): see the module docstring.
            for repository, user_id in dict.fromkeys(written):
                await repository._bump(user_id)

    # --- writes --------------------------------------------------------------------------

    async def insert(
        self, user_id: int, slug: str, data: CustomerInput, email_normalized: str
    ) -> Customer:
        customer = await self.inner.insert(user_id, slug, data, email_normalized)
        await self._written(user_id)
        return customer

    async def update(self, user_id: int, slug: str, values: dict[str, str]) -> Customer | None:
        customer = await self.inner.update(user_id, slug, values)
        if customer is not None:
            await self._written(user_id)
        return customer

    async def delete(self, user_id: int, slug: str) -> list[Customer]:
        deleted = await self.inner.delete(user_id, slug)
        if deleted:
            await self._written(user_id)
        return deleted

    async def delete_many(self, user_id: int, slugs: Sequence[str]) -> list[Customer]:
        deleted = await self.inner.delete_many(user_id, slugs)
        if deleted:
            await self._written(user_id)
        return deleted

    # --- reads the service makes while writing: never cached -----------------------------

    async def get_for_update(self, user_id: int, slug: str) -> Customer | None:
        return await self.inner.get_for_update(user_id, slug)

    async def get_by_email_normalized(self, user_id: int, email_normalized: str) -> Customer | None:
        return await self.inner.get_by_email_normalized(user_id, email_normalized)

    async def slugs_starting_with(self, user_id: int, base: str) -> list[str]:
        return await self.inner.slugs_starting_with(user_id, base)

    # --- cached reads ----------------------------------------------------------------------

    async def get_by_slug(self, user_id: int, slug: str) -> Customer | None:
        return await self._cached(
            user_id,
            "slug",
            slug,
            lambda: self.inner.get_by_slug(user_id, slug),
            Customer | None,
        )

    async def list_page(self, user_id: int, query: ListQuery, count_cap: int = COUNT_CAP) -> Page:
        params = {**query.filter_key, "sort": query.sort, "limit": query.limit}
        params |= {"cursor": query.cursor, "cap": count_cap}
        return await self._cached(
            user_id, "page", params, lambda: self.inner.list_page(user_id, query, count_cap), Page
        )

    async def count(self, user_id: int, query: ListQuery, cap: int = COUNT_CAP) -> CountResult:
        params = {**query.filter_key, "cap": cap}
        return await self._cached(
            user_id, "count", params, lambda: self.inner.count(user_id, query, cap), CountResult
        )

    async def organizations(self, user_id: int) -> list[str]:
        return await self._cached(
            user_id, "organizations", None, lambda: self.inner.organizations(user_id), list[str]
        )

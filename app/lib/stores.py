"""Key-value stores for sessions, cache and rate limits.

Registered under the names Litestar's middleware looks up, so the session and
rate-limit middleware use Redis whenever REDIS_URL is set, and memory otherwise.
"""

from __future__ import annotations

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.stores.registry import StoreRegistry

from app.settings import Settings

STORE_NAMES = ("sessions", "cache", "rate_limit")


def build_stores(settings: Settings) -> dict[str, Store]:
    if settings.redis_url:
        root = RedisStore.with_client(url=settings.redis_url, namespace="crm")
        return {name: root.with_namespace(name) for name in STORE_NAMES}
    return {name: MemoryStore() for name in STORE_NAMES}


def build_store_registry(settings: Settings) -> StoreRegistry:
    stores = build_stores(settings)

    def refuse_unknown(name: str) -> Store:
        # A typo'd store name would silently fall back to process memory and break
        # across processes; fail where it happens instead.
        raise KeyError(f"no store named {name!r}; known: {', '.join(STORE_NAMES)}")

    return StoreRegistry(stores=stores, default_factory=refuse_unknown)


async def check_stores(registry: StoreRegistry) -> None:
    """Raise when the store backend does not answer (for /readyz)."""
    store = registry.get("cache")
    await store.set("readyz", b"1", expires_in=5)
    if await store.get("readyz") != b"1":
        raise RuntimeError("the cache store did not return what was written")


async def close_stores(registry: StoreRegistry) -> None:
    # The namespaced Redis stores share one client: close it once.
    store = registry.get("cache")
    if isinstance(store, RedisStore):
        await store._redis.aclose()

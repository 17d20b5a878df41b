"""Fixed-window counters in the shared rate-limit store, so limits hold across processes.

Redis gets an atomic INCR; the in-memory store (one process) is guarded by a lock.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from litestar.stores.base import Store
from litestar.stores.redis import RedisStore


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # seconds until the window resets

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.retry_after),
        }


class Throttle:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = asyncio.Lock()

    def _window(self, key: str, window: int) -> tuple[str, int]:
        now = int(time.time())
        start = now - now % window
        return f"throttle:{key}:{start}", start + window - now

    async def _increment(self, key: str, window: int) -> int:
        if isinstance(self.store, RedisStore):
            redis = self.store._redis
            full_key = self.store._make_key(key)
            async with redis.pipeline(transaction=True) as pipe:
                pipe.incr(full_key)
                pipe.expire(full_key, window + 1)
                count, _ = await pipe.execute()
            return int(count)
        async with self._lock:
            current = await self.store.get(key)
            count = int(current or 0) + 1
            await self.store.set(key, str(count).encode(), expires_in=window + 1)
            return count

    async def _peek(self, key: str) -> int:
        if isinstance(self.store, RedisStore):
            value = await self.store._redis.get(self.store._make_key(key))
        else:
            value = await self.store.get(key)
        return int(value or 0)

    async def hit(self, key: str, *, limit: int, window: int) -> Verdict:
        """Count one attempt; refused once more than ``limit`` fall in the window."""
        window_key, reset = self._window(key, window)
        count = await self._increment(window_key, window)
        return Verdict(count <= limit, limit, max(limit - count, 0), reset)

    async def check(self, key: str, *, limit: int, window: int) -> Verdict:
        """Look without counting (for limits that count only failures)."""
        window_key, reset = self._window(key, window)
        count = await self._peek(window_key)
        return Verdict(count < limit, limit, max(limit - count, 0), reset)

    async def clear(self, key: str, *, window: int) -> None:
        window_key, _ = self._window(key, window)
        await self.store.delete(window_key)

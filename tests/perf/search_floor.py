"""How much PostgreSQL alone spends on the first page of each benchmark search, under a
count cap: the floor under the search fragment's latency, whatever the app does.

    python -m tests.perf.search_floor postgresql://postgres@127.0.0.1:5432/crm_seeded 10000 100

For each cap and each of the benchmark's searches (the same words as
test_customers_bench.py), on the book of the seeded database's owner, one client alone:

- the capped count, sent two ways (in the heap's order, which PostgreSQL answers from the
  full-text index, and newest first, which it may answer by walking the date index);
- the page: by relevance when the count is within the cap, newest first beyond it
  (ADR 0008).

Each statement runs three times (fastest kept), with the app's connection settings. The
last line is the mean of the cheaper count plus the page: PostgreSQL's CPU per search
when every plan is the best of the two. Ten clients sharing one core for PostgreSQL
cannot wait less on average than ten times that.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from app.customers.search import postgres_tsquery, search_words
from app.lib.db import POSTGRES_SERVER_SETTINGS

_MATCH = "FROM customers AS c WHERE c.user_id = $2 AND c.search_vector @@ to_tsquery('simple', $1)"
COUNT = f"SELECT count(*) FROM (SELECT 1 {_MATCH} LIMIT $3) AS capped"  # noqa: S608
COUNT_NEWEST = (
    f"SELECT count(*) FROM (SELECT 1 {_MATCH} "  # noqa: S608
    "ORDER BY c.created_at DESC LIMIT $3) AS capped"
)
NEWEST = f"SELECT c.id {_MATCH} ORDER BY c.created_at DESC, c.id DESC LIMIT 26"
RANKED = (
    "SELECT c.id, ts_rank(c.search_vector, to_tsquery('simple', $1)) AS rank "
    f"{_MATCH} ORDER BY rank DESC, c.id DESC LIMIT 26"
)


async def fastest(conn: asyncpg.Connection, sql: str, *args: object) -> tuple[float, list]:
    best = float("inf")
    rows: list = []
    for _ in range(3):
        began = time.perf_counter()
        rows = await conn.fetch(sql, *args)
        best = min(best, time.perf_counter() - began)
    return best * 1000, rows


@dataclass
class Line:
    query: str
    found: int  # capped at cap + 1
    count_ms: float  # in heap order
    count_newest_ms: float
    page_ms: float

    @property
    def best_ms(self) -> float:
        return min(self.count_ms, self.count_newest_ms) + self.page_ms


async def floor(
    conn: asyncpg.Connection, owner: int, queries: Sequence[str], cap: int
) -> list[Line]:
    lines = []
    for q in queries:
        tsquery = postgres_tsquery(search_words(q))
        plain, rows = await fastest(conn, COUNT, tsquery, owner, cap + 1)
        newest, _ = await fastest(conn, COUNT_NEWEST, tsquery, owner, cap + 1)
        found = rows[0][0]
        page, _ = await fastest(conn, NEWEST if found > cap else RANKED, tsquery, owner)
        lines.append(Line(q, found, plain, newest, page))
    return lines


def mean_ms(lines: Sequence[Line]) -> float:
    return sum(line.best_ms for line in lines) / len(lines)


async def main(url: str, caps: list[int]) -> None:
    from tests.perf.test_customers_bench import SEARCHES

    conn = await asyncpg.connect(url, server_settings=POSTGRES_SERVER_SETTINGS)
    try:
        owner = await conn.fetchval("SELECT id FROM users WHERE email = 'bench-owner@example.com'")
        for cap in caps:
            lines = await floor(conn, owner, SEARCHES, cap)
            print(f"\ncount exact up to {cap:,}; times in ms of PostgreSQL, one client")
            print(f"{'search':18} {'count':>7} {'count':>8} {'newest':>8} {'page':>8}")
            for line in lines:
                shown = f"{cap:,}+" if line.found > cap else f"{line.found:,}"
                print(
                    f"{line.query:18} {shown:>7} {line.count_ms:8.2f} "
                    f"{line.count_newest_ms:8.2f} {line.page_ms:8.2f}"
                )
            print(f"mean of the cheaper count + the page: {mean_ms(lines):.2f} ms per search")
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], [int(cap) for cap in sys.argv[2:]] or [10_000]))

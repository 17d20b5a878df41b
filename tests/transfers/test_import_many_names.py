"""A chunk of thousands of different names, as a real file has: one chunk, one bulk slug
lookup, on both databases (SQLite once refused a query with one condition per name)."""

from __future__ import annotations

from tests.transfers.conftest import Run, csv_bytes

ROWS = 3_000


async def test_a_chunk_of_thousands_of_different_names_imports(run: Run) -> None:
    lines = [f"Person {n:05d} Family{n},person{n}@example.com" for n in range(ROWS)]
    # Two rows whose names take the same slug as earlier ones.
    lines += ["Person 00001 Family1,again1@example.com", "Person 00002 Family2,again2@x.com"]
    done = await run.full(csv_bytes("Name,Email", *lines), chunk_rows=5_000)
    assert (done.status, done.created, done.failed) == ("completed", ROWS + 2, 0)
    customers = await run.customers()
    slugs = {row["slug"] for row in customers.values()}
    assert len(slugs) == ROWS + 2
    assert customers["again1@example.com"]["slug"] == "person-00001-family1-2"

"""The import benchmark's world: a book of customers seeded by COPY, the export to import,
and a way to run the importer in this process (for profiling:
``python -m tests.perf.import_world ROWS BOOK``, with pyinstrument installed, prints where
the importer spends its time on a scratch database).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from tests.perf.conftest import CHUNK, COLUMNS, PASSWORD, SPAN, STAGING, Generator

OWNER_EMAIL = "import-owner@example.com"


@dataclass
class Book:
    user_id: int
    customers: int
    seconds: float


async def seed_book(url: str, customers: int) -> Book:
    """One verified user (signs in with PASSWORD) owning ``customers`` customers, by COPY."""
    from app.accounts.passwords import hash_password

    began = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        now = datetime.now(UTC)
        user_id = await conn.fetchval(
            "INSERT INTO users (name, email, password_hash, email_verified_at, is_admin, "
            "created_at, updated_at) VALUES ($1, $2, $3, $4, false, $4, $4) RETURNING id",
            "Import Owner",
            OWNER_EMAIL,
            hash_password(PASSWORD),
            now,
        )
        rows = Generator(random.Random(20261125)).customers(user_id, customers, now - SPAN)
        await conn.execute(STAGING)
        while chunk := list(itertools.islice(rows, CHUNK)):
            await conn.copy_records_to_table("customers_staging", records=chunk, columns=COLUMNS)
        columns = ", ".join(COLUMNS)
        await conn.execute(
            f"INSERT INTO customers ({columns}) "  # noqa: S608
            f"SELECT {columns} FROM customers_staging ORDER BY created_at"
        )
        await conn.execute("DROP TABLE customers_staging")
        await conn.execute("VACUUM (ANALYZE) customers")
    finally:
        await conn.close()
    return Book(user_id, customers, time.perf_counter() - began)


async def book_emails(url: str, user_id: int, count: int) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT email FROM customers WHERE user_id = $1 ORDER BY id LIMIT $2", user_id, count
        )
    finally:
        await conn.close()
    return [row["email"] for row in rows]


async def _profile(url: str, rows: int, book: int, folder: Path) -> None:
    import io
    from dataclasses import replace

    from pyinstrument import Profiler

    from app.lib.db import bind_tables, build_engine, close_database, open_database
    from app.lib.storage import build_storage
    from app.settings import Settings
    from app.transfers.importer import Importer
    from app.transfers.service import ImportService
    from tests.perf.import_file import write_export

    seeded = await seed_book(url, book)
    print(f"seeded {book:,} customers in {seeded.seconds:.1f}s")
    export = write_export(folder / "export.csv", rows, await book_emails(url, seeded.user_id, rows))
    print(f"wrote {export.rows:,} rows, {export.bytes / 1e6:.1f} MB")
    settings = replace(
        Settings.from_env({"DATABASE_URL": url, "SECRET_KEY": "x" * 40}),
        storage_dir=str(folder / "storage"),
    )
    engine = build_engine(settings)
    bind_tables(engine)
    await open_database(engine, 4)
    storage = build_storage(settings)
    await storage.start()
    try:
        imports = ImportService(storage, None, settings)
        with export.path.open("rb") as source:
            transfer = await imports.upload(seeded.user_id, "contacts.csv", source)
        await imports.configure(seeded.user_id, transfer.id, None, "skip")
        from app.transfers.repository import PiccoloTransferRepository

        await PiccoloTransferRepository().update(seeded.user_id, transfer.id, {"status": "queued"})
        importer = Importer(storage, chunk_rows=settings.import_chunk_rows)
        profiler = Profiler(interval=0.002)
        began = time.perf_counter()
        profiler.start()
        status = await importer.run(seeded.user_id, transfer.id)
        profiler.stop()
        took = time.perf_counter() - began
        done = await imports.get(seeded.user_id, transfer.id)
        print(
            f"{status}: {took:.1f}s, {rows / took:,.0f} rows/s; created {done.created:,} "
            f"(expected {export.created:,}), skipped {done.skipped:,} ({export.skipped:,}), "
            f"failed {done.failed:,} ({export.failed:,})"
        )
        out = io.StringIO()
        out.write(profiler.output_text(unicode=False, color=False, show_all=False))
        print(out.getvalue())
    finally:
        await close_database(engine)


def main() -> None:
    import tempfile

    from tests.fixtures.services import TEST_DATABASE_URL, run_migrations, scratch_postgres

    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    book = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    with (
        tempfile.TemporaryDirectory() as folder,
        scratch_postgres(TEST_DATABASE_URL, "prof") as url,
    ):
        run_migrations(url)
        asyncio.run(_profile(url, rows, book, Path(folder)))


if __name__ == "__main__":
    main()

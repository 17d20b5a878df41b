"""The jobs badge migration (users.jobs_seen_at and its transfers index) forwards,
backwards and forwards again, on an empty SQLite file and an empty PostgreSQL database,
the way `make migrate` runs migrations (the piccolo CLI in a subprocess)."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import asyncpg

from tests.fixtures.services import run_migrations, scratch_postgres

MIGRATION_ID = "2026-11-25T10:38:00:000000"
INDEX = "transfers_user_id_status_finished_at_idx"


def backwards_one(url: str) -> None:
    run_migrations(url, "backwards", extra=(f"--migration_id={MIGRATION_ID}",))


def sqlite_state(path: Path) -> tuple[bool, list[str] | None]:
    with closing(sqlite3.connect(path)) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(users)")}
        index = [row[2] for row in conn.execute(f"PRAGMA index_info({INDEX})")]
    return "jobs_seen_at" in columns, index or None


def test_sqlite_forwards_backwards_forwards(tmp_path: Path) -> None:
    path = tmp_path / "badge.sqlite3"
    url = f"sqlite:///{path}"
    run_migrations(url)
    assert sqlite_state(path) == (True, ["user_id", "status", "finished_at"])
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "INSERT INTO users (name, email, password_hash, jobs_seen_at)"
            " VALUES ('A', 'a@x.test', 'x', '2026-05-01 09:00:00+00:00')"
        )
        conn.commit()

    backwards_one(url)
    assert sqlite_state(path) == (False, None)
    with closing(sqlite3.connect(path)) as conn:
        # The rest of the schema and its rows stay.
        assert conn.execute("SELECT email FROM users").fetchall() == [("a@x.test",)]

    run_migrations(url)
    assert sqlite_state(path) == (True, ["user_id", "status", "finished_at"])


async def pg_state(url: str) -> tuple[str | None, str | None]:
    conn = await asyncpg.connect(url)
    try:
        column = await conn.fetchval(
            "SELECT is_nullable FROM information_schema.columns"
            " WHERE table_name = 'users' AND column_name = 'jobs_seen_at'"
        )
        index = await conn.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = $1", INDEX)
        return column, index
    finally:
        await conn.close()


def test_postgres_forwards_backwards_forwards(postgres_server_url: str) -> None:
    with scratch_postgres(postgres_server_url, "badge") as url:
        run_migrations(url)
        column, index = asyncio.run(pg_state(url))
        assert column == "YES"
        assert index is not None
        assert "(user_id, status, finished_at)" in index

        backwards_one(url)
        assert asyncio.run(pg_state(url)) == (None, None)

        run_migrations(url)
        column, index = asyncio.run(pg_state(url))
        assert column == "YES"
        assert index is not None

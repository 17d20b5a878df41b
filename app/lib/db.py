"""The database seam: one Piccolo engine chosen from DATABASE_URL, bound to every table.

Piccolo tables find their engine through ``piccolo_conf.DB`` on first use; binding them
here instead lets one process (the tests) switch between SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine
from piccolo.table import Table

from app.settings import Settings

# asyncpg prepares every statement, and after five runs PostgreSQL may switch a prepared
# statement to a generic plan that ignores the parameters. For a search that plan reads the
# whole user_id index of a large book (about 45 ms at a million rows) where the plan made
# for the actual words takes 1-2 ms: plan each statement for its values.
#
# JIT compilation is off: the app's statements run for milliseconds, and once a large
# table's statistics push a plan's estimated cost past jit_optimize_above_cost, LLVM
# spends 100 ms or more compiling each execution. The import's slug look-up (an index
# probe per name, 10 ms of work) took 100-150 ms a chunk that way, 45 s of a million-row
# import.
POSTGRES_SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan", "jit": "off"}


class PooledConnection(asyncpg.Connection):
    """A pool connection handed back without asyncpg's reset query.

    asyncpg sends ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` every
    time a connection returns to the pool, and Piccolo takes one from the pool per query:
    a second round trip for every query. Nothing here leaves session state behind: locks
    are transaction-scoped (``pg_advisory_xact_lock``), settings are ``SET LOCAL`` or
    the connection's own (``server_settings``), cursors live inside transactions and
    nothing LISTENs. An open transaction is still rolled back on release.
    """

    def get_reset_query(self) -> str:
        return ""


def postgres_engine(dsn: str, **options: Any) -> PostgresEngine:
    """The app's PostgreSQL engine (its connections as the app makes them), for ``dsn``."""
    return PostgresEngine(
        config={
            "dsn": dsn,
            "server_settings": POSTGRES_SERVER_SETTINGS,
            "connection_class": PooledConnection,
        },
        **options,
    )


def build_engine(settings: Settings) -> Engine:
    if settings.uses_postgres:
        return postgres_engine(settings.database_url)
    path = Path(settings.sqlite_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # WAL lets readers carry on while the one writer commits; the busy timeout
    # waits for the write lock instead of failing with "database is locked".
    return SQLiteEngine(path=str(path), timeout=30)


def all_tables() -> list[type[Table]]:
    from app.piccolo_app import APP_CONFIG

    return list(APP_CONFIG.table_classes)


def bind_tables(engine: Engine) -> None:
    for table in all_tables():
        table._meta.db = engine


async def open_database(engine: Engine, pool_size: int) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(min_size=1, max_size=pool_size)
    elif isinstance(engine, SQLiteEngine):
        await engine.run_ddl("PRAGMA journal_mode=WAL")


async def close_database(engine: Engine) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.close_connection_pool()


async def ping(engine: Engine) -> None:
    """Raise when the database does not answer a trivial query."""
    await engine.run_ddl("SELECT 1")


def is_unique_violation(error: BaseException) -> bool:
    """True when ``error`` is a unique-key violation, on either engine."""
    import sqlite3

    import asyncpg

    if isinstance(error, asyncpg.UniqueViolationError):
        return True
    return isinstance(error, sqlite3.IntegrityError) and "UNIQUE" in str(error)

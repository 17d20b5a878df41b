"""users.jobs_seen_at, and the transfers index behind the jobs badge.

`users.jobs_seen_at` (nullable): when the user last looked at /jobs; the badge counts
their imports and exports that finished after it (all finished ones while it is null).

`transfers (user_id, status, finished_at)`: the badge reads, on every page, how many of
a user's transfers finished since then and whether one is queued or running. Both are
ranges of this index (status leads after the owner), so the count never reads the table.
Raw SQL, the same on both engines (see the second migration for why raw, and how the
engine is found); `MigrationManager.run()` runs it before the column is added, and it
touches only columns that already exist.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Timestamptz
from piccolo.columns.indexes import IndexMethod
from piccolo.engine import engine_finder

ID = "2026-11-25T10:38:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "jobs badge: users.jobs_seen_at and a transfers index"

INDEX = "transfers_user_id_status_finished_at_idx"
RAW_FORWARDS = [f"CREATE INDEX {INDEX} ON transfers (user_id, status, finished_at)"]
RAW_BACKWARDS = [f"DROP INDEX IF EXISTS {INDEX}"]


async def _run(statements: list[str]) -> None:
    engine = engine_finder()
    if engine is None:
        raise RuntimeError("no database engine configured for the migration")
    for statement in statements:
        await engine.run_ddl(statement)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crm", description=DESCRIPTION)

    async def raw_forwards() -> None:
        await _run(RAW_FORWARDS)

    async def raw_backwards() -> None:
        await _run(RAW_BACKWARDS)

    manager.add_raw(raw_forwards)
    manager.add_raw_backwards(raw_backwards)

    manager.add_column(
        table_class_name="User",
        tablename="users",
        column_name="jobs_seen_at",
        db_column_name="jobs_seen_at",
        column_class_name="Timestamptz",
        column_class=Timestamptz,
        params={
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager

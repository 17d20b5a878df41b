"""The audit hash chain (audit_logs.prev_hash, .hash) and the archive index columns
(audit_archives.first_id, .last_id, .last_hash, .customer_ids), with their indexes.

Indexes are raw SQL, the same on both engines (see the second migration for why raw
and how the engine is found). `MigrationManager.run()` runs raw functions before the
column changes of the same migration, so these touch only columns that already exist:
- audit_logs (user_id, created_at, id) and (user_id, customer_id, created_at, id)
  replace the (user_id, created_at) and (user_id, customer_id, created_at) indexes:
  with the id, a trail page (newest first, keyset on created_at then id) is read
  straight off the index.
- audit_logs (user_id, id): the head of a user's chain (the last entry, read on every
  audited write) and the verifier's walk along it.
- audit_archives (user_id, object_key) unique: two runs of the archive job that race
  on the same day cannot both record the object.

PostgreSQL only: `audit_chain_head(user_id, lock_class, lock_key)`, the user's chain lock
and the head of their chain in one round trip (it runs on every audited write). It
takes `pg_advisory_xact_lock(lock_class, lock_key)`, then reads the user's last entry,
or, when the database holds none, the end of their newest archive. The function is
VOLATILE, so under READ COMMITTED each of its statements takes a new snapshot: the read
after the lock sees what the previous holder committed (a single SELECT that took the
lock would read with the snapshot of its start, from before the wait). PL/pgSQL looks
up tables and columns when the function first runs, so it can be created here, before
the columns this migration adds.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import JSON, BigInt, Varchar
from piccolo.columns.indexes import IndexMethod
from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-11-25T08:19:11:665588"
VERSION = "1.38.0"
DESCRIPTION = "audit hash chain and archive index"

RAW_FORWARDS = [
    "DROP INDEX IF EXISTS audit_logs_user_id_created_at_idx",
    "DROP INDEX IF EXISTS audit_logs_user_id_customer_id_created_at_idx",
    "CREATE INDEX audit_logs_user_id_created_at_id_idx ON audit_logs (user_id, created_at, id)",
    "CREATE INDEX audit_logs_user_id_customer_id_created_at_id_idx"
    " ON audit_logs (user_id, customer_id, created_at, id)",
    "CREATE INDEX audit_logs_user_id_id_idx ON audit_logs (user_id, id)",
    "CREATE UNIQUE INDEX audit_archives_user_id_object_key_key"
    " ON audit_archives (user_id, object_key)",
]
PG_CHAIN_HEAD = """
CREATE FUNCTION audit_chain_head(p_user_id bigint, p_lock_class integer, p_lock_key integer)
RETURNS TABLE (hash varchar, created_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock_class, p_lock_key);
    RETURN QUERY
        SELECT l.hash, l.created_at FROM audit_logs AS l
        WHERE l.user_id = p_user_id ORDER BY l.id DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN QUERY
            SELECT a.last_hash, a.last_at FROM audit_archives AS a
            WHERE a.user_id = p_user_id ORDER BY a.first_at DESC, a.id DESC LIMIT 1;
    END IF;
END
$$
"""
PG_FORWARDS = [*RAW_FORWARDS, PG_CHAIN_HEAD]
PG_BACKWARDS = ["DROP FUNCTION IF EXISTS audit_chain_head(bigint, integer, integer)"]

RAW_BACKWARDS = [
    "DROP INDEX IF EXISTS audit_archives_user_id_object_key_key",
    "DROP INDEX IF EXISTS audit_logs_user_id_id_idx",
    "DROP INDEX IF EXISTS audit_logs_user_id_customer_id_created_at_id_idx",
    "DROP INDEX IF EXISTS audit_logs_user_id_created_at_id_idx",
    "CREATE INDEX audit_logs_user_id_customer_id_created_at_idx"
    " ON audit_logs (user_id, customer_id, created_at)",
    "CREATE INDEX audit_logs_user_id_created_at_idx ON audit_logs (user_id, created_at)",
]


async def _run(postgres: list[str], sqlite: list[str]) -> None:
    engine = engine_finder()
    if isinstance(engine, PostgresEngine):
        statements = postgres
    elif isinstance(engine, SQLiteEngine):
        statements = sqlite
    else:
        raise RuntimeError(f"no migration SQL for engine {type(engine).__name__}")
    for statement in statements:
        await engine.run_ddl(statement)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crm", description=DESCRIPTION)

    async def raw_forwards() -> None:
        await _run(PG_FORWARDS, RAW_FORWARDS)

    async def raw_backwards() -> None:
        await _run([*PG_BACKWARDS, *RAW_BACKWARDS], RAW_BACKWARDS)

    manager.add_raw(raw_forwards)
    manager.add_raw_backwards(raw_backwards)

    manager.add_column(
        table_class_name="AuditArchive",
        tablename="audit_archives",
        column_name="customer_ids",
        db_column_name="customer_ids",
        column_class_name="JSON",
        column_class=JSON,
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

    manager.add_column(
        table_class_name="AuditArchive",
        tablename="audit_archives",
        column_name="first_id",
        db_column_name="first_id",
        column_class_name="BigInt",
        column_class=BigInt,
        params={
            "default": 0,
            "null": False,
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

    manager.add_column(
        table_class_name="AuditArchive",
        tablename="audit_archives",
        column_name="last_hash",
        db_column_name="last_hash",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 64,
            "default": "",
            "null": False,
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

    manager.add_column(
        table_class_name="AuditArchive",
        tablename="audit_archives",
        column_name="last_id",
        db_column_name="last_id",
        column_class_name="BigInt",
        column_class=BigInt,
        params={
            "default": 0,
            "null": False,
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

    manager.add_column(
        table_class_name="AuditLog",
        tablename="audit_logs",
        column_name="hash",
        db_column_name="hash",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 64,
            "default": "",
            "null": False,
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

    manager.add_column(
        table_class_name="AuditLog",
        tablename="audit_logs",
        column_name="prev_hash",
        db_column_name="prev_hash",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 64,
            "default": "",
            "null": False,
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

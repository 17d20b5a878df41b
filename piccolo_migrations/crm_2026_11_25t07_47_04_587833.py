"""Composite keys, sort/filter indexes and full-text search, per engine.

Piccolo's auto migrations only know single-column indexes, so everything here is raw
SQL. `MigrationManager.run()` runs the raw functions *before* it creates the tables
of the same migration, which is why this is a migration of its own, after the one
that creates the tables.

The raw functions run inside the migration's transaction: `engine_finder()` returns
the engine `MigrationManager.run()` opened that transaction on (piccolo_conf.DB), and
`run_ddl` uses the transaction's connection. Both drivers take one statement per
call, hence the lists. The engine is looked at when the function runs, not when the
module is imported: `piccolo migrations new --auto` imports this file to rebuild its
schema snapshot, without a database.

Full-text objects (the search code relies on these names):
- PostgreSQL: `customers.search_vector`, a stored generated tsvector ('simple' config,
  no stemming; name and email weighted A, organization and job title B, notes C),
  indexed by GIN index `customers_search_vector_idx`. Query it with
  `search_vector @@ websearch_to_tsquery('simple', $1)` (or plainto_tsquery).
- SQLite: FTS5 table `customers_fts` (columns name, email, organization, job_title,
  notes; external content `customers`, rowid = customers.id; tokenizer unicode61
  remove_diacritics 2), kept in step by the triggers `customers_fts_ai`,
  `customers_fts_ad` and `customers_fts_au`. Query it with
  `SELECT rowid FROM customers_fts WHERE customers_fts MATCH ?`.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-11-25T07:47:04:587833"
VERSION = "1.38.0"
DESCRIPTION = "keys, indexes and full-text search"

# name -> (table, columns, unique); the same on both engines. user_id leads every
# customer-scoped key, so each of these also serves the ON DELETE CASCADE from users.
INDEXES = {
    "customers_user_id_slug_key": ("customers", "user_id, slug", True),
    "customers_user_id_email_normalized_key": ("customers", "user_id, email_normalized", True),
    "customers_user_id_created_at_id_idx": ("customers", "user_id, created_at, id", False),
    "customers_user_id_updated_at_id_idx": ("customers", "user_id, updated_at, id", False),
    "customers_user_id_name_id_idx": ("customers", "user_id, name, id", False),
    "customers_user_id_organization_idx": ("customers", "user_id, organization", False),
    "audit_logs_user_id_created_at_idx": ("audit_logs", "user_id, created_at", False),
    "audit_logs_user_id_customer_id_created_at_idx": (
        "audit_logs",
        "user_id, customer_id, created_at",
        False,
    ),
    "audit_archives_user_id_first_at_idx": ("audit_archives", "user_id, first_at", False),
    "transfers_user_id_created_at_idx": ("transfers", "user_id, created_at", False),
    "transfers_status_expires_at_idx": ("transfers", "status, expires_at", False),
}

CREATE_INDEXES = [
    f"CREATE {'UNIQUE ' if unique else ''}INDEX {name} ON {table} ({columns})"
    for name, (table, columns, unique) in INDEXES.items()
]
DROP_INDEXES = [f"DROP INDEX IF EXISTS {name}" for name in reversed(INDEXES)]

# The email goes in three times: whole ('jane.doe@example.com'), split at the '@'
# ('jane.doe', 'example.com') and split at every punctuation mark ('jane', 'doe',
# 'example', 'com'), so a search for any of these finds it.
PG_SEARCH_VECTOR = """
ALTER TABLE customers ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', coalesce(name, '')), 'A')
    || setweight(to_tsvector('simple',
        coalesce(email, '')
        || ' ' || replace(coalesce(email, ''), '@', ' ')
        || ' ' || translate(coalesce(email, ''), '@._+-', '     ')), 'A')
    || setweight(to_tsvector('simple', coalesce(organization, '')), 'B')
    || setweight(to_tsvector('simple', coalesce(job_title, '')), 'B')
    || setweight(to_tsvector('simple', coalesce(notes, '')), 'C')
) STORED
"""

PG_FORWARDS = [
    *CREATE_INDEXES,
    PG_SEARCH_VECTOR,
    "CREATE INDEX customers_search_vector_idx ON customers USING GIN (search_vector)",
]
PG_BACKWARDS = [
    "DROP INDEX IF EXISTS customers_search_vector_idx",
    "ALTER TABLE customers DROP COLUMN IF EXISTS search_vector",
    *DROP_INDEXES,
]

# The standard external-content pattern: the FTS index holds only tokens, so removing
# a row means handing FTS5 the exact old values through its 'delete' command.
SQLITE_FORWARDS = [
    *CREATE_INDEXES,
    """
    CREATE VIRTUAL TABLE customers_fts USING fts5(
        name, email, organization, job_title, notes,
        content='customers',
        content_rowid='id',
        tokenize='unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER customers_fts_ai AFTER INSERT ON customers BEGIN
        INSERT INTO customers_fts (rowid, name, email, organization, job_title, notes)
        VALUES (new.id, new.name, new.email, new.organization, new.job_title, new.notes);
    END
    """,
    """
    CREATE TRIGGER customers_fts_ad AFTER DELETE ON customers BEGIN
        INSERT INTO customers_fts (customers_fts, rowid, name, email, organization, job_title, notes)
        VALUES ('delete', old.id, old.name, old.email, old.organization, old.job_title, old.notes);
    END
    """,
    # Only when an indexed column (or the rowid) is in the SET list: an update of
    # updated_at or phone alone leaves the index alone.
    """
    CREATE TRIGGER customers_fts_au
    AFTER UPDATE OF id, name, email, organization, job_title, notes ON customers BEGIN
        INSERT INTO customers_fts (customers_fts, rowid, name, email, organization, job_title, notes)
        VALUES ('delete', old.id, old.name, old.email, old.organization, old.job_title, old.notes);
        INSERT INTO customers_fts (rowid, name, email, organization, job_title, notes)
        VALUES (new.id, new.name, new.email, new.organization, new.job_title, new.notes);
    END
    """,
    # Index rows that already exist (none on a fresh install; cheap either way).
    "INSERT INTO customers_fts (customers_fts) VALUES ('rebuild')",
]
SQLITE_BACKWARDS = [
    "DROP TRIGGER IF EXISTS customers_fts_au",
    "DROP TRIGGER IF EXISTS customers_fts_ad",
    "DROP TRIGGER IF EXISTS customers_fts_ai",
    "DROP TABLE IF EXISTS customers_fts",
    *DROP_INDEXES,
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
        await _run(PG_FORWARDS, SQLITE_FORWARDS)

    async def raw_backwards() -> None:
        await _run(PG_BACKWARDS, SQLITE_BACKWARDS)

    manager.add_raw(raw_forwards)
    manager.add_raw_backwards(raw_backwards)

    return manager

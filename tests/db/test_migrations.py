"""The `crm` migrations on an empty SQLite file and an empty PostgreSQL database.

Schema tests: the checks talk to sqlite3 and asyncpg directly, apart from one Piccolo
round trip that proves the FK and JSONB columns map on both engines. Migrations run
the way `make migrate` runs them: the piccolo CLI in a subprocess.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path

import asyncpg
import pytest

from tests.fixtures.services import ROOT, run_migrations, scratch_postgres

APP_TABLES = {"users", "api_tokens", "customers", "audit_logs", "audit_archives", "transfers"}

# name -> (table, columns in order, unique)
EXPECTED_INDEXES = {
    "customers_user_id_slug_key": ("customers", ("user_id", "slug"), True),
    "customers_user_id_email_normalized_key": (
        "customers",
        ("user_id", "email_normalized"),
        True,
    ),
    "customers_user_id_created_at_id_idx": ("customers", ("user_id", "created_at", "id"), False),
    "customers_user_id_updated_at_id_idx": ("customers", ("user_id", "updated_at", "id"), False),
    "customers_user_id_name_id_idx": ("customers", ("user_id", "name", "id"), False),
    "customers_user_id_organization_idx": ("customers", ("user_id", "organization"), False),
    # Replaced in the audit migration by the same keys with the id (keyset pages).
    "audit_logs_user_id_created_at_id_idx": (
        "audit_logs",
        ("user_id", "created_at", "id"),
        False,
    ),
    "audit_logs_user_id_customer_id_created_at_id_idx": (
        "audit_logs",
        ("user_id", "customer_id", "created_at", "id"),
        False,
    ),
    "audit_logs_user_id_id_idx": ("audit_logs", ("user_id", "id"), False),
    "audit_archives_user_id_first_at_idx": ("audit_archives", ("user_id", "first_at"), False),
    "audit_archives_user_id_object_key_key": (
        "audit_archives",
        ("user_id", "object_key"),
        True,
    ),
    "transfers_user_id_created_at_idx": ("transfers", ("user_id", "created_at"), False),
    "transfers_status_expires_at_idx": ("transfers", ("status", "expires_at"), False),
}
# Made by Piccolo from `unique=True`; their names differ per engine.
EXPECTED_UNIQUE_COLUMNS = {("users", ("email",)), ("api_tokens", ("token_hash",))}

SQLITE_FTS_TRIGGERS = {"customers_fts_ai", "customers_fts_ad", "customers_fts_au"}


def migration_ids() -> set[str]:
    """The ids of the migration files on disk: forwards must have run all of them."""
    ids = set()
    for path in (ROOT / "piccolo_migrations").glob("crm_*.py"):
        found = re.search(r'^ID = "([^"]+)"', path.read_text(), re.MULTILINE)
        assert found, f"{path.name} has no ID"
        ids.add(found.group(1))
    return ids


def migrate_backwards_all(url: str) -> str:
    return run_migrations(url, "backwards", extra=("--migration_id=all",))


def customer_row(user_id: int, slug: str, email: str, **fields: str) -> dict[str, object]:
    return {
        "user_id": user_id,
        "slug": slug,
        "name": fields.get("name", slug.title()),
        "email": email,
        "email_normalized": email.lower(),
        "organization": fields.get("organization", ""),
        "job_title": fields.get("job_title", ""),
        "notes": fields.get("notes", ""),
    }


# --------------------------------------------------------------------------- SQLite


def sqlite_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")  # what Piccolo's SQLiteEngine does
    return conn


def sqlite_objects(conn: sqlite3.Connection) -> set[tuple[str, str]]:
    return set(conn.execute("SELECT type, name FROM sqlite_master"))


def sqlite_indexes(conn: sqlite3.Connection) -> dict[str, tuple[str, tuple[str, ...], bool]]:
    found = {}
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        for _seq, name, unique, _origin, _partial in conn.execute(f'PRAGMA index_list("{table}")'):
            columns = tuple(
                row[2] for row in conn.execute(f'PRAGMA index_info("{name}")').fetchall()
            )
            found[name] = (table, columns, bool(unique))
    return found


def sqlite_insert_user(conn: sqlite3.Connection, email: str) -> int:
    cursor = conn.execute(
        "INSERT INTO users (name, email, password_hash) VALUES (?, ?, 'x')", (email, email)
    )
    conn.commit()
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def sqlite_insert_customer(conn: sqlite3.Connection, row: dict[str, object]) -> int:
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    sql = f"INSERT INTO customers ({columns}) VALUES ({marks})"  # noqa: S608 - fixed names
    cursor = conn.execute(sql, tuple(row.values()))
    conn.commit()
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def fts(conn: sqlite3.Connection, query: str) -> list[int]:
    rows = conn.execute(
        "SELECT rowid FROM customers_fts WHERE customers_fts MATCH ? ORDER BY rowid", (query,)
    )
    return [row[0] for row in rows]


def fts_integrity_check(conn: sqlite3.Connection) -> None:
    # rank = 1 also compares the index with the content table (external content).
    conn.execute("INSERT INTO customers_fts (customers_fts, rank) VALUES ('integrity-check', 1)")


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("migrations") / "crm.sqlite3"
    run_migrations(f"sqlite:///{path}")
    return path


def test_sqlite_forwards_records_every_migration(sqlite_db: Path) -> None:
    with closing(sqlite_connect(sqlite_db)) as conn:
        ran = {row[0] for row in conn.execute("SELECT name FROM migration WHERE app_name = 'crm'")}
    assert ran == migration_ids()
    assert len(ran) >= 2


def test_sqlite_tables_indexes_and_fts_objects(sqlite_db: Path) -> None:
    with closing(sqlite_connect(sqlite_db)) as conn:
        objects = sqlite_objects(conn)
        indexes = sqlite_indexes(conn)
        fts_sql = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'customers_fts'"
        ).fetchone()[0]
        triggers = dict(
            conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'")
        )
        fts_columns = [row[1] for row in conn.execute("PRAGMA table_info(customers_fts)")]
        id_type = conn.execute(
            "SELECT type FROM pragma_table_info('customers') WHERE name = 'id'"
        ).fetchone()[0]
    assert {("table", name) for name in APP_TABLES} <= objects
    for name, spec in EXPECTED_INDEXES.items():
        assert indexes.get(name) == spec, name
    unique_columns = {(table, cols) for table, cols, unique in indexes.values() if unique}
    assert unique_columns >= EXPECTED_UNIQUE_COLUMNS
    # customers.id is the rowid, which the external-content FTS table points at.
    assert id_type == "INTEGER"
    assert ("table", "customers_fts") in objects
    assert "fts5" in fts_sql
    assert "content='customers'" in fts_sql
    assert "content_rowid='id'" in fts_sql
    assert "unicode61 remove_diacritics 2" in fts_sql
    assert fts_columns == ["name", "email", "organization", "job_title", "notes"]
    assert triggers == dict.fromkeys(SQLITE_FTS_TRIGGERS, "customers")


def test_sqlite_unique_keys_are_per_user(sqlite_db: Path) -> None:
    with closing(sqlite_connect(sqlite_db)) as conn:
        ann = sqlite_insert_user(conn, "ann-uniq@example.com")
        bob = sqlite_insert_user(conn, "bob-uniq@example.com")
        sqlite_insert_customer(conn, customer_row(ann, "acme", "jo@acme.test"))
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            sqlite_insert_customer(conn, customer_row(ann, "acme", "other@acme.test"))
        conn.rollback()
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            sqlite_insert_customer(conn, customer_row(ann, "acme-2", "jo@acme.test"))
        conn.rollback()
        # The same slug and email belong to someone else's list: allowed.
        sqlite_insert_customer(conn, customer_row(bob, "acme", "jo@acme.test"))
        count = conn.execute(
            "SELECT count(*) FROM customers WHERE slug = 'acme' AND user_id IN (?, ?)",
            (ann, bob),
        ).fetchone()[0]
    assert count == 2


def test_sqlite_foreign_keys_and_not_null_owner(sqlite_db: Path) -> None:
    with closing(sqlite_connect(sqlite_db)) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
            conn.execute(
                "INSERT INTO customers (slug, name, email, email_normalized)"
                " VALUES ('x', 'X', 'x@x.test', 'x@x.test')"
            )
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            sqlite_insert_customer(conn, customer_row(987654, "ghost", "ghost@x.test"))
        conn.rollback()
        owner = sqlite_insert_user(conn, "cascade@example.com")
        customer = sqlite_insert_customer(
            conn, customer_row(owner, "cascade", "c@x.test", notes="quokka")
        )
        conn.execute(
            "INSERT INTO transfers (user_id, kind, options) VALUES (?, 'import', ?)",
            (owner, '{"policy": "skip"}'),
        )
        conn.commit()
        assert fts(conn, "quokka") == [customer]
        conn.execute("DELETE FROM users WHERE id = ?", (owner,))
        conn.commit()
        left = conn.execute(
            "SELECT (SELECT count(*) FROM customers WHERE user_id = :u)"
            " + (SELECT count(*) FROM transfers WHERE user_id = :u)",
            {"u": owner},
        ).fetchone()[0]
        # The cascade fires the delete trigger too: the index forgets the customer.
        assert left == 0
        assert fts(conn, "quokka") == []
        fts_integrity_check(conn)


def test_sqlite_full_text_follows_insert_update_delete(sqlite_db: Path) -> None:
    with closing(sqlite_connect(sqlite_db)) as conn:
        owner = sqlite_insert_user(conn, "fts@example.com")
        customer = sqlite_insert_customer(
            conn,
            customer_row(
                owner,
                "zoe",
                "Zoe.Quill@Example.com",
                name="Zoë Quill",
                organization="Brightwater Ltd",
                job_title="Harbour master",
                notes="Collects antique xylophones",
            ),
        )
        assert fts(conn, "xylophones") == [customer]
        assert fts(conn, "brightwater") == [customer]
        assert fts(conn, "harbour") == [customer]
        assert fts(conn, "quill") == [customer]
        assert fts(conn, "zoe") == [customer]  # remove_diacritics: ë matches e
        assert fts(conn, "email:example") == [customer]
        assert fts(conn, "name:xylophones") == []

        conn.execute("UPDATE customers SET notes = 'Plays the tuba' WHERE id = ?", (customer,))
        conn.commit()
        assert fts(conn, "xylophones") == []
        assert fts(conn, "tuba") == [customer]

        # An update that leaves the indexed columns alone keeps the index right.
        conn.execute(
            "UPDATE customers SET updated_at = CURRENT_TIMESTAMP, phone = '1' WHERE id = ?",
            (customer,),
        )
        conn.commit()
        assert fts(conn, "tuba") == [customer]
        fts_integrity_check(conn)

        conn.execute("DELETE FROM customers WHERE id = ?", (customer,))
        conn.commit()
        assert fts(conn, "tuba") == []
        assert fts(conn, "quill") == []
        fts_integrity_check(conn)


def test_sqlite_forwards_backwards_forwards(tmp_path: Path) -> None:
    path = tmp_path / "cycle.sqlite3"
    url = f"sqlite:///{path}"
    run_migrations(url)
    with closing(sqlite_connect(path)) as conn:
        sqlite_insert_customer(
            conn, customer_row(sqlite_insert_user(conn, "c@x.test"), "a", "a@x.test")
        )

    migrate_backwards_all(url)
    with closing(sqlite_connect(path)) as conn:
        # Only Piccolo's own bookkeeping table is left, and it is empty of crm rows.
        assert sqlite_objects(conn) == {("table", "migration")}
        assert conn.execute("SELECT count(*) FROM migration").fetchone()[0] == 0

    run_migrations(url)
    with closing(sqlite_connect(path)) as conn:
        objects = sqlite_objects(conn)
        indexes = sqlite_indexes(conn)
        owner = sqlite_insert_user(conn, "again@x.test")
        customer = sqlite_insert_customer(conn, customer_row(owner, "b", "b@x.test", notes="ok"))
        assert fts(conn, "ok") == [customer]
    assert {("table", name) for name in APP_TABLES | {"customers_fts"}} <= objects
    assert {("trigger", name) for name in SQLITE_FTS_TRIGGERS} <= objects
    assert set(EXPECTED_INDEXES) <= set(indexes)


# ----------------------------------------------------------------------- PostgreSQL

PG_INDEXES_SQL = """
SELECT i.relname AS name, t.relname AS table_name, ix.indisunique AS is_unique,
       array_agg(a.attname ORDER BY k.ord) AS columns
FROM pg_index ix
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_class t ON t.oid = ix.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
WHERE n.nspname = 'public'
GROUP BY i.relname, t.relname, ix.indisunique
"""


async def pg_indexes(conn: asyncpg.Connection) -> dict[str, tuple[str, tuple[str, ...], bool]]:
    return {
        row["name"]: (row["table_name"], tuple(row["columns"]), row["is_unique"])
        for row in await conn.fetch(PG_INDEXES_SQL)
    }


async def pg_relations(conn: asyncpg.Connection) -> set[tuple[str, str]]:
    """Every table, sequence, index, view... of the public schema, as (relkind, name)."""
    rows = await conn.fetch(
        "SELECT c.relkind::text AS relkind, c.relname FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
    )
    return {(row["relkind"], row["relname"]) for row in rows}


async def pg_insert_user(conn: asyncpg.Connection, email: str) -> int:
    return await conn.fetchval(
        "INSERT INTO users (name, email, password_hash) VALUES ($1, $1, 'x') RETURNING id", email
    )


async def pg_insert_customer(conn: asyncpg.Connection, row: dict[str, object]) -> int:
    columns = ", ".join(row)
    marks = ", ".join(f"${n}" for n in range(1, len(row) + 1))
    sql = f"INSERT INTO customers ({columns}) VALUES ({marks}) RETURNING id"  # noqa: S608
    return await conn.fetchval(sql, *row.values())


async def search(conn: asyncpg.Connection, owner: int, words: str) -> list[int]:
    rows = await conn.fetch(
        "SELECT id FROM customers"
        " WHERE user_id = $1 AND search_vector @@ plainto_tsquery('simple', $2)"
        " ORDER BY ts_rank(search_vector, plainto_tsquery('simple', $2)) DESC, id",
        owner,
        words,
    )
    return [row["id"] for row in rows]


@pytest.fixture(scope="module")
def pg_db(postgres_server_url: str) -> Iterator[str]:
    with scratch_postgres(postgres_server_url, "mig") as url:
        run_migrations(url)
        yield url


@pytest.fixture
async def pg(pg_db: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_db)
    yield conn
    await conn.close()


async def test_pg_forwards_records_every_migration(pg: asyncpg.Connection) -> None:
    rows = await pg.fetch("SELECT name FROM migration WHERE app_name = 'crm'")
    assert {row["name"] for row in rows} == migration_ids()


async def test_pg_tables_indexes_and_search_vector(pg: asyncpg.Connection) -> None:
    tables = {
        row["table_name"]
        for row in await pg.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    }
    assert tables >= APP_TABLES
    indexes = await pg_indexes(pg)
    for name, spec in EXPECTED_INDEXES.items():
        assert indexes.get(name) == spec, name
    unique_columns = {(table, cols) for table, cols, unique in indexes.values() if unique}
    assert unique_columns >= EXPECTED_UNIQUE_COLUMNS

    column = await pg.fetchrow(
        "SELECT data_type, is_generated, generation_expression"
        " FROM information_schema.columns"
        " WHERE table_name = 'customers' AND column_name = 'search_vector'"
    )
    assert column is not None
    assert column["data_type"] == "tsvector"
    assert column["is_generated"] == "ALWAYS"
    for source in ("name", "email", "organization", "job_title", "notes"):
        assert f"COALESCE({source}," in column["generation_expression"]
    assert "'simple'" in column["generation_expression"]
    gin = await pg.fetchval(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'customers_search_vector_idx'"
    )
    assert gin is not None
    assert "USING gin (search_vector)" in gin


async def test_pg_unique_keys_are_per_user(pg: asyncpg.Connection) -> None:
    ann = await pg_insert_user(pg, "ann-uniq@example.com")
    bob = await pg_insert_user(pg, "bob-uniq@example.com")
    await pg_insert_customer(pg, customer_row(ann, "acme", "jo@acme.test"))
    with pytest.raises(asyncpg.UniqueViolationError, match="customers_user_id_slug_key"):
        await pg_insert_customer(pg, customer_row(ann, "acme", "other@acme.test"))
    with pytest.raises(
        asyncpg.UniqueViolationError, match="customers_user_id_email_normalized_key"
    ):
        await pg_insert_customer(pg, customer_row(ann, "acme-2", "jo@acme.test"))
    await pg_insert_customer(pg, customer_row(bob, "acme", "jo@acme.test"))
    count = await pg.fetchval(
        "SELECT count(*) FROM customers WHERE slug = 'acme' AND user_id = ANY($1::bigint[])",
        [ann, bob],
    )
    assert count == 2


async def test_pg_foreign_keys_and_not_null_owner(pg: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.NotNullViolationError):
        await pg.execute(
            "INSERT INTO customers (slug, name, email, email_normalized)"
            " VALUES ('x', 'X', 'x@x.test', 'x@x.test')"
        )
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await pg_insert_customer(pg, customer_row(987654, "ghost", "ghost@x.test"))
    owner = await pg_insert_user(pg, "cascade@example.com")
    await pg_insert_customer(pg, customer_row(owner, "cascade", "c@x.test"))
    await pg.execute(
        "INSERT INTO transfers (user_id, kind, options) VALUES ($1, 'import', $2::jsonb)",
        owner,
        '{"policy": "skip"}',
    )
    await pg.execute("DELETE FROM users WHERE id = $1", owner)
    left = await pg.fetchval(
        "SELECT (SELECT count(*) FROM customers WHERE user_id = $1)"
        " + (SELECT count(*) FROM transfers WHERE user_id = $1)",
        owner,
    )
    assert left == 0


async def test_pg_full_text_follows_insert_update_delete(pg: asyncpg.Connection) -> None:
    owner = await pg_insert_user(pg, "fts@example.com")
    customer = await pg_insert_customer(
        pg,
        customer_row(
            owner,
            "zoe",
            "Zoe.Quill@Example.com",
            name="Zoë Quill",
            organization="Brightwater Ltd",
            job_title="Harbour master",
            notes="Collects antique xylophones",
        ),
    )
    assert await search(pg, owner, "xylophones") == [customer]
    assert await search(pg, owner, "Brightwater") == [customer]
    assert await search(pg, owner, "harbour") == [customer]
    assert await search(pg, owner, "quill") == [customer]
    # The email is found whole, by its domain, and by a part of its local part.
    assert await search(pg, owner, "zoe.quill@example.com") == [customer]
    assert await search(pg, owner, "example.com") == [customer]
    assert await search(pg, owner, "zoe") == [customer]
    # 'simple' does not stem: "xylophone" is not "xylophones".
    assert await search(pg, owner, "xylophone") == []

    await pg.execute("UPDATE customers SET notes = 'Plays the tuba' WHERE id = $1", customer)
    assert await search(pg, owner, "xylophones") == []
    assert await search(pg, owner, "tuba") == [customer]

    # A name hit outranks a notes hit.
    in_notes = await pg_insert_customer(
        pg, customer_row(owner, "n", "n@x.test", name="Nina", notes="met Quill at the fair")
    )
    assert await search(pg, owner, "quill") == [customer, in_notes]

    await pg.execute("DELETE FROM customers WHERE id = $1", customer)
    assert await search(pg, owner, "tuba") == []
    assert await search(pg, owner, "quill") == [in_notes]


@pytest.fixture
def pg_empty(postgres_server_url: str) -> Iterator[str]:
    with scratch_postgres(postgres_server_url, "mig") as url:
        yield url


async def test_pg_forwards_backwards_forwards(pg_empty: str) -> None:
    conn = await asyncpg.connect(pg_empty)
    try:
        assert await pg_relations(conn) == set()
        run_migrations(pg_empty)
        owner = await pg_insert_user(conn, "c@x.test")
        await pg_insert_customer(conn, customer_row(owner, "a", "a@x.test"))

        migrate_backwards_all(pg_empty)
        # Only Piccolo's own bookkeeping table (and its key and sequence) is left.
        assert await pg_relations(conn) == {
            ("r", "migration"),
            ("S", "migration_id_seq"),
            ("i", "migration_pkey"),
        }
        assert await conn.fetchval("SELECT count(*) FROM migration") == 0

        run_migrations(pg_empty)
        owner = await pg_insert_user(conn, "again@x.test")
        customer = await pg_insert_customer(conn, customer_row(owner, "b", "b@x.test", notes="ok"))
        assert await search(conn, owner, "ok") == [customer]
        assert set(EXPECTED_INDEXES) <= set(await pg_indexes(conn))
    finally:
        await conn.close()


# -------------------------------------------------------------- Piccolo, both engines


@pytest.fixture(params=["sqlite", "postgres"])
def migrated_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{request.getfixturevalue('sqlite_db')}"
    return request.getfixturevalue("pg_db")


async def test_piccolo_maps_foreign_keys_and_json(migrated_url: str) -> None:
    from app.accounts.tables import ApiToken, User
    from app.customers.tables import Customer
    from app.lib.db import all_tables, bind_tables, build_engine
    from app.settings import Settings
    from app.transfers.tables import Transfer

    engine = build_engine(Settings(secret_key="k" * 40, database_url=migrated_url))
    previous = {table: table._meta._db for table in all_tables()}
    bind_tables(engine)
    try:
        user = User(name="Piccolo", email="piccolo@example.com", password_hash="x")
        await user.save()
        customer = Customer(
            user_id=user.id, slug="p", name="P", email="p@x.test", email_normalized="p@x.test"
        )
        await customer.save()
        transfer = Transfer(
            user_id=user.id, kind="import", options={"mapping": {"Name": "name"}, "n": [1, 2]}
        )
        await transfer.save()
        await ApiToken(user_id=user.id, name="cli", token_hash="f" * 64).save()

        row = await (
            Transfer.select(Transfer.options, Transfer.checkpoint, Transfer.user_id.email)
            .where(Transfer.id == transfer.id)
            .output(load_json=True)
            .first()
        )
        assert row == {
            "options": {"mapping": {"Name": "name"}, "n": [1, 2]},
            "checkpoint": None,
            "user_id.email": "piccolo@example.com",
        }
        abilities = await ApiToken.select(ApiToken.abilities).output(load_json=True).first()
        assert abilities == {"abilities": ["*"]}
        # The generated search column (PostgreSQL) stays out of Piccolo's selects.
        fetched = await Customer.objects().get(Customer.id == customer.id)
        assert fetched is not None
        assert fetched.user_id == user.id

        await User.delete().where(User.id == user.id)
        assert await Customer.count().where(Customer.user_id == user.id) == 0
        assert await Transfer.count().where(Transfer.user_id == user.id) == 0
    finally:
        for table, db in previous.items():
            table._meta._db = db

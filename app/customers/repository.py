"""The only place that queries customers. Every method takes the owning user_id first.

Lists use keyset pagination: a page continues after (or, going back, before) the sort
value and id of the row at its edge, so page 40,000 costs what page 1 costs. The
cursor is opaque to clients: base64url (no padding) of JSON
``{"s": sort, "d": "next" | "prev", "k": [sort value, id]}``; dates travel as ISO 8601,
relevance as a float.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.querystring import QueryString

from app.customers import search
from app.customers.models import (
    COUNT_CAP,
    DEFAULT_SORT,
    CountResult,
    Customer,
    CustomerInput,
    ListItem,
    ListQuery,
    Page,
)
from app.customers.tables import Customer as CustomerTable
from app.lib.db import is_unique_violation

SLUG_KEY = "customers_user_id_slug_key"
EMAIL_KEY = "customers_user_id_email_normalized_key"

COLUMNS = (
    "id",
    "user_id",
    "slug",
    "name",
    "email",
    "phone",
    "organization",
    "job_title",
    "notes",
    "created_at",
    "updated_at",
)
_SELECT_COLUMNS = ", ".join(f"c.{name}" for name in COLUMNS)
# The columns a single row is looked up by (only these are formatted into SQL).
_ONE_BY = {"slug": "slug", "email_normalized": "email_normalized"}
_TABLE_COLUMNS = tuple(CustomerTable._meta.get_column_by_name(name) for name in COLUMNS)
# sort name -> (column of the customers row, ascending)
_SORTS = {
    "name": ("name", True),
    "-name": ("name", False),
    "created": ("created_at", True),
    "-created": ("created_at", False),
    "updated": ("updated_at", True),
    "-updated": ("updated_at", False),
    "relevance": ("rank", False),
}
# The order of a search whose matches are more than the count's cap: ranking them all
# would read every match (tens of thousands of rows for a common word), so the newest
# come first; the capped count already said how many there are.
BEYOND_CAP_SORT = "-created"


class SlugTaken(Exception):
    """The (user_id, slug) key is taken: pick the next suffix and try again."""


class EmailTaken(Exception):
    """The (user_id, email_normalized) key is taken."""


class InvalidCursor(ValueError):
    """A cursor that this code did not make, or one made for another sort."""


def _unique_key(error: BaseException) -> str | None:
    """Which unique key a violation is about. PostgreSQL names the index (constraint_name);
    SQLite names the columns ("UNIQUE constraint failed: customers.user_id, customers.slug")."""
    if not is_unique_violation(error):
        return None
    text = f"{getattr(error, 'constraint_name', '') or ''} {error}"
    if SLUG_KEY in text or "customers.slug" in text:
        return "slug"
    if EMAIL_KEY in text or "customers.email_normalized" in text:
        return "email"
    return None


def _as_datetime(value: Any) -> datetime:
    # SQLite hands back text where it cannot see the column's declared type (subqueries).
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def customer_from_row(row: dict[str, Any]) -> Customer:
    return Customer(
        id=int(row["id"]),
        user_id=int(row["user_id"]),
        slug=row["slug"],
        name=row["name"],
        email=row["email"],
        phone=row["phone"] or "",
        organization=row["organization"] or "",
        job_title=row["job_title"] or "",
        notes=row["notes"] or "",
        created_at=_as_datetime(row["created_at"]),
        updated_at=_as_datetime(row["updated_at"]),
    )


@dataclass(frozen=True)
class Cursor:
    sort: str
    forward: bool  # False: the rows before `value, id` (the Previous link)
    value: Any
    id: int

    def encode(self) -> str:
        value = self.value.isoformat() if isinstance(self.value, datetime) else self.value
        payload = {"s": self.sort, "d": "next" if self.forward else "prev", "k": [value, self.id]}
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, sort: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            payload = json.loads(raw)
            value, row_id = payload["k"]
            direction = payload["d"]
            cursor_sort = payload["s"]
        except (binascii.Error, ValueError, KeyError, TypeError) as error:
            raise InvalidCursor("this page link is not valid") from error
        # A search with more matches than the count's cap is shown newest first (see
        # list_page): its pages carry -created cursors under the relevance sort.
        allowed = (sort, BEYOND_CAP_SORT) if sort == "relevance" else (sort,)
        if cursor_sort not in allowed or direction not in ("next", "prev"):
            raise InvalidCursor("this page link belongs to another sort order")
        if type(row_id) is not int:
            raise InvalidCursor("this page link is not valid")
        sort = cursor_sort
        column, _ = _SORTS[sort]
        try:
            if column in ("created_at", "updated_at"):
                value = _as_datetime(value)
            elif column == "rank":
                value = float(value)
            elif not isinstance(value, str):
                raise TypeError(value)
        except (TypeError, ValueError) as error:
            raise InvalidCursor("this page link is not valid") from error
        return cls(sort=sort, forward=direction == "next", value=value, id=row_id)


def effective_sort(query: ListQuery) -> str:
    has_words = bool(search.search_words(query.q))
    if query.sort is None:
        return "relevance" if has_words else DEFAULT_SORT
    if query.sort == "relevance" and not has_words:
        return DEFAULT_SORT
    return query.sort


def _and(conditions: Sequence[QueryString]) -> QueryString:
    return QueryString(" AND ".join("{}" for _ in conditions), *conditions)


class CustomerRepository(Protocol):
    """Storage of customers. Implemented by PiccoloCustomerRepository and decorated by
    CachedCustomerRepository; the service only knows this."""

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """A write transaction. Piccolo queries in the same task join it."""
        ...

    async def insert(
        self, user_id: int, slug: str, data: CustomerInput, email_normalized: str
    ) -> Customer: ...
    async def update(self, user_id: int, slug: str, values: dict[str, str]) -> Customer | None: ...
    async def delete(self, user_id: int, slug: str) -> list[Customer]: ...
    async def delete_many(self, user_id: int, slugs: Sequence[str]) -> list[Customer]: ...
    async def get_by_slug(self, user_id: int, slug: str) -> Customer | None: ...
    async def get_for_update(self, user_id: int, slug: str) -> Customer | None: ...
    async def get_by_email_normalized(
        self, user_id: int, email_normalized: str
    ) -> Customer | None: ...
    async def slugs_starting_with(self, user_id: int, base: str) -> list[str]: ...
    async def list_page(
        self, user_id: int, query: ListQuery, count_cap: int = COUNT_CAP
    ) -> Page: ...
    async def count(self, user_id: int, query: ListQuery, cap: int = COUNT_CAP) -> CountResult: ...
    async def organizations(self, user_id: int) -> list[str]: ...


class PiccoloCustomerRepository:
    @property
    def engine(self) -> Engine:
        return CustomerTable._meta.db

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        engine = self.engine
        if isinstance(engine, SQLiteEngine):
            # One writer at a time: take the write lock at BEGIN, so concurrent writers
            # queue on the busy timeout instead of failing with "database is locked".
            return engine.transaction(transaction_type=TransactionType.immediate)
        return engine.transaction()

    # --- writes -------------------------------------------------------------------

    async def insert(
        self, user_id: int, slug: str, data: CustomerInput, email_normalized: str
    ) -> Customer:
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            **data.values(),
            "user_id": user_id,
            "slug": slug,
            "email_normalized": email_normalized,
            "created_at": now,
            "updated_at": now,
        }
        row = CustomerTable(**values)
        try:
            rows = await CustomerTable.insert(row).returning(*_TABLE_COLUMNS)
        except Exception as error:
            key = _unique_key(error)
            if key == "slug":
                raise SlugTaken(slug) from error
            if key == "email":
                raise EmailTaken(email_normalized) from error
            raise
        return customer_from_row(rows[0])

    async def update(self, user_id: int, slug: str, values: dict[str, str]) -> Customer | None:
        changes: dict[Any, Any] = {
            CustomerTable._meta.get_column_by_name(name): value for name, value in values.items()
        }
        changes[CustomerTable.updated_at] = datetime.now(UTC)
        try:
            rows = (
                await CustomerTable.update(changes)
                .where((CustomerTable.user_id == user_id) & (CustomerTable.slug == slug))
                .returning(*_TABLE_COLUMNS)
            )
        except Exception as error:
            if _unique_key(error) == "email":
                raise EmailTaken(values.get("email_normalized", "")) from error
            raise
        return customer_from_row(rows[0]) if rows else None

    async def delete(self, user_id: int, slug: str) -> list[Customer]:
        return await self.delete_many(user_id, [slug])

    async def delete_many(self, user_id: int, slugs: Sequence[str]) -> list[Customer]:
        if not slugs:
            return []
        rows = (
            await CustomerTable.delete()
            .where((CustomerTable.user_id == user_id) & CustomerTable.slug.is_in(list(slugs)))
            .returning(*_TABLE_COLUMNS)
        )
        return [customer_from_row(row) for row in rows]

    # --- single rows -----------------------------------------------------------------

    async def _one(self, user_id: int, column: str, value: str) -> Customer | None:
        # Raw SQL: building the same statement with Piccolo's select() cost more app CPU
        # than the look-up itself (a tenth of a timeline fragment's, with py-spy).
        rows = await CustomerTable.raw(
            "{}",
            QueryString(
                f"SELECT {_SELECT_COLUMNS} FROM customers AS c "  # noqa: S608  (a constant)
                f"WHERE c.user_id = {{}} AND c.{_ONE_BY[column]} = {{}} LIMIT 1",
                user_id,
                value,
            ),
        )
        return customer_from_row(rows[0]) if rows else None

    async def get_by_slug(self, user_id: int, slug: str) -> Customer | None:
        return await self._one(user_id, "slug", slug)

    async def get_for_update(self, user_id: int, slug: str) -> Customer | None:
        """The row as it is now, locked until the transaction ends (PostgreSQL; SQLite's
        IMMEDIATE transaction already holds the database's one write lock)."""
        query = CustomerTable.select(*_TABLE_COLUMNS).where(
            (CustomerTable.user_id == user_id) & (CustomerTable.slug == slug)
        )
        if isinstance(self.engine, PostgresEngine):
            query = query.lock_rows()
        row = await query.first()
        return customer_from_row(row) if row else None

    async def get_by_email_normalized(self, user_id: int, email_normalized: str) -> Customer | None:
        return await self._one(user_id, "email_normalized", email_normalized)

    async def slugs_starting_with(self, user_id: int, base: str) -> list[str]:
        # Slugs are [a-z0-9-], so `base` holds no LIKE wildcard.
        rows = await CustomerTable.select(CustomerTable.slug).where(
            (CustomerTable.user_id == user_id) & CustomerTable.slug.like(base + "%")
        )
        return [row["slug"] for row in rows]

    # --- lists -------------------------------------------------------------------------

    def _source_and_filters(
        self, user_id: int, query: ListQuery
    ) -> tuple[QueryString, list[QueryString], search.SearchSql | None]:
        words = search.search_words(query.q)
        found = search.search_sql(self.engine, words) if words else None
        conditions = [QueryString("c.user_id = {}", user_id)]
        if found:
            conditions.append(found.condition)
        if query.organization:
            conditions.append(QueryString("c.organization = {}", query.organization))
        if query.created_from:
            start = datetime.combine(query.created_from, time.min, tzinfo=UTC)
            conditions.append(QueryString("c.created_at >= {}", start))
        if query.created_to:
            end = datetime.combine(query.created_to + timedelta(days=1), time.min, tzinfo=UTC)
            conditions.append(QueryString("c.created_at < {}", end))
        source = found.source if found else search.PLAIN_SOURCE
        return source, conditions, found

    async def list_page(self, user_id: int, query: ListQuery, count_cap: int = COUNT_CAP) -> Page:
        sort = effective_sort(query)
        cursor = Cursor.decode(query.cursor, sort) if query.cursor else None
        if cursor is not None:
            sort = cursor.sort  # a relevance search beyond the cap goes on newest first
        forward = cursor.forward if cursor else True
        source, conditions, found = self._source_and_filters(user_id, query)
        fetch = query.limit + 1  # one more tells whether there is a page beyond

        matched: int | None = None  # counted by the page's own query (None: no rows came)
        rows: list[dict[str, Any]] = []
        if found is not None and sort == "relevance" and cursor is None:
            # The first page of a search by relevance counts first: with more matches than
            # the count shows, ranking them would read them all, so its pages go newest
            # first (BEYOND_CAP_SORT), which reads a page's worth of rows. (Counting first
            # and then ranking up to the cap costs less than ranking up to the cap + 1 in
            # one statement: measured on a million customers, tests/perf/README.md.)
            counted = await self.count(user_id, query, count_cap)
            if counted.capped:
                sort = BEYOND_CAP_SORT
                matched = count_cap + 1
                rows = await CustomerTable.raw(
                    "{}", self._ordered_sql(user_id, query, sort, None, fetch, count_cap=None)
                )
            elif counted.value:
                rows = await CustomerTable.raw(
                    "{}", self._ranked_sql(source, conditions, found, None, fetch)
                )
                matched = counted.value
            else:
                matched = 0
        elif found is not None and sort == "relevance":
            rows = await CustomerTable.raw(
                "{}", self._ranked_sql(source, conditions, found, cursor, fetch)
            )
            if rows:
                matched = int(rows[0]["matched"])
        else:
            rows = await CustomerTable.raw(
                "{}", self._ordered_sql(user_id, query, sort, cursor, fetch, count_cap=count_cap)
            )
            if rows:
                matched = int(rows[0]["matched"])
        column, _ = _SORTS[sort]
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        if not forward:
            rows.reverse()

        words = search.search_words(query.q)
        items = [
            ListItem(
                customer=customer_from_row(row),
                snippet=search.snippet(row["notes"] or "", words) if words else None,
                rank=float(row["rank"]) if "rank" in row else None,
            )
            for row in rows
        ]

        def edge(item: ListItem, forward: bool) -> str:
            value = item.rank if column == "rank" else getattr(item.customer, column)
            return Cursor(sort, forward, value, item.customer.id).encode()

        has_next = more if forward else cursor is not None
        has_prev = cursor is not None if forward else more
        if matched is None:
            # An empty page (no match, or a cursor past the end) carries no count.
            counted = await self.count(user_id, query, count_cap)
        else:
            counted = CountResult(value=min(matched, count_cap), capped=matched > count_cap)
        return Page(
            items=items,
            next_cursor=edge(items[-1], True) if items and has_next else None,
            prev_cursor=edge(items[0], False) if items and has_prev else None,
            count=counted.value,
            count_capped=counted.capped,
            sort=sort,
        )

    def _ranked_sql(
        self,
        source: QueryString,
        conditions: list[QueryString],
        found: search.SearchSql,
        cursor: Cursor | None,
        fetch: int,
    ) -> QueryString:
        """A page of matches by relevance, with how many matched.

        Ranking reads every hit (its rank needs the row), so the same pass counts them:
        one scan of the matches instead of a second one for the count. The hits are
        materialized narrow (id, rank); only the page's rows are joined back."""
        forward = cursor.forward if cursor else True
        # Going back we read the rows before the cursor nearest first, then flip them.
        direction = "DESC" if forward else "ASC"
        comparison = "<" if forward else ">"
        hits = QueryString(
            "SELECT c.id AS id, {} AS rank FROM {} WHERE {}",
            found.rank,
            source,
            _and(conditions),
        )
        after = (
            QueryString(f"WHERE (rank, id) {comparison} ({{}}, {{}})", cursor.value, cursor.id)
            if cursor
            else QueryString("")
        )
        # Only constants are formatted into these strings (ASC or DESC, < or >); every
        # value travels as a parameter.
        return QueryString(
            "WITH hits AS ({}) "  # noqa: S608
            f"SELECT {_SELECT_COLUMNS}, top.rank AS rank, "
            "(SELECT count(*) FROM hits) AS matched "
            "FROM (SELECT id, rank FROM hits {} "
            f"ORDER BY rank {direction}, id {direction} LIMIT {{}}) AS top "
            f"JOIN customers AS c ON c.id = top.id "
            f"ORDER BY top.rank {direction}, top.id {direction}",
            hits,
            after,
            fetch,
        )

    def _ordered_sql(
        self,
        user_id: int,
        query: ListQuery,
        sort: str,
        cursor: Cursor | None,
        fetch: int,
        *,
        count_cap: int | None,
    ) -> QueryString:
        """A page in a column's order; with ``count_cap``, the capped count rides along as
        a scalar subquery (evaluated once): a page is one round trip to the database."""
        column, ascending = _SORTS[sort]
        forward = cursor.forward if cursor else True
        read_ascending = ascending == forward
        direction = "ASC" if read_ascending else "DESC"
        comparison = ">" if read_ascending else "<"
        source, conditions, _ = self._source_and_filters(user_id, query)
        if cursor:
            after = f"(c.{column}, c.id) {comparison} ({{}}, {{}})"
            conditions.append(QueryString(after, cursor.value, cursor.id))
        matched = (
            QueryString("({}) AS matched", self._count_sql(user_id, query, count_cap))
            if count_cap is not None
            else QueryString("NULL AS matched")
        )
        # Only constants are formatted in (a column name from _SORTS, ASC or DESC).
        return QueryString(
            f"SELECT {_SELECT_COLUMNS}, {{}} FROM {{}} WHERE {{}} "  # noqa: S608
            f"ORDER BY c.{column} {direction}, c.id {direction} LIMIT {{}}",
            matched,
            source,
            _and(conditions),
            fetch,
        )

    def _count_sql(self, user_id: int, query: ListQuery, cap: int) -> QueryString:
        """How many rows match the filters (not the cursor), counting no further than cap + 1."""
        source, conditions, _ = self._source_and_filters(user_id, query)
        return QueryString(
            "SELECT count(*) AS n FROM (SELECT 1 AS one FROM {} WHERE {} LIMIT {}) AS capped",
            source,
            _and(conditions),
            cap + 1,
        )

    async def count(self, user_id: int, query: ListQuery, cap: int = COUNT_CAP) -> CountResult:
        """Exact up to ``cap``; beyond it, ``cap`` and capped=True. The LIMIT inside keeps
        a count over a million matches as cheap as one over ``cap``."""
        rows = await CustomerTable.raw("{}", self._count_sql(user_id, query, cap))
        found = int(rows[0]["n"])
        return CountResult(value=min(found, cap), capped=found > cap)

    async def organizations(self, user_id: int) -> list[str]:
        """The user's distinct non-empty organizations, sorted.

        A loose index scan over (user_id, organization): one index probe per distinct
        value, instead of reading every customer of a large book.
        """
        sql = QueryString(
            """
            WITH RECURSIVE orgs(organization) AS (
                SELECT min(organization) FROM customers
                WHERE user_id = {} AND organization > ''
                UNION ALL
                SELECT (
                    SELECT min(c.organization) FROM customers AS c
                    WHERE c.user_id = {} AND c.organization > orgs.organization
                )
                FROM orgs WHERE orgs.organization IS NOT NULL
            )
            SELECT organization FROM orgs WHERE organization IS NOT NULL
            """,
            user_id,
            user_id,
        )
        rows = await CustomerTable.raw("{}", sql)
        return [row["organization"] for row in rows]


# --- exports: every matching row, in the dashboard's order, in keyset batches ------------

# The cells of an export row, in the file's column order (the import reads these headers).
EXPORT_CELLS = (
    "name",
    "email",
    "phone",
    "organization",
    "job_title",
    "notes",
    "created_at",
    "updated_at",
    "slug",
)
EXPORT_WIDTH = len(EXPORT_CELLS)
_EXPORT_ID, _EXPORT_KEY = EXPORT_WIDTH, EXPORT_WIDTH + 1  # after the cells: the keyset
# A timestamptz as text exactly as Python's ``isoformat()`` writes an aware UTC datetime
# (microseconds only when there are some), made by PostgreSQL instead of per row in Python.
_PG_ISO = (
    "replace(to_char({} AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'), '.000000+', '+')"
)


@dataclass(frozen=True)
class ExportBatch:
    """One batch of an export, and where the next batch starts.

    Each row is a sequence whose first ``EXPORT_WIDTH`` items are the cells in
    ``EXPORT_CELLS`` order: text (None for an empty cell), the two times already ISO 8601
    text, not formula-guarded yet (the writer does that). Items after them are the
    keyset's. On PostgreSQL the rows are the driver's records as they arrive (no dict, no
    Customer object per row: at a million rows each costs seconds); on SQLite, tuples."""

    rows: Sequence[Sequence[Any]]
    after: tuple[Any, int] | None  # (sort value, id) of the last row; None: no more rows

    @property
    def count(self) -> int:
        return len(self.rows)


def _export_conditions(
    repository: PiccoloCustomerRepository,
    user_id: int,
    query: ListQuery,
    slugs: Sequence[str] | None,
) -> tuple[QueryString, list[QueryString], search.SearchSql | None]:
    source, conditions, found = repository._source_and_filters(user_id, query)
    if slugs is not None:
        # "Export selected": the chosen rows, still in the list's filter and order.
        conditions.append(
            QueryString("c.slug IN (" + ", ".join("{}" for _ in slugs) + ")", *slugs)
            if slugs
            else QueryString("1 = 0")
        )
    return source, conditions, found


async def export_count(
    repository: PiccoloCustomerRepository,
    user_id: int,
    query: ListQuery,
    slugs: Sequence[str] | None = None,
) -> int:
    """How many rows an export of ``query`` (optionally only ``slugs``) writes: exact."""
    source, conditions, _ = _export_conditions(repository, user_id, query, slugs)
    rows = await CustomerTable.raw(
        "{}", QueryString("SELECT count(*) AS n FROM {} WHERE {}", source, _and(conditions))
    )
    return int(rows[0]["n"])


def _export_cells(postgres: bool) -> str:
    """The cells (and the row's id) as SELECT items over the customers row ``c``."""
    items = []
    for name in EXPORT_CELLS:
        if postgres and name in ("created_at", "updated_at"):
            items.append(_PG_ISO.format(f"c.{name}") + f" AS {name}")
        else:
            items.append(f"c.{name}")
    return ", ".join(items) + ", c.id AS id"


@dataclass(frozen=True)
class ExportSelect:
    """The SELECT of one export batch: the cells (``EXPORT_CELLS``), then ``id`` and
    ``sort_key``, in the batch's order. ``order`` is that order over those output names
    (``sort_key DESC, id DESC``), for a query that wraps this one; ``last_first`` the
    reverse (its first row is the batch's last)."""

    sql: QueryString
    column: str  # the customers column (or "rank") the list is sorted by
    order: str
    last_first: str


def export_select(
    repository: PiccoloCustomerRepository,
    user_id: int,
    query: ListQuery,
    after: tuple[Any, int] | None,
    limit: int,
    slugs: Sequence[str] | None = None,
) -> ExportSelect:
    """The next ``limit`` rows of ``query`` after ``after``, in exactly the order of the
    dashboard's list (``list_page`` read forward): same filters, same search, same sort
    and the id as tie-breaker. Keyset, never OFFSET: every batch costs the same."""
    sort = effective_sort(query)
    column, ascending = _SORTS[sort]
    source, conditions, found = _export_conditions(repository, user_id, query, slugs)
    cells = _export_cells(isinstance(repository.engine, PostgresEngine))
    direction = "ASC" if ascending else "DESC"
    backwards = "DESC" if ascending else "ASC"
    comparison = ">" if ascending else "<"
    # Only constants are formatted into these strings; every value is a parameter.
    if found is not None and sort == "relevance":
        # Rank is computed, not stored: number the hits with it, then page over it.
        keyset = (
            QueryString("WHERE (h.sort_key, h.id) < ({}, {})", after[0], after[1])
            if after
            else QueryString("")
        )
        sql = QueryString(
            "SELECT * FROM ("  # noqa: S608
            f"SELECT {cells}, {{}} AS sort_key FROM {{}} WHERE {{}}"
            ") AS h {} ORDER BY h.sort_key DESC, h.id DESC LIMIT {}",
            found.rank,
            source,
            _and(conditions),
            keyset,
            limit,
        )
    else:
        if after:
            conditions.append(
                QueryString(f"(c.{column}, c.id) {comparison} ({{}}, {{}})", after[0], after[1])
            )
        sql = QueryString(
            f"SELECT {cells}, c.{column} AS sort_key FROM {{}} WHERE {{}} "  # noqa: S608
            f"ORDER BY c.{column} {direction}, c.id {direction} LIMIT {{}}",
            source,
            _and(conditions),
            limit,
        )
    return ExportSelect(
        sql=sql,
        column=column,
        order=f"sort_key {direction}, id {direction}",
        last_first=f"sort_key {backwards}, id {backwards}",
    )


def export_after(column: str, sort_key: Any, row_id: Any) -> tuple[Any, int]:
    """Where the batch after a row of (``sort_key``, ``row_id``) starts, as ``after``."""
    if column == "rank":
        value: Any = float(sort_key)
    elif column == "name":
        value = sort_key
    else:
        value = _as_datetime(sort_key)
    return value, int(row_id)


async def _export_fetch(engine: Engine, sql: QueryString) -> Sequence[Sequence[Any]]:
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        # Straight through asyncpg on the app's pool: records, not Piccolo's dicts.
        text, args = sql.compile_string("postgres")
        async with engine.pool.acquire() as connection:
            rows: Sequence[Sequence[Any]] = await connection.fetch(text, *args)
            return rows
    found: list[dict[str, Any]] = await CustomerTable.raw("{}", sql)
    if isinstance(engine, PostgresEngine):
        return [tuple(row.values()) for row in found]
    return [
        (
            *(row[name] for name in EXPORT_CELLS[:6]),
            _as_datetime(row["created_at"]).isoformat(),
            _as_datetime(row["updated_at"]).isoformat(),
            row["slug"],
            row["id"],
            row["sort_key"],
        )
        for row in found
    ]


async def export_batch(
    repository: PiccoloCustomerRepository,
    user_id: int,
    query: ListQuery,
    after: tuple[Any, int] | None,
    limit: int,
    slugs: Sequence[str] | None = None,
) -> ExportBatch:
    """The rows of ``export_select``, read."""
    select = export_select(repository, user_id, query, after, limit, slugs)
    rows = await _export_fetch(repository.engine, select.sql)
    if len(rows) < limit:
        return ExportBatch(rows, None)
    last = rows[-1]
    return ExportBatch(rows, export_after(select.column, last[_EXPORT_KEY], last[_EXPORT_ID]))

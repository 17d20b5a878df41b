"""The jobs badge costs no query of its own: the account and its badge come in the one
statement the session middleware makes per request, and both of its counts read only
the index transfers (user_id, status, finished_at), on both engines."""

from __future__ import annotations

from datetime import UTC, datetime

from piccolo.engine.postgres import PostgresEngine
from piccolo.querystring import QueryString

from app.accounts.repository import JOBS_BADGE_SQL
from app.transfers.tables import Transfer
from tests.customers.conftest import counting_queries
from tests.jobs_centre.conftest import HX, add_transfer, html, user_id_of

INDEX = "transfers_user_id_status_finished_at_idx"


async def test_a_full_page_and_the_badge_fragment_make_one_query(client, member):
    for _ in range(3):
        add_transfer(client, member.email, status="completed", finished_at=datetime.now(UTC))
    add_transfer(client, member.email, status="running")
    engine = client.app.state.engine
    with counting_queries(engine) as counted:
        response = await client.get("/jobs/badge", headers=HX)
    assert response.status_code == 200
    assert counted.count == 1, counted.statements
    assert "transfers" in counted.statements[0]
    assert "users" in counted.statements[0]

    with counting_queries(engine) as counted:
        page = html(await client.get("/audit"))
    assert page.select_one("nav #jobs-badge [aria-hidden=true]").get_text(strip=True) == "3"
    badge_statements = [s for s in counted.statements if "FROM transfers" in s]
    assert len(badge_statements) == 1, counted.statements


async def test_the_badge_counts_read_the_index(client, member):
    owner = user_id_of(client, member.email)
    for _ in range(5):
        add_transfer(client, member.email, status="completed", finished_at=datetime.now(UTC))

    async def plan() -> str:
        engine = Transfer._meta.db
        if isinstance(engine, PostgresEngine):
            # A long history, seen long ago, so that the planner has real numbers to go by.
            await Transfer.raw(
                "INSERT INTO transfers (user_id, kind, status, options, finished_at, created_at)"
                " SELECT {}, 'import', 'completed', '{{}}', now() - interval '30 days',"
                " now() - interval '30 days' FROM generate_series(1, 3000)",
                owner,
            )
            await Transfer.raw(
                "UPDATE users SET jobs_seen_at = now() - interval '1 day' WHERE id = {}", owner
            )
            await Transfer.raw("ANALYZE transfers")
            rows = await Transfer.raw("EXPLAIN {}", QueryString(JOBS_BADGE_SQL, owner))
            text = "\n".join(row["QUERY PLAN"] for row in rows)
            # With no job queued anywhere, PostgreSQL may answer the second count from
            # the (status, expires_at) index just as cheaply: no table scan either way.
            assert "Seq Scan on transfers" not in text, text
            return text
        rows = await Transfer.raw("EXPLAIN QUERY PLAN {}", QueryString(JOBS_BADGE_SQL, owner))
        return "\n".join(str(row["detail"]) for row in rows)

    text = client.blocking_portal.call(plan)
    assert INDEX in text, text
    if not isinstance(client.app.state.engine, PostgresEngine):
        assert text.count(INDEX) == 2, text  # SQLite: both counts, from the index alone

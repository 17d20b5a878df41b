"""PostgreSQL only: `audit_append`, one audited write's entry in one round trip.

Until now an audited write sent two statements after the customer's own: the chain lock
and head (`audit_chain_head`), then the INSERT, whose hash Python computed in between
from the head. `audit_append` takes the same lock, reads the same head, and inserts the
entry with its hash computed here: Python sends the entry's canonical JSON
(`app.audit.chain.canonical`) in three parts around the two values that depend on the
head (`app.audit.chain.canonical_parts`), and the function joins them with the entry's
time (never before the head's, as in `AuditService._link`) and the head's hash, then
hashes the UTF-8 bytes with sha256. The hashes are the ones Python computes: the chain
walk (`crm audit-verify`) checks them the same way.

The time is written as `app.audit.chain.iso` writes it: UTC, microseconds, a `Z`.
VOLATILE for the same reason as `audit_chain_head`: the head is read after the lock with
a new snapshot. SQLite keeps the two steps (its write transaction already holds the
database's one write lock).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine

ID = "2026-12-03T07:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "audit_append: an audit entry with its chain link in one statement"

PG_APPEND = """
CREATE FUNCTION audit_append(
    p_lock_class integer, p_lock_key integer, p_now timestamptz,
    p_head text, p_middle text, p_tail text,
    p_user_id bigint, p_actor_id bigint, p_customer_id bigint, p_customer_label varchar,
    p_event varchar, p_old_values jsonb, p_new_values jsonb, p_ip varchar,
    p_user_agent varchar, p_request_id varchar, p_import_id bigint)
RETURNS TABLE (id bigint, created_at timestamptz, prev_hash varchar, hash varchar)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_prev varchar;
    v_at timestamptz;
    v_hash varchar;
    v_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock_class, p_lock_key);
    SELECT l.hash, l.created_at INTO v_prev, v_at FROM audit_logs AS l
        WHERE l.user_id = p_user_id ORDER BY l.id DESC LIMIT 1;
    IF NOT FOUND THEN
        SELECT a.last_hash, a.last_at INTO v_prev, v_at FROM audit_archives AS a
            WHERE a.user_id = p_user_id ORDER BY a.first_at DESC, a.id DESC LIMIT 1;
        IF NOT FOUND THEN
            v_prev := repeat('0', 64);
            v_at := NULL;
        END IF;
    END IF;
    IF v_at IS NULL OR v_at < p_now THEN
        v_at := p_now;
    END IF;
    v_hash := encode(sha256(convert_to(
        p_head || to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        || p_middle || v_prev || p_tail, 'UTF8')), 'hex');
    INSERT INTO audit_logs (user_id, actor_id, customer_id, customer_label, event,
        old_values, new_values, ip, user_agent, request_id, import_id, created_at,
        prev_hash, hash)
    VALUES (p_user_id, p_actor_id, p_customer_id, p_customer_label, p_event,
        p_old_values, p_new_values, p_ip, p_user_agent, p_request_id, p_import_id, v_at,
        v_prev, v_hash)
    RETURNING audit_logs.id INTO v_id;
    RETURN QUERY SELECT v_id, v_at, v_prev, v_hash;
END
$$
"""
PG_DROP = (
    "DROP FUNCTION IF EXISTS audit_append(integer, integer, timestamptz, text, text, text, "
    "bigint, bigint, bigint, varchar, varchar, jsonb, jsonb, varchar, varchar, varchar, bigint)"
)


async def _run(statements: list[str]) -> None:
    engine = engine_finder()
    if isinstance(engine, PostgresEngine):
        for statement in statements:
            await engine.run_ddl(statement)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crm", description=DESCRIPTION)

    async def raw_forwards() -> None:
        await _run([PG_APPEND])

    async def raw_backwards() -> None:
        await _run([PG_DROP])

    manager.add_raw(raw_forwards)
    manager.add_raw_backwards(raw_backwards)
    return manager

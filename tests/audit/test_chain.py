"""Tamper evidence: raw SQL (or a rewritten archive object) breaks the chain where it
happened, and `crm audit-verify` says so."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from piccolo.querystring import QueryString

from app.accounts.tables import User
from app.audit.chain import hash_of
from app.audit.models import AuditEntry
from app.audit.service import AuditService
from app.audit.tables import AuditArchive, AuditLog
from app.customers.models import CustomerInput
from app.customers.service import CustomerService
from app.lib.storage import Storage
from app.settings import Settings
from tests.audit.conftest import Clock
from tests.fixtures.services import ROOT


async def six_entries(customers: CustomerService, user_id: int, clock: Clock) -> list[AuditEntry]:
    ana = await customers.create(user_id, CustomerInput(name="Ana", email="ana@x.test"))
    for number in range(5):
        clock.advance(hours=7)
        await customers.update(user_id, ana.slug, {"notes": f"note {number}"})
    return await AuditService().repository.walk(user_id, 0, 100)


async def sql(statement: str, *values: object) -> None:
    await AuditLog.raw("{}", QueryString(statement, *values))


async def test_an_intact_chain_verifies(
    customers: CustomerService, audit: AuditService, user_id: int, clock: Clock
) -> None:
    entries = await six_entries(customers, user_id, clock)
    report = await audit.verify_chain(user_id)
    assert report.intact
    assert (report.entries, report.archives) == (len(entries), 0)


async def test_an_entry_written_in_one_statement_hashes_as_python_does(
    customers: CustomerService, audit: AuditService, user_id: int, clock: Clock
) -> None:
    """On PostgreSQL a single write's hash is computed by the database (audit_append);
    whatever the text holds, it is the hash the chain walk recomputes in Python."""
    tricky = 'Zoë "Z" O\'Brien \\ \u00e9 \n 東京 \U0001f600 {"prev_hash":"x"}'
    ana = await customers.create(user_id, CustomerInput(name="Ana", email="ana@x.test"))
    clock.advance(minutes=1)
    await customers.update(user_id, ana.slug, {"notes": tricky, "job_title": "CTO\tVP"})
    entries = await AuditService().repository.walk(user_id, 0, 100)
    assert [entry.event for entry in entries] == ["created", "updated"]
    assert entries[1].new_values == {"job_title": "CTO\tVP", "notes": tricky}
    for entry in entries:
        assert entry.hash == hash_of(entry)
    assert entries[1].prev_hash == entries[0].hash
    assert (await audit.verify_chain(user_id)).intact


async def test_an_edited_entry_is_found(
    customers: CustomerService, audit: AuditService, user_id: int, clock: Clock
) -> None:
    entries = await six_entries(customers, user_id, clock)
    await sql(
        "UPDATE audit_logs SET new_values = {} WHERE id = {}", '{"notes": "forged"}', entries[3].id
    )

    found = (await audit.verify_chain(user_id)).first_break

    assert found is not None
    assert (found.entry_id, found.position, found.reason, found.location) == (
        entries[3].id,
        4,
        "edited",
        "database",
    )


async def test_an_edited_ip_or_time_is_found(
    customers: CustomerService, audit: AuditService, user_id: int, clock: Clock
) -> None:
    entries = await six_entries(customers, user_id, clock)
    await sql("UPDATE audit_logs SET ip = {} WHERE id = {}", "192.0.2.1", entries[1].id)
    found = (await audit.verify_chain(user_id)).first_break
    assert found is not None
    assert (found.entry_id, found.reason) == (entries[1].id, "edited")


async def test_a_deleted_entry_is_found(
    customers: CustomerService, audit: AuditService, user_id: int, clock: Clock
) -> None:
    entries = await six_entries(customers, user_id, clock)
    await sql("DELETE FROM audit_logs WHERE id = {}", entries[2].id)

    found = (await audit.verify_chain(user_id)).first_break

    assert found is not None
    assert (found.entry_id, found.position, found.reason) == (entries[3].id, 3, "missing")


async def test_deleting_the_first_entries_is_found(
    customers: CustomerService, audit: AuditService, user_id: int, clock: Clock
) -> None:
    entries = await six_entries(customers, user_id, clock)
    await sql("DELETE FROM audit_logs WHERE id <= {} AND user_id = {}", entries[1].id, user_id)

    found = (await audit.verify_chain(user_id)).first_break

    assert found is not None
    assert (found.entry_id, found.position, found.reason) == (entries[2].id, 1, "missing")


async def test_reordered_entries_are_found(
    customers: CustomerService, audit: AuditService, user_id: int, clock: Clock
) -> None:
    entries = await six_entries(customers, user_id, clock)
    first, second = entries[2].id, entries[3].id
    # Swap the two rows' places in the chain (their ids), leaving their content intact.
    await sql("UPDATE audit_logs SET id = {} WHERE id = {}", -first, first)
    await sql("UPDATE audit_logs SET id = {} WHERE id = {}", first, second)
    await sql("UPDATE audit_logs SET id = {} WHERE id = {}", second, -first)

    found = (await audit.verify_chain(user_id)).first_break

    assert found is not None
    assert (found.entry_id, found.position, found.reason) == (first, 3, "reordered")


async def test_a_second_user_is_not_affected_by_the_first_ones_tampering(
    customers: CustomerService,
    audit: AuditService,
    user_id: int,
    other_user_id: int,
    clock: Clock,
) -> None:
    entries = await six_entries(customers, user_id, clock)
    await audit.customer_service(audit_context(other_user_id)).create(
        other_user_id, CustomerInput(name="Bo", email="bo@x.test")
    )
    await sql("DELETE FROM audit_logs WHERE id = {}", entries[4].id)
    assert not (await audit.verify_chain(user_id)).intact
    assert (await audit.verify_chain(other_user_id)).intact


def audit_context(actor: int):  # type: ignore[no-untyped-def]
    from app.audit.context import AuditContext

    return AuditContext(actor_id=actor)


async def archived(audit: AuditService, clock: Clock) -> list[dict[str, object]]:
    await audit.archive(1, now=clock.now + timedelta(days=3))
    return await AuditArchive.select().order_by(AuditArchive.first_id)


async def rewrite(storage: Storage, key: str, lines: list[bytes], level: int = 6) -> None:
    await storage.put(key, io.BytesIO(gzip.compress(b"".join(lines), compresslevel=level)))


async def test_an_edited_archived_entry_is_found(
    customers: CustomerService,
    audit: AuditService,
    storage: Storage,
    user_id: int,
    clock: Clock,
) -> None:
    entries = await six_entries(customers, user_id, clock)
    rows = await archived(audit, clock)
    key = str(rows[0]["object_key"])
    lines = gzip.decompress(await (await storage.get(key)).read_all()).splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"note 0"', b'"forged"')
    await rewrite(storage, key, lines)

    found = (await audit.verify_chain(user_id)).first_break

    assert found is not None
    assert (found.entry_id, found.position, found.reason, found.location) == (
        entries[1].id,
        2,
        "edited",
        key,
    )


async def test_an_altered_or_missing_archive_object_is_found(
    customers: CustomerService,
    audit: AuditService,
    storage: Storage,
    user_id: int,
    clock: Clock,
) -> None:
    await six_entries(customers, user_id, clock)
    rows = await archived(audit, clock)
    assert len(rows) >= 2
    key = str(rows[0]["object_key"])
    original = await (await storage.get(key)).read_all()
    lines = gzip.decompress(original).splitlines(keepends=True)
    # The same entries, compressed differently: not the object that was archived.
    await rewrite(storage, key, lines, level=1)
    found = (await audit.verify_chain(user_id)).first_break
    assert found is not None
    assert (found.reason, found.location, found.position) == ("archive_altered", key, 1)

    await storage.put(key, io.BytesIO(original))
    assert (await audit.verify_chain(user_id)).intact
    await storage.delete(str(rows[1]["object_key"]))
    found = (await audit.verify_chain(user_id)).first_break
    assert found is not None
    assert (found.reason, found.location, found.entry_id) == (
        "missing",
        rows[1]["object_key"],
        rows[1]["first_id"],
    )


def run_cli(settings: Settings, user: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("S3_", "REDIS_", "DATABASE_", "STORAGE_"))
    }
    env |= {
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "STORAGE_DIR": settings.storage_dir,
        "LOG_LEVEL": "WARNING",
    }
    if settings.s3_endpoint:
        env |= {
            "S3_ENDPOINT": settings.s3_endpoint,
            "S3_ACCESS_KEY": settings.s3_access_key or "",
            "S3_SECRET_KEY": settings.s3_secret_key or "",
            "S3_BUCKET": settings.s3_bucket,
            "S3_SECURE": "false",
        }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "audit-verify", "--user", user],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_crm_audit_verify_prints_the_first_break(
    customers: CustomerService,
    audit: AuditService,
    settings: Settings,
    user_id: int,
    clock: Clock,
) -> None:
    entries = await six_entries(customers, user_id, clock)
    await audit.archive(1, now=clock.now + timedelta(days=1))  # the first day of two
    email = (await User.select(User.email).where(User.id == user_id).first() or {})["email"]

    intact = run_cli(settings, email)
    assert intact.returncode == 0, intact.stderr
    expected = f"user {user_id} ({email}): intact, 6 entries checked (1 archive object, then"
    assert expected in intact.stdout

    await sql("DELETE FROM audit_logs WHERE id = {}", entries[-2].id)
    broken = run_cli(settings, str(user_id))
    assert broken.returncode == 1, broken.stderr
    assert f"BROKEN at entry {entries[-1].id}, position 5 in database: missing" in broken.stdout

    nobody = run_cli(settings, "nobody@example.com")
    assert nobody.returncode == 2
    assert "no user" in nobody.stdout


@pytest.mark.parametrize("limit", [1, 2])
async def test_the_first_break_wins_over_later_ones(
    customers: CustomerService, audit: AuditService, user_id: int, clock: Clock, limit: int
) -> None:
    entries = await six_entries(customers, user_id, clock)
    await sql("DELETE FROM audit_logs WHERE id = {}", entries[4].id)
    await sql("UPDATE audit_logs SET event = {} WHERE id = {}", "created", entries[limit].id)
    found = (await audit.verify_chain(user_id)).first_break
    assert found is not None
    assert (found.entry_id, found.reason) == (entries[limit].id, "edited")

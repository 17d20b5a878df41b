"""Archiving to storage (a folder, or moto's S3 server in the full stack), reading
across the boundary, crash safety and retention."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest

from app.audit.archive import MAX_LISTED_CUSTOMERS
from app.audit.context import AuditContext
from app.audit.models import AuditEntry
from app.audit.service import AuditService
from app.audit.tables import AuditArchive, AuditLog
from app.customers.models import CustomerChange, CustomerInput
from app.customers.service import CustomerService
from app.lib.storage import Storage
from tests.audit.conftest import START, Clock

DAYS = 5  # days of history, one per day from START
LATER = START + timedelta(days=DAYS - 1 + 90)  # the first DAYS - 1 days are old enough


async def history(customers: CustomerService, user_id: int, clock: Clock) -> list[int]:
    """Two customers edited on DAYS consecutive days, three entries a day."""
    ana = await customers.create(user_id, CustomerInput(name="Ana", email="ana@x.test"))
    bo = await customers.create(user_id, CustomerInput(name="Bo", email="bo@x.test"))
    for day in range(DAYS):
        clock.now = START + timedelta(days=day, hours=1)
        await customers.update(user_id, ana.slug, {"notes": f"ana {day}"})
        clock.advance(minutes=5)
        await customers.update(user_id, bo.slug, {"notes": f"bo {day}"})
        clock.advance(minutes=5)
        await customers.update(user_id, ana.slug, {"job_title": f"title {day}"})
    return [ana.id, bo.id]


async def all_entries(audit: AuditService, user_id: int, **filters: Any) -> list[AuditEntry]:
    found: list[AuditEntry] = []
    cursor = None
    while True:
        page = await audit.trail(user_id, cursor=cursor, limit=4, **filters)
        found += page.entries
        if not page.next_cursor:
            return found
        cursor = page.next_cursor


async def stored_lines(storage: Storage, key: str) -> tuple[list[dict[str, Any]], str]:
    data = await (await storage.get(key)).read_all()
    lines = [json.loads(line) for line in gzip.decompress(data).splitlines()]
    return lines, hashlib.sha256(data).hexdigest()


async def archive_rows(user_id: int) -> list[dict[str, Any]]:
    return (
        await AuditArchive.select()
        .where(AuditArchive.user_id == user_id)
        .order_by(AuditArchive.first_id)
    )


async def test_old_days_move_to_storage_and_the_trail_reads_across(
    customers: CustomerService,
    audit: AuditService,
    storage: Storage,
    user_id: int,
    clock: Clock,
) -> None:
    ana_id, bo_id = await history(customers, user_id, clock)
    before = await all_entries(audit, user_id)

    done = await audit.archive(90, now=LATER)

    rows = await archive_rows(user_id)
    assert done.archives == len(rows) == DAYS - 1
    # The first day also holds the two creates.
    assert [row["entries"] for row in rows] == [5, 3, 3, 3]
    assert done.entries == 14
    left = await AuditLog.select(AuditLog.id).where(AuditLog.user_id == user_id)
    assert len(left) == 3
    for number, row in enumerate(rows):
        day = START + timedelta(days=number)
        assert row["object_key"] == (f"audit/{user_id}/{day:%Y/%m/%d}/{row['first_id']}.jsonl.gz")
        lines, sha = await stored_lines(storage, row["object_key"])
        assert sha == row["sha256"]
        assert len(lines) == row["entries"]
        assert [line["id"] for line in lines] == list(range(row["first_id"], row["last_id"] + 1))
        assert lines[-1]["hash"] == row["last_hash"]
        assert all(line["created_at"].startswith(f"{day:%Y-%m-%d}T") for line in lines)
        assert row["customer_ids"] is not None
    # The same entries, in the same order, on either side of the boundary.
    after = await all_entries(audit, user_id)
    assert [(e.id, e.hash, e.new_values) for e in after] == [
        (e.id, e.hash, e.new_values) for e in before
    ]
    assert [e.archived for e in after] == [False] * 3 + [True] * 14
    by_customer = await all_entries(audit, user_id, customer_id=bo_id)
    assert [e.id for e in by_customer] == [e.id for e in before if e.customer_id == bo_id]
    created = await all_entries(audit, user_id, event="created")
    assert sorted(e.customer_id for e in created) == [ana_id, bo_id]
    second_day = START.date() + timedelta(days=1)
    in_range = await all_entries(
        audit, user_id, date_from=second_day, date_to=second_day + timedelta(days=1)
    )
    assert len(in_range) == 6
    assert (await audit.get_entry(user_id, before[-1].id)).archived
    report = await audit.verify_chain(user_id)
    assert report.intact, report.first_break
    assert (report.entries, report.archives) == (17, 4)


async def test_running_it_again_changes_nothing(
    customers: CustomerService, audit: AuditService, storage: Storage, user_id: int, clock: Clock
) -> None:
    await history(customers, user_id, clock)
    await audit.archive(90, now=LATER)
    keys = [info.key for info in await storage.list("audit/")]

    again = await audit.archive(90, now=LATER)

    assert (again.archives, again.entries) == (0, 0)
    assert [info.key for info in await storage.list("audit/")] == keys
    assert len(await archive_rows(user_id)) == DAYS - 1


async def test_a_crash_between_upload_and_commit_loses_and_doubles_nothing(
    customers: CustomerService,
    audit: AuditService,
    storage: Storage,
    user_id: int,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await history(customers, user_id, clock)
    before = await all_entries(audit, user_id)
    repository = audit.repository
    commit = repository.commit_archive
    commits = 0

    async def crash_on_the_second(*args: Any) -> Any:
        nonlocal commits
        commits += 1
        if commits == 2:
            raise ConnectionError("the worker died")  # after the upload, before the commit
        return await commit(*args)

    monkeypatch.setattr(repository, "commit_archive", crash_on_the_second)
    with pytest.raises(ConnectionError):
        await audit.archive(90, now=LATER)
    monkeypatch.undo()

    # One day archived, the second uploaded but neither recorded nor deleted.
    assert len(await archive_rows(user_id)) == 1
    orphans = [info.key for info in await storage.list("audit/")]
    assert len(orphans) == 2
    assert [e.id for e in await all_entries(audit, user_id)] == [e.id for e in before]

    done = await audit.archive(90, now=LATER)

    assert done.archives == DAYS - 2
    rows = await archive_rows(user_id)
    assert len(rows) == DAYS - 1
    keys = [info.key for info in await storage.list("audit/")]
    assert sorted(keys) == sorted(row["object_key"] for row in rows)  # the orphan was reused
    assert set(orphans) <= set(keys)
    after = await all_entries(audit, user_id)
    assert [(e.id, e.hash) for e in after] == [(e.id, e.hash) for e in before]
    for row in rows:
        lines, sha = await stored_lines(storage, row["object_key"])
        assert (sha, len(lines)) == (row["sha256"], row["entries"])
    assert (await audit.verify_chain(user_id)).intact


async def test_two_runs_at_once_archive_each_day_once(
    customers: CustomerService, audit: AuditService, storage: Storage, user_id: int, clock: Clock
) -> None:
    await history(customers, user_id, clock)
    before = await all_entries(audit, user_id)

    runs = await asyncio.gather(
        audit.archive(90, now=LATER), audit.archive(90, now=LATER), return_exceptions=True
    )

    assert sum(run.entries for run in runs if not isinstance(run, BaseException)) <= 14
    await audit.archive(90, now=LATER)  # whatever a lost race left
    assert len(await archive_rows(user_id)) == DAYS - 1
    after = await all_entries(audit, user_id)
    assert [(e.id, e.hash) for e in after] == [(e.id, e.hash) for e in before]


async def test_a_big_day_streams_in_batches_and_lists_no_customers(
    audit: AuditService, storage: Storage, user_id: int, context: AuditContext
) -> None:
    count = 3 * MAX_LISTED_CUSTOMERS + 10
    changes = [
        CustomerChange(
            event="customer.created",
            user_id=user_id,
            customer_id=number,
            slug=f"c-{number}",
            label=f"C {number}",
            new_values={"name": f"C {number}", "notes": "x" * 200},
        )
        for number in range(1, count + 1)
    ]
    await audit.record_many(changes, context)

    day = START.replace(hour=0, minute=0)
    record = await audit.archiver().archive_day(user_id, day, batch_size=100)

    assert record is not None
    assert record.entries == count
    assert record.customer_ids is None
    lines, sha = await stored_lines(storage, record.object_key)
    assert (len(lines), sha) == (count, record.sha256)
    page = await audit.trail(user_id, customer_id=17)
    assert [e.customer_id for e in page.entries] == [17]


async def test_new_entries_continue_the_chain_from_the_archive(
    customers: CustomerService, audit: AuditService, user_id: int, clock: Clock
) -> None:
    ana = await customers.create(user_id, CustomerInput(name="Ana", email="ana@x.test"))
    clock.advance(days=1)
    await audit.archive(1, now=clock.now + timedelta(days=1))
    assert await AuditLog.count().where(AuditLog.user_id == user_id) == 0
    (archived,) = await archive_rows(user_id)

    await customers.update(user_id, ana.slug, {"notes": "after the archive"})

    latest = (await audit.trail(user_id, limit=1)).entries[0]
    assert latest.prev_hash == archived["last_hash"]
    assert (await audit.verify_chain(user_id)).intact


async def test_retention_deletes_exactly_the_expired_archives_and_records_it(
    customers: CustomerService, audit: AuditService, storage: Storage, user_id: int, clock: Clock
) -> None:
    await history(customers, user_id, clock)
    await audit.archive(90, now=LATER)
    rows = await archive_rows(user_id)
    # Expired: the first two days (their last entries are over 1000 days old).
    now = rows[1]["last_at"] + timedelta(days=1000, seconds=1)

    assert (await audit.apply_retention(0, now=now)).archives == 0
    done = await audit.apply_retention(1000, now=now)

    assert (done.archives, done.entries) == (2, 8)
    left = await archive_rows(user_id)
    assert [row["id"] for row in left] == [row["id"] for row in rows[2:]]
    assert sorted(info.key for info in await storage.list("audit/")) == sorted(
        row["object_key"] for row in rows[2:]
    )
    recorded = (await audit.trail(user_id, event="archive_deleted")).entries
    assert [e.old_values["object_key"] for e in recorded if e.old_values] == [
        rows[1]["object_key"],
        rows[0]["object_key"],
    ]
    assert all(e.actor_id is None and e.customer_id is None for e in recorded)
    assert recorded[0].old_values
    assert recorded[0].old_values["entries"] == 3
    # The chain now starts after the deleted archives, and says so.
    report = await audit.verify_chain(user_id)
    assert report.intact, report.first_break
    assert (await audit.apply_retention(1000, now=now)).archives == 0

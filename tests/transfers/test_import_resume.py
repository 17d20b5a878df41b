"""A killed import resumes from its checkpoint: every row counted exactly once, no customer
or audit entry lost or doubled, the in-file duplicates and the error report rebuilt."""

from __future__ import annotations

import csv
import io

import pytest

from app.audit.service import AuditService
from app.customers.tables import Customer as CustomerTable
from app.transfers.importer import Importer
from tests.transfers.conftest import CHUNK_ROWS, Run, csv_bytes

LINES = (
    "Name,Email,Phone",
    "P0,p0@x.test,0",  # line 2
    "P1,p1@x.test,1",
    "Bad,bad@,2",  # line 4: an error in chunk 2
    "P3,p3@x.test,3",
    "P4,p4@x.test,4",
    "Dup,P0@x.test,5",  # line 7: a duplicate of line 2, in chunk 3
    "P6,p6@x.test,6",
    "P7,p7@x.test,7",
    "P8,p8@x.test,8",
)


class Crash(Exception):
    pass


def crash_at(chunk: int, stage: str) -> object:
    def fault(number: int, where: str) -> None:
        if (number, where) == (chunk, stage):
            raise Crash(f"killed at chunk {number} ({where})")

    return fault


async def _check_exactly_once(run: Run, transfer_id: int) -> None:
    done = await run.imports.get(run.user_id, transfer_id)
    assert done.status == "completed"
    assert (done.created, done.failed, done.skipped, done.updated) == (7, 2, 0, 0)
    assert done.processed_rows == done.total_rows == 9
    customers = await run.customers()
    assert sorted(customers) == sorted(f"p{n}@x.test" for n in (0, 1, 3, 4, 6, 7, 8))
    entries = await run.entries(transfer_id)
    assert len(entries) == 7
    assert len({entry["customer_id"] for entry in entries}) == 7
    report = list(csv.reader(io.StringIO(await run.report(done))))
    assert [row[:2] for row in report[1:]] == [
        ["4", 'line 4: email "bad@" is not a valid address'],
        ["7", 'line 7: email "P0@x.test" is a duplicate of line 2'],
    ]


@pytest.mark.parametrize("stage", ["written", "committed"], ids=["inside-a-chunk", "between"])
@pytest.mark.parametrize("chunk", [1, 2, 3])
async def test_resume_after_a_crash(run: Run, chunk: int, stage: str) -> None:
    transfer = await run.start(csv_bytes(*LINES))
    with pytest.raises(Crash):
        await run.resume(transfer.id, fault=crash_at(chunk, stage))  # type: ignore[arg-type]
    crashed = await run.imports.get(run.user_id, transfer.id)
    assert crashed.status == "running"
    committed = chunk if stage == "committed" else chunk - 1
    assert (crashed.checkpoint or {}).get("chunks", 0) == committed
    assert len(await run.entries(transfer.id)) == len(await run.customers())
    await run.resume(transfer.id)
    await _check_exactly_once(run, transfer.id)


async def test_two_crashes_then_done(run: Run) -> None:
    transfer = await run.start(csv_bytes(*LINES))
    with pytest.raises(Crash):
        await run.resume(transfer.id, fault=crash_at(1, "committed"))  # type: ignore[arg-type]
    with pytest.raises(Crash):
        await run.resume(transfer.id, fault=crash_at(3, "written"))  # type: ignore[arg-type]
    await run.resume(transfer.id)
    await _check_exactly_once(run, transfer.id)
    # A run after the end changes nothing (delivery is at least once).
    await run.resume(transfer.id)
    await _check_exactly_once(run, transfer.id)


# --- slugs allocated in bulk, and a writer that takes one meanwhile ---------------------------


async def _customer(user_id: int, slug: str, name: str, email: str) -> None:
    await CustomerTable.insert(
        CustomerTable(
            user_id=user_id, slug=slug, name=name, email=email, email_normalized=email.lower()
        )
    )


async def _chain_intact(run: Run, entries: int) -> None:
    report = await AuditService(storage=run.storage).verify_chain(run.user_id)
    assert report.first_break is None
    assert report.entries == entries


async def test_slugs_follow_the_highest_taken_across_chunks(run: Run) -> None:
    await _customer(run.user_id, "ann-lee", "Ann Lee", "ann@old.test")
    await _customer(run.user_id, "ann-lee-7", "Ann Lee", "ann7@old.test")
    done = await run.full(
        csv_bytes(
            "Name,Email",
            "Ann Lee,a1@x.test",
            "Bob Ray,b@x.test",
            "Ann Lee,a2@x.test",  # the next chunk: the highest suffix is remembered
            "ann   LEE,a3@x.test",
            "Ann-Lee,a4@x.test",
        )
    )
    assert (done.status, done.created) == ("completed", 5)
    slugs = {email: row["slug"] for email, row in (await run.customers()).items()}
    assert [slugs[f"a{n}@x.test"] for n in range(1, 5)] == [
        "ann-lee-8",
        "ann-lee-9",
        "ann-lee-10",
        "ann-lee-11",
    ]
    assert slugs["b@x.test"] == "bob-ray"
    await _chain_intact(run, 5)


async def test_a_slug_taken_meanwhile_makes_the_chunk_write_again(run: Run) -> None:
    """Another writer takes the slug the import would give next (its remembered highest
    suffix is stale): PostgreSQL's ON CONFLICT leaves the row out, SQLite raises; either
    way the chunk rolls back and is written again with the slugs read afresh."""
    transfer = await run.start(
        csv_bytes(
            "Name,Email",
            "Ann Lee,a1@x.test",
            "Cy Po,c@x.test",
            "Ann Lee,a2@x.test",
            "Dee Ko,d@x.test",
        )
    )
    taken: list[str] = []

    async def meanwhile(user_id: int) -> None:  # runs after each chunk's commit
        if not taken:
            taken.append("ann-lee-2")
            await _customer(user_id, "ann-lee-2", "Ann Lee", "someone@else.test")

    await Importer(run.storage, chunk_rows=CHUNK_ROWS, invalidate=meanwhile).run(
        run.user_id, transfer.id
    )
    done = await run.imports.get(run.user_id, transfer.id)
    assert (done.status, done.created, done.processed_rows) == ("completed", 4, 4)
    slugs = {email: row["slug"] for email, row in (await run.customers()).items()}
    assert (slugs["a1@x.test"], slugs["someone@else.test"], slugs["a2@x.test"]) == (
        "ann-lee",
        "ann-lee-2",
        "ann-lee-3",
    )
    entries = await run.entries(transfer.id)
    assert len(entries) == 4
    assert {entry["customer_id"] for entry in entries} == {
        row["id"] for email, row in (await run.customers()).items() if email != "someone@else.test"
    }
    await _chain_intact(run, 4)


async def test_a_large_chunk_keeps_the_chain_and_counts(run: Run) -> None:
    """Chunks of hundreds of rows (PostgreSQL: one COPY of customers and one of entries
    each), a crash inside the second: entries follow the rows, the chain holds, every row
    is counted once."""
    lines = ["First Name,Last Name,E-mail Address,Notes"]
    lines += [f'Pat,Doe {n % 40},pat{n}@x.test,"note {n}, with a comma"' for n in range(3_000)]
    lines.insert(11, "Bad,Row,not-an-email,")
    transfer = await run.start(csv_bytes(*lines))
    with pytest.raises(Crash):
        await run.resume(transfer.id, fault=crash_at(2, "written"), chunk_rows=1_500)  # type: ignore[arg-type]
    await run.resume(transfer.id, chunk_rows=1_500)
    done = await run.imports.get(run.user_id, transfer.id)
    assert (done.status, done.created, done.failed) == ("completed", 3_000, 1)
    customers = await run.customers()
    assert len(customers) == 3_000
    assert len({row["slug"] for row in customers.values()}) == 3_000
    assert customers["pat7@x.test"]["notes"] == "note 7, with a comma"
    entries = await run.entries(transfer.id)
    assert len(entries) == 3_000
    assert [entry["customer_id"] for entry in entries] == sorted(
        entry["customer_id"] for entry in entries
    )
    await _chain_intact(run, 3_000)

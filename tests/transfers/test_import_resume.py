"""A killed import resumes from its checkpoint: every row counted exactly once, no customer
or audit entry lost or doubled, the in-file duplicates and the error report rebuilt."""

from __future__ import annotations

import csv
import io

import pytest

from tests.transfers.conftest import Run, csv_bytes

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

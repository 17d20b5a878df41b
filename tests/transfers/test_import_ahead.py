"""PostgreSQL starts chunk N+1 on its own connection while chunk N is written: chunk N+1
commits only over a committed chunk N. The guard is the checkpoint, checked in N+1's
own transaction: it must be where N+1 starts."""

from __future__ import annotations

import asyncio
import io

import pytest
from piccolo.querystring import QueryString

from app.audit.context import AuditContext
from app.transfers.csv_reader import FileFormat, iter_rows
from app.transfers.importer import CheckpointMoved, Counts, Importer, _Chunk
from app.transfers.mapping import Mapping
from app.transfers.repository import TransferRecord
from app.transfers.tables import Transfer
from tests.transfers.conftest import Run, csv_bytes

DATA = csv_bytes("Name,Email", *[f"P{n},p{n}@x.test" for n in range(4)])


# Only PostgreSQL writes ahead (SQLite has one writer and commits chunks one by one): the
# full-stack profile alone, as the chaos tests select it.
pytestmark = pytest.mark.parametrize("settings", ["fullstack"], indirect=True)


async def _two_chunks(run: Run) -> tuple[TransferRecord, _Chunk, _Chunk]:
    transfer = await run.start(DATA)
    fmt = FileFormat(**transfer.options["format"])
    mapping = Mapping.from_dict(transfer.options["mapping"])
    rows = iter_rows(io.BytesIO(DATA), fmt)  # type: ignore[arg-type]
    reader = Importer(run.storage, chunk_rows=2)
    first = reader._read_chunk(rows, 2, mapping, {}, 0)
    second = reader._read_chunk(rows, 2, mapping, {}, 0)
    assert first is not None
    assert second is not None
    assert first.last is not None
    return transfer, first, second


def _context(transfer: TransferRecord) -> AuditContext:
    return AuditContext.system(
        actor_id=transfer.user_id, request_id=f"import:{transfer.id}", import_id=transfer.id
    )


async def _write_second_ahead(run: Run, transfer: TransferRecord, first: _Chunk, second: _Chunk):  # type: ignore[no-untyped-def]
    """Chunk 2 written ahead as the import writes it (from the end of chunk 1), then let go
    as if chunk 1 had committed."""
    assert first.last is not None
    importer = Importer(run.storage, chunk_rows=2)
    importer._start_ahead(
        transfer,
        second,
        "skip",
        _context(transfer),
        2,
        start=first.last.byte_offset_after,
    )
    return importer, importer._write_chunk(
        transfer, second, "skip", Counts(created=2), _context(transfer), 2, 0, 0
    )


async def _nothing_of_the_second_chunk(run: Run, transfer: TransferRecord) -> None:
    assert sorted(await run.customers()) == []
    assert await run.entries(transfer.id) == []
    now = await run.imports.get(run.user_id, transfer.id)
    assert now.checkpoint is None
    assert now.processed_rows == 0


async def test_a_chunk_whose_predecessor_never_committed_is_not_committed(run: Run) -> None:
    transfer, first, second = await _two_chunks(run)
    _importer, writing = await _write_second_ahead(run, transfer, first, second)
    with pytest.raises(CheckpointMoved):
        await writing
    await _nothing_of_the_second_chunk(run, transfer)


async def _hold_checkpoint(
    transfer: TransferRecord, offset: int, holding: asyncio.Event, end: asyncio.Event, commit: bool
) -> None:
    """Another transaction moves the checkpoint to ``offset`` (as chunk 1 does) and holds the
    row until ``end``; then commits or rolls back."""

    class RolledBack(Exception):
        pass

    try:
        async with Transfer._meta.db.transaction():
            await Transfer.raw(
                "{}",
                QueryString(
                    "UPDATE transfers SET checkpoint = {} WHERE id = {}",
                    f'{{"offset": {offset}, "chunks": 1}}',
                    transfer.id,
                ),
            )
            holding.set()
            await end.wait()
            if not commit:
                raise RolledBack
    except RolledBack:
        pass


@pytest.mark.parametrize("commit", [False, True], ids=["rolled-back", "committed"])
async def test_a_chunk_commits_only_over_its_predecessor_committed(run: Run, commit: bool) -> None:
    transfer, first, second = await _two_chunks(run)
    assert first.last is not None
    assert second.last is not None
    holding, end = asyncio.Event(), asyncio.Event()
    other = asyncio.create_task(
        _hold_checkpoint(transfer, first.last.byte_offset_after, holding, end, commit)
    )
    await holding.wait()
    try:
        # The predecessor has moved the checkpoint but not committed: not over it.
        _importer, writing = await _write_second_ahead(run, transfer, first, second)
        with pytest.raises(CheckpointMoved):
            await writing
    finally:
        end.set()
        await other
    if not commit:
        await _nothing_of_the_second_chunk(run, transfer)
        return
    assert sorted(await run.customers()) == []
    _importer, writing = await _write_second_ahead(run, transfer, first, second)
    await writing
    assert sorted(await run.customers()) == ["p2@x.test", "p3@x.test"]
    assert len(await run.entries(transfer.id)) == 2
    now = await run.imports.get(run.user_id, transfer.id)
    assert now.checkpoint is not None
    assert now.checkpoint["chunks"] == 2
    assert now.checkpoint["offset"] == second.last.byte_offset_after
    assert now.created == 4  # counted over the predecessor's 2

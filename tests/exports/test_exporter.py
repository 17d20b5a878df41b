"""The export itself, on both profiles: the file holds exactly the rows the dashboard
lists (same filter, same order, every page), written safely, and a fault or a cancel
leaves no file behind."""

from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import load_workbook

from app.audit.tables import AuditLog
from app.customers.models import ListQuery
from app.exports.service import ExportService, file_key, job_key
from app.exports.writer import BOM
from app.transfers.csv_reader import guard_formula
from tests.exports.conftest import AWKWARD, HEADER, Run, listed, parse_csv, seed


def expected_rows(customers: list) -> list[list[str]]:
    return [
        [
            guard_formula(c.name),
            guard_formula(c.email),
            guard_formula(c.phone),
            guard_formula(c.organization),
            guard_formula(c.job_title),
            guard_formula(c.notes),
            c.created_at.isoformat(),
            c.updated_at.isoformat(),
            c.slug,
        ]
        for c in customers
    ]


@pytest.mark.parametrize(
    "query",
    [
        ListQuery(),
        ListQuery(sort="name"),
        ListQuery(organization="Acme, Inc.", sort="-updated"),
        ListQuery(q="person"),
        ListQuery(created_from=date(2026, 3, 1), created_to=date(2026, 3, 1), sort="created"),
    ],
    ids=["newest", "by-name", "organization", "search", "dates"],
)
async def test_the_file_holds_exactly_the_filtered_list_in_its_order(
    run: Run, user_id: int, other_user_id: int, query: ListQuery
) -> None:
    await seed(user_id, AWKWARD + [{"name": f"Person {n}"} for n in range(9)])
    await seed(other_user_id, [{"name": "Person of someone else", "organization": "Acme, Inc."}])
    done = await run.full(query, batch_rows=4)
    assert done.status == "completed", done.error_message
    rows = parse_csv(await run.content(done))
    wanted = await listed(user_id, query)
    assert wanted, "the query should match something"
    assert rows[0] == HEADER
    assert rows[1:] == expected_rows(wanted)
    assert (done.total_rows, done.processed_rows) == (len(wanted), len(wanted))
    assert done.file_key == file_key(user_id, done.id, done.original_filename)


async def test_awkward_values_survive_and_formulas_are_guarded(run: Run, user_id: int) -> None:
    await seed(user_id, AWKWARD)
    done = await run.full()
    data = await run.content(done)
    assert not data.startswith(BOM)
    by_name = {row[0]: row for row in parse_csv(data)[1:]}
    assert by_name["Zoë Ångström"][5] == "naïve café 日本語 😀"
    assert by_name['Ann "The Hammer" Lee'][3] == "Acme, Inc."
    assert by_name["Multi Line"][5] == "line one\nline two\r\nthree"
    # OWASP: a leading ' keeps the spreadsheet from running the cell.
    assert '\'=HYPERLINK("http://evil")' in by_name
    assert by_name['\'=HYPERLINK("http://evil")'][5] == "'+1 cell"
    assert by_name["Minus Person"][2] == "'-12"
    assert by_name["Minus Person"][4] == "'@admin"
    assert by_name["Minus Person"][5] == "'\tstarts with tab"


async def test_a_bom_for_excel_on_request(run: Run, user_id: int) -> None:
    await seed(user_id, AWKWARD[:1])
    data = await run.content(await run.full(bom=True))
    assert data.startswith(BOM)
    assert parse_csv(data[len(BOM) :])[1][0] == "Zoë Ångström"


async def test_xlsx_opens_with_openpyxl_and_has_the_same_rows(run: Run, user_id: int) -> None:
    await seed(user_id, AWKWARD + [{"name": f"Person {n}"} for n in range(5)])
    done = await run.full(ListQuery(sort="name"), fmt="xlsx")
    assert done.original_filename.endswith(".xlsx")
    book = load_workbook(io.BytesIO(await run.content(done)), read_only=True)
    sheet = book.worksheets[0]
    rows = [[cell if cell is not None else "" for cell in row] for row in sheet.values]
    assert rows[0] == HEADER
    wanted = expected_rows(await listed(user_id, ListQuery(sort="name")))
    # XML normalizes line ends when the file is read: a CR LF inside a cell reads as LF.
    assert rows[1:] == [[v.replace("\r\n", "\n") for v in row] for row in wanted]


async def test_export_selected_writes_only_those_rows_in_list_order(
    run: Run, user_id: int, other_user_id: int
) -> None:
    await seed(user_id, [{"name": f"Person {n}", "slug": f"person-{n}"} for n in range(6)])
    await seed(other_user_id, [{"name": "Theirs", "slug": "person-9"}])
    done = await run.full(ListQuery(sort="name"), slugs=["person-4", "person-1", "person-9"])
    rows = parse_csv(await run.content(done))
    assert [row[8] for row in rows[1:]] == ["person-1", "person-4"]


async def test_one_exported_audit_entry_with_filters_and_row_count(run: Run, user_id: int) -> None:
    await seed(user_id, AWKWARD)
    query = ListQuery(organization="Acme, Inc.", sort="name")
    done = await run.full(query)
    entries = await AuditLog.select().where(
        (AuditLog.user_id == user_id) & (AuditLog.event == "exported")
    )
    assert len(entries) == 1
    entry = entries[0]
    assert entry["customer_id"] is None
    assert entry["actor_id"] == user_id
    assert entry["ip"] == "203.0.113.9"
    values = entry["new_values"]
    if isinstance(values, str):
        import json

        values = json.loads(values)
    assert values["rows"] == done.processed_rows == 3
    assert values["filters"]["organization"] == "Acme, Inc."
    assert values["filters"]["sort"] == "name"
    assert values["export_id"] == done.id


async def test_completion_queues_the_notification(
    run: Run, user_id: int, exports: ExportService
) -> None:
    await seed(user_id, AWKWARD[:2])
    transfer = await run.start()
    done = await run.finish(transfer.id)
    names = [(name, key) for name, key, _ in exports.jobs.enqueued]  # type: ignore[union-attr]
    assert names == [
        ("export_customers", job_key(transfer.id)),
        ("notify_export_ready", f"export-ready:{done.id}"),
    ]


async def test_a_storage_fault_leaves_no_object_and_a_retry_starts_over(
    run: Run, user_id: int
) -> None:
    await seed(user_id, [{"name": f"Person {n}"} for n in range(10)])
    transfer = await run.start()

    def fault(rows: int) -> None:
        if rows >= 6:
            raise OSError("the disk is full")

    with pytest.raises(OSError, match="disk is full"):
        await run.finish(transfer.id, fault=fault)
    assert await run.storage.list(f"exports/{user_id}/") == []
    # The job retries the same export: it starts over and completes.
    done = await run.finish(transfer.id)
    assert done.status == "completed"
    assert len(parse_csv(await run.content(done))) == 11


async def test_cancel_while_running_stops_at_the_next_batch_with_no_file(
    run: Run, user_id: int, exports: ExportService
) -> None:
    await seed(user_id, [{"name": f"Person {n}"} for n in range(10)])
    transfer = await run.start()
    cancelled = []

    def cancel_midway(rows: int) -> None:
        cancelled.append(rows)

    async def cancel_then_progress(user: int, tid: int, processed: int) -> bool:
        if processed >= 4 and not await_cancelled:
            await_cancelled.append(await exports.cancel(user, tid))
        return await original(user, tid, processed)

    await_cancelled: list = []
    original = exports.repository.progress
    exporter_repository = exports.repository
    exporter_repository.progress = cancel_then_progress  # type: ignore[method-assign]
    from app.exports.exporter import Exporter

    exporter = Exporter(run.storage, run.settings, repository=exporter_repository, batch_rows=2)
    assert await exporter.run(user_id, transfer.id) == "cancelled"
    after = await exports.get(user_id, transfer.id)
    assert after.status == "cancelled"
    assert after.file_key is None
    assert await run.storage.list(f"exports/{user_id}/") == []
    # And it can be queued again.
    again = await exports.retry(user_id, transfer.id)
    assert again.status == "queued"


async def test_round_trip_export_then_import_into_another_user(
    run: Run, user_id: int, other_user_id: int
) -> None:
    from app.transfers.importer import Importer
    from app.transfers.service import ImportService
    from tests.jobs.workers import RecordingJobs

    # Values the app can hold: CustomerService trims them and keeps line breaks as LF.
    book_rows = [{k: v.replace("\r\n", "\n").strip() for k, v in row.items()} for row in AWKWARD]
    await seed(user_id, book_rows + [{"name": f"Person {n}"} for n in range(7)])
    data = await run.content(await run.full(bom=True))
    imports = ImportService(run.storage, RecordingJobs(), run.settings)
    transfer = await imports.upload(other_user_id, "customers.csv", io.BytesIO(data))
    await imports.configure(other_user_id, transfer.id)
    await imports.start(other_user_id, transfer.id)
    await Importer(run.storage, chunk_rows=3).run(other_user_id, transfer.id)
    imported = await imports.get(other_user_id, transfer.id)
    assert imported.status == "completed", imported.error_message
    assert imported.created == 13

    # Every field a person typed comes back exactly (slugs and dates are the book's own).
    def book(customers: list) -> list[dict[str, str]]:
        return sorted((c.editable_values() for c in customers), key=lambda v: v["email"])

    mine = await listed(user_id, ListQuery())
    theirs = await listed(other_user_id, ListQuery())
    assert book(theirs) == book(mine)

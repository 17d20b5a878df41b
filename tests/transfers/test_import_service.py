"""The import service and the chunk processor on both profiles: upload, mapping, policies,
in-file duplicates, the error report, cancel, undo, isolation and bad input."""

from __future__ import annotations

import csv
import io
import struct
import zipfile
import zlib
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from app.customers.tables import Customer as CustomerTable
from app.lib.storage import Storage
from app.lib.validation import ValidationFailed
from app.settings import Settings
from app.transfers.repository import PiccoloTransferRepository
from app.transfers.service import ImportNotFound, ImportService
from app.transfers.tables import Transfer
from tests.transfers.conftest import FILES, RecordingJobs, Run, csv_bytes

# file -> (created, failed, one email -> expected values)
EXPECTED = {
    "apple_contacts.csv": (
        2,
        1,
        "zoe@studionoord.example",
        {"name": "Zoë van der Berg", "organization": "Studio Noord", "job_title": "Architect"},
    ),
    "crm_export.csv": (
        3,
        0,
        "ada@analytical-engines.example",
        {"phone": "+44 20 7946 0958", "notes": "=1+1 is what she typed\nsecond line"},
    ),
    "excel_european.csv": (
        3,
        0,
        "juergen@baeckerei-weiss.example",
        {"name": "Jürgen Weiß", "organization": "Bäckerei Weiß GmbH", "job_title": "Inhaber"},
    ),
    "excel_unicode_text.txt": (
        3,
        0,
        "taro.yamada@sakura-trading.example",
        {
            "name": "山田 太郎",
            "organization": "Sakura Trading 株式会社",
            "notes": "Met in Osaka 🎌",
        },
    ),
    "google_contacts_new.csv": (
        3,
        0,
        "h.albrecht@klinikum-am-see.example",
        {"name": "Henrike Sophie Albrecht", "job_title": "Chefärztin", "phone": "+49 30 901820"},
    ),
    "google_contacts_old.csv": (
        3,
        0,
        "priya.raman@northwind-traders.example",
        {"name": "Priya Raman", "email": "Priya.Raman@Northwind-Traders.example"},
    ),
    "hubspot_contacts.csv": (
        2,
        2,
        "grace@whitfieldfoods.example",
        {"phone": "+1 (617) 555-0143", "organization": "Whitfield Foods", "job_title": "Owner"},
    ),
    "linkedin_connections.csv": (
        2,
        2,
        "sven.lindqvist@nordkraft.example",
        {"organization": "Nordkraft Energi AB", "job_title": "VP Sales, Nordics"},
    ),
    "outlook.csv": (
        3,
        0,
        "jonathan.pryce@prycedaughters.example",
        {"name": "Jonathan Pryce", "job_title": "Managing Director"},
    ),
    "plain_english.csv": (
        2,
        1,
        "marta.nowak@wisla-tech.example",
        {"name": "Marta Nowak", "job_title": "CTO", "notes": "Interested in the API."},
    ),
    "salesforce_contacts.csv": (
        3,
        0,
        "d.okafor@harbourline.example",
        {"name": "Daniel Okafor", "job_title": "Chief Financial Officer"},
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_each_export_format_imports_with_its_values(run: Run, name: str) -> None:
    created, failed, email, values = EXPECTED[name]
    transfer = await run.full((FILES / name).read_bytes())
    assert transfer.status == "completed", transfer.error_message
    assert (transfer.created, transfer.failed, transfer.updated, transfer.skipped) == (
        created,
        failed,
        0,
        0,
    )
    assert transfer.processed_rows == transfer.total_rows == created + failed
    customers = await run.customers()
    assert len(customers) == created
    for field, value in values.items():
        assert customers[email][field] == value
    assert (transfer.error_report_key is not None) == (failed > 0)
    entries = await run.entries(transfer.id)
    assert len(entries) == created
    assert {entry["event"] for entry in entries} == {"imported"}


async def test_upload_streams_to_storage_and_describes_the_file(
    run: Run, storage: Storage, jobs: RecordingJobs
) -> None:
    data = (FILES / "hubspot_contacts.csv").read_bytes()
    transfer = await run.upload(data, "hubspot.csv")
    assert transfer.status == "pending"
    assert transfer.original_filename == "hubspot.csv"
    assert transfer.file_key == f"imports/{run.user_id}/{transfer.id}/source.csv"
    stored = await storage.get(transfer.file_key)
    assert await stored.read_all() == data
    assert transfer.options["format"]["delimiter"] == ","
    assert transfer.options["format"]["header"][1] == "First Name"
    targets = dict(
        zip(
            transfer.options["mapping"]["header"],
            transfer.options["mapping"]["targets"],
            strict=True,
        )
    )
    assert targets["Email"] == "email"
    assert transfer.options["size"] == len(data)
    started = await run.imports.start(run.user_id, transfer.id)
    assert started.status == "queued"
    assert jobs.enqueued == [
        (
            "import_customers",
            f"import:{transfer.id}",
            {"user_id": run.user_id, "transfer_id": transfer.id},
        )
    ]


async def test_a_mapping_without_name_or_email_is_refused(run: Run) -> None:
    transfer = await run.upload(csv_bytes("Company,Phone", "Acme,123"))
    with pytest.raises(ValidationFailed) as failed:
        await run.imports.configure(run.user_id, transfer.id, None)
    assert "Name" in failed.value.errors["mapping"]
    assert "Email" in failed.value.errors["mapping"]
    with pytest.raises(ValidationFailed) as failed:
        await run.imports.configure(run.user_id, transfer.id, {"Nope": "email"})
    assert 'no column "Nope"' in failed.value.errors["mapping"]
    with pytest.raises(ValidationFailed) as failed:
        await run.imports.configure(run.user_id, transfer.id, None, "replace")
    assert "on_duplicate" in failed.value.errors


ROWS = (
    "Name,Email,Phone,Organization,Job title,Notes",
    "Ann One,ann@x.test,111,,Boss,",
    "Bob Two,BOB@x.test,,Bobco,,new note",
    "Cy Three,cy@x.test,333,Cyco,,",
)


async def _seed(run: Run) -> None:
    first = await run.full(
        csv_bytes(
            "Name,Email,Phone,Organization,Job title,Notes",
            "Ann Old,ann@x.test,,Annco,,old note",
            "Bob Old,bob@x.test,999,,Engineer,",
        )
    )
    assert first.created == 2


async def test_duplicate_policy_skip(run: Run) -> None:
    await _seed(run)
    transfer = await run.full(csv_bytes(*ROWS), on_duplicate="skip")
    assert (transfer.created, transfer.updated, transfer.skipped) == (1, 0, 2)
    customers = await run.customers()
    assert customers["ann@x.test"]["name"] == "Ann Old"
    assert customers["cy@x.test"]["phone"] == "333"


async def test_duplicate_policy_update_overwrites_with_non_empty_values(run: Run) -> None:
    await _seed(run)
    transfer = await run.full(csv_bytes(*ROWS), on_duplicate="update")
    assert (transfer.created, transfer.updated, transfer.skipped) == (1, 2, 0)
    customers = await run.customers()
    ann, bob = customers["ann@x.test"], customers["bob@x.test"]
    assert (ann["name"], ann["phone"], ann["organization"], ann["notes"]) == (
        "Ann One",
        "111",
        "Annco",
        "old note",
    )
    assert (bob["name"], bob["phone"], bob["organization"], bob["job_title"]) == (
        "Bob Two",
        "999",
        "Bobco",
        "Engineer",
    )
    entries = [e for e in await run.entries(transfer.id) if e["old_values"]]
    assert len(entries) == 2
    ann_entry = next(e for e in entries if "ann" in e["customer_label"])
    assert run_values(ann_entry["old_values"]) == {"name": "Ann Old", "phone": "", "job_title": ""}


async def test_an_update_writes_only_the_fields_it_changes(run: Run) -> None:
    """A change made elsewhere after the import read a customer (here: its notes) stays:
    the import's update sets only the fields the row changes."""
    await _seed(run)
    ann = (await run.customers())["ann@x.test"]
    await CustomerTable.update({CustomerTable.notes: "edited meanwhile"}).where(
        CustomerTable.id == ann["id"]
    )
    repository = PiccoloTransferRepository()
    async with repository.transaction():
        (after,) = await repository.update_customers(
            run.user_id, [(ann["id"], {"phone": "111"})], datetime.now(UTC)
        )
    assert (after.name, after.phone, after.organization, after.notes) == (
        "Ann Old",
        "111",
        "Annco",
        "edited meanwhile",
    )
    stored = (await run.customers())["ann@x.test"]
    assert (stored["phone"], stored["notes"]) == ("111", "edited meanwhile")


def run_values(value: object) -> object:
    import json

    return json.loads(value) if isinstance(value, str) else value


async def test_duplicate_policy_merge_fills_only_empty_fields(run: Run) -> None:
    await _seed(run)
    transfer = await run.full(csv_bytes(*ROWS), on_duplicate="merge")
    assert (transfer.created, transfer.updated, transfer.skipped) == (1, 2, 0)
    customers = await run.customers()
    ann, bob = customers["ann@x.test"], customers["bob@x.test"]
    assert (ann["name"], ann["phone"], ann["job_title"], ann["notes"]) == (
        "Ann Old",
        "111",
        "Boss",
        "old note",
    )
    assert (bob["name"], bob["phone"], bob["organization"], bob["notes"]) == (
        "Bob Old",
        "999",
        "Bobco",
        "new note",
    )


async def test_in_file_duplicates_and_the_error_report(run: Run) -> None:
    transfer = await run.full(
        csv_bytes(
            "Name,Email,Phone",
            "Ann,ann@x.test,1",
            "Bob,bob@,2",
            "Ann Again,ANN@x.test,3",
            ",nameless@x.test,4",
            "Cy,cy@x.test,5",
        )
    )
    assert (transfer.created, transfer.failed, transfer.processed_rows) == (2, 3, 5)
    customers = await run.customers()
    assert customers["ann@x.test"]["name"] == "Ann"
    report = list(csv.reader(io.StringIO(await run.report(transfer))))
    assert report[0] == ["line", "reason", "Name", "Email", "Phone"]
    assert report[1] == ["3", 'line 3: email "bob@" is not a valid address', "Bob", "bob@", "2"]
    assert report[2] == [
        "4",
        'line 4: email "ANN@x.test" is a duplicate of line 2',
        "Ann Again",
        "ANN@x.test",
        "3",
    ]
    assert report[3][:2] == ["5", "line 5: name is missing"]
    view = await run.imports.view(run.user_id, transfer.id)
    assert view.error_report_url


async def test_all_rows_invalid_ends_with_a_report_and_a_message(run: Run) -> None:
    transfer = await run.full(csv_bytes("Name,Email", "A,a@", "B,", ",c@x.test"))
    assert transfer.status == "completed"
    assert (transfer.created, transfer.failed) == (0, 3)
    assert transfer.error_message
    assert "No row could be imported" in transfer.error_message
    assert len(list(csv.reader(io.StringIO(await run.report(transfer))))) == 4


async def test_a_two_megabyte_field_is_a_row_error(run: Run) -> None:
    big = "x" * (2 * 1024 * 1024)
    transfer = await run.full(
        csv_bytes("Name,Email,Notes", f"Big,big@x.test,{big}", "Ok,ok@x.test,")
    )
    assert transfer.status == "completed"
    assert (transfer.created, transfer.failed) == (1, 1)
    assert "larger than 1 MB" in (await run.report(transfer))


def _png() -> bytes:
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(header))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


def _xlsx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"Name,Email\r\n", "header but no rows"),
        (_png(), "PNG image"),
        (_xlsx(), "Excel workbook"),
    ],
    ids=["empty", "header-only", "png", "xlsx-renamed"],
)
async def test_bad_files_are_refused_and_nothing_is_kept(
    run: Run, storage: Storage, data: bytes, words: str
) -> None:
    with pytest.raises(ValidationFailed) as failed:
        await run.upload(data)
    assert words in failed.value.errors["file"]
    assert await storage.list(f"imports/{run.user_id}/") == []
    assert await Transfer.count().where(Transfer.user_id == run.user_id) == 0


async def test_a_file_over_the_limit_is_refused_while_streaming(
    storage: Storage, settings: Settings, user_id: int
) -> None:
    small = ImportService(storage, RecordingJobs(), replace(settings, import_max_bytes=1024))
    from tests.transfers.conftest import chunks_of

    data = csv_bytes("Name,Email", *[f"P{n},p{n}@x.test" for n in range(200)])
    with pytest.raises(ValidationFailed) as failed:
        await small.upload(user_id, "big.csv", chunks_of(data, 100))
    assert failed.value.errors["file"].startswith("The file is larger than 1 KB")
    assert await storage.list(f"imports/{user_id}/") == []
    assert await Transfer.count().where(Transfer.user_id == user_id) == 0


async def test_cancel_stops_at_the_next_chunk_and_keeps_what_was_committed(run: Run) -> None:
    data = csv_bytes("Name,Email", *[f"P{n},p{n}@x.test" for n in range(10)])
    transfer = await run.start(data)
    from app.transfers.importer import Importer

    class CancellingImporter(Importer):
        """Cancels from "another request" right after its first chunk commits."""

        async def _write_chunk(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            await super()._write_chunk(*args, **kwargs)
            await run.imports.cancel(run.user_id, transfer.id)

    importer = CancellingImporter(run.storage, chunk_rows=2)
    await importer.run(run.user_id, transfer.id)
    done = await run.imports.get(run.user_id, transfer.id)
    assert done.status == "cancelled"
    assert done.created == 2
    assert len(await run.customers()) == 2
    assert "cancelled" in (done.error_message or "")
    assert "line 4" in (await run.report(done))


async def test_cancel_before_the_job_runs(run: Run) -> None:
    transfer = await run.start(csv_bytes("Name,Email", "A,a@x.test"))
    cancelled = await run.imports.cancel(run.user_id, transfer.id)
    assert cancelled.status == "cancelled"
    after = await run.resume(transfer.id)
    assert after.status == "cancelled"
    assert await run.customers() == {}
    with pytest.raises(ValidationFailed):
        await run.imports.cancel(run.user_id, transfer.id)


async def test_undo_deletes_created_and_restores_updated(run: Run) -> None:
    await _seed(run)
    before = await run.customers()
    transfer = await run.full(csv_bytes(*ROWS), on_duplicate="update")
    from app.audit.context import AuditContext

    result = await run.imports.undo(run.user_id, transfer.id, AuditContext(actor_id=run.user_id))
    assert (result.deleted, result.restored) == (1, 2)
    after = await run.customers()
    assert set(after) == set(before)
    for email, row in before.items():
        for field in ("name", "phone", "organization", "job_title", "notes", "slug"):
            assert after[email][field] == row[field]
    events = [e["event"] for e in await run.entries(transfer.id)]
    assert events.count("deleted") == 1
    assert events.count("restored") == 2
    with pytest.raises(ValidationFailed):
        await run.imports.undo(run.user_id, transfer.id, AuditContext())


async def test_slugs_are_allocated_in_bulk_without_collisions(run: Run) -> None:
    await run.full(csv_bytes("Name,Email", "Ann Lee,a1@x.test"))
    transfer = await run.full(
        csv_bytes("Name,Email", "Ann Lee,a2@x.test", "Ann Lee,a3@x.test", "Ann Lee,a4@x.test"),
        chunk_rows=5,
    )
    assert transfer.created == 3
    slugs = sorted(row["slug"] for row in (await run.customers()).values())
    assert slugs == ["ann-lee", "ann-lee-2", "ann-lee-3", "ann-lee-4"]


async def test_isolation(run: Run, other_user_id: int, imports: ImportService) -> None:
    theirs = Run(imports, run.storage, other_user_id)
    await theirs.full(csv_bytes("Name,Email,Phone", "Their Ann,ann@x.test,555"))
    mine = await run.full(
        csv_bytes("Name,Email,Phone", "My Ann,ann@x.test,111"), on_duplicate="update"
    )
    assert (mine.created, mine.updated) == (1, 0)
    assert (await theirs.customers())["ann@x.test"]["name"] == "Their Ann"
    with pytest.raises(ImportNotFound):
        await imports.get(other_user_id, mine.id)
    with pytest.raises(ImportNotFound):
        await imports.cancel(other_user_id, mine.id)
    assert [t.id for t in await imports.list_imports(other_user_id)] != [mine.id]

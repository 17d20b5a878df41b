"""CSV import in a real browser: drag a file onto the drop zone and watch the upload's own
progress bar, adjust the mapping from the keyboard, start, watch the progress reach 100 %
and download the error report; then the whole flow again with JavaScript off (file input,
submit button, a page that refreshes itself, undo with its confirmation page).
Screenshots of each page go to screenshots/ (gitignored)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_customers import sign_up
from tests.fixtures.services import ROOT

pytestmark = pytest.mark.browser

SHOTS = ROOT / "screenshots"
DRAGGING = re.compile(r"\bis-dragover\b")
FIRST_NAMES = ["Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Gita", "Hugo", "Ines", "Jonas"]
FIRST_NAMES += ["Kira", "Luca", "Mira", "Nils", "Olga"]
LAST_NAMES = ["Silva", "Chen", "Okafor", "Novak", "Berg", "Haddad", "Rossi", "Kim", "Weber"]
LAST_NAMES += ["Costa", "Sato", "Dubois", "Nagy", "Lund", "Moreau"]
# Rows 3 and 5 (lines 4 and 6 of the file) cannot be imported: the report names them.
BAD_LINES = {4: 'email "bob@" is not a valid address', 6: "is a duplicate of line 2"}


def people_csv(count: int) -> bytes:
    """A realistic export: semicolons (Excel in Europe), a bad email, an in-file duplicate."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["Full Name", "E-mail Address", "Company", "Mobile", "Comment"])
    writer.writerow(["Ada Lovelace", "ada@engines.example", "Analytical Engines", "+44 20 1", ""])
    writer.writerow(["Grace Hopper", "grace@navy.example", "US Navy", "+1 555 2", "Admiral"])
    writer.writerow(["Bob Broken", "bob@", "Nowhere", "", ""])
    writer.writerow(["Alan Turing", "alan@bletchley.example", "Bletchley Park", "", ""])
    writer.writerow(["Ada Again", "ADA@engines.example", "Duplicate Ltd", "", ""])
    for n in range(count):
        # Names repeat in a big file (emails do not): 15 x 15 of them here.
        first, last = FIRST_NAMES[n % 15], LAST_NAMES[n // 15 % 15]
        writer.writerow(
            [
                f"{first} {last}",
                f"person{n:05d}@example.com",
                f"Company {n % 97}",
                f"+1 555 {n:05d}",
                "Met at the trade fair; wants a quote for 40 seats.",
            ]
        )
    return out.getvalue().encode()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"imports-{name}.png"), full_page=True)


def tab_to(page: Any, element_id: str, limit: int = 40) -> None:
    page.locator("body").focus()
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} cannot be reached with Tab")


def check_report(path: Path) -> None:
    text = path.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:2] == ["line", "reason"]
    assert rows[0][2:] == ["Full Name", "E-mail Address", "Company", "Mobile", "Comment"]
    reasons = {int(row[0]): row[1] for row in rows[1:]}
    assert set(reasons) == set(BAD_LINES)
    for line, words in BAD_LINES.items():
        assert reasons[line].startswith(f"line {line}: "), reasons[line]
        assert words in reasons[line]
    assert rows[1][2:4] == ["Bob Broken", "bob@"]  # the original row, as it was


def test_drag_a_file_map_it_and_watch_it_import(live_server, page, tmp_path) -> None:
    sign_up(page, live_server, "Imo Porter")
    page.goto(live_server.url + "/customers")
    page.get_by_role("link", name="Import a CSV").first.click()
    expect(page).to_have_url(live_server.url + "/imports/new")
    expect(page.locator("[data-dropzone]")).to_be_visible()
    shot(page, "new")

    # A picture renamed .csv: refused beside the field, the card swapped in place.
    page.set_input_files(
        "#file",
        files=[{"name": "photo.csv", "mimeType": "text/csv", "buffer": b"\x89PNG\r\n\x1a\n"}],
    )
    page.get_by_role("button", name="Upload and choose the columns").click()
    expect(page.locator("#file-error")).to_contain_text("PNG")
    expect(page).to_have_url(live_server.url + "/imports/new")
    expect(page.locator("#file")).to_be_focused()

    # The file input is in the Tab order (the drop zone is only a bigger target for it).
    tab_to(page, "file")

    data = people_csv(20_000)  # about 1.8 MB: the upload takes a moment below
    source = tmp_path / "contacts.csv"
    source.write_bytes(data)
    page.set_input_files("#file", str(source))
    expect(page.locator("[data-drop-name]")).to_contain_text("contacts.csv")

    # Dragging a file over the zone shows the drop state.
    transfer = page.evaluate_handle(
        """() => {
            const transfer = new DataTransfer();
            transfer.items.add(document.getElementById("file").files[0]);
            return transfer;
        }"""
    )
    zone = page.locator("[data-dropzone]")
    zone.dispatch_event("dragenter", {"dataTransfer": transfer})
    zone.dispatch_event("dragover", {"dataTransfer": transfer})
    expect(zone).to_have_class(DRAGGING)
    shot(page, "new-dragover")

    # A slow line, so the upload's own progress bar can be seen moving.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 20,
            "downloadThroughput": -1,
            "uploadThroughput": 600 * 1024,
        },
    )
    zone.dispatch_event("drop", {"dataTransfer": transfer})
    expect(zone).not_to_have_class(DRAGGING)
    progress = page.locator("[data-upload-progress]")
    expect(progress).to_be_visible()
    page.wait_for_function(
        "() => { const bar = document.getElementById('upload-progress-bar');"
        " return bar && bar.value > 0 && bar.value < 100; }",
        timeout=10_000,
    )
    expect(progress).to_contain_text("Uploading…")
    shot(page, "new-uploading")

    # The mapping page: the header and the first rows, the selects pre-filled.
    page.wait_for_url("**/imports/*", timeout=30_000)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    expect(page.locator("h1")).to_have_text("Map the columns of contacts.csv")
    expect(page.locator("#detected")).to_contain_text("semicolons")
    expect(page.locator(".mapping-table tbody tr")).to_have_count(5)
    values = [page.input_value(f"#target-{n}") for n in range(1, 6)]
    assert values[:4] == ["name", "email", "organization", "phone"]
    shot(page, "mapping")

    # Adjust it from the keyboard: Tab to the Mobile column's select, move to Notes.
    tab_to(page, "target-4")
    for _ in range(3):  # phone -> organization -> job title -> notes
        page.keyboard.press("ArrowDown")
    assert page.input_value("#target-4") == "notes"
    page.select_option("#target-5", "notes")
    page.get_by_label("Merge").check()

    page.get_by_role("button", name="Start import").click()
    page.wait_for_url("**/imports/*")
    section = page.locator("#import-progress")
    expect(section).to_be_visible()
    shot(page, "progress")
    expect(section).to_have_attribute("data-status", "completed", timeout=60_000)
    expect(section.locator("[data-percent]")).to_have_text("100 %")
    expect(section.locator("#import-progress-bar")).to_have_attribute("value", "100")
    expect(section.locator("[data-count=created]")).to_have_text("20,003")
    expect(section.locator("[data-count=failed]")).to_have_text("2")
    # Polling stopped with the last fragment.
    assert section.get_attribute("hx-trigger") is None
    shot(page, "result")

    with page.expect_download() as info:
        section.get_by_role("link", name="Download error report (errors.csv)").click()
    download = info.value
    assert download.suggested_filename.endswith("errors.csv")
    check_report(Path(download.path()))

    # The imported notes join the two columns, one line each.
    book = page.context.new_page()
    book.goto(live_server.url + "/customers?q=person00042")
    book.locator(".customer-link").first.click()
    expect(book.locator("main")).to_contain_text("Mobile: +1 555 00042")

    book.goto(live_server.url + "/imports")
    row = book.locator("[data-import-row]").first
    expect(row).to_contain_text("contacts.csv")
    expect(row).to_contain_text("Completed")
    shot(book, "list")


def test_the_whole_flow_without_javascript(live_server, browser, tmp_path) -> None:
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 800}
    )
    page = context.new_page()
    try:
        sign_up(page, live_server, "Noah Script")
        page.goto(live_server.url + "/imports/new")
        # A bad file first: the message beside the field, the form again.
        page.set_input_files(
            "#file",
            files=[{"name": "photo.csv", "mimeType": "text/csv", "buffer": b"\x89PNG\r\n\x1a\n"}],
        )
        page.get_by_role("button", name="Upload and choose the columns").click()
        expect(page.locator("#file-error")).to_contain_text("PNG")
        shot(page, "nojs-bad-file")

        source = tmp_path / "people.csv"
        source.write_bytes(people_csv(30))
        page.set_input_files("#file", str(source))
        page.get_by_role("button", name="Upload and choose the columns").click()
        expect(page.locator("h1")).to_have_text("Map the columns of people.csv")

        # Leave no column on Email: refused in words, the choices kept.
        page.select_option("#target-2", "ignore")
        page.select_option("#target-4", "notes")
        page.get_by_role("button", name="Start import").click()
        expect(page.locator("#mapping-error")).to_contain_text("Map a column to Email")
        assert page.input_value("#target-4") == "notes"
        shot(page, "nojs-mapping-error")

        page.select_option("#target-2", "email")
        page.get_by_role("button", name="Start import").click()
        section = page.locator("#import-progress")
        # The page refreshes itself every 2 s while the import runs.
        expect(section).to_have_attribute("data-status", "completed", timeout=60_000)
        expect(section.locator("[data-percent]")).to_have_text("100 %")
        expect(section.locator("[data-count=created]")).to_have_text("33")

        with page.expect_download() as info:
            section.get_by_role("link", name="Download error report (errors.csv)").click()
        check_report(Path(info.value.path()))

        # Undo, through its confirmation page.
        section.get_by_role("button", name="Undo this import").click()
        expect(page.locator("h1")).to_have_text("Undo the import of people.csv?")
        shot(page, "nojs-undo-confirm")
        page.get_by_role("button", name="Undo the import").click()
        expect(page.locator("#flashes")).to_contain_text("Import undone: 33 customers")
        page.goto(live_server.url + "/customers")
        expect(page.locator("#results .empty-state")).to_be_visible()
    finally:
        context.close()

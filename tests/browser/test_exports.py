"""Exporting in a real browser, keyboard only: filter the dashboard, Tab to Export, Enter;
watch the export finish on its page; download it and compare the CSV with the rows the
filtered list shows. Also "Export selected", the mail's link, and screenshots (kept in
SCREENSHOTS_DIR when set)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_accounts import mail_link
from tests.browser.test_customers import people, quick_create, sign_up

pytestmark = pytest.mark.browser

HEADER = "name,email,phone,organization,job_title,notes,created_at,updated_at,slug"


def tab_to(page: Any, selector: str, limit: int = 80) -> None:
    """Press Tab until ``selector`` has the focus, as a keyboard user would."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def listed_rows(page: Any) -> list[tuple[str, str]]:
    """(name, email) of each row the dashboard shows, in its order."""
    names = page.locator("[data-customers-table] tbody tr .cell-name .customer-link")
    emails = page.locator("[data-customers-table] tbody tr .cell-email .cell-value")
    return list(zip(names.all_inner_texts(), emails.all_inner_texts(), strict=True))


def downloaded_rows(page: Any) -> tuple[str, list[dict[str, str]]]:
    tab_to(page, "a[data-export-download]")
    with page.expect_download() as info:
        page.keyboard.press("Enter")
    data = Path(info.value.path()).read_bytes().decode("utf-8-sig")
    header = data.split("\r\n", 1)[0]
    return header, list(csv.DictReader(io.StringIO(data, newline="")))


def test_export_a_filtered_list_keyboard_only(live_server: Any, page: Any) -> None:
    email = sign_up(page, live_server, "Ana Export")
    quick_create(page, live_server, people(20))
    page.goto(live_server.url + "/customers?organization=Acme&sort=name")
    expected = listed_rows(page)
    assert len(expected) == 4
    page.locator("#q").focus()
    tab_to(page, "#export-format")
    page.keyboard.press("ArrowDown")  # "CSV for Excel (BOM)"
    tab_to(page, "button[data-export]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/exports/" in page.url
    expect(page.locator(".flash")).to_contain_text("Exporting your list")
    expect(page.locator("#export-status")).to_have_text("Ready to download", timeout=20_000)
    expect(page.locator("#export-count")).to_have_text("4 of 4 customers")
    header, rows = downloaded_rows(page)
    assert header == HEADER
    assert [(row["name"], row["email"]) for row in rows] == expected
    assert {row["organization"] for row in rows} == {"Acme"}
    # The mail links to the download route, which makes a fresh link when followed.
    link = mail_link(live_server, email, "/download")
    assert link.endswith(page.url.removeprefix(live_server.url) + "/download")


def test_export_selected_rows(live_server: Any, page: Any) -> None:
    sign_up(page, live_server, "Bo Export")
    quick_create(page, live_server, people(6))
    page.goto(live_server.url + "/customers?sort=name")
    expected = listed_rows(page)
    boxes = page.locator("input[data-row-select]")
    boxes.nth(1).check()
    boxes.nth(3).check()
    page.locator("#export-format").select_option("csv")
    with page.expect_navigation():
        page.locator("button[data-export-selected]").click()
    expect(page.locator(".export-facts")).to_contain_text("2 selected")
    expect(page.locator("#export-status")).to_have_text("Ready to download", timeout=20_000)
    _, rows = downloaded_rows(page)
    assert [(row["name"], row["email"]) for row in rows] == [expected[1], expected[3]]


def test_screenshots_of_the_export_pages(live_server: Any, browser: Any, tmp_path: Path) -> None:
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    for width in (360, 1440):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        try:
            sign_up(page, live_server, f"Cy Shots{width}")
            quick_create(page, live_server, people(8))
            page.goto(live_server.url + "/customers?sort=name")
            page.screenshot(path=str(folder / f"exports-dashboard-{width}.png"), full_page=True)
            with page.expect_navigation():
                page.locator("button[data-export]").click()
            expect(page.locator("#export-status")).to_have_text("Ready to download", timeout=20_000)
            page.screenshot(path=str(folder / f"exports-ready-{width}.png"), full_page=True)
            sideways = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert sideways <= 0
        finally:
            context.close()

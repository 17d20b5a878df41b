"""The user guide's walk-through in a real browser: a newcomer registers, imports a book of
40 people from a Google Contacts export, browses and searches it, edits a cell, reads a
customer's history, exports the list, and checks the jobs page and the audit trail.

Each step asserts what the person would check on that screen, then saves the picture the
README's "User guide" shows (docs/guide/*.png, committed, 1280 px wide). Names, emails and
notes are fixed so the pictures only change when the screens do (dates and times still do).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_accounts import PASSWORD, mail_link
from tests.browser.test_customers import watch_errors
from tests.fixtures.services import ROOT

pytestmark = pytest.mark.browser

GUIDE = ROOT / "docs" / "guide"
VIEWPORT = {"width": 1280, "height": 800}
USER_NAME = "Jamie Rivera"
USER_EMAIL = "jamie.rivera@example.com"

# (first, last, organization, title, notes): the book a small sales team might keep.
PEOPLE = [
    ("Amelia", "Hart", "Northwind Traders", "Buyer", "Met at the trade fair in Lisbon."),
    ("Daniel", "Okafor", "Contoso", "CTO", "Wants a demo for the whole team in March."),
    ("Sofia", "Marquez", "Fabrikam", "Office manager", ""),
    ("Lukas", "Berger", "Tailspin Toys", "Head of Procurement", "Renews every October."),
    ("Priya", "Nair", "Adventure Works", "Operations lead", ""),
    ("Tomás", "Silva", "Northwind Traders", "Logistics", "Prefers calls after 2 pm."),
    ("Hannah", "Kowalski", "Litware", "Finance director", ""),
    ("Kenji", "Sato", "Wide World Importers", "Buyer", "Asked for the Lisbon price list."),
    ("Grace", "Mensah", "Contoso", "Product manager", ""),
    ("Oliver", "Brandt", "Proseware", "CEO", "Introduced by Daniel Okafor."),
    ("Chloe", "Dubois", "Fabrikam", "Buyer", ""),
    ("Mateo", "Rossi", "Tailspin Toys", "Store manager", "Two shops, both in Milan."),
    ("Aisha", "Haddad", "Adventure Works", "Procurement", ""),
    ("Noah", "Lindqvist", "Litware", "IT manager", "Needs single sign-on first."),
    ("Isabel", "Costa", "Northwind Traders", "Marketing", ""),
    ("Ethan", "Walsh", "Wide World Importers", "Sales director", ""),
    ("Mei", "Chen", "Proseware", "Head of Design", "Loves the new catalogue."),
    ("Jonas", "Weber", "Contoso", "Buyer", ""),
    ("Leila", "Farah", "Fabrikam", "Finance", "Invoices to the Paris office."),
    ("Samuel", "Adeyemi", "Tailspin Toys", "Owner", ""),
    ("Nora", "Eriksen", "Adventure Works", "CFO", "Budget approved for next year."),
    ("Lucas", "Moreau", "Litware", "Support lead", ""),
    ("Zara", "Ahmed", "Northwind Traders", "Buyer", "Orders by email only."),
    ("Felix", "Novak", "Wide World Importers", "Warehouse manager", ""),
    ("Ava", "Murphy", "Proseware", "Office manager", ""),
    ("Rafael", "Mendes", "Contoso", "Account manager", "Met at the Lisbon expo stand."),
    ("Ingrid", "Olsen", "Fabrikam", "COO", ""),
    ("Yusuf", "Demir", "Tailspin Toys", "Buyer", "Wants samples before ordering."),
    ("Clara", "Fischer", "Adventure Works", "Legal counsel", ""),
    ("Arjun", "Mehta", "Litware", "CTO", "Interested in the API."),
    ("Elena", "Petrova", "Northwind Traders", "Quality manager", ""),
    ("Marcus", "Johnson", "Wide World Importers", "CEO", ""),
    ("Lina", "Bauer", "Proseware", "Buyer", "Call back in spring."),
    ("Hugo", "Laurent", "Contoso", "Facilities", ""),
    ("Fatima", "Zahra", "Fabrikam", "Procurement", ""),
    ("Oscar", "Nilsson", "Tailspin Toys", "Finance", "Pays within 10 days."),
    ("Maya", "Cohen", "Adventure Works", "Head of Sales", ""),
    ("Victor", "Horvat", "Litware", "Buyer", ""),
    ("Ruby", "Tanaka", "Northwind Traders", "Assistant", "Books the meetings for Amelia Hart."),
    ("Leo", "Fontaine", "Wide World Importers", "Procurement", ""),
]
# The one row the import refuses: its address has no domain.
BROKEN = ["Owen Price", "owen@", "", "Proseware", "Buyer", "", "* myContacts"]


DOMAINS = {
    "Northwind Traders": "northwind",
    "Contoso": "contoso",
    "Fabrikam": "fabrikam",
    "Tailspin Toys": "tailspin",
    "Adventure Works": "adventure",
    "Litware": "litware",
    "Wide World Importers": "wwi",
    "Proseware": "proseware",
}


def email_of(first: str, organization: str) -> str:
    return f"{first.lower().replace('á', 'a')}@{DOMAINS[organization]}.example"


def google_contacts_csv() -> bytes:
    """A Google Contacts export (its columns for these fields, in its order), commas."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "Name",
            "E-mail 1 - Value",
            "Phone 1 - Value",
            "Organization 1 - Name",
            "Organization 1 - Title",
            "Notes",
            "Group Membership",
        ]
    )
    for n, (first, last, organization, title, notes) in enumerate(PEOPLE):
        if n == 3:
            writer.writerow(BROKEN)
        email = email_of(first, organization)
        phone = f"+44 20 7946 {n:04d}"
        writer.writerow(
            [f"{first} {last}", email, phone, organization, title, notes, "* myContacts"]
        )
    return out.getvalue().encode()


def picture(page: Any, name: str, down_to: Any = None) -> None:
    """The top of the page, 1280 px wide: the visible 800 px, or down to the bottom of the
    element ``down_to`` when what the step is about reaches below the fold."""
    GUIDE.mkdir(parents=True, exist_ok=True)
    path = str(GUIDE / f"{name}.png")
    if down_to is None:
        page.screenshot(path=path, animations="disabled")
        return
    box = down_to.bounding_box()
    bottom = page.evaluate("() => window.scrollY") + box["y"] + box["height"] + 24
    clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": bottom}
    page.screenshot(path=path, full_page=True, clip=clip, animations="disabled")


def test_the_user_guide_walk_through(live_server: Any, browser: Any, tmp_path: Path) -> None:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    errors = watch_errors(page)
    try:
        # 1. Register: the form, filled in; then the link from the mail confirms the address.
        page.goto(live_server.url + "/register")
        page.fill("#name", USER_NAME)
        page.fill("#email", USER_EMAIL)
        page.fill("#password", PASSWORD)
        page.fill("#password_confirmation", PASSWORD)
        expect(page.locator("main h1")).to_contain_text("account")
        picture(page, "01-register")
        with page.expect_navigation():
            page.locator("main form button[type=submit]").click()
        page.goto(mail_link(live_server, USER_EMAIL, "/verify-email/"))
        page.goto(live_server.url + "/customers")
        expect(page.locator("#results .empty-state")).to_contain_text("Your book is empty")
        expect(page.locator(".nav-account")).to_contain_text(USER_NAME)

        # 2. Import: the drop zone with a file dragged over it.
        page.get_by_role("link", name="Import a CSV").first.click()
        expect(page).to_have_url(live_server.url + "/imports/new")
        source = tmp_path / "google-contacts.csv"
        source.write_bytes(google_contacts_csv())
        page.set_input_files("#file", str(source))
        zone = page.locator("[data-dropzone]")
        expect(page.locator("[data-drop-name]")).to_contain_text("google-contacts.csv")
        transfer = page.evaluate_handle(
            """() => {
                const transfer = new DataTransfer();
                transfer.items.add(document.getElementById("file").files[0]);
                return transfer;
            }"""
        )
        zone.dispatch_event("dragenter", {"dataTransfer": transfer})
        zone.dispatch_event("dragover", {"dataTransfer": transfer})
        expect(zone).to_have_class(re.compile(r"\bis-dragover\b"))
        picture(page, "02-import-drop")

        # 3. The mapping page: every column has a guess; Labels is left out.
        zone.dispatch_event("drop", {"dataTransfer": transfer})
        page.wait_for_url(re.compile(r"/imports/\d+$"), timeout=30_000)
        expect(page.locator("h1")).to_have_text("Map the columns of google-contacts.csv")
        expect(page.locator("#detected")).to_contain_text("commas")
        guesses = [page.input_value(f"#target-{n}") for n in range(1, 8)]
        assert guesses == ["name", "email", "phone", "organization", "job_title", "notes", "ignore"]
        expect(page.locator(".mapping-table tbody tr").first).to_contain_text("Amelia")
        picture(page, "03-import-mapping", down_to=page.locator("#import-mapping"))

        # 4. Started: it runs in the background and ends with the counts and the report.
        page.get_by_role("button", name="Start import").click()
        section = page.locator("#import-progress")
        expect(section).to_have_attribute("data-status", "completed", timeout=60_000)
        expect(section.locator("[data-percent]")).to_have_text("100 %")
        expect(section.locator("[data-count=created]")).to_have_text("40")
        expect(section.locator("[data-count=failed]")).to_have_text("1")
        report = section.get_by_role("link", name="Download error report (errors.csv)")
        expect(report).to_be_visible()
        picture(page, "04-import-result")
        with page.expect_download() as info:
            report.click()
        reasons = Path(info.value.path()).read_text(encoding="utf-8-sig")
        assert "line 5: " in reasons
        assert "owen@" in reasons

        # 5. The dashboard with the whole book.
        page.goto(live_server.url + "/customers?sort=name")
        expect(page.locator("#results-count")).to_contain_text("40 customers")
        first = page.locator("#results tbody tr").first
        expect(first.locator(".customer-link")).to_have_text("Aisha Haddad")
        expect(page.locator("#customer-owen-price")).to_have_count(0)
        picture(page, "05-dashboard")

        # 6. Search as you type: the rows follow each key, the match is highlighted.
        page.keyboard.press("/")
        expect(page.locator("#q")).to_be_focused()
        page.keyboard.type("lisbon", delay=60)
        page.wait_for_url(re.compile(r"[?&]q=lisbon"))
        expect(page.locator("#results tbody tr")).to_have_count(3)
        expect(page.locator("#results-count")).to_have_text("3 customers")
        expect(page.locator("#customer-amelia-hart .snippet mark")).to_have_text(
            re.compile("lisbon", re.IGNORECASE)
        )
        picture(page, "06-search")

        # 7. Inline editing: Enter on a cell opens it in place; Enter saves it.
        page.goto(live_server.url + "/customers?sort=name")
        cell = page.locator("#cell-amelia-hart-job_title")
        cell.click()
        field = page.locator("#input-amelia-hart-job_title")
        expect(field).to_be_focused()
        field.fill("Head of Purchasing")
        picture(page, "07-inline-edit")
        field.press("Enter")
        expect(cell.locator(".cell-value")).to_have_text("Head of Purchasing")
        expect(cell).to_have_class(re.compile(r"\bcell-saved\b"))

        # 8. The customer's page: details, and the history with the old and new value.
        page.locator("#cell-amelia-hart-name .customer-link").click()
        page.wait_for_url("**/customers/amelia-hart")
        expect(page.locator("#customer h1")).to_have_text("Amelia Hart")
        expect(page.locator("#customer .subtitle")).to_have_text(
            "Head of Purchasing · Northwind Traders"
        )
        entries = page.locator("#timeline .audit-entry")
        expect(entries).to_have_count(2)
        expect(entries.first.locator(".audit-change")).to_have_text(
            "Job title: Buyer → changed to Head of Purchasing", use_inner_text=True
        )
        expect(entries.last.locator(".audit-event")).to_have_text("Imported")
        page.locator("#timeline").scroll_into_view_if_needed()
        picture(page, "08-customer-history")

        # 9. The keyboard: ? on the dashboard lists the shortcuts.
        page.goto(live_server.url + "/customers?sort=name")
        page.keyboard.press("?")
        dialog = page.locator("#shortcuts-help")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("Next customer")
        picture(page, "09-shortcuts")
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()

        # 10. Export the list the dashboard shows; the file is ready on its page.
        page.goto(live_server.url + "/customers?organization=Northwind+Traders&sort=name")
        northwind = sum(1 for person in PEOPLE if person[2] == "Northwind Traders")
        expect(page.locator("#results-count")).to_have_text(f"{northwind} customers")
        with page.expect_navigation():
            page.locator("button[data-export]").click()
        expect(page.locator("#export-status")).to_have_text("Ready to download", timeout=20_000)
        expect(page.locator("#export-count")).to_have_text(f"{northwind} of {northwind} customers")

        # 11. Jobs: the import and the export, both finished, with their actions.
        page.goto(live_server.url + "/jobs")
        jobs = page.locator("#jobs tbody tr")
        expect(jobs).to_have_count(2)
        export_row = page.locator("tr[data-kind=export]")
        expect(export_row).to_have_attribute("data-status", "completed")
        expect(export_row.get_by_role("link", name=re.compile("Download"))).to_be_visible()
        rows = export_row.locator(".job-count", has_text="Rows").locator("dd")
        expect(rows).to_have_text(str(northwind))
        import_row = page.locator("tr[data-kind=import]")
        expect(import_row).to_have_attribute("data-status", "completed")
        expect(import_row).to_contain_text("google-contacts.csv")
        picture(page, "10-jobs")

        # 12. The audit trail: every change, newest first, with who made it.
        page.goto(live_server.url + "/audit")
        entries = page.locator(".audit-entry")
        expect(entries.first.locator(".audit-event")).to_have_text("Exported")
        edit = entries.nth(1)
        expect(edit.locator(".audit-event")).to_have_text("Updated")
        expect(edit.locator(".audit-customer")).to_contain_text("Amelia Hart")
        expect(edit.locator(".audit-change")).to_have_text(
            "Job title: Buyer → changed to Head of Purchasing", use_inner_text=True
        )
        expect(edit.locator(".audit-actor")).to_have_text(USER_NAME)
        picture(page, "11-audit")
        assert errors == [], errors
    finally:
        context.close()

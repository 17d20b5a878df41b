"""The customer book in a real browser: create, search as you type, edit cells with the
keyboard only, move through rows, the help, bulk delete with its dialog; then the same
tasks with JavaScript off; then screenshots at 360 px and 1440 px (set SCREENSHOTS_DIR to
keep them) with no sideways scrolling on a phone."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_accounts import PASSWORD, mail_link

pytestmark = pytest.mark.browser

NOTES = "Met at the orbital expo in Lisbon.\nWants a quote for 40 seats before June."


def sign_up(page: Any, live_server: Any, name: str) -> str:
    """Register through the forms and follow the link in the mail; signed in afterwards."""
    email = f"{name.split()[0].lower()}-{uuid.uuid4().hex[:10]}@example.com"
    page.goto(live_server.url + "/register")
    page.fill("#name", name)
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.fill("#password_confirmation", PASSWORD)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    page.goto(mail_link(live_server, email, "/verify-email/"))
    return email


def quick_create(page: Any, live_server: Any, rows: list[dict[str, str]]) -> None:
    """Post the new-customer form for each row, with the page's session and CSRF token."""
    page.goto(live_server.url + "/customers/new")
    token = page.locator("main input[name=_csrf_token]").get_attribute("value")
    for row in rows:
        response = page.request.post(
            live_server.url + "/customers", form={**row, "_csrf_token": token}, max_redirects=0
        )
        assert response.status == 303, response.text()
    page.goto(live_server.url + "/customers")  # shows (and so clears) the flash messages


def people(count: int) -> list[dict[str, str]]:
    organizations = ["Acme", "Globex", "Initech", "Umbrella", ""]
    titles = ["Buyer", "CTO", "Head of Procurement", "", "Office manager"]
    return [
        {
            "name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}@example.com",
            "organization": organizations[n % len(organizations)],
            "job_title": titles[n % len(titles)],
            "notes": NOTES if n % 7 == 0 else "",
        }
        for n, (first, last) in enumerate(
            (f, lst)
            for f in ("Ana", "Bo", "Cy", "Di", "Ed", "Flo", "Gus")
            for lst in ("Smith", "Chen", "Okafor", "Novak", "Silva")
        )
    ][:count]


def active_id(page: Any) -> str:
    return str(page.evaluate("() => document.activeElement.id"))


def no_sideways_scroll(page: Any) -> int:
    return int(
        page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
    )


# Chromium logs every 4xx response; a 422 is the answer to invalid input, by design.
EXPECTED_STATUS = "the server responded with a status of 422"


def watch_errors(page: Any) -> list[str]:
    """Console errors and uncaught exceptions: a CSP refusal or a script error shows here."""
    errors: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error" and EXPECTED_STATUS not in message.text:
            errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def test_the_book_with_javascript_and_the_keyboard(live_server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        errors = watch_errors(page)
        sign_up(page, live_server, "Kai Keys")
        page.goto(live_server.url + "/customers")
        expect(page.locator("#results .empty-state")).to_contain_text("Your book is empty")

        # n: a new customer. The form posts with htmx; the details swap in, the URL follows.
        page.keyboard.press("n")
        page.wait_for_url("**/customers/new")
        assert active_id(page) == "name", "the name field has the focus"
        page.keyboard.type("Ana Smith")
        page.fill("#email", "ana@example.com")
        page.fill("#organization", "Acme")
        page.fill("#notes", NOTES)
        page.evaluate("() => { window.stayedOnPage = true; }")
        page.locator("#email").press("Enter")
        page.wait_for_url("**/customers/ana-smith")
        expect(page.locator("#customer h1")).to_have_text("Ana Smith")
        expect(page.locator("#customer .notice")).to_have_text("Customer created.")
        assert page.evaluate("() => window.stayedOnPage") is True
        assert page.title() == "Ana Smith · CRM"

        quick_create(page, live_server, people(12)[1:])

        # Search as you type: the table follows, and so does the address bar.
        page.goto(live_server.url + "/customers")
        page.evaluate("() => { window.stayedOnPage = true; }")
        page.keyboard.press("/")
        assert active_id(page) == "q"
        page.keyboard.type("orbi", delay=60)
        page.wait_for_url(re.compile(r"/customers\?q=orbi$"))
        expect(page.locator("#results tbody tr")).to_have_count(2)
        expect(page.locator("#results-count")).to_have_text("2 customers")
        expect(page.locator("#customer-ana-smith .snippet mark")).to_have_text("orbital")
        assert page.evaluate("() => window.stayedOnPage") is True
        page.keyboard.type("tal lis", delay=60)
        page.wait_for_url(re.compile(r"q=orbital(%20|\+)lis$"))
        expect(page.locator("#results tbody tr")).to_have_count(2)
        page.keyboard.type("zzz", delay=30)
        expect(page.locator("#results .empty-state")).to_contain_text("No customers match")
        # Escape empties the box (all customers again); a second Escape goes to the rows.
        page.keyboard.press("Escape")
        page.wait_for_url(re.compile(r"/customers$"))
        expect(page.locator("#results tbody tr")).to_have_count(12)
        page.keyboard.press("Escape")
        first = page.locator("#results tbody tr").first.get_attribute("id")
        assert active_id(page) == first

        # Rows: j/k and the arrows move the focus.
        page.goto(live_server.url + "/customers?sort=created")
        ids = page.locator("#results tbody tr").evaluate_all("rows => rows.map(r => r.id)")
        assert ids[0] == "customer-ana-smith"
        page.keyboard.press("j")
        assert active_id(page) == ids[0]
        page.keyboard.press("j")
        assert active_id(page) == ids[1]
        page.keyboard.press("ArrowDown")
        assert active_id(page) == ids[2]
        page.keyboard.press("k")
        page.keyboard.press("ArrowUp")
        assert active_id(page) == ids[0]
        tabindexes = page.locator("#results tbody tr").evaluate_all(
            "rows => rows.map(r => r.tabIndex)"
        )
        assert tabindexes == [0] + [-1] * (len(ids) - 1)

        # e edits the name in place; Tab saves it and opens the email.
        page.keyboard.press("e")
        name_input = page.locator("#cell-ana-smith-name input[name=name]")
        expect(name_input).to_be_focused()
        page.keyboard.type("Ana Jones")
        page.keyboard.press("Tab")
        email_input = page.locator("#cell-ana-smith-email input[name=email]")
        expect(email_input).to_be_focused()
        expect(page.locator("#cell-ana-smith-name .customer-link")).to_have_text("Ana Jones")
        # The saved row flashes: the server marks the cell, CSS animates the row.
        expect(page.locator("#cell-ana-smith-name")).to_have_class(re.compile(r"\bcell-saved\b"))
        # A wrong address stays in the cell with its message.
        page.keyboard.type("not-an-email")
        page.keyboard.press("Enter")
        error = page.locator("#cell-ana-smith-email .cell-error")
        expect(error).to_have_text("Error: Enter an email address like name@example.com.")
        expect(email_input).to_be_focused()
        expect(email_input).to_have_value("not-an-email")
        # Escape gives up: the saved address is back and the cell keeps the focus.
        page.keyboard.press("Escape")
        expect(page.locator("#cell-ana-smith-email .cell-value")).to_have_text("ana@example.com")
        expect(page.locator("#cell-ana-smith-email")).to_be_focused()
        # Enter on a cell edits it; Shift+Tab saves and goes back to the name.
        page.keyboard.press("Enter")
        expect(email_input).to_be_focused()
        page.keyboard.press("Shift+Tab")
        expect(name_input).to_be_focused()
        page.keyboard.press("Escape")
        expect(page.locator("#cell-ana-smith-name")).to_be_focused()
        page.reload()
        expect(page.locator("#cell-ana-smith-name .customer-link")).to_have_text("Ana Jones")

        # ? shows the shortcuts; Escape closes them.
        page.keyboard.press("?")
        help_dialog = page.locator("#shortcuts-help")
        expect(help_dialog).to_be_visible()
        expect(help_dialog).to_contain_text("Next customer")
        page.keyboard.press("Escape")
        expect(help_dialog).to_be_hidden()

        # x selects rows; Delete selected asks in a dialog, then the table reloads.
        page.keyboard.press("j")
        page.keyboard.press("x")
        page.keyboard.press("j")
        page.keyboard.press("x")
        expect(page.locator("[data-selected-count]")).to_have_text("2 selected")
        page.get_by_role("button", name="Delete selected").click()
        dialog = page.locator("#bulk-confirm")
        expect(dialog).to_be_visible()
        expect(dialog.locator("[data-confirm-count]")).to_have_text("2 customers")
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_be_hidden()
        expect(page.locator("#results tbody tr")).to_have_count(12)
        page.get_by_role("button", name="Delete selected").click()
        dialog.get_by_role("button", name="Delete").click()
        expect(page.locator("#flashes")).to_have_text("Deleted 2 customers.")
        expect(page.locator("#results tbody tr")).to_have_count(10)
        expect(page.locator("#results-count")).to_have_text("10 customers")
        expect(page.locator("#customer-ana-smith")).to_have_count(0)
        assert page.url.endswith("/customers?sort=created")

        # o opens the focused customer.
        page.keyboard.press("j")
        opened = active_id(page).removeprefix("customer-")
        page.keyboard.press("o")
        page.wait_for_url(f"**/customers/{opened}")

        # Edit in place on the customer's page.
        page.get_by_role("link", name="Edit").click()
        page.wait_for_url(f"**/customers/{opened}/edit")
        expect(page.locator("#name")).to_be_focused()
        # Requests the page started before the form came (its history) land first: a late
        # swap's settle must not move the focus while the test types.
        page.wait_for_load_state("networkidle")
        page.fill("#job_title", "Chief of Everything")
        page.locator("#job_title").press("Enter")
        page.wait_for_url(f"**/customers/{opened}")
        expect(page.locator("#customer .subtitle")).to_contain_text("Chief of Everything")
        expect(page.locator("#customer .notice")).to_have_text("Your changes have been saved.")

        # Delete, confirmed in place, back to the list with the message.
        page.get_by_role("link", name="Delete").click()
        page.wait_for_url(f"**/customers/{opened}/delete")
        page.locator("#customer button[type=submit]").click()
        page.wait_for_url(re.compile(r"/customers$"))
        expect(page.locator("#flashes")).to_contain_text("Deleted ")
        expect(page.locator("#results tbody tr")).to_have_count(9)
        assert errors == []
    finally:
        context.close()


def test_the_book_without_javascript(live_server, browser):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, java_script_enabled=False
    )
    try:
        page = context.new_page()
        sign_up(page, live_server, "Noah Nojs")
        page.goto(live_server.url + "/customers")
        # Only what works without JavaScript is shown.
        expect(page.get_by_role("button", name="Keyboard shortcuts")).to_be_hidden()

        # Create: a refused form keeps what was typed, then a good one.
        with page.expect_navigation():
            page.locator("#results .empty-state a", has_text="Add a customer").click()
        page.fill("#name", "Ana Smith")
        page.fill("#email", "ana@")
        with page.expect_navigation():
            page.get_by_role("button", name="Create customer").click()
        expect(page.locator("#email-error")).to_contain_text("Enter an email address like")
        expect(page.locator("#name")).to_have_value("Ana Smith")
        page.fill("#email", "ana@example.com")
        page.fill("#notes", NOTES)
        with page.expect_navigation():
            page.get_by_role("button", name="Create customer").click()
        assert page.url.endswith("/customers/ana-smith")
        expect(page.locator("#flashes")).to_have_text("Customer Ana Smith created.")
        expect(page.locator(".notes")).to_have_text(NOTES)

        quick_create(page, live_server, people(6)[1:])

        # Search: the same form submits as a GET; the address is the shareable link.
        page.goto(live_server.url + "/customers")
        page.fill("#q", "orbital")
        with page.expect_navigation():
            page.locator("#q").press("Enter")
        assert "q=orbital" in page.url
        expect(page.locator("#results tbody tr")).to_have_count(1)
        expect(page.locator("#results .snippet mark")).to_have_text("orbital")
        page.select_option("#sort", "name")
        with page.expect_navigation():
            page.get_by_role("button", name="Search").click()
        assert "sort=name" in page.url

        # A cell: its pencil opens the cell on a page of its own.
        page.goto(live_server.url + "/customers?sort=name")
        with page.expect_navigation():
            page.locator("#cell-ana-smith-email .cell-edit-link").click()
        page.fill("#input-ana-smith-email", "ana.smith@example.com")
        with page.expect_navigation():
            page.get_by_role("button", name="Save").click()
        assert page.url.endswith("/customers/ana-smith")
        expect(page.locator("#flashes")).to_have_text("Email saved.")

        # Edit on its page.
        with page.expect_navigation():
            page.get_by_role("link", name="Edit").click()
        page.fill("#job_title", "Buyer")
        with page.expect_navigation():
            page.get_by_role("button", name="Save changes").click()
        expect(page.locator("#customer .subtitle")).to_have_text("Buyer")
        expect(page.locator("#flashes")).to_have_text("Your changes have been saved.")

        # Bulk delete: a confirmation page, then back to the same list.
        page.goto(live_server.url + "/customers?sort=name")
        boxes = page.locator("#results tbody input[name=slugs]")
        boxes.nth(1).check()
        boxes.nth(2).check()
        with page.expect_navigation():
            page.get_by_role("button", name="Delete selected").click()
        expect(page.locator("main h1")).to_have_text("Delete 2 customers?")
        with page.expect_navigation():
            page.get_by_role("button", name="Delete 2 customers").click()
        assert page.url.endswith("/customers?sort=name")
        expect(page.locator("#flashes")).to_have_text("Deleted 2 customers.")
        expect(page.locator("#results tbody tr")).to_have_count(4)

        # Delete one.
        page.goto(live_server.url + "/customers/ana-smith")
        with page.expect_navigation():
            page.get_by_role("link", name="Delete").click()
        with page.expect_navigation():
            page.get_by_role("button", name="Delete Ana Smith").click()
        expect(page.locator("#flashes")).to_have_text("Deleted Ana Smith.")
        expect(page.locator("#results tbody tr")).to_have_count(3)
    finally:
        context.close()


def test_screenshots_at_phone_and_desktop_widths(live_server, browser, tmp_path):
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    setup = browser.new_context(viewport={"width": 1440, "height": 900})
    page = setup.new_page()
    email = sign_up(page, live_server, "Sasha Screens")
    state = setup.storage_state()
    setup.close()

    def shoot(width: int, name: str, path: str, action: Any = None) -> None:
        context = browser.new_context(viewport={"width": width, "height": 900}, storage_state=state)
        try:
            page = context.new_page()
            errors = watch_errors(page)
            page.goto(live_server.url + path)
            if action:
                action(page)
            page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
            overflow = no_sideways_scroll(page)
            assert overflow <= 0, f"{name} scrolls sideways at {width} px"
            assert errors == [], errors
        finally:
            context.close()

    for width in (360, 1440):
        shoot(width, "dashboard-empty", "/customers")
    setup = browser.new_context(storage_state=state)
    quick_create(setup.new_page(), live_server, people(30))
    setup.close()

    def invalid_form(page: Any) -> None:
        page.fill("#name", "A" * 5)
        page.fill("#email", "not-an-email")
        page.get_by_role("button", name="Create customer").click()
        expect(page.locator(".error-summary")).to_be_visible()

    def cell_error(page: Any) -> None:
        page.keyboard.press("j")
        page.keyboard.press("e")
        expect(page.locator(".cell-name .cell-input")).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.locator(".cell-email .cell-input")).to_be_focused()
        page.keyboard.type("oops")
        page.keyboard.press("Enter")
        expect(page.locator(".cell-error")).to_be_visible()

    def help_dialog(page: Any) -> None:
        page.keyboard.press("?")
        expect(page.locator("#shortcuts-help")).to_be_visible()

    for width in (360, 1440):
        shoot(width, "dashboard-rows", "/customers")
        shoot(width, "dashboard-search", "/customers?q=orbital")
        shoot(width, "dashboard-no-match", "/customers?q=nobody+at+all")
        shoot(width, "dashboard-bad-date", "/customers?created_from=someday")
        shoot(width, "dashboard-cell-error", "/customers?sort=name", cell_error)
        shoot(width, "dashboard-help", "/customers", help_dialog)
        shoot(width, "customer", "/customers/ana-smith")
        shoot(width, "customer-new", "/customers/new")
        shoot(width, "customer-new-invalid", "/customers/new", invalid_form)
        shoot(width, "customer-edit", "/customers/ana-smith/edit")
        shoot(width, "customer-delete", "/customers/ana-smith/delete")
    assert email

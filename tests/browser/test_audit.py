"""The audit trail in a real browser: a customer's timeline loads by itself, shows an edit
the moment it is made (from the keyboard, and from an inline cell edit announced with
customerUpdated), restores an old value; the same with JavaScript off; screenshots of the
timeline and of /audit at 360 px and 1440 px (set SCREENSHOTS_DIR to keep them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_customers import no_sideways_scroll, quick_create, sign_up, watch_errors

pytestmark = pytest.mark.browser

ROSA = {"name": "Rosa Diaz", "email": "rosa@example.com", "job_title": "Detective"}


def newest(page: Any) -> Any:
    return page.locator("#timeline .audit-entry").first


def test_the_timeline_follows_edits_and_restores_with_javascript(live_server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        errors = watch_errors(page)
        sign_up(page, live_server, "Tess Timeline")
        quick_create(page, live_server, [ROSA])
        page.goto(live_server.url + "/customers/rosa-diaz")
        # Loaded by itself once in view: the "Show history" link is replaced.
        expect(page.locator("#timeline .audit-entry")).to_have_count(1)
        expect(newest(page).locator(".audit-event")).to_have_text("Created")
        expect(page.locator("#timeline .timeline-link")).to_have_count(0)

        # An edit from the keyboard: Edit, change the job title, Enter.
        page.locator("#customer .page-actions a", has_text="Edit").focus()
        page.keyboard.press("Enter")
        # The form puts the cursor in its first field (htmx honours autofocus once the swap
        # has settled); only then move to the job title, as a person tabbing would.
        expect(page.locator("#name")).to_be_focused()
        # Requests the page started before the form came (its history) land first: a late
        # swap's settle must not move the focus while the test types.
        page.wait_for_load_state("networkidle")
        page.locator("#job_title").focus()
        page.keyboard.press("Control+a")
        page.keyboard.type("Sergeant")
        page.keyboard.press("Enter")
        expect(page.locator("#customer .subtitle")).to_have_text("Sergeant")
        expect(page.locator("#timeline .audit-entry")).to_have_count(2)
        expect(newest(page).locator(".audit-change")).to_have_text(
            "Job title: Detective → changed to Sergeant", use_inner_text=True
        )

        # An inline cell edit (the dashboard's endpoint) announced with customerUpdated:
        # the timeline reloads itself, the rest of the page stays as it is.
        page.evaluate(
            """() => htmx.ajax("POST", "/customers/rosa-diaz/cells/organization",
                {values: {organization: "Nine-Nine"}, swap: "none"})"""
        )
        expect(page.locator("#timeline .audit-entry")).to_have_count(3)
        expect(newest(page).locator(".audit-change")).to_contain_text("Nine-Nine")
        expect(newest(page).locator(".audit-actor")).to_have_text("Tess Timeline")

        # Restore the job title from its entry: the details and the timeline follow.
        entry = page.locator("#timeline .audit-entry", has_text="Sergeant").first
        entry.get_by_role("button", name="Restore these values").click()
        expect(page.locator("#customer .subtitle")).to_contain_text("Detective")
        expect(page.locator("#customer .notice")).to_have_text(
            "Restored the earlier values of Rosa Diaz."
        )
        expect(newest(page).locator(".audit-event")).to_have_text("Restored")
        expect(page.locator("#timeline .audit-entry")).to_have_count(4)
        assert errors == [], errors
    finally:
        context.close()


def test_the_timeline_and_restore_without_javascript(live_server, browser):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, java_script_enabled=False
    )
    try:
        page = context.new_page()
        sign_up(page, live_server, "Noor Nojs")
        quick_create(page, live_server, [ROSA])
        page.goto(live_server.url + "/customers/rosa-diaz/edit")
        page.fill("#job_title", "Sergeant")
        with page.expect_navigation():
            page.get_by_role("button", name="Save").click()
        expect(page.locator("#customer .subtitle")).to_have_text("Sergeant")

        with page.expect_navigation():
            page.get_by_role("link", name="Show history").click()
        expect(page.locator("h1")).to_have_text("History of Rosa Diaz")
        entries = page.locator(".audit-entry")
        expect(entries).to_have_count(2)
        expect(entries.first.locator(".audit-change")).to_have_text(
            "Job title: Detective → changed to Sergeant", use_inner_text=True
        )
        with page.expect_navigation():
            entries.first.get_by_role("button", name="Restore these values").click()
        assert page.url.endswith("/customers/rosa-diaz")
        expect(page.locator("#flashes")).to_have_text("Restored the earlier values of Rosa Diaz.")
        expect(page.locator("#customer .subtitle")).to_have_text("Detective")

        # /audit: filter by event with the plain form.
        page.goto(live_server.url + "/audit")
        page.select_option("#event", "restored")
        with page.expect_navigation():
            page.get_by_role("button", name="Filter").click()
        assert "event=restored" in page.url
        expect(page.locator(".audit-entry")).to_have_count(1)
    finally:
        context.close()


def test_screenshots_of_the_timeline_and_the_trail(live_server, browser, tmp_path):
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    setup = browser.new_context(viewport={"width": 1440, "height": 900})
    page = setup.new_page()
    sign_up(page, live_server, "Sasha Screens")
    quick_create(page, live_server, [ROSA, {"name": "Jake Peralta", "email": "jake@example.com"}])
    token = page.locator("nav input[name=_csrf_token]").get_attribute("value")
    for field, value in [
        ("job_title", "Sergeant"),
        ("organization", "Brooklyn Nine-Nine, 99th Precinct"),
        ("email", "rosa.diaz@nypd.example.com"),
        ("organization", ""),
    ]:
        response = page.request.post(
            live_server.url + f"/customers/rosa-diaz/cells/{field}",
            form={field: value, "_csrf_token": token},
            max_redirects=0,
        )
        assert response.status == 303
    page.request.post(
        live_server.url + "/customers/jake-peralta/delete",
        form={"_csrf_token": token},
        max_redirects=0,
    )
    page.goto(live_server.url + "/customers")  # shows (and so clears) the flash messages
    state = setup.storage_state()
    setup.close()

    for width in (360, 1440):
        context = browser.new_context(viewport={"width": width, "height": 900}, storage_state=state)
        try:
            page = context.new_page()
            errors = watch_errors(page)
            page.goto(live_server.url + "/customers/rosa-diaz")
            page.locator("#timeline").scroll_into_view_if_needed()
            expect(page.locator("#timeline .audit-entry")).to_have_count(5)
            page.screenshot(path=str(folder / f"customer-timeline-{width}.png"), full_page=True)
            assert no_sideways_scroll(page) <= 0, f"the timeline scrolls sideways at {width} px"
            page.goto(live_server.url + "/audit")
            expect(page.locator(".audit-entry")).to_have_count(7)
            page.screenshot(path=str(folder / f"audit-{width}.png"), full_page=True)
            assert no_sideways_scroll(page) <= 0, f"/audit scrolls sideways at {width} px"
            assert errors == [], errors
        finally:
            context.close()

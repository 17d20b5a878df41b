"""A newcomer in a real browser, keyboard only: register, open the mail, confirm, sign in,
make a token, sign out. Once with JavaScript, once without."""

from __future__ import annotations

import re
import time
import uuid
from email import message_from_bytes, policy
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

PASSWORD = "violet-harbour-lantern-42"
MAX_TABS = 40


def mail_link(live_server, to: str, path_fragment: str, timeout: float = 10.0) -> str:
    """The link in the newest mail to ``to``, read from the server's mail folder."""
    folder = Path(live_server.env["MAIL_URL"].removeprefix("file://"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for file in sorted(folder.glob("*.eml"), reverse=True):
            message = message_from_bytes(file.read_bytes(), policy=policy.default)
            if to in str(message["To"]):
                body = message.get_body(preferencelist=("plain",)).get_content()
                return next(u for u in re.findall(r"https?://\S+", body) if path_fragment in u)
        time.sleep(0.05)
    raise AssertionError(f"no mail to {to} in {folder}")


def focused(page) -> dict:
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            return {tag: el.tagName.toLowerCase(), name: el.getAttribute("name") || "",
                    text: (el.innerText || el.value || "").trim(), id: el.id || ""};
        }"""
    )


def tab_to(page, *, text: str | None = None, name: str | None = None) -> None:
    """Press Tab until the focused element has this visible text or this field name."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        element = focused(page)
        if (text is not None and element["text"] == text) or (
            name is not None and element["name"] == name
        ):
            return
    raise AssertionError(f"Tab never reached {text or name!r}")


def activate(page, *, text: str) -> None:
    """Reach a link or button with Tab and press Enter, waiting for the next page."""
    tab_to(page, text=text)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def fill(page, name: str, value: str) -> None:
    tab_to(page, name=name)
    page.keyboard.type(value)


def submit_with_enter(page) -> None:
    with page.expect_navigation():
        page.keyboard.press("Enter")


def flash_text(page) -> str:
    return page.locator("#flashes").inner_text()


def newcomer_journey(page, live_server, *, javascript: bool) -> None:
    email = f"kim-{uuid.uuid4().hex[:10]}@example.com"
    page.goto(live_server.url + "/")

    # Register.
    activate(page, text="Register")
    assert page.url.endswith("/register")
    fill(page, "name", "Kim Park")
    fill(page, "email", email)
    fill(page, "password", PASSWORD)
    fill(page, "password_confirmation", PASSWORD)
    submit_with_enter(page)
    assert page.url.endswith("/verify-email")
    assert email in page.locator("main").inner_text()

    # Open the mail and follow its link.
    page.goto(mail_link(live_server, email, "/verify-email/"))
    assert "your email address is confirmed" in flash_text(page)

    # Sign out, then sign in again.
    activate(page, text="Sign out")
    assert "You have signed out." in flash_text(page)
    activate(page, text="Sign in")
    fill(page, "email", email)
    fill(page, "password", PASSWORD)
    submit_with_enter(page)
    assert "Welcome back, Kim Park." in flash_text(page)

    # Settings, API tokens, a new token.
    activate(page, text="Settings")
    activate(page, text="API tokens")
    assert page.locator("h2").inner_text() == "API tokens"
    fill(page, "name", "Laptop")
    submit_with_enter(page)
    token = page.locator("#new-token-value").input_value()
    assert re.fullmatch(r"\d+\|[A-Za-z0-9_-]{40,}", token)
    copy = page.locator("button[data-copy]")
    if javascript:
        tab_to(page, text="Copy")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "() => document.querySelector('button[data-copy]').textContent === 'Copied'"
        )
        assert page.evaluate("() => navigator.clipboard.readText()") == token
        # Screen readers hear it through the live region.
        page.wait_for_function(
            "() => document.getElementById('live-status').textContent"
            " === 'Copied to the clipboard.'"
        )
    else:
        # Without JavaScript the button could do nothing, so it is not shown; the token
        # stays selectable in its field.
        assert not copy.is_visible()
    assert page.locator("tbody th").inner_text() == "Laptop"

    # Sign out.
    activate(page, text="Sign out")
    assert "You have signed out." in flash_text(page)
    assert page.locator(".nav-account").count() == 0


def test_a_newcomer_with_only_a_keyboard(live_server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        newcomer_journey(page, live_server, javascript=True)
    finally:
        context.close()
    # No CSP refusal, no script error on any page of the journey.
    assert errors == []


def test_a_newcomer_without_javascript(live_server, browser):
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, java_script_enabled=False
    )
    try:
        newcomer_journey(context.new_page(), live_server, javascript=False)
    finally:
        context.close()


def test_account_pages_fit_a_phone(live_server, browser, tmp_path):
    """No sideways scrolling at 360 px, signed out and signed in, with a token listed."""
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = context.new_page()
        email = f"lee-{uuid.uuid4().hex[:10]}@example.com"
        page.goto(live_server.url + "/register")
        page.fill("#name", "Lee Marlowe-Fitzgerald")
        page.fill("#email", email)
        page.fill("#password", PASSWORD)
        page.fill("#password_confirmation", PASSWORD)
        page.locator("main form button[type=submit]").click()
        page.goto(mail_link(live_server, email, "/verify-email/"))
        page.goto(live_server.url + "/settings/tokens")
        page.fill("#name", "A token with a rather long name for a small screen")
        page.fill("#expires_in_days", "30")
        page.locator("main form button[type=submit]").click()
        for path in ("/settings/tokens", "/settings/profile", "/settings/password"):
            page.goto(live_server.url + path)
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways at 360 px"
            page.screenshot(path=str(tmp_path / f"{path.strip('/').replace('/', '-')}.png"))
        page.locator("nav button", has_text="Sign out").click()
        for path in ("/login", "/register", "/forgot-password"):
            page.goto(live_server.url + path)
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways at 360 px"
    finally:
        context.close()

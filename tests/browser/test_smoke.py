"""The home page in a real browser: it renders, htmx loads, and the CSP refuses nothing."""

import pytest

pytestmark = pytest.mark.browser


def test_home_page_loads_htmx_without_csp_errors(live_server, page, tmp_path):
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    response = page.goto(live_server.url + "/")
    assert response.status == 200
    assert "private book" in page.locator("h1").inner_text()
    page.wait_for_function("() => window.htmx !== undefined")
    assert page.evaluate("() => htmx.version").startswith("2.0.")
    # The htmx-config meta keeps htmx from injecting styles the CSP would refuse.
    assert page.evaluate("() => htmx.config.includeIndicatorStyles") is False
    assert page.evaluate("() => htmx.config.allowEval") is False
    assert errors == []
    page.screenshot(path=str(tmp_path / "home.png"), full_page=True)


def test_home_page_is_readable_on_a_phone(live_server, browser):
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        phone = context.new_page()
        phone.goto(live_server.url + "/")
        overflow = phone.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, "the page scrolls sideways at 360 px"
    finally:
        context.close()


def test_keyboard_users_can_skip_to_the_content(live_server, page):
    page.goto(live_server.url + "/")
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.textContent.trim()")
    assert focused == "Skip to content"

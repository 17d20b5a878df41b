"""The protections around the account pages, each with a test that fails without it:
CSRF, throttles, session ids, cookie flags, security headers, the verified-only guard,
and auth events logged without secrets."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
import uuid

import pytest
from litestar import get
from litestar.stores.base import Store
from litestar.stores.redis import RedisStore
from litestar.testing import AsyncTestClient

from app.accounts.auth import verified_guard
from app.accounts.web import LOGIN_FAILURES
from app.lib.throttle import Throttle
from app.main import create_app
from tests.accounts.conftest import (
    SESSION_COOKIE,
    Person,
    csrf_token,
    flashes,
    html,
    in_app,
    post_form,
    register,
    sign_in,
    sign_out,
    signed_in_name,
    unique_email,
)
from tests.fixtures.app import BASE_URL


async def fresh_window(seconds: int, needed: float = 5.0) -> None:
    """Throttles count in fixed windows: start a burst where it cannot straddle two."""
    left = seconds - time.time() % seconds
    if left < needed:
        await asyncio.sleep(left + 0.05)


class CountingStore(Store):
    """The app's own session store, counting the writes that reach it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.writes: list[str] = []

    async def set(self, key, value, expires_in=None):
        self.writes.append(key)
        await self.store.set(key, value, expires_in=expires_in)

    async def get(self, key, renew_for=None):
        return await self.store.get(key, renew_for=renew_for)

    async def delete(self, key):
        await self.store.delete(key)

    async def delete_all(self):
        await self.store.delete_all()

    async def exists(self, key):
        return await self.store.exists(key)

    async def expires_in(self, key):
        return await self.store.expires_in(key)

    def with_namespace(self, namespace):
        raise NotImplementedError


def cookie_header(response, name: str) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert headers, f"no {name} cookie set"
    return headers[-1]


def session_id_set_by(response) -> str:
    return cookie_header(response, SESSION_COOKIE).split(";")[0].split("=", 1)[1]


# CSRF -----------------------------------------------------------------------------------

# (page holding the form, the form's action) for every POST form of the account pages.
SIGNED_IN_FORMS = [
    ("/", "/logout"),
    ("/settings/profile", "/settings/profile"),
    ("/settings/password", "/settings/password"),
    ("/settings/tokens", "/settings/tokens"),
]
ANONYMOUS_FORMS = [
    ("/register", "/register"),
    ("/login", "/login"),
    ("/forgot-password", "/forgot-password"),
]


async def test_every_form_carries_the_csrf_token_of_its_cookie(client, member):
    async def check(paths: list[str]) -> None:
        for path in paths:
            page = html(await client.get(path))
            forms = page.select("form[method=post]")
            assert forms, path
            for form in forms:
                token = csrf_token(page, form)
                assert token == client.cookies["csrftoken"], (path, form["action"])
            # The token also rides on every htmx request.
            assert client.cookies["csrftoken"] in page.body["hx-headers"], path

    await check([page for page, _ in SIGNED_IN_FORMS])
    await sign_out(client)
    await check([page for page, _ in ANONYMOUS_FORMS])


async def test_posts_without_a_valid_csrf_token_are_refused(client, member, mailbox):
    page = html(await client.get("/settings/tokens"))
    await post_form(client, "/settings/tokens", {"name": "Target"})
    page = html(await client.get("/settings/tokens"))
    revoke = page.select_one("tbody form")["action"]
    forms = [*SIGNED_IN_FORMS, ("/settings/tokens", revoke), ("/verify-email", "/verify-email")]
    forms += [("/", "/reset-password/any.token")]
    forged = "0" * 64 + "f" * 64
    for _, action in forms:
        for data in ({"name": "Mallory"}, {"name": "Mallory", "_csrf_token": forged}):
            response = await client.post(action, data=data, follow_redirects=False)
            assert response.status_code == 403, (action, data)
            assert "text/html" in response.headers["content-type"]
    # Nothing happened: still signed in, same name, token still there.
    page = html(await client.get("/settings/tokens"))
    assert signed_in_name(page) == member.name
    assert page.select_one("tbody th").get_text(strip=True) == "Target"

    await sign_out(client)
    for _, action in ANONYMOUS_FORMS:
        response = await client.post(
            action,
            data={"email": member.email, "password": member.password},
            follow_redirects=False,
        )
        assert response.status_code == 403, action
    assert signed_in_name(html(await client.get("/"))) is None


# throttles -------------------------------------------------------------------------------


async def test_the_sixth_sign_in_attempt_in_a_minute_is_refused(client, member):
    await sign_out(client)
    await fresh_window(60)
    for attempt in range(5):
        response = await sign_in(client, member.email.upper(), f"wrong-password-{attempt}")
        assert response.status_code == 422, attempt
    # Even the right password waits now: the limit is on attempts, not on failures.
    response = await sign_in(client, member.email)
    assert response.status_code == 429
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    message = html(response).select_one("main").get_text(" ", strip=True)
    assert "Too many sign-in attempts" in message
    assert re.search(r"Try again in \d+ (seconds?|minute)\.", message)
    assert "x-request-id" in response.headers
    assert "script-src 'self'" in response.headers["content-security-policy"]
    # Someone else signing in from the same address is not held up.
    other = Person(name="Bo", email=unique_email("bo"))
    await register(client, other)
    await sign_out(client)
    assert (await sign_in(client, other.email)).status_code == 303


async def test_an_account_is_closed_after_a_hundred_failures_in_an_hour(client, app, member):
    await sign_out(client)
    # The refusal below must still have over a minute to run when it is checked.
    await fresh_window(LOGIN_FAILURES["window"], needed=120)
    throttle = app.state.throttle
    key = f"login-failures:{member.email}"
    # Failures count against the account; a success does not.
    assert (await sign_in(client, member.email, "wrong-password-1")).status_code == 422
    assert (await sign_in(client, member.email)).status_code == 303
    await sign_out(client)
    verdict = in_app(client, lambda: throttle.check(key, **LOGIN_FAILURES))
    assert verdict.remaining == LOGIN_FAILURES["limit"] - 1
    # Ninety-nine more failures, from anywhere (counted as the app counts them)...
    for _ in range(LOGIN_FAILURES["limit"] - 1):
        in_app(client, lambda: throttle.hit(key, **LOGIN_FAILURES))
    # ...and even the right password is refused until the hour is over.
    response = await sign_in(client, member.email)
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 60
    assert "minutes" in html(response).select_one("main").get_text()


async def test_an_address_registers_at_most_ten_accounts_an_hour(client):
    await fresh_window(3600)
    for attempt in range(10):
        response = await post_form(client, "/register", {"name": f"Bot {attempt}"})
        assert response.status_code == 422, attempt
    response = await register(client, Person(name="Late", email=unique_email("late")))
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert "Too many accounts" in html(response).select_one("main").get_text()


async def test_the_verification_mail_is_resent_at_most_six_times_a_minute(
    client, newcomer, mailbox
):
    await fresh_window(60)
    for attempt in range(6):
        response = await post_form(client, "/verify-email", {})
        assert response.status_code == 303, attempt
    response = await post_form(client, "/verify-email", {})
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert len(mailbox.wait_for(newcomer.email, count=7)) == 7  # the first and six more


async def test_reset_links_are_asked_for_at_most_six_times_a_minute(client):
    await fresh_window(60)
    for attempt in range(6):
        response = await post_form(client, "/forgot-password", {"email": unique_email()})
        assert response.status_code == 303, attempt
    response = await post_form(client, "/forgot-password", {"email": unique_email()})
    assert response.status_code == 429


# sessions ---------------------------------------------------------------------------------


async def test_signing_in_issues_a_new_session_id_and_kills_the_old_one(client, newcomer):
    await sign_out(client)
    response = await client.get("/login")
    before = session_id_set_by(response)
    assert len(before) == 64  # 32 random bytes, hex: 256 bits

    response = await sign_in(client, newcomer.email)
    assert response.status_code == 303
    after = session_id_set_by(response)
    assert after != before
    assert len(after) == 64

    # The id from before sign-in is worth nothing, so one planted in a victim's browser
    # gives the attacker no session.
    replay = await client.get(
        "/settings/profile",
        headers={"Cookie": f"{SESSION_COOKIE}={before}"},
        follow_redirects=False,
    )
    assert replay.status_code == 303
    assert replay.headers["location"].startswith("/login")
    current = await client.get("/settings/profile", headers={"Cookie": f"{SESSION_COOKIE}={after}"})
    assert signed_in_name(html(current)) == newcomer.name


async def test_signing_out_kills_the_session_id(client, member):
    page_response = await client.get("/settings/profile")
    assert page_response.status_code == 200
    signed_in_id = client.cookies[SESSION_COOKIE]

    response = await sign_out(client)
    assert response.status_code == 303
    new_id = session_id_set_by(response)
    assert new_id != signed_in_id

    # Someone who copied the cookie before sign-out gets nothing with it.
    replay = await client.get(
        "/settings/profile",
        headers={"Cookie": f"{SESSION_COOKIE}={signed_in_id}"},
        follow_redirects=False,
    )
    assert replay.status_code == 303
    assert replay.headers["location"].startswith("/login")
    page = html(await client.get("/", headers={"Cookie": f"{SESSION_COOKIE}={signed_in_id}"}))
    assert signed_in_name(page) is None


async def test_signing_out_when_not_signed_in_just_goes_home(client):
    await client.get("/")
    page = html(await client.get("/login"))
    response = await client.post(
        "/logout", data={"_csrf_token": csrf_token(page)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_session_and_csrf_cookies_are_httponly_lax_and_not_secure_over_http(client):
    response = await client.get("/login")
    session = cookie_header(response, SESSION_COOKIE).lower()
    assert "httponly" in session
    assert "samesite=lax" in session
    assert "path=/" in session
    assert "max-age=7200" in session  # the 120-minute idle timeout
    assert "secure" not in session
    csrf = cookie_header(response, "csrftoken").lower()
    assert "samesite=lax" in csrf
    assert "secure" not in csrf


async def test_over_https_cookies_are_secure_and_hsts_is_sent(settings):
    https = dataclasses.replace(settings, app_url="https://testserver.local")
    app = create_app(https)
    limits = app.stores.get("rate_limit")
    if isinstance(limits, RedisStore):
        # As the app fixture does: the shared Redis keeps every run's registrations for
        # an hour, and this test registers someone.
        isolated = limits.with_namespace(uuid.uuid4().hex)
        app.stores.register("rate_limit", isolated, allow_override=True)
        app.state.throttle = Throttle(isolated)
    async with AsyncTestClient(app=app, base_url="https://testserver.local") as client:
        response = await client.get("/login")
        assert response.status_code == 200
        for name in (SESSION_COOKIE, "csrftoken"):
            flags = [part.strip().lower() for part in cookie_header(response, name).split(";")]
            assert "secure" in flags, name
            assert "samesite=lax" in flags, name
        assert "httponly" in cookie_header(response, SESSION_COOKIE).lower()
        assert response.headers["strict-transport-security"].startswith("max-age=31536000")
        # The whole flow works over https with those cookies.
        person = Person(name="Ana", email=unique_email())
        assert (await register(client, person)).status_code == 303
        assert signed_in_name(html(await client.get("/verify-email"))) == "Ana"


async def test_plain_http_gets_no_hsts(client):
    response = await client.get("/login")
    assert "strict-transport-security" not in response.headers


# headers and markup -------------------------------------------------------------------------


def assert_secure_html(response, path: str) -> None:
    headers = response.headers
    csp = headers["content-security-policy"]
    directives = {}
    for part in csp.split(";"):
        name, _, value = part.strip().partition(" ")
        directives[name] = value
    assert directives["script-src"] == "'self'", path
    assert "unsafe-inline" not in csp, path
    assert "unsafe-eval" not in csp, path
    assert directives["frame-ancestors"] == "'none'", path
    assert directives["form-action"] == "'self'", path
    assert directives["object-src"] == "'none'", path
    assert directives["base-uri"] == "'none'", path
    assert headers["x-content-type-options"] == "nosniff", path
    assert headers["referrer-policy"] == "same-origin", path
    assert headers["permissions-policy"], path
    assert headers["x-frame-options"] == "DENY", path
    page = html(response)
    # Nothing a CSP without 'unsafe-inline' would refuse: no inline script, no handler.
    for script in page.find_all("script"):
        assert script.get("src"), path
        assert not script.get_text(strip=True), path
    for tag in page.find_all(True):
        handlers = [name for name in tag.attrs if name.lower().startswith("on")]
        assert not handlers, (path, tag.name, handlers)
    # Every form posts to this site and works without JavaScript.
    for form in page.find_all("form"):
        assert form.get("method") == "post", path
        assert form["action"].startswith("/"), path
        assert not form["action"].startswith("//"), path


async def test_every_account_page_sends_the_security_headers(client, member, mailbox):
    pages = ["/settings/profile", "/settings/password", "/settings/tokens", "/"]
    for path in pages:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert_secure_html(response, path)
    # A page with a new token on it, and refused forms.
    response = await post_form(client, "/settings/tokens", {"name": "T"})
    assert_secure_html(response, "token created")
    response = await post_form(client, "/settings/password", {"current_password": "x"})
    assert response.status_code == 422
    assert_secure_html(response, "422")
    response = await client.post("/settings/profile", data={}, follow_redirects=False)
    assert response.status_code == 403
    assert_secure_html(response, "403")

    await sign_out(client)
    for path in ("/register", "/login", "/forgot-password", "/reset-password/bad.link"):
        response = await client.get(path)
        assert_secure_html(response, path)
    newcomer = Person(name="Bo", email=unique_email("bo"))
    await register(client, newcomer)
    response = await client.get("/verify-email")
    assert response.status_code == 200
    assert_secure_html(response, "/verify-email")


# the verified-only guard ----------------------------------------------------------------------


@get("/book", guards=[verified_guard], sync_to_thread=False, include_in_schema=False)
def customer_book() -> str:
    return "the customer book"


async def test_customer_pages_need_a_signed_in_person_with_a_confirmed_address(app, mailbox):
    # A stand-in for the customer pages, which use the same guard.
    app.register(customer_book)
    async with AsyncTestClient(app=app, base_url=BASE_URL) as client:
        response = await client.get("/book?sort=name", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=%2Fbook%3Fsort%3Dname"
        # htmx would swap a login page into a fragment: it is told to go there instead.
        response = await client.get("/book", headers={"HX-Request": "true"})
        assert response.headers["hx-redirect"].startswith("/login")

        person = Person(name="Ana", email=unique_email())
        await register(client, person)
        response = await client.get("/book", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/verify-email"

        await client.get(mailbox.last_link(person.email, "/verify-email/"))
        response = await client.get("/book")
        assert response.status_code == 200
        assert response.text == "the customer book"

        # Signing in through the login page brings the person back where they wanted to go.
        await sign_out(client)
        response = await client.get("/book?sort=name")
        page = html(response)
        assert page.select_one("main form [name=next]")["value"] == "/book?sort=name"
        response = await client.post(
            "/login",
            data={
                "email": person.email,
                "password": person.password,
                "next": "/book?sort=name",
                "_csrf_token": csrf_token(page),
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == "/book?sort=name"


# auth events ------------------------------------------------------------------------------------


async def test_auth_events_are_logged_with_request_id_and_ip_but_no_secret(client, mailbox, caplog):
    caplog.set_level("INFO", logger="crm")
    person = Person(name="Ana", email=unique_email())
    await register(client, person)
    await client.get(mailbox.last_link(person.email, "/verify-email/"))
    await sign_out(client)
    await sign_in(client, person.email, "not-my-password-9")
    await sign_in(client, person.email)
    response = await post_form(client, "/settings/tokens", {"name": "CI"})
    token = html(response).select_one("#new-token-value")["value"]
    page = html(await client.get("/settings/tokens"))
    form = page.select_one("tbody form")
    await client.post(form["action"], data={"_csrf_token": csrf_token(page, form)})
    new_password = "amber-canyon-whistle-88"
    await post_form(
        client,
        "/settings/password",
        {
            "current_password": person.password,
            "password": new_password,
            "password_confirmation": new_password,
        },
    )
    await sign_out(client)
    await post_form(client, "/forgot-password", {"email": person.email})
    reset = mailbox.last_link(person.email, "/reset-password/")
    reset_password = "quiet-meadow-compass-17"
    await post_form(
        client,
        "/reset-password/" + reset.rsplit("/")[-1],
        {"password": reset_password, "password_confirmation": reset_password},
    )

    records = [r for r in caplog.records if r.name == "crm.auth"]
    events = [r.fields["event"] for r in records]
    assert events == [
        "register",
        "email_verified",
        "logout",
        "login_failed",
        "login",
        "token_created",
        "token_revoked",
        "password_changed",
        "logout",
        "password_reset",
    ]
    for record in records:
        assert re.fullmatch(r"[0-9a-f]{32}", record.fields["request_id"])
        assert record.fields["ip"]
    secrets = [person.password, "not-my-password-9", new_password, reset_password, token]
    secrets += [token.partition("|")[2], reset.rsplit("/")[-1]]
    # Everything the app logged (the test client's own log of its URLs aside).
    everything = "\n".join(
        f"{r.getMessage()} {getattr(r, 'fields', '')}"
        for r in caplog.records
        if r.name.startswith("crm")
    )
    assert "'path': '/reset-password/[redacted]'" in everything
    for secret in secrets:
        assert secret not in everything


@pytest.mark.parametrize("path", ["/verify-email", "/settings/profile", "/settings/tokens"])
async def test_signed_in_pages_send_anonymous_people_to_sign_in(client, path):
    response = await client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    page = html(await client.get(response.headers["location"]))
    assert page.select_one("main form [name=next]")["value"] == path
    assert flashes(page) == []


async def test_a_session_is_written_back_only_when_it_changed(client, app, member):
    """Reading a session pushes its expiry ahead already; a page that changes nothing in
    it does not write it again, and a change (a flash message) is still saved."""
    store = CountingStore(app.stores.get("sessions"))
    app.stores.register("sessions", store, allow_override=True)
    writes = store.writes
    await client.get("/settings/profile")  # shows (and so removes) the welcome flash
    session_id = client.cookies[SESSION_COOKIE]
    stored = in_app(client, store.get, session_id)
    writes.clear()

    for _ in range(3):
        response = await client.get("/settings/profile")
        assert response.status_code == 200
        # The cookie still slides with the session's idle timeout.
        assert session_id_set_by(response) == session_id
        assert "Max-Age=7200" in cookie_header(response, SESSION_COOKIE)
    assert writes == []
    assert in_app(client, store.get, session_id) == stored
    assert in_app(client, store.expires_in, session_id) > 7200 - 60

    response = await post_form(
        client, "/settings/profile", {"name": "Renamed Member", "email": member.email}
    )
    assert response.status_code == 303
    assert writes, "the flash message was not saved in the session"
    page = html(await client.get(response.headers["location"]))
    assert "Your profile has been saved." in flashes(page)

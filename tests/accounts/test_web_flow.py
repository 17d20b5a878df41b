"""The account pages end to end, through the HTML forms, with the mails really sent."""

from __future__ import annotations

from urllib.parse import urlsplit

from app.accounts import links
from app.accounts.service import _reset_fingerprint, _verify_fingerprint
from tests.accounts.conftest import (
    PASSWORD,
    Person,
    account_by_email,
    field_value,
    flashes,
    html,
    main_form,
    post_form,
    register,
    sign_in,
    sign_out,
    signed_in_name,
    unique_email,
)
from tests.fixtures.profiles import SECRET


async def test_a_newcomer_registers_confirms_signs_in_makes_a_token_and_signs_out(client, mailbox):
    person = Person(name="Ana Lima", email=unique_email())

    # Register: signed in at once, and sent to the notice until the address is confirmed.
    response = await register(client, person)
    assert response.status_code == 303
    assert response.headers["location"] == "/verify-email"
    page = html(await client.get("/verify-email"))
    assert person.email in page.select_one("main").get_text()
    assert any("We sent a link" in message for message in flashes(page))
    assert signed_in_name(page) == "Ana Lima"
    # The API tokens page is closed to an unconfirmed address.
    response = await client.get("/settings/tokens", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/verify-email"

    # The mail arrives; its link confirms the address.
    link = mailbox.last_link(person.email, "/verify-email/")
    assert urlsplit(link).netloc == "testserver.local"
    response = await client.get(link, follow_redirects=False)
    assert response.status_code == 303
    page = html(await client.get(response.headers["location"]))
    assert "Thank you: your email address is confirmed." in flashes(page)

    # Sign out, then in again with the password.
    response = await sign_out(client)
    assert response.status_code == 303
    page = html(await client.get(response.headers["location"]))
    assert "You have signed out." in flashes(page)
    assert signed_in_name(page) is None
    response = await sign_in(client, person.email)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    page = html(await client.get("/"))
    assert signed_in_name(page) == "Ana Lima"
    assert "Welcome back, Ana Lima." in flashes(page)

    # Settings: a token, shown once.
    response = await post_form(
        client, "/settings/tokens", {"name": "Nightly sync", "expires_in_days": "30"}
    )
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    page = html(response)
    token = str(page.select_one("#new-token-value")["value"])
    token_id, _, secret = token.partition("|")
    assert token_id.isdigit()
    assert len(secret) >= 40
    row = page.select_one(f"#token-{token_id}")
    assert row.select_one("th").get_text(strip=True) == "Nightly sync"
    assert row.select_one("[data-label=Expires] time") is not None
    # A copy button, hidden until app.js can make it work.
    assert page.select_one("button[data-copy=new-token-value]").has_attr("hidden")

    # Shown once: the list never shows it again.
    response = await client.get("/settings/tokens")
    assert secret not in response.text
    page = html(response)
    assert page.select_one("#new-token-value") is None
    assert page.select_one(f"#token-{token_id} th").get_text(strip=True) == "Nightly sync"
    assert (
        page.select_one(f"#token-{token_id} [data-label='Last used']").get_text(strip=True)
        == "Never"
    )

    # Revoke it.
    form = page.select_one(f"#token-{token_id} form")
    response = await client.post(
        form["action"],
        data={"_csrf_token": form.select_one("[name=_csrf_token]")["value"]},
        follow_redirects=False,
    )
    assert response.status_code == 303
    page = html(await client.get(response.headers["location"]))
    assert page.select_one(f"#token-{token_id}") is None
    assert any("revoked" in message for message in flashes(page))

    # Sign out for good.
    response = await sign_out(client)
    assert response.status_code == 303
    response = await client.get("/settings/profile", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fsettings%2Fprofile"


async def test_a_forgotten_password_is_reset_through_the_mailed_link(client, member, mailbox):
    await sign_out(client)
    response = await post_form(client, "/forgot-password", {"email": member.email.upper()})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    page = html(await client.get("/login"))
    assert any("we sent it a link" in message for message in flashes(page))

    link = mailbox.last_link(member.email, "/reset-password/")
    page = html(await client.get(link))
    form = main_form(page)
    assert form["action"] == urlsplit(link).path
    new_password = "quiet-meadow-compass-17"
    response = await post_form(
        client,
        urlsplit(link).path,
        {"password": new_password, "password_confirmation": new_password},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    page = html(await client.get("/login"))
    assert "Your password has been changed. Sign in with the new one." in flashes(page)

    # The old password no longer works; the new one does.
    assert (await sign_in(client, member.email, PASSWORD)).status_code == 422
    response = await sign_in(client, member.email, new_password)
    assert response.status_code == 303
    assert signed_in_name(html(await client.get("/"))) == member.name

    # The link worked once.
    response = await client.get(link)
    assert response.status_code == 400
    assert html(response).h1.get_text() == "This link no longer works"


async def test_forgot_password_says_the_same_whether_or_not_the_account_exists(client, mailbox):
    nobody = unique_email("nobody")
    response = await post_form(client, "/forgot-password", {"email": nobody})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    page = html(await client.get("/login"))
    assert any(nobody in message for message in flashes(page))
    assert mailbox.wait_for(nobody, timeout=0.3) == []


async def test_verification_links_work_once(client, newcomer, mailbox):
    link = mailbox.last_link(newcomer.email, "/verify-email/")
    await sign_out(client)
    response = await client.get(link, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    response = await client.get(link)
    assert response.status_code == 400
    page = html(response)
    assert page.h1.get_text() == "This link no longer works"
    assert page.select_one("main a.button")["href"] == "/login"


async def test_expired_and_tampered_links_are_refused(client, newcomer):
    account = await account_by_email(client, newcomer.email)
    assert account is not None
    expired_verify = links.make_link_token(
        SECRET, account.id, "verify", _verify_fingerprint(account), -60
    )
    response = await client.get(f"/verify-email/{expired_verify}")
    assert response.status_code == 400
    page = html(response)
    assert page.h1.get_text() == "This link no longer works"
    # Signed in: the way out is a new link.
    assert page.select_one("main a.button")["href"] == "/verify-email"

    expired_reset = links.make_link_token(
        SECRET, account.id, "reset", _reset_fingerprint(account), -60
    )
    response = await client.get(f"/reset-password/{expired_reset}")
    assert response.status_code == 400
    assert html(response).select_one("main a.button")["href"] == "/forgot-password"
    # Posting to an expired link changes nothing either.
    page = html(await client.get("/settings/password"))
    response = await client.post(
        f"/reset-password/{expired_reset}",
        data={
            "password": "quiet-meadow-compass-17",
            "password_confirmation": "quiet-meadow-compass-17",
            "_csrf_token": page.select_one("main [name=_csrf_token]")["value"],
        },
    )
    assert response.status_code == 400

    # A verification link is no reset link, and a forged one fails its signature.
    valid_verify = links.make_link_token(
        SECRET, account.id, "verify", _verify_fingerprint(account), 3600
    )
    assert (await client.get(f"/reset-password/{valid_verify}")).status_code == 400
    forged = valid_verify[:-4] + ("AAAA" if not valid_verify.endswith("AAAA") else "BBBB")
    assert (await client.get(f"/verify-email/{forged}")).status_code == 400
    page = html(await client.get("/"))
    assert page.select_one("main a.button")["href"] == "/verify-email"


async def test_the_verify_notice_resends_the_link(client, newcomer, mailbox):
    assert len(mailbox.wait_for(newcomer.email)) == 1
    response = await post_form(client, "/verify-email", {})
    assert response.status_code == 303
    assert response.headers["location"] == "/verify-email"
    assert len(mailbox.wait_for(newcomer.email, count=2)) == 2
    page = html(await client.get("/verify-email"))
    assert f"We sent a new link to {newcomer.email}." in flashes(page)
    # The newest link works.
    response = await client.get(mailbox.last_link(newcomer.email, "/verify-email/"))
    assert "Thank you: your email address is confirmed." in flashes(html(response))


async def test_a_confirmed_person_is_not_shown_the_notice(client, member):
    response = await client.get("/verify-email", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_changing_the_email_address_asks_to_confirm_it_again(client, member, mailbox):
    new_email = unique_email("ana-new")
    response = await post_form(
        client, "/settings/profile", {"name": "Ana Lima-Souza", "email": new_email}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/verify-email"
    page = html(await client.get("/verify-email"))
    assert new_email in page.select_one("main").get_text()
    assert signed_in_name(page) == "Ana Lima-Souza"
    # Closed again until the new address is confirmed.
    response = await client.get("/settings/tokens", follow_redirects=False)
    assert response.headers["location"] == "/verify-email"

    response = await client.get(mailbox.last_link(new_email, "/verify-email/"))
    assert "Thank you: your email address is confirmed." in flashes(html(response))
    assert (await client.get("/settings/tokens")).status_code == 200
    # The old address no longer signs in; the new one does.
    await sign_out(client)
    assert (await sign_in(client, member.email)).status_code == 422
    assert (await sign_in(client, new_email)).status_code == 303


async def test_a_new_name_alone_is_saved_without_asking_anything(client, member):
    response = await post_form(
        client, "/settings/profile", {"name": "Ana M. Lima", "email": member.email}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/settings/profile"
    page = html(await client.get("/settings/profile"))
    assert "Your profile has been saved." in flashes(page)
    assert field_value(page, "name") == "Ana M. Lima"
    assert signed_in_name(page) == "Ana M. Lima"
    assert (await client.get("/settings/tokens")).status_code == 200


async def test_changing_the_password(client, member):
    new_password = "amber-canyon-whistle-88"
    response = await post_form(
        client,
        "/settings/password",
        {
            "current_password": member.password,
            "password": new_password,
            "password_confirmation": new_password,
        },
    )
    assert response.status_code == 303
    page = html(await client.get(response.headers["location"]))
    assert "Your password has been changed." in flashes(page)
    # Still signed in on this browser.
    assert signed_in_name(page) == member.name
    await sign_out(client)
    assert (await sign_in(client, member.email, member.password)).status_code == 422
    assert (await sign_in(client, member.email, new_password)).status_code == 303


async def test_an_unconfirmed_person_signing_in_is_sent_to_the_notice(client, newcomer):
    await sign_out(client)
    response = await sign_in(client, newcomer.email.upper())
    assert response.status_code == 303
    assert response.headers["location"] == "/verify-email"


async def test_sign_in_returns_to_the_page_asked_for_when_it_is_on_this_site(client, member):
    await sign_out(client)
    page = html(await client.get("/login?next=/settings/password"))
    assert page.select_one("main form [name=next]")["value"] == "/settings/password"
    response = await client.post(
        "/login",
        data={
            "email": member.email,
            "password": member.password,
            "next": "/settings/password",
            "_csrf_token": page.select_one("main [name=_csrf_token]")["value"],
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/settings/password"

    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"):
        await sign_out(client)
        page = html(await client.get("/login", params={"next": target}))
        assert page.select_one("main form [name=next]") is None
        response = await client.post(
            "/login",
            data={
                "email": member.email,
                "password": member.password,
                "next": target,
                "_csrf_token": page.select_one("main [name=_csrf_token]")["value"],
            },
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/", target


async def test_tokens_of_someone_else_cannot_be_revoked(client, member, mailbox):
    response = await post_form(client, "/settings/tokens", {"name": "Mine"})
    token_id = html(response).select_one("#new-token-value")["value"].partition("|")[0]
    await sign_out(client)

    intruder = Person(name="Eve", email=unique_email("eve"))
    await register(client, intruder)
    await client.get(mailbox.last_link(intruder.email, "/verify-email/"))
    for path in (f"/settings/tokens/{token_id}/revoke", "/settings/tokens/999999999/revoke"):
        response = await post_form(client, path, {}, form_page="/settings/tokens")
        # Not "forbidden": whether the token exists is not for Eve to learn.
        assert response.status_code == 404, path
    await sign_out(client)

    await sign_in(client, member.email)
    page = html(await client.get("/settings/tokens"))
    assert page.select_one(f"#token-{token_id} th").get_text(strip=True) == "Mine"


async def test_home_page_offers_what_fits_who_is_looking(client, mailbox):
    page = html(await client.get("/"))
    nav = [a.get_text(strip=True) for a in page.select("nav .nav-links a")]
    assert nav == ["Sign in", "Register"]
    actions = [a["href"] for a in page.select("main .actions a")]
    assert actions == ["/register", "/login"]

    person = Person(name="Cai Wu", email=unique_email("cai"))
    await register(client, person)
    page = html(await client.get("/"))
    assert [a["href"] for a in page.select("main .actions a")] == ["/verify-email"]
    nav = page.select_one("nav .nav-links")
    assert [a.get_text(strip=True) for a in nav.select("a")] == ["Settings"]
    sign_out_form = nav.select_one("form")
    assert sign_out_form["method"] == "post"
    assert sign_out_form["action"] == "/logout"
    assert sign_out_form.select_one("button").get_text(strip=True) == "Sign out"

    await client.get(mailbox.last_link(person.email, "/verify-email/"))
    page = html(await client.get("/"))
    assert [a["href"] for a in page.select("main .actions a")] == [
        "/settings/tokens",
        "/settings/profile",
    ]


async def test_signed_in_people_skip_the_sign_in_and_register_pages(client, member):
    for path in ("/login", "/register"):
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/"
    response = await client.get("/settings", follow_redirects=False)
    assert response.headers["location"] == "/settings/profile"

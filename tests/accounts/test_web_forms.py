"""Every account form refuses bad input the same way: status 422, the message beside the
field it concerns, what was typed kept, and never a password sent back."""

from __future__ import annotations

import pytest

from tests.accounts.conftest import (
    PASSWORD,
    Person,
    field_error,
    field_value,
    html,
    post_form,
    register,
    sign_in,
    sign_out,
    unique_email,
)

SECRET_FIELDS = ("password", "password_confirmation", "current_password")


def assert_no_password_sent_back(page, *typed: str) -> None:
    for name in SECRET_FIELDS:
        field = page.find("input", attrs={"name": name})
        if field is not None:
            assert field["type"] == "password"
            assert not field.has_attr("value"), f"{name} was sent back"
    for text in typed:
        assert text not in str(page), "a typed password came back in the page"


def summary_links(page) -> dict[str, str]:
    """The error summary at the top of the form: message per field it links to."""
    summary = page.select_one(".error-summary[role=alert]")
    assert summary is not None, "no error summary"
    return {a["href"].removeprefix("#"): a.get_text(strip=True) for a in summary.select("a")}


async def test_register_shows_each_problem_beside_its_field(client):
    response = await post_form(
        client,
        "/register",
        {"name": "  ", "email": "ana@", "password": "short", "password_confirmation": "short"},
    )
    assert response.status_code == 422
    page = html(response)
    assert field_error(page, "name") == "Enter your name."
    assert field_error(page, "email") == "Enter an email address like name@example.com."
    assert field_error(page, "password") == "Use at least 8 characters."
    assert summary_links(page) == {
        "name": "Enter your name.",
        "email": "Enter an email address like name@example.com.",
        "password": "Use at least 8 characters.",
    }
    assert field_value(page, "email") == "ana@"
    assert_no_password_sent_back(page)
    # Nobody was signed in by a refused registration.
    assert (await client.get("/settings/profile", follow_redirects=False)).status_code == 303


@pytest.mark.parametrize(
    ("password", "confirmation", "field", "message"),
    [
        ("password123", "password123", "password", "This password is one of the most common"),
        (
            "violet-harbour-lantern-42",
            "violet-harbour-lantern-43",
            "password_confirmation",
            "The two passwords do not match.",
        ),
        ("x" * 129, "x" * 129, "password", "Use at most 128 characters."),
    ],
)
async def test_register_refuses_weak_or_mismatched_passwords(
    client, password, confirmation, field, message
):
    email = unique_email()
    response = await post_form(
        client,
        "/register",
        {
            "name": "Ana",
            "email": email,
            "password": password,
            "password_confirmation": confirmation,
        },
    )
    assert response.status_code == 422
    page = html(response)
    assert field_error(page, field).startswith(message)
    assert field_value(page, "name") == "Ana"
    assert field_value(page, "email") == email
    assert_no_password_sent_back(page, password, confirmation)


async def test_register_refuses_the_email_as_password_and_a_taken_email(client, newcomer):
    await sign_out(client)
    response = await post_form(
        client,
        "/register",
        {
            "name": "Someone",
            "email": newcomer.email.upper(),
            "password": newcomer.email,
            "password_confirmation": newcomer.email,
        },
    )
    assert response.status_code == 422
    page = html(response)
    assert field_error(page, "password") == "Your password must not be your email address."
    assert field_error(page, "email").startswith("An account with this email already exists.")


async def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(client, newcomer):
    await sign_out(client)
    response = await sign_in(client, newcomer.email, "not-the-password-at-all")
    assert response.status_code == 422
    page = html(response)
    alert = page.select_one("main .error-summary[role=alert]")
    assert "do not match an account" in alert.get_text()
    assert field_value(page, "email") == newcomer.email
    assert_no_password_sent_back(page, "not-the-password-at-all")
    # An unknown address gets the very same answer.
    response = await sign_in(client, unique_email("nobody"), "not-the-password-at-all")
    assert response.status_code == 422
    assert html(response).select_one("main .error-summary").get_text() == alert.get_text()


async def test_forgot_password_wants_an_email_address(client):
    response = await post_form(client, "/forgot-password", {"email": "not an address"})
    assert response.status_code == 422
    page = html(response)
    assert field_error(page, "email") == "Enter an email address like name@example.com."
    assert field_value(page, "email") == "not an address"


async def test_reset_password_refuses_a_weak_or_mismatched_password(client, member, mailbox):
    await sign_out(client)
    await post_form(client, "/forgot-password", {"email": member.email})
    path = "/reset-password/" + mailbox.last_link(member.email, "/reset-password/").rsplit("/")[-1]

    response = await post_form(
        client, path, {"password": "Zq7%kx", "password_confirmation": "Zq7%kx"}
    )
    assert response.status_code == 422
    page = html(response)
    assert field_error(page, "password") == "Use at least 8 characters."
    assert page.select_one("main form")["action"] == path
    assert_no_password_sent_back(page, "Zq7%kx")

    response = await post_form(
        client,
        path,
        {"password": "quiet-meadow-compass-17", "password_confirmation": "quiet-meadow-compass"},
    )
    assert response.status_code == 422
    page = html(response)
    assert field_error(page, "password_confirmation") == "The two passwords do not match."
    assert field_error(page, "password") is None
    assert_no_password_sent_back(page, "quiet-meadow-compass-17")
    # Refused attempts do not use the link up, and the old password still works.
    assert (await client.get(path)).status_code == 200
    assert (await sign_in(client, member.email, PASSWORD)).status_code == 303


async def test_profile_refuses_an_empty_name_and_a_bad_or_taken_address(client, member):
    response = await post_form(client, "/settings/profile", {"name": "", "email": "nope"})
    assert response.status_code == 422
    page = html(response)
    assert field_error(page, "name") == "Enter your name."
    assert field_error(page, "email") == "Enter an email address like name@example.com."
    assert field_value(page, "email") == "nope"
    assert page.select_one(".settings-nav [aria-current=page]").get_text() == "Profile"

    other = Person(name="Bo", email=unique_email("bo"))
    await sign_out(client)
    await register(client, other)
    await sign_out(client)
    await sign_in(client, member.email)
    response = await post_form(client, "/settings/profile", {"name": "Ana", "email": other.email})
    assert response.status_code == 422
    page = html(response)
    assert field_error(page, "email") == "Another account already uses this email address."
    assert field_error(page, "name") is None
    assert field_value(page, "name") == "Ana"
    # Nothing was saved.
    page = html(await client.get("/settings/profile"))
    assert field_value(page, "email") == member.email


async def test_changing_the_password_needs_the_current_one_and_a_good_new_one(client, member):
    response = await post_form(
        client,
        "/settings/password",
        {
            "current_password": "wrong-current-password",
            "password": "amber-canyon-whistle-88",
            "password_confirmation": "amber-canyon-whistle-88",
        },
    )
    assert response.status_code == 422
    page = html(response)
    assert field_error(page, "current_password") == "This is not your current password."
    assert_no_password_sent_back(page, "wrong-current-password", "amber-canyon-whistle-88")

    response = await post_form(
        client,
        "/settings/password",
        {
            "current_password": member.password,
            "password": "12345678",
            "password_confirmation": "12345678",
        },
    )
    assert response.status_code == 422
    page = html(response)
    assert field_error(page, "password").startswith("This password is one of the most common")
    assert field_error(page, "current_password") is None
    assert_no_password_sent_back(page, member.password)


@pytest.mark.parametrize(
    ("days", "message"),
    [
        ("abc", "Enter a whole number of days, or leave it empty."),
        ("²", "Enter a whole number of days, or leave it empty."),
        ("-5", "Enter a whole number of days, or leave it empty."),
        ("0", "Choose between 1 and 3,650 days, or none."),
        ("3651", "Choose between 1 and 3,650 days, or none."),
    ],
)
async def test_tokens_refuse_a_bad_expiry(client, member, days, message):
    response = await post_form(
        client, "/settings/tokens", {"name": "Nightly sync", "expires_in_days": days}
    )
    assert response.status_code == 422
    page = html(response)
    assert field_error(page, "expires_in_days") == message
    assert field_value(page, "name") == "Nightly sync"
    assert field_value(page, "expires_in_days") == days
    assert page.select_one("#new-token-value") is None
    assert page.select("table tbody tr") == []


async def test_tokens_need_a_name(client, member):
    response = await post_form(client, "/settings/tokens", {"name": " ", "expires_in_days": ""})
    assert response.status_code == 422
    page = html(response)
    assert field_error(page, "name") == "Enter a name for the token."
    assert field_error(page, "expires_in_days") is None
    assert page.select_one("#new-token-value") is None


async def test_fields_say_what_they_expect_before_anything_goes_wrong(client, member):
    page = html(await client.get("/settings/tokens"))
    days = page.find("input", attrs={"name": "expires_in_days"})
    hint = page.find(id=days["aria-describedby"])
    assert "empty" in hint.get_text()
    assert not days.has_attr("aria-invalid")
    assert page.find("label", attrs={"for": "expires_in_days"}).get_text() == "Expires after (days)"

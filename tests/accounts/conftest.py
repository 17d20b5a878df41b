"""Helpers for the account pages: read forms the way a browser does, and make people."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from bs4 import BeautifulSoup, Tag

PASSWORD = "violet-harbour-lantern-42"
SESSION_COOKIE = "crm_session"


def html(response: httpx.Response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def csrf_token(page: BeautifulSoup, form: Tag | None = None) -> str:
    field = (form or page).find("input", attrs={"name": "_csrf_token"})
    assert field is not None, "the form has no CSRF field"
    return str(field["value"])


def main_form(page: BeautifulSoup) -> Tag:
    """The page's own form (the sign-out form in the navigation is not it)."""
    form = page.select_one("main form[method=post]")
    assert form is not None, "no form on the page"
    return form


async def post_form(
    client: Any, path: str, data: dict[str, str], *, form_page: str | None = None
) -> httpx.Response:
    """Open the page that holds the form (``form_page``, or ``path``), then submit it with
    its CSRF token, as a browser would. Redirects are not followed."""
    page = html(await client.get(form_page or path))
    return await client.post(
        path, data={**data, "_csrf_token": csrf_token(page)}, follow_redirects=False
    )


def field_error(page: BeautifulSoup, name: str) -> str | None:
    """The error shown beside a field, found the way assistive technology finds it."""
    field = page.find(attrs={"name": name})
    assert field is not None, f"no field named {name}"
    described = str(field.get("aria-describedby", "")).split()
    errors = [page.find(id=i) for i in described]
    texts = [e.get_text(" ", strip=True) for e in errors if e and "field-error" in e["class"]]
    if not texts:
        assert field.get("aria-invalid") is None, f"{name} is marked invalid with no message"
        return None
    assert field.get("aria-invalid") == "true", f"{name} has an error but is not aria-invalid"
    return texts[0].removeprefix("Error: ")


def field_value(page: BeautifulSoup, name: str) -> str | None:
    field = page.find("input", attrs={"name": name})
    assert field is not None, f"no field named {name}"
    value = field.get("value")
    return None if value is None else str(value)


def flashes(page: BeautifulSoup) -> list[str]:
    return [p.get_text(strip=True) for p in page.select("#flashes .flash")]


def signed_in_name(page: BeautifulSoup) -> str | None:
    """The name the navigation shows when someone is signed in."""
    item = page.select_one(".nav-account")
    return item.get_text(" ", strip=True).removeprefix("Signed in as ") if item else None


def in_app(client: Any, function: Any, *args: Any) -> Any:
    """Run ``function(*args)`` on the app's own event loop, where its database pool lives."""
    return client.blocking_portal.call(function, *args)


async def account_by_email(client: Any, email: str) -> Any:
    from app.accounts.repository import PiccoloAccountRepository

    return in_app(client, PiccoloAccountRepository().get_by_email, email)


def unique_email(label: str = "ana") -> str:
    # One PostgreSQL database serves the whole run: every test brings its own people.
    return f"{label}-{uuid.uuid4().hex[:10]}@example.com"


@dataclass
class Person:
    name: str
    email: str
    password: str = PASSWORD


async def register(client: Any, person: Person) -> httpx.Response:
    return await post_form(
        client,
        "/register",
        {
            "name": person.name,
            "email": person.email,
            "password": person.password,
            "password_confirmation": person.password,
        },
    )


async def sign_in(client: Any, email: str, password: str = PASSWORD) -> httpx.Response:
    return await post_form(client, "/login", {"email": email, "password": password})


async def sign_out(client: Any) -> httpx.Response:
    page = html(await client.get("/"))
    form = page.select_one("nav form[action='/logout']")
    assert form is not None, "no sign-out button: nobody is signed in"
    return await client.post(
        "/logout", data={"_csrf_token": csrf_token(page, form)}, follow_redirects=False
    )


@pytest.fixture
async def member(client, mailbox) -> Person:
    """Someone registered, with the address confirmed, and signed in on ``client``."""
    person = Person(name="Ana Lima", email=unique_email())
    response = await register(client, person)
    assert response.status_code == 303, response.text
    link = mailbox.last_link(person.email, "/verify-email/")
    response = await client.get(link, follow_redirects=False)
    assert response.status_code == 303
    return person


@pytest.fixture
async def newcomer(client) -> Person:
    """Someone registered and signed in, whose address is not confirmed yet."""
    person = Person(name="Bo Chen", email=unique_email("bo"))
    response = await register(client, person)
    assert response.status_code == 303, response.text
    return person

"""The accounts API as a program using it sees it: register, verify, tokens, /me.

Runs on both profiles; the verification link is read from the mail that was really sent.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from litestar.types import Receive, Scope, Send

from tests.fixtures.mailbox import Mailbox

PASSWORD = "velvet-plum-tart-1887"
TOKEN_FORMAT = re.compile(r"^(?P<id>\d+)\|(?P<secret>\S{40,})$")
LISTED_TOKEN_FIELDS = {"id", "name", "created_at", "last_used_at", "last_used_ip", "expires_at"}
# Test-only: lets a test choose the client address of a request, as a trusted proxy would
# report it; the test client otherwise always comes from the same address.
CLIENT_IP = "x-test-client-ip"


def accept_client_address_header(app: Litestar) -> Litestar:
    inner = app.asgi_handler

    async def with_client_address(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == CLIENT_IP.encode():
                    scope["client"] = (value.decode(), 50000)
        await inner(scope, receive, send)

    app.asgi_handler = with_client_address  # type: ignore[method-assign]
    return app


@pytest.fixture
def app(app: Litestar) -> Litestar:
    return accept_client_address_header(app)


async def in_app_loop(client: AsyncTestClient, query: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``query`` where the app runs: the test client serves it from its own event loop,
    and the database pool opened in the lifespan belongs to that loop."""
    return await asyncio.to_thread(client.blocking_portal.call, query)


def new_email(label: str = "user") -> str:
    # The full-stack database is shared by the whole run: every test uses fresh addresses.
    return f"{label}-{uuid.uuid4().hex[:12]}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def from_ip(ip: str) -> dict[str, str]:
    return {CLIENT_IP: ip}


async def register(
    client: AsyncTestClient,
    email: str,
    *,
    name: str = "Ada Lovelace",
    password: str = PASSWORD,
    headers: dict[str, str] | None = None,
) -> Any:
    return await client.post(
        "/api/v1/auth/register",
        json={"name": name, "email": email, "password": password},
        headers=headers,
    )


async def follow_verification_link(client: AsyncTestClient, mailbox: Mailbox, email: str) -> None:
    link = mailbox.last_link(email, "/verify-email/")
    response = await client.get(urlsplit(link).path, follow_redirects=False)
    assert response.status_code in (200, 303), response.text


async def verified_user(client: AsyncTestClient, mailbox: Mailbox, label: str = "user") -> str:
    email = new_email(label)
    response = await register(client, email)
    assert response.status_code == 201, response.text
    await follow_verification_link(client, mailbox, email)
    return email


async def create_token(
    client: AsyncTestClient,
    email: str,
    *,
    password: str = PASSWORD,
    name: str = "laptop",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Any:
    return await client.post(
        "/api/v1/auth/tokens",
        json={"email": email, "password": password, "name": name, **extra},
        headers=headers,
    )


async def issue_token(client: AsyncTestClient, email: str, **kwargs: Any) -> dict[str, Any]:
    response = await create_token(client, email, **kwargs)
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


def assert_bearer_challenge(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401
    assert body["error"]
    assert body["request_id"] == response.headers["x-request-id"]


# the whole flow ---------------------------------------------------------------------------


async def test_register_verify_token_me_list_revoke(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = new_email("flow")

    registered = await register(client, email.upper(), name="  Ada Lovelace ")
    assert registered.status_code == 201, registered.text
    account = registered.json()
    assert account == {
        "id": account["id"],
        "name": "Ada Lovelace",
        "email": email,
        "email_verified": False,
    }
    assert isinstance(account["id"], int)

    # Not verified yet: no token.
    refused = await create_token(client, email)
    assert refused.status_code == 403

    await follow_verification_link(client, mailbox, email)

    created = await create_token(client, email, name="deploy script")
    assert created.status_code == 201, created.text
    issued = created.json()
    assert set(issued) == {"id", "name", "token", "expires_at"}
    assert issued["name"] == "deploy script"
    assert issued["expires_at"] is None
    match = TOKEN_FORMAT.match(issued["token"])
    assert match, issued["token"]
    assert int(match["id"]) == issued["id"]

    me = await client.get("/api/v1/me", headers=bearer(issued["token"]))
    assert me.status_code == 200, me.text
    assert me.json() == {
        "id": account["id"],
        "name": "Ada Lovelace",
        "email": email,
        "email_verified": True,
    }

    listed = await client.get("/api/v1/auth/tokens", headers=bearer(issued["token"]))
    assert listed.status_code == 200
    tokens = listed.json()
    assert [token["id"] for token in tokens] == [issued["id"]]
    assert set(tokens[0]) == LISTED_TOKEN_FIELDS
    assert tokens[0]["name"] == "deploy script"
    assert tokens[0]["last_used_at"] is not None  # /me just used it
    # Neither the token, nor its secret, nor anything that looks like a sha256 hash.
    assert match["secret"] not in listed.text
    assert not re.search(r"[0-9a-f]{64}", listed.text)

    revoked = await client.delete(
        f"/api/v1/auth/tokens/{issued['id']}", headers=bearer(issued["token"])
    )
    assert revoked.status_code == 204
    assert revoked.content == b""

    assert_bearer_challenge(await client.get("/api/v1/me", headers=bearer(issued["token"])))


async def test_a_token_can_expire_after_some_days(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox)
    issued = await issue_token(client, email, expires_in_days=30)
    expires_at = datetime.fromisoformat(issued["expires_at"])
    expected = datetime.now(UTC) + timedelta(days=30)
    assert abs(expires_at - expected) < timedelta(minutes=1)
    listed = await client.get("/api/v1/auth/tokens", headers=bearer(issued["token"]))
    assert datetime.fromisoformat(listed.json()[0]["expires_at"]) == expires_at


async def test_tokens_are_listed_newest_first_and_only_ones_own(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox, "owner")
    other = await verified_user(client, mailbox, "other")
    first = await issue_token(client, email, name="first")
    second = await issue_token(client, email, name="second")
    await issue_token(client, other, name="not yours")

    listed = await client.get("/api/v1/auth/tokens", headers=bearer(first["token"]))

    assert [token["name"] for token in listed.json()] == ["second", "first"]
    assert [token["id"] for token in listed.json()] == [second["id"], first["id"]]


async def test_revoking_one_token_leaves_the_others_working(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox)
    kept = await issue_token(client, email, name="kept")
    dropped = await issue_token(client, email, name="dropped")

    response = await client.delete(
        f"/api/v1/auth/tokens/{dropped['id']}", headers=bearer(kept["token"])
    )

    assert response.status_code == 204
    assert (await client.get("/api/v1/me", headers=bearer(kept["token"]))).status_code == 200
    assert_bearer_challenge(await client.get("/api/v1/me", headers=bearer(dropped["token"])))
    again = await client.delete(
        f"/api/v1/auth/tokens/{dropped['id']}", headers=bearer(kept["token"])
    )
    assert again.status_code == 404


# registration -----------------------------------------------------------------------------


async def test_registration_sends_a_verification_mail(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = new_email("mail")
    assert (await register(client, email)).status_code == 201
    messages = mailbox.wait_for(email)
    assert len(messages) == 1
    assert "confirm" in str(messages[0]["Subject"]).lower()
    assert "/verify-email/" in mailbox.last_link(email, "/verify-email/")


async def test_an_address_already_registered_is_refused(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = new_email("taken")
    assert (await register(client, email)).status_code == 201

    again = await register(client, email.upper(), name="Someone Else")

    assert again.status_code == 422
    errors = again.json()["errors"]
    assert list(errors) == ["email"]
    assert "already exists" in errors["email"]
    assert len(mailbox.wait_for(email, count=2, timeout=0.5)) == 1


# signing in for a token --------------------------------------------------------------------


async def test_wrong_password_and_unknown_email_get_the_same_401(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox)

    wrong_password = await create_token(client, email, password="not-the-password-at-all")
    unknown = await create_token(client, new_email("nobody"))

    assert_bearer_challenge(wrong_password)
    assert_bearer_challenge(unknown)
    assert wrong_password.json()["error"] == unknown.json()["error"]
    assert "email or password" in wrong_password.json()["error"]
    assert "token" not in wrong_password.json()


async def test_an_unverified_account_gets_403_saying_why(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = new_email("unverified")
    assert (await register(client, email)).status_code == 201

    response = await create_token(client, email)

    assert response.status_code == 403
    assert "token" not in response.json()
    message = response.json()["error"].lower()
    assert "confirm your email" in message
    assert "link in the mail" in message


async def test_the_right_password_with_wrong_case_email_works(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox)
    assert (await create_token(client, f"  {email.upper()} ")).status_code == 201


# validation: 422 with {"errors": {field: message}} ------------------------------------------

VALID_REGISTRATION = {"name": "Grace Hopper", "email": "grace@example.com", "password": PASSWORD}


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"email": "g@example.com", "password": PASSWORD}, "name", "required"),
        ({"name": "Grace", "password": PASSWORD}, "email", "required"),
        ({"name": "Grace", "email": "g@example.com"}, "password", "required"),
        ({**VALID_REGISTRATION, "name": 42}, "name", "expected text, got a whole number"),
        ({**VALID_REGISTRATION, "email": None}, "email", "expected text, got null"),
        ({**VALID_REGISTRATION, "password": ["a"]}, "password", "expected text, got a list"),
        ({**VALID_REGISTRATION, "name": "   "}, "name", "enter your name"),
        ({**VALID_REGISTRATION, "email": "grace.example.com"}, "email", "name@example.com"),
        ({**VALID_REGISTRATION, "email": "grace@"}, "email", "name@example.com"),
        ({**VALID_REGISTRATION, "password": "short"}, "password", "at least 8"),
        ({**VALID_REGISTRATION, "password": "x" * 129}, "password", "at most 128"),
        ({**VALID_REGISTRATION, "password": "password123"}, "password", "most common"),
        ({**VALID_REGISTRATION, "password": "Qwertyuiop"}, "password", "most common"),
        ({**VALID_REGISTRATION, "password": "Grace@Example.com"}, "password", "email address"),
    ],
)
async def test_registration_errors_are_named_by_field(
    client: AsyncTestClient, body: dict[str, Any], field: str, words: str
) -> None:
    # Every case is refused, so the fixed address never becomes an account.
    response = await client.post("/api/v1/auth/register", json=body)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/json")
    errors = response.json()["errors"]
    assert field in errors, errors
    assert words in errors[field].lower()
    assert all(isinstance(message, str) and message for message in errors.values())


async def test_several_invalid_fields_are_reported_together(client: AsyncTestClient) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"name": "", "email": "nope", "password": "123"}
    )
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"name", "email", "password"}


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"name": "Grace", ', b"", b"[]", b'"just a string"', b"null"],
)
async def test_a_body_that_is_not_a_json_object_is_422(
    client: AsyncTestClient, content: bytes
) -> None:
    response = await client.post(
        "/api/v1/auth/register", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert list(response.json()["errors"]) == ["body"]


async def test_token_request_errors_are_named_by_field(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox)

    missing = await client.post("/api/v1/auth/tokens", json={"email": email, "password": PASSWORD})
    wrong_type = await create_token(client, email, expires_in_days="soon")
    fraction = await create_token(client, email, expires_in_days=1.5)
    too_long = await create_token(client, email, expires_in_days=0)
    no_name = await create_token(client, email, name=" ")

    assert missing.status_code == 422
    assert missing.json() == {"errors": {"name": "This field is required."}}
    assert wrong_type.status_code == 422
    assert list(wrong_type.json()["errors"]) == ["expires_in_days"]
    assert "whole number" in wrong_type.json()["errors"]["expires_in_days"]
    assert fraction.status_code == 422
    assert list(fraction.json()["errors"]) == ["expires_in_days"]
    assert too_long.status_code == 422
    assert "between 1 and" in too_long.json()["errors"]["expires_in_days"]
    assert no_name.status_code == 422
    assert list(no_name.json()["errors"]) == ["name"]
    # None of these created a token.
    token = await issue_token(client, email)
    listed = await client.get("/api/v1/auth/tokens", headers=bearer(token["token"]))
    assert len(listed.json()) == 1


async def test_an_unknown_api_path_is_a_json_404(client: AsyncTestClient) -> None:
    response = await client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["status"] == 404

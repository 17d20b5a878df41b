"""Each protection of the API has a test here that fails when the protection is removed."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from app.accounts.repository import PiccoloAccountRepository
from app.accounts.tables import ApiToken
from tests.accounts.test_api import (
    PASSWORD,
    TOKEN_FORMAT,
    accept_client_address_header,
    assert_bearer_challenge,
    bearer,
    create_token,
    from_ip,
    in_app_loop,
    issue_token,
    new_email,
    register,
    verified_user,
)
from tests.fixtures.mailbox import Mailbox

SECURITY_HEADERS = {
    "content-security-policy": "script-src 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=()",
    "x-frame-options": "DENY",
}
# The only /api/v1 operations open without a token.
OPEN_OPERATIONS = {("POST", "/api/v1/auth/register"), ("POST", "/api/v1/auth/tokens")}


@pytest.fixture
def app(app: Litestar) -> Litestar:
    return accept_client_address_header(app)


async def token_row(client: AsyncTestClient, token_id: int) -> dict[str, Any]:
    row = await in_app_loop(client, ApiToken.select().where(ApiToken.id == token_id).first().run)
    assert row is not None
    return dict(row)


async def set_token_column(client: AsyncTestClient, token_id: int, **values: Any) -> None:
    columns = {ApiToken._meta.get_column_by_name(name): value for name, value in values.items()}
    await in_app_loop(client, ApiToken.update(columns).where(ApiToken.id == token_id).run)


async def fresh_minute(margin: float = 15.0) -> None:
    """Wait, if need be, so a burst of requests fits in one fixed one-minute window."""
    left = 60 - time.time() % 60
    if left < margin:
        await asyncio.sleep(left + 0.2)


# tokens at rest -----------------------------------------------------------------------------


async def test_only_the_sha256_of_the_secret_is_stored(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox)
    issued = await issue_token(client, email)
    match = TOKEN_FORMAT.match(issued["token"])
    assert match

    row = await token_row(client, issued["id"])

    assert row["token_hash"] == hashlib.sha256(match["secret"].encode()).hexdigest()
    for value in row.values():
        assert match["secret"] not in str(value)
    # Every token of the run: the secret is in no row, under no column.
    every_row = await in_app_loop(client, ApiToken.select().run)
    every_value = " ".join(str(v) for row in every_row for v in row.values())
    assert match["secret"] not in every_value


# tokens refused -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer abc",
        "Bearer 1|short",
        "Bearer 999999999|" + "x" * 40,
        "Bearer |" + "x" * 54,
        "Bearer -1|" + "x" * 54,
        "Bearer 1" + "0" * 30 + "|" + "x" * 54,
    ],
)
async def test_missing_or_malformed_tokens_get_401(
    client: AsyncTestClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    assert_bearer_challenge(await client.get("/api/v1/me", headers=headers))
    assert_bearer_challenge(await client.get("/api/v1/auth/tokens", headers=headers))


async def test_a_real_token_id_with_a_wrong_secret_gets_401(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox)
    issued = await issue_token(client, email)
    secret = TOKEN_FORMAT.match(issued["token"])["secret"]  # type: ignore[index]
    forged = f"{issued['id']}|{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"

    assert_bearer_challenge(await client.get("/api/v1/me", headers=bearer(forged)))
    assert_bearer_challenge(await client.get("/api/v1/me", headers=bearer(f"{issued['id']}|")))
    # The lowercase scheme is fine; the real token still works.
    me = await client.get("/api/v1/me", headers={"Authorization": f"bearer {issued['token']}"})
    assert me.status_code == 200


async def test_an_expired_token_is_refused(client: AsyncTestClient, mailbox: Mailbox) -> None:
    email = await verified_user(client, mailbox)
    issued = await issue_token(client, email, expires_in_days=1)
    assert (await client.get("/api/v1/me", headers=bearer(issued["token"]))).status_code == 200

    await set_token_column(
        client, issued["id"], expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )

    assert_bearer_challenge(await client.get("/api/v1/me", headers=bearer(issued["token"])))


async def test_a_revoked_token_is_refused(client: AsyncTestClient, mailbox: Mailbox) -> None:
    email = await verified_user(client, mailbox)
    issued = await issue_token(client, email)
    revoked = await client.delete(
        f"/api/v1/auth/tokens/{issued['id']}", headers=bearer(issued["token"])
    )
    assert revoked.status_code == 204

    assert_bearer_challenge(await client.get("/api/v1/me", headers=bearer(issued["token"])))
    assert_bearer_challenge(
        await client.get("/api/v1/auth/tokens", headers=bearer(issued["token"]))
    )
    gone = await in_app_loop(client, ApiToken.select().where(ApiToken.id == issued["id"]).run)
    assert gone == []


async def test_a_token_whose_owner_is_no_longer_verified_gets_403(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox)
    issued = await issue_token(client, email)
    me = await client.get("/api/v1/me", headers=bearer(issued["token"]))
    # What an email change does: the new address must be confirmed before the API opens.
    user_id = me.json()["id"]
    await in_app_loop(
        client, lambda: PiccoloAccountRepository().update(user_id, email_verified_at=None)
    )

    response = await client.get("/api/v1/me", headers=bearer(issued["token"]))

    assert response.status_code == 403
    assert "confirm your email" in response.json()["error"].lower()


async def test_another_users_token_is_not_found(client: AsyncTestClient, mailbox: Mailbox) -> None:
    mine = await issue_token(client, await verified_user(client, mailbox, "me"))
    theirs = await issue_token(client, await verified_user(client, mailbox, "them"))

    response = await client.delete(
        f"/api/v1/auth/tokens/{theirs['id']}", headers=bearer(mine["token"])
    )

    assert response.status_code == 404
    assert response.json()["status"] == 404
    assert (await client.get("/api/v1/me", headers=bearer(theirs["token"]))).status_code == 200
    never = await client.delete("/api/v1/auth/tokens/999999999", headers=bearer(mine["token"]))
    assert never.status_code == 404
    assert never.json()["error"] == response.json()["error"]


async def test_every_other_api_route_needs_a_token(app: Litestar, client: AsyncTestClient) -> None:
    """Holds for the routes later features add under /api/v1 too."""
    checked = 0
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/api/v1"):
            continue
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            if (method, route.path) in OPEN_OPERATIONS:
                continue
            response = await client.request(method, path, json={})
            assert response.status_code == 401, f"{method} {route.path}: {response.status_code}"
            assert response.headers["www-authenticate"].startswith("Bearer")
            checked += 1
    assert checked >= 3


# last use ---------------------------------------------------------------------------------


async def test_last_use_is_recorded_at_most_once_a_minute(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox)
    issued = await issue_token(client, email)
    row = await token_row(client, issued["id"])
    assert row["last_used_at"] is None
    assert row["last_used_ip"] is None

    first = await client.get(
        "/api/v1/me", headers={**bearer(issued["token"]), **from_ip("192.0.2.10")}
    )
    assert first.status_code == 200
    used = await token_row(client, issued["id"])
    assert used["last_used_ip"] == "192.0.2.10"
    assert abs(used["last_used_at"] - datetime.now(UTC)) < timedelta(seconds=30)

    # Within the minute: not written again, whatever the address.
    again = await client.get(
        "/api/v1/me", headers={**bearer(issued["token"]), **from_ip("192.0.2.99")}
    )
    assert again.status_code == 200
    unchanged = await token_row(client, issued["id"])
    assert unchanged["last_used_at"] == used["last_used_at"]
    assert unchanged["last_used_ip"] == "192.0.2.10"

    # A minute later it is.
    await set_token_column(
        client, issued["id"], last_used_at=used["last_used_at"] - timedelta(minutes=2)
    )
    later = await client.get(
        "/api/v1/me", headers={**bearer(issued["token"]), **from_ip("192.0.2.99")}
    )
    assert later.status_code == 200
    touched = await token_row(client, issued["id"])
    assert touched["last_used_ip"] == "192.0.2.99"
    assert touched["last_used_at"] > used["last_used_at"] - timedelta(seconds=1)

    listed = await client.get("/api/v1/auth/tokens", headers=bearer(issued["token"]))
    assert listed.json()[0]["last_used_ip"] == "192.0.2.99"


# rate limits ------------------------------------------------------------------------------


async def test_the_121st_request_in_a_minute_is_refused(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox)
    issued = await issue_token(client, email)
    other = await issue_token(client, email, name="other")
    await fresh_minute()

    remaining = []
    for _ in range(120):
        response = await client.get("/api/v1/me", headers=bearer(issued["token"]))
        assert response.status_code == 200
        assert response.headers["ratelimit-limit"] == "120"
        assert 0 < int(response.headers["ratelimit-reset"]) <= 60
        remaining.append(int(response.headers["ratelimit-remaining"]))
    assert remaining == list(range(119, -1, -1))

    refused = await client.get("/api/v1/me", headers=bearer(issued["token"]))
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-limit"] == "120"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.json()["status"] == 429
    # Every route behind the guard shares the token's budget...
    listed = await client.get("/api/v1/auth/tokens", headers=bearer(issued["token"]))
    assert listed.status_code == 429
    # ...and another token has its own.
    fresh = await client.get("/api/v1/me", headers=bearer(other["token"]))
    assert fresh.status_code == 200
    assert fresh.headers["ratelimit-remaining"] == "119"


async def test_rate_limit_headers_are_on_every_authenticated_response(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox)
    issued = await issue_token(client, email)
    await fresh_minute(margin=5)

    listed = await client.get("/api/v1/auth/tokens", headers=bearer(issued["token"]))
    not_found = await client.delete(
        "/api/v1/auth/tokens/999999999", headers=bearer(issued["token"])
    )
    deleted = await client.delete(
        f"/api/v1/auth/tokens/{issued['id']}", headers=bearer(issued["token"])
    )

    assert [r.status_code for r in (listed, not_found, deleted)] == [200, 404, 204]
    assert [r.headers["ratelimit-remaining"] for r in (listed, not_found, deleted)] == [
        "119",
        "118",
        "117",
    ]
    # Unauthenticated answers carry none: nothing was counted.
    anonymous = await client.get("/api/v1/me")
    assert "ratelimit-limit" not in anonymous.headers


async def test_the_11th_registration_from_one_address_in_an_hour_is_refused(
    client: AsyncTestClient,
) -> None:
    for number in range(10):
        response = await register(client, new_email(f"r{number}"), headers=from_ip("203.0.113.5"))
        assert response.status_code == 201, response.text

    refused = await register(client, new_email("r11"), headers=from_ip("203.0.113.5"))

    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    assert refused.json()["status"] == 429
    elsewhere = await register(client, new_email("r12"), headers=from_ip("203.0.113.6"))
    assert elsewhere.status_code == 201


async def test_the_6th_token_request_in_a_minute_is_refused(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox)
    await fresh_minute(margin=10)
    here = from_ip("203.0.113.20")
    for _ in range(5):
        wrong = await create_token(client, email, password="wrong password!", headers=here)
        assert wrong.status_code == 401

    # The right password does not help now; the address is lower-cased for the count.
    refused = await create_token(client, email.upper(), headers=here)

    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert "token" not in refused.json()
    # The limit is per (email, address): from elsewhere the owner still gets in.
    elsewhere = await create_token(client, email, headers=from_ip("203.0.113.21"))
    assert elsewhere.status_code == 201


async def test_100_failures_an_hour_lock_the_account_whatever_the_address(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox)
    for attempt in range(100):
        # Four attempts per address stay under the per-address limit.
        address = from_ip(f"10.0.{attempt // 4}.1")
        wrong = await create_token(
            client, email, password=f"guess number {attempt}", headers=address
        )
        assert wrong.status_code == 401

    refused = await create_token(client, email, headers=from_ip("10.1.0.1"))

    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0


# responses --------------------------------------------------------------------------------


async def test_security_headers_on_json_and_json_errors(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox)
    issued = await issue_token(client, email)
    responses = {
        "ok": await client.get("/api/v1/me", headers=bearer(issued["token"])),
        "created": await register(client, new_email("headers")),
        "unauthorized": await client.get("/api/v1/me"),
        "invalid": await client.post("/api/v1/auth/register", json={}),
        "not found": await client.get("/api/v1/nothing-here"),
        "wrong password": await create_token(client, email, password="not it at all"),
    }
    for label, response in responses.items():
        assert response.headers["content-type"].startswith("application/json"), label
        for name, expected in SECURITY_HEADERS.items():
            assert expected in response.headers.get(name, ""), f"{label}: {name}"
        assert response.headers["x-request-id"], label


async def test_auth_events_are_logged_without_tokens_or_passwords(
    client: AsyncTestClient, mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="crm.auth")
    email = await verified_user(client, mailbox)
    await create_token(client, email, password="a wrong password")
    issued = await issue_token(client, email)
    await client.delete(f"/api/v1/auth/tokens/{issued['id']}", headers=bearer(issued["token"]))
    await client.get("/api/v1/me", headers=bearer(issued["token"]))

    records = [r for r in caplog.records if r.name == "crm.auth"]
    events = [getattr(r, "fields", {}).get("event") for r in records]
    for event in ("register", "login_failed", "token_created", "token_revoked"):
        assert event in events, events
    assert "token_auth_failed" in events
    secret = TOKEN_FORMAT.match(issued["token"])["secret"]  # type: ignore[index]
    for record in records:
        logged = f"{record.getMessage()} {getattr(record, 'fields', {})}"
        assert secret not in logged
        assert PASSWORD not in logged
        assert "a wrong password" not in logged
        assert getattr(record, "fields", {}).get("request_id") not in (None, "-")

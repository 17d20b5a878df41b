"""What a request puts in its audit entries: the actor, the client address (trusting
X-Forwarded-For only from TRUSTED_PROXIES), user agent and request id."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest
from litestar import Litestar, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.stores.redis import RedisStore
from litestar.testing import AsyncTestClient

from app.accounts.auth import current_account
from app.accounts.bearer import bearer_guard
from app.audit.service import AuditService
from app.customers.models import CustomerInput
from app.customers.service import CustomerService
from app.lib.requests import client_ip
from app.lib.throttle import Throttle
from app.main import create_app
from app.settings import Settings, SettingsError
from tests.accounts.test_api import (
    CLIENT_IP,
    accept_client_address_header,
    bearer,
    in_app_loop,
    issue_token,
    verified_user,
)
from tests.fixtures.mailbox import Mailbox
from tests.fixtures.profiles import SECRET

PROXIES = ("10.0.0.0/8", "2001:db8::/32")


def scope(peer: str | None, *forwarded: str) -> dict[str, Any]:
    return {
        "type": "http",
        "client": (peer, 443) if peer else None,
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded],
    }


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # Not from a proxy: the header is anyone's to write, and ignored.
        ("198.51.100.7", ["203.0.113.1"], "198.51.100.7"),
        # From a trusted proxy: its client.
        ("10.1.2.3", ["203.0.113.1"], "203.0.113.1"),
        # A client's own forged entries sit left of what the proxy appended.
        ("10.1.2.3", ["6.6.6.6, 203.0.113.1"], "203.0.113.1"),
        # Through two trusted proxies (one header each, or both in one).
        ("10.1.2.3", ["203.0.113.1", "10.9.9.9"], "203.0.113.1"),
        ("10.1.2.3", ["203.0.113.1, 10.9.9.9"], "203.0.113.1"),
        # Everything trusted: the farthest address.
        ("10.1.2.3", ["10.4.4.4"], "10.4.4.4"),
        # No header, or nonsense in it: the nearest address vouched for.
        ("10.1.2.3", [], "10.1.2.3"),
        ("10.1.2.3", ["not-an-ip"], "10.1.2.3"),
        ("10.1.2.3", ["203.0.113.1, garbage"], "10.1.2.3"),
        # Ports and IPv6.
        ("10.1.2.3", ["203.0.113.1:51234"], "203.0.113.1"),
        ("2001:db8::5", ["[2001:db8:1::9]:443, 2001:db8::6"], "2001:db8:1::9"),
        ("2001:db9::5", ["203.0.113.1"], "2001:db9::5"),
    ],
)
def test_client_ip_believes_forwarded_for_only_from_trusted_proxies(
    peer: str, forwarded: list[str], expected: str
) -> None:
    assert client_ip(scope(peer, *forwarded), PROXIES) == expected  # type: ignore[arg-type]


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_ip(scope("10.1.2.3", "203.0.113.1"), ()) == "10.1.2.3"  # type: ignore[arg-type]
    assert client_ip(scope(None), PROXIES) is None  # type: ignore[arg-type]


def test_the_setting_lists_addresses_and_networks() -> None:
    settings = Settings.from_env(
        {"SECRET_KEY": SECRET, "TRUSTED_PROXIES": " 10.0.0.0/8, 127.0.0.1 ,::1"}
    )
    assert settings.trusted_proxies == ("10.0.0.0/8", "127.0.0.1/32", "::1/128")
    assert Settings.from_env({"SECRET_KEY": SECRET}).trusted_proxies == ()
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        Settings.from_env({"SECRET_KEY": SECRET, "TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"})


def test_audit_day_settings_are_read_and_checked() -> None:
    defaults = Settings.from_env({"SECRET_KEY": SECRET})
    assert (defaults.audit_archive_after_days, defaults.audit_retention_days) == (90, 2555)
    custom = Settings.from_env(
        {"SECRET_KEY": SECRET, "AUDIT_ARCHIVE_AFTER_DAYS": "30", "AUDIT_RETENTION_DAYS": "0"}
    )
    assert (custom.audit_archive_after_days, custom.audit_retention_days) == (30, 0)
    with pytest.raises(SettingsError, match="AUDIT_RETENTION_DAYS"):
        Settings.from_env(
            {"SECRET_KEY": SECRET, "AUDIT_ARCHIVE_AFTER_DAYS": "90", "AUDIT_RETENTION_DAYS": "30"}
        )
    with pytest.raises(SettingsError, match="AUDIT_ARCHIVE_AFTER_DAYS"):
        Settings.from_env({"SECRET_KEY": SECRET, "AUDIT_ARCHIVE_AFTER_DAYS": "0"})


# --- through the app ----------------------------------------------------------------------


@post("/api/v1/test-audit/customers", guards=[bearer_guard], status_code=201)
async def create_customer(
    request: Request,
    data: JSONBody[dict[str, str]],
    customers: NamedDependency[CustomerService],
) -> dict[str, Any]:
    """Test-only: a write through the app's own CustomerService dependency."""
    account = current_account(request)
    assert account is not None
    created = await customers.create(account.id, CustomerInput(**data))
    return {"slug": created.slug}


@pytest.fixture
def app(settings: Settings) -> Litestar:
    app = create_app(replace(settings, trusted_proxies=("10.0.0.0/8",)))
    limits = app.stores.get("rate_limit")
    if isinstance(limits, RedisStore):
        isolated = limits.with_namespace(uuid.uuid4().hex)
        app.stores.register("rate_limit", isolated, allow_override=True)
        app.state.throttle = Throttle(isolated)
    app.register(create_customer)
    return accept_client_address_header(app)


async def test_a_request_records_its_actor_client_address_agent_and_id(
    client: AsyncTestClient, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox, "auditor")
    token = (await issue_token(client, email))["token"]
    me = (await client.get("/api/v1/me", headers=bearer(token))).json()

    async def create(name: str, peer: str, forwarded: str | None) -> None:
        headers = bearer(token) | {
            CLIENT_IP: peer,
            "user-agent": f"agent-{name}",
            "x-request-id": f"request-{name}",
        }
        if forwarded:
            headers["x-forwarded-for"] = forwarded
        body = {"name": name, "email": f"{name}@example.com"}
        response = await client.post("/api/v1/test-audit/customers", json=body, headers=headers)
        assert response.status_code == 201, response.text

    await create("proxied", "10.0.0.7", "198.51.100.23")
    await create("direct", "192.0.2.44", "198.51.100.23")  # not a proxy: header ignored
    await create("plain", "192.0.2.45", None)

    entries = await in_app_loop(client, lambda: AuditService().repository.walk(me["id"], 0, 10))
    assert [(e.ip, e.user_agent, e.request_id, e.actor_id, e.event) for e in entries] == [
        ("198.51.100.23", "agent-proxied", "request-proxied", me["id"], "created"),
        ("192.0.2.44", "agent-direct", "request-direct", me["id"], "created"),
        ("192.0.2.45", "agent-plain", "request-plain", me["id"], "created"),
    ]

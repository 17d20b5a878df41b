"""Every route of the app, found from the router (a new route is covered without touching
this file): another user's resources are "not found", nobody signed out gets in, and every
answer carries the security headers.

One person (the owner) makes one of each kind of resource through the API: a customer
(created, then changed, so it has a history), an API token, an import, an export when the
app has exports. Then, for every route with a path parameter, every method it accepts is
sent with the owner's ids:

- by a second verified person, signed in on the browser session (with a valid CSRF
  token) and with a bearer token of their own: the answer is 404, whatever the method;
- by nobody: the API answers 401 and the pages send the person to sign in;
- by the owner, for the pages and API reads: not 404 (so the ids used are real ones).

A path parameter this test does not know makes it fail with the route's name, so that a
new kind of resource gets its owner's id here before it can ship.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from tests.accounts.conftest import csrf_token, html, sign_in
from tests.accounts.test_api import PASSWORD, bearer, issue_token, verified_user
from tests.fixtures.mailbox import Mailbox

# Routes whose path parameters are not a user's resource: signed links carry their own
# proof (verification and reset tokens, file downloads), and the static and schema files
# are public. Each is tested where it is built (tests/accounts, tests/lib).
NOT_RESOURCES = {"token", "key", "file_path", "path"}
READS = {"GET"}
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}
# Admin pages are 404 for anyone who is not an admin, whatever the id.
ADMIN_PREFIX = "/admin/"
CSV = (
    b"Name,Email,Phone\r\n"
    b"Ana Souza,ana.souza@example.com,+55 11 5555 0101\r\n"
    b"Broken row without an email,,\r\n"
)


@dataclass
class Resources:
    slug: str
    entry_id: int
    token_id: int
    import_id: int
    export_id: int | None


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    template: str

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/")


def _with_params(route: HTTPRoute, values: dict[str, Any]) -> str:
    path = route.path_format
    for name, value in values.items():
        path = path.replace("{" + name + "}", str(value))
    return path


def _transfer_ids(path: str, owned: Resources) -> list[int]:
    if "/imports" in path:
        return [owned.import_id]
    if "/exports" in path:
        return [owned.export_id] if owned.export_id is not None else []
    return [owned.import_id] + ([owned.export_id] if owned.export_id is not None else [])


def resource_calls(app: Litestar, owned: Resources) -> Iterator[Call]:
    """Each route with a resource in its path, each method it takes, with the owner's ids."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        names = set(route.path_parameters)
        if not names or names & NOT_RESOURCES:
            continue
        methods = sorted(set(route.methods) - {"OPTIONS", "HEAD"})
        template = route.path
        choices: list[dict[str, Any]] = [{}]
        for name in sorted(names):
            if name == "slug":
                values: list[Any] = [owned.slug]
            elif name == "field":
                values = ["name"]
            elif name == "entry_id":
                values = [owned.entry_id]
            elif name == "token_id":
                values = [owned.token_id]
            elif name == "transfer_id":
                values = _transfer_ids(template, owned)
            elif template.startswith(ADMIN_PREFIX):
                values = ["1"]
            else:
                pytest.fail(
                    f"{template}: the path parameter {name!r} is new to this test; "
                    "add the owner's id for it in resource_calls"
                )
            choices = [{**choice, name: value} for choice in choices for value in values]
        for choice in choices:
            path = _with_params(route, choice)
            for method in methods:
                yield Call(method, path, template)


def assert_security_headers(response: Any, call: Call) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (call, name, dict(response.headers))
    assert "default-src" in response.headers.get("content-security-policy", ""), call
    for cookie in response.headers.get_list("set-cookie"):
        lowered = cookie.lower()
        assert "samesite=lax" in lowered or "samesite=strict" in lowered, (call, cookie)
        if lowered.startswith("session="):
            assert "httponly" in lowered, (call, cookie)


async def send(
    client: AsyncTestClient, call: Call, *, headers: dict[str, str] | None = None
) -> Any:
    body: dict[str, Any] = {}
    if call.method in ("POST", "PATCH", "PUT"):
        if call.is_api:
            body["json"] = {}
        else:
            body["data"] = {"value": "x", "confirm": "yes"}
    return await client.request(
        call.method, call.path, headers=headers or {}, follow_redirects=False, **body
    )


async def make_resources(client: AsyncTestClient, mailbox: Mailbox) -> tuple[str, Resources]:
    email = await verified_user(client, mailbox, "owner")
    token = (await issue_token(client, email))["token"]
    auth = bearer(token)
    created = await client.post(
        "/api/v1/customers",
        json={"name": "Owner's Customer", "email": "kept.private@example.com"},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    slug = created.json()["slug"]
    changed = await client.patch(
        f"/api/v1/customers/{slug}", json={"organization": "Private Ltd"}, headers=auth
    )
    assert changed.status_code == 200, changed.text
    entries = await client.get("/api/v1/audit", headers=auth)
    assert entries.status_code == 200, entries.text
    tokens = await client.get("/api/v1/auth/tokens", headers=auth)
    assert tokens.status_code == 200, tokens.text
    started = await client.post(
        "/api/v1/imports", files={"file": ("people.csv", CSV, "text/csv")}, headers=auth
    )
    assert started.status_code == 202, started.text
    export_id = None
    if any(route.path == "/api/v1/exports" for route in client.app.routes):
        exported = await client.post("/api/v1/exports", json={"format": "csv"}, headers=auth)
        assert exported.status_code == 202, exported.text
        export_id = int(exported.json()["id"])
    token_rows = tokens.json()
    token_rows = token_rows["data"] if isinstance(token_rows, dict) else token_rows
    return email, Resources(
        slug=slug,
        entry_id=int(entries.json()["data"][0]["id"]),
        token_id=int(token_rows[0]["id"]),
        import_id=int(started.json()["id"]),
        export_id=export_id,
    )


async def test_every_route_hides_another_users_resources(
    client: AsyncTestClient, app: Litestar, mailbox: Mailbox
) -> None:
    owner_email, owned = await make_resources(client, mailbox)
    calls = list(resource_calls(app, owned))
    assert len({call.template for call in calls}) >= 10, "the sweep found too few routes"

    # Nobody signed in.
    client.cookies.clear()
    for call in calls:
        response = await send(client, call)
        assert_security_headers(response, call)
        if call.is_api:
            assert response.status_code == 401, (call, response.status_code, response.text)
        elif call.template.startswith(ADMIN_PREFIX):
            assert response.status_code in (303, 403, 404), (call, response.status_code)
        elif call.method in READS:
            assert response.status_code == 303, (call, response.status_code)
            assert response.headers["location"].startswith("/login"), call
        else:
            # A form post without a session has no CSRF token either: refused before
            # anything else looks at it.
            assert response.status_code in (303, 403), (call, response.status_code)

    # Someone else, verified, signed in on the browser and holding a token of their own.
    intruder_email = await verified_user(client, mailbox, "intruder")
    intruder_token = (await issue_token(client, intruder_email))["token"]
    client.cookies.clear()
    assert (await sign_in(client, intruder_email, PASSWORD)).status_code == 303
    page = html(await client.get("/customers"))
    csrf = {"x-csrftoken": csrf_token(page)}
    for call in calls:
        headers = bearer(intruder_token) if call.is_api else csrf
        response = await send(client, call, headers=headers)
        assert_security_headers(response, call)
        assert response.status_code == 404, (call, response.status_code, response.text[:300])
        assert "kept.private@example.com" not in response.text, call

    # The owner reaches the same pages: the ids above were real.
    client.cookies.clear()
    assert (await sign_in(client, owner_email, PASSWORD)).status_code == 303
    owner_token = (await issue_token(client, owner_email))["token"]
    for call in calls:
        if call.method not in READS or call.template.startswith(ADMIN_PREFIX):
            continue
        if re.search(r"errors|download|restore", call.template):
            continue  # depends on the job having finished, or is a POST-only action
        headers = bearer(owner_token) if call.is_api else {}
        response = await send(client, call, headers=headers)
        assert response.status_code != 404, (call, response.text[:300])


async def test_every_page_without_parameters_sends_the_security_headers(
    client: AsyncTestClient, app: Litestar, mailbox: Mailbox
) -> None:
    email = await verified_user(client, mailbox, "headers")
    client.cookies.clear()
    assert (await sign_in(client, email, PASSWORD)).status_code == 303
    seen = 0
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_parameters:
            continue
        if "GET" not in route.methods:
            continue
        call = Call("GET", route.path, route.path)
        response = await send(client, call)
        assert response.status_code < 500, (call, response.status_code)
        assert_security_headers(response, call)
        seen += 1
    assert seen >= 15

"""Schemathesis against the app's own OpenAPI schema, with real tokens, on a real server.

For every operation in `/schema/openapi.json`, generated requests (valid and invalid
bodies, odd strings in paths and queries) go to the app served by uvicorn on the embedded
default, signed with a real person's bearer token. Each answer must not be a server error,
must use a status code the schema lists for that operation, and must match the schema
documented for that status (content type and body).

Token revocation is left out of the generated calls: a generated id would revoke the very
tokens the run signs with (revocation is tested in tests/accounts).
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.browser import LiveServer, embedded_server

PASSWORD = "fuzzing-orchard-violet-4471"
EXAMPLES = 25
TOKENS = 3  # used in turn
LEFT_OUT = {("DELETE", "/api/v1/auth/tokens/{token_id}")}
# Signing in and registering answer 401, 422 or 429 to generated strangers: that is right.
OPEN = {"POST /api/v1/auth/tokens", "POST /api/v1/auth/register"}


def _verification_link(mail_dir: Path, email: str) -> str:
    for path in sorted(mail_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if email not in str(message["To"]):
            continue
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        found = re.search(r"https?://\S+/verify-email/\S+", body.get_content())
        if found:
            return found.group(0)
    raise AssertionError(f"no verification mail to {email} in {mail_dir}")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # A server of its own: the run sends a few thousand requests a minute per token.
    with embedded_server(tmp_path_factory.mktemp("fuzz"), API_RATE_LIMIT="100000") as server:
        yield server


@pytest.fixture(scope="module")
def tokens(fuzz_server: LiveServer) -> list[str]:
    live_server = fuzz_server
    email = "fuzzer@example.com"
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        registered = client.post(
            "/api/v1/auth/register",
            json={"name": "Fuzz Tester", "email": email, "password": PASSWORD},
        )
        assert registered.status_code == 201, registered.text
        link = _verification_link(Path(live_server.env["MAIL_URL"].removeprefix("file://")), email)
        assert client.get(link).status_code in (200, 303)
        issued = []
        for number in range(TOKENS):
            response = client.post(
                "/api/v1/auth/tokens",
                json={"email": email, "password": PASSWORD, "name": f"fuzz {number}"},
            )
            assert response.status_code == 201, response.text
            issued.append(response.json()["token"])
        # Something for the read, change and delete operations to find.
        for number in range(3):
            created = client.post(
                "/api/v1/customers",
                json={"name": f"Fuzz Customer {number}", "email": f"c{number}@example.com"},
                headers={"Authorization": f"Bearer {issued[0]}"},
            )
            assert created.status_code == 201, created.text
    return issued


def _load_schema() -> Any:
    """The schema as the app serves it, built without a server (the same object)."""
    from litestar.serialization import encode_json

    from app.main import create_app
    from app.settings import Settings

    app = create_app(Settings(secret_key="schema-only-secret-key-0123456789abcdef"))
    document = json.loads(encode_json(app.openapi_schema.to_schema()))
    return schemathesis.openapi.from_dict(document)


SCHEMA = _load_schema()
OPERATIONS = {
    operation.label: operation
    for operation in (result.ok() for result in SCHEMA.get_all_operations())
    if (operation.method.upper(), operation.path) not in LEFT_OUT
}
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.parametrize("label", sorted(OPERATIONS))
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented(
    label: str, mode: GenerationMode, fuzz_server: LiveServer, tokens: list[str]
) -> None:
    live_server = fuzz_server
    operation = OPERATIONS[label]
    turns = itertools.count()
    statuses: Counter[int] = Counter()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def answers_as_documented(case: Any) -> None:
        # The generated Authorization header (the schema's bearer scheme) is replaced by a
        # real token: the point is to reach the handlers.
        headers = {
            name: value
            for name, value in (case.headers or {}).items()
            if name.lower() != "authorization"
        }
        headers["Authorization"] = f"Bearer {tokens[next(turns) % len(tokens)]}"
        response = case.call(base_url=live_server.url, headers=headers)
        statuses[response.status_code] += 1
        assert response.status_code < 500, (label, response.status_code, response.text)
        case.validate_response(response, checks=CHECKS)

    answers_as_documented()
    print(label, mode.value, dict(sorted(statuses.items())))
    if label not in OPEN:
        # The run reached the handlers: not everything was turned away at the door.
        assert set(statuses) - {401, 429}, statuses

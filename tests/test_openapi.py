"""The published OpenAPI schema: what a client generator or a person reading /schema relies on."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

BEARER = [{"bearer": []}]
# The only operations under /api/v1 that are open without a token.
OPEN = {("post", "/api/v1/auth/register"), ("post", "/api/v1/auth/tokens")}
METHODS = ("get", "put", "post", "patch", "delete")


@pytest.fixture
async def schema(client: AsyncTestClient) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operation(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["paths"][path][method]
    return found


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        resolved: dict[str, Any] = schema["components"]["schemas"][name]
        return resolved
    return node


def body_schema(schema: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    return resolve(schema, response["content"]["application/json"]["schema"])


def api_operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, item[method])
        for path, item in schema["paths"].items()
        if path.startswith("/api/v1/")
        for method in METHODS
        if method in item
    ]


async def test_the_bearer_scheme_is_declared(schema: dict[str, Any]) -> None:
    scheme = schema["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"


async def test_the_auth_operations_are_listed_with_tags(schema: dict[str, Any]) -> None:
    expected = {
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/auth/tokens"),
        ("get", "/api/v1/auth/tokens"),
        ("delete", "/api/v1/auth/tokens/{token_id}"),
        ("get", "/api/v1/me"),
    }
    listed = {(method, path) for method, path, _ in api_operations(schema)}
    assert expected <= listed
    for method, path in expected:
        found = operation(schema, method, path)
        assert found["tags"], (method, path)
        assert found["summary"], (method, path)


async def test_protected_operations_require_the_bearer_token(schema: dict[str, Any]) -> None:
    for method, path, found in api_operations(schema):
        if (method, path) in OPEN:
            assert "security" not in found, (method, path)
        else:
            assert found.get("security") == BEARER, (method, path)
            assert "401" in found["responses"], (method, path)


async def test_response_models_are_documented(schema: dict[str, Any]) -> None:
    registered = body_schema(
        schema, operation(schema, "post", "/api/v1/auth/register")["responses"]["201"]
    )
    assert set(registered["properties"]) == {"id", "name", "email", "email_verified"}

    issued = body_schema(
        schema, operation(schema, "post", "/api/v1/auth/tokens")["responses"]["201"]
    )
    assert set(issued["properties"]) == {"id", "name", "token", "expires_at"}

    listed = operation(schema, "get", "/api/v1/auth/tokens")["responses"]["200"]
    item = resolve(schema, listed["content"]["application/json"]["schema"]["items"])
    assert set(item["properties"]) == {
        "id",
        "name",
        "created_at",
        "last_used_at",
        "last_used_ip",
        "expires_at",
    }
    assert "token" not in item["properties"]
    assert "token_hash" not in item["properties"]

    assert "204" in operation(schema, "delete", "/api/v1/auth/tokens/{token_id}")["responses"]
    me = body_schema(schema, operation(schema, "get", "/api/v1/me")["responses"]["200"])
    assert "email_verified" in me["properties"]

    request = resolve(
        schema,
        operation(schema, "post", "/api/v1/auth/tokens")["requestBody"]["content"][
            "application/json"
        ]["schema"],
    )
    assert set(request["required"]) == {"email", "password", "name"}
    assert "expires_in_days" in request["properties"]


async def test_invalid_input_is_documented_as_422_not_400(schema: dict[str, Any]) -> None:
    for method, path, found in api_operations(schema):
        assert "400" not in found["responses"], (method, path)
        if "requestBody" in found:
            errors = body_schema(schema, found["responses"]["422"])
            assert "errors" in errors["properties"], (method, path)

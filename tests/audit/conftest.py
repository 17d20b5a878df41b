"""The audit feature on both profiles, each test on a database and storage of its own.

The archive and retention jobs scan every user's entries, so a test must not share its
database with the rest of the run: the embedded profile copies the migrated SQLite
template, the full stack clones a migrated PostgreSQL template database (fast) and
gets a bucket of its own on the moto S3 server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from app.audit.context import AuditContext
from app.audit.service import AuditService
from app.customers.models import CustomerChange
from app.customers.repository import PiccoloCustomerRepository
from app.customers.service import CustomerService
from app.lib.storage import Storage
from app.settings import Settings
from tests.customers.conftest import counting_queries
from tests.fixtures.profiles import SECRET, embedded_settings
from tests.fixtures.services import _admin, _with_database, run_migrations, scratch_postgres

# A fixed "now" for the tests' clock: entries are recorded at times the test chooses.
START = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@contextmanager
def counting_statements(engine: Engine) -> Iterator[list[str]]:
    """Every statement sent to the database while inside, as it is sent.

    On PostgreSQL at the driver (the recorder talks to asyncpg directly), elsewhere where
    Piccolo sends them."""
    if not isinstance(engine, PostgresEngine):
        with counting_queries(engine) as counted:
            yield counted.statements
        return
    import asyncpg.connection

    statements: list[str] = []
    original = asyncpg.connection.Connection.fetch

    async def fetch(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(query)
        return await original(self, query, *args, **kwargs)

    asyncpg.connection.Connection.fetch = fetch  # type: ignore[method-assign]
    try:
        yield statements
    finally:
        asyncpg.connection.Connection.fetch = original  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def audit_template_url(postgres_server_url: str) -> Iterator[str]:
    """A migrated database, only ever used as the template of the tests' own."""
    with scratch_postgres(postgres_server_url, "audit_template") as url:
        run_migrations(url)
        yield url


@pytest.fixture(params=["embedded", "fullstack"])
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[Settings]:
    if request.param == "embedded":
        yield embedded_settings(tmp_path, sqlite_template)
        return
    server_url = request.getfixturevalue("postgres_server_url")
    template = request.getfixturevalue("audit_template_url").rsplit("/", 1)[1]
    redis_url = request.getfixturevalue("redis_url")
    s3_endpoint = request.getfixturevalue("s3_endpoint")
    name = f"crm_audit_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield Settings(
            secret_key=SECRET,
            database_url=_with_database(server_url, name),
            redis_url=redis_url,
            s3_endpoint=s3_endpoint,
            s3_access_key="testing",
            s3_secret_key="testing",
            s3_bucket=f"crm-{uuid.uuid4().hex[:12]}",
            s3_secure=False,
            storage_dir=str(tmp_path / "unused"),
            mail_url=f"file://{tmp_path / 'mail'}",
            app_url="http://testserver.local",
        )
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Clock:
    """The service's clock, moved by the test."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@dataclass
class EventLog:
    events: list[tuple[str, CustomerChange]] = field(default_factory=list)

    def __call__(self, event: str, change: CustomerChange) -> None:
        self.events.append((event, change))


@pytest.fixture
def audit(engine: Engine, storage: Storage, clock: Clock) -> AuditService:
    return AuditService(
        storage=storage, customers=PiccoloCustomerRepository(), emit=EventLog(), clock=clock
    )


@pytest.fixture
def context(user_id: int) -> AuditContext:
    return AuditContext(
        actor_id=user_id, ip="203.0.113.9", user_agent="pytest/1.0", request_id="req-0001"
    )


@pytest.fixture
def customers(audit: AuditService, context: AuditContext) -> CustomerService:
    """The customer service with the audit hooks, as the app builds it for a request."""
    return audit.customer_service(context)

"""A SAQ worker killed with SIGKILL in the middle of a 200,000-row import, twice, at random
points: another worker takes the job over (SAQ's sweep retries it once its heartbeat is
stale, within about two minutes) and the import resumes from its last checkpoint. At the
end every row is in the book exactly once, with exactly one audit entry each, and the
user's audit hash chain is intact."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient
from piccolo.querystring import QueryString

from app.audit.service import AuditService
from app.customers.tables import Customer as CustomerTable
from app.settings import Settings
from tests.accounts.test_api import in_app_loop
from tests.chaos.conftest import FULL_STACK_ONLY
from tests.customers.test_api import Person, sign_up
from tests.fixtures.mailbox import Mailbox
from tests.jobs.workers import deployed_worker

pytestmark = FULL_STACK_ONLY

ROWS = 200_000
KILLS = 2
TIMEOUT = 900.0  # seconds for the whole import, kills and take-overs included


def big_csv(rows: int) -> bytes:
    lines = ["First Name,Last Name,E-mail Address,Company,Job Title,Notes"]
    for n in range(rows):
        lines.append(
            f'Person{n},Family{n % 977},person.{n}@chaos.example,"Firm {n % 311}, Ltd",'
            f'Engineer,"row {n}, first line\nsecond line"'
        )
    return ("\r\n".join(lines) + "\r\n").encode()


async def progress(person: Person, import_id: int) -> dict[str, Any]:
    response = await person.get(f"/api/v1/imports/{import_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def count(client: AsyncTestClient, sql: str, *params: Any) -> int:
    rows = await in_app_loop(client, lambda: CustomerTable.raw("{}", QueryString(sql, *params)))
    return int(rows[0]["n"])


async def test_an_import_survives_its_worker_being_killed(
    client: AsyncTestClient, mailbox: Mailbox, settings: Settings, tmp_path: Path
) -> None:
    rng = random.Random()
    person = await sign_up(client, mailbox, "chaos")
    started = await client.post(
        "/api/v1/imports",
        files={"file": ("big.csv", big_csv(ROWS), "text/csv")},
        headers=person.headers,
    )
    assert started.status_code == 202, started.text
    import_id = started.json()["id"]
    # Strike points, as processed rows: one in each half of the run.
    strikes = sorted(
        rng.randint(ROWS * k // (KILLS + 1) // 2, ROWS * k // (KILLS + 1))
        for k in range(1, KILLS + 1)
    )
    deadline = time.monotonic() + TIMEOUT
    kills: list[int] = []
    body = await progress(person, import_id)
    for attempt in range(KILLS + 1):
        home = tmp_path / f"worker-{attempt}"
        home.mkdir()
        # The queue's keys stay when a killed worker is left behind: the job is in them.
        with deployed_worker(settings, home, keep_queue=attempt < KILLS) as worker:
            target = strikes[attempt] if attempt < KILLS else None
            while True:
                body = await progress(person, import_id)
                if body["status"] in ("completed", "failed", "cancelled"):
                    break
                if target is not None and body["processed_rows"] >= target:
                    worker.process.kill()  # SIGKILL: no clean-up, no goodbye
                    worker.process.wait(timeout=10)
                    kills.append(body["processed_rows"])
                    break
                worker.assert_alive()
                assert time.monotonic() < deadline, f"import stuck: {body}"
                await asyncio.sleep(0.05)
        if body["status"] in ("completed", "failed", "cancelled"):
            break
    print(f"killed the worker at {kills} rows processed; final: {body}")

    assert len(kills) == KILLS, f"the import ended before the planned kills: {kills}"
    assert body["status"] == "completed", body
    assert (body["processed_rows"], body["created"], body["failed"]) == (ROWS, ROWS, 0)
    user_id = person.user_id
    assert (
        await count(client, "SELECT COUNT(*) AS n FROM customers WHERE user_id = {}", user_id)
        == ROWS
    )
    assert (
        await count(
            client,
            "SELECT COUNT(DISTINCT email_normalized) AS n FROM customers WHERE user_id = {}",
            user_id,
        )
        == ROWS
    )
    assert (
        await count(
            client,
            "SELECT COUNT(*) AS n FROM audit_logs WHERE user_id = {} AND import_id = {}",
            user_id,
            import_id,
        )
        == ROWS
    )
    assert (
        await count(
            client,
            "SELECT COUNT(DISTINCT customer_id) AS n FROM audit_logs "
            "WHERE user_id = {} AND import_id = {}",
            user_id,
            import_id,
        )
        == ROWS
    )
    report = await in_app_loop(
        client, lambda: AuditService(storage=client.app.state.storage).verify_chain(user_id)
    )
    assert report.intact, report

"""What the failure tests share: a user's old audit entries with a valid hash chain (by
COPY), a moto S3 server of the test's own that can be stopped and started again on the
same port, and checks of what storage and the database hold."""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from app.audit.archive import stream_archive
from app.audit.chain import GENESIS, entry_hash
from app.audit.repository import ENTRY_COLUMNS, PiccoloAuditRepository, json_text
from app.audit.tables import AuditLog
from app.lib.storage import Storage
from tests.fixtures.services import free_port, wait_for_port

COPY_CHUNK = 20_000


def chained_entries(
    user_id: int, first_day: datetime, days: int, per_day: int
) -> Iterator[tuple[Any, ...]]:
    """``per_day`` entries a day over ``days`` days from ``first_day``, chained as the
    recorder chains them (GENESIS first), as COPY records in ENTRY_COLUMNS order."""
    previous = GENESIS
    step = timedelta(seconds=80_000 / per_day)
    for day in range(days):
        start = first_day + timedelta(days=day)
        for number in range(per_day):
            row: dict[str, Any] = {
                "user_id": user_id,
                "actor_id": user_id,
                "customer_id": None,
                "customer_label": f"Customer {number % 300} <c{number % 300}@chaos.test>",
                "event": "updated",
                "old_values": {"notes": f"day {day}, take {number}"},
                "new_values": {"notes": f"day {day}, take {number + 1}"},
                "ip": f"198.51.100.{number % 250}",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
                "request_id": f"{day:08x}{number:024x}",
                "import_id": None,
                "created_at": start + step * number,
                "prev_hash": previous,
            }
            row["hash"] = previous = entry_hash(row)
            yield tuple(
                json_text(row[name]) if name in ("old_values", "new_values") else row[name]
                for name in ENTRY_COLUMNS
            )


async def seed_entries(
    database_url: str, user_id: int, first_day: datetime, days: int, per_day: int
) -> int:
    """COPY the user's chained entries into audit_logs; how many."""
    conn = await asyncpg.connect(database_url)
    copied = 0
    try:
        chunk: list[tuple[Any, ...]] = []
        for record in chained_entries(user_id, first_day, days, per_day):
            chunk.append(record)
            if len(chunk) == COPY_CHUNK:
                await conn.copy_records_to_table("audit_logs", records=chunk, columns=ENTRY_COLUMNS)
                copied += len(chunk)
                chunk = []
        if chunk:
            await conn.copy_records_to_table("audit_logs", records=chunk, columns=ENTRY_COLUMNS)
            copied += len(chunk)
    finally:
        await conn.close()
    return copied


async def database_ids(user_id: int) -> list[int]:
    rows = await AuditLog.select(AuditLog.id).where(AuditLog.user_id == user_id)
    return [int(row["id"]) for row in rows]


async def object_sha256(storage: Storage, key: str) -> str:
    digest = hashlib.sha256()
    async for chunk in await storage.get(key):
        digest.update(chunk)
    return digest.hexdigest()


async def check_archives(storage: Storage, user_id: int) -> list[int]:
    """Every archive object of the user has exactly one audit_archives row whose sha256
    and entry count it matches, and no row lacks its object; the ids the archives hold."""
    records = await PiccoloAuditRepository().archives(user_id)
    objects = {info.key for info in await storage.list(f"audit/{user_id}/")}
    keys = [record.object_key for record in records]
    assert len(keys) == len(set(keys)), f"an object is recorded twice: {sorted(keys)}"
    assert objects == set(keys), (
        f"objects without a row: {sorted(objects - set(keys))}; "
        f"rows without an object: {sorted(set(keys) - objects)}"
    )
    archived: list[int] = []
    for record in records:
        assert await object_sha256(storage, record.object_key) == record.sha256, record
        ids = [entry.id async for entry in stream_archive(storage, record)]
        assert len(ids) == record.entries, record
        assert (ids[0], ids[-1]) == (record.first_id, record.last_id), record
        archived.extend(ids)
    return archived


class MotoServer:
    """moto's S3 server on a port of its own, stopped and started again at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.process is None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        """Gone at once, as a crashed server is (its objects with it: moto keeps them in
        memory, so a test that restarts it puts back the bucket itself)."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None


@contextlib.contextmanager
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()

"""The export benchmark of issue 7, against PostgreSQL and moto's S3 server.

Run with `make bench` (or `BENCH_QUICK=1 make bench`: 10,000 rows instead of 1,000,000).
Side by side in one run, each in a fresh process of its own, on the same rows (the large
book of tests/perf/conftest.py, newest first as the dashboard lists it):

- the export job's work (``Exporter.run``: keyset batches, each one aggregated CSV value
  written by PostgreSQL -> multipart upload to S3), with that process's peak RSS (VmHWM);
- the raw ``COPY (SELECT ...) TO STDOUT WITH CSV`` of the same columns, rows and order,
  piped through the same storage seam to the same bucket.

Peak memory is measured again at a tenth of the rows (the newest 10 %, through the
created_from filter): the two peaks must be within 20 % of each other (memory flat).
Figures are printed; only a broken run fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.fixtures.services import ROOT
from tests.perf.conftest import QUICK, BenchDatabase
from tests.perf.results import record, size

pytestmark = pytest.mark.perf

RATIO_TARGET = 2.0
RSS_TARGET_MB = 200.0
FLAT_TARGET = 0.20
COLUMNS = "name, email, phone, organization, job_title, notes, created_at, updated_at, slug"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_table(title: str, rows: list[tuple[str, str, str, str]]) -> None:
    width = max(len(row[0]) for row in rows)
    print(f"\n{title}")
    print(f"  {'figure':<{width}}  {'measured':>16}  {'target':>10}  result")
    for name, value, target, result in rows:
        print(f"  {name:<{width}}  {value:>16}  {target:>10}  {result}")


# --- the measured process (python -m tests.perf.test_export_bench MODE ...) ---------------


def rss_mb(field: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory of this process, from /proc."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


async def _child(mode: str, user_id: int, created_from: str) -> dict[str, Any]:
    from app.lib.db import bind_tables, build_engine, close_database, open_database
    from app.lib.storage import build_storage
    from app.settings import Settings

    settings = Settings.from_env()
    engine = build_engine(settings)
    bind_tables(engine)
    await open_database(engine, 4)
    storage = build_storage(settings)
    await storage.start()
    ready = rss_mb("VmRSS")
    try:
        if mode == "export":
            from app.exports.exporter import Exporter
            from app.exports.repository import PiccoloExportRepository
            from app.exports.service import file_key

            repository = PiccoloExportRepository()
            transfer = await repository.create(
                user_id,
                {
                    "kind": "export",
                    "status": "queued",
                    "original_filename": "customers-bench.csv",
                    "options": {
                        "query": {"created_from": created_from or None},
                        "slugs": None,
                        "format": "csv",
                        "bom": False,
                        "context": {},
                    },
                },
            )
            began = time.perf_counter()
            status = await Exporter(storage, settings).run(user_id, transfer.id)
            seconds = time.perf_counter() - began
            assert status == "completed", status
            done = await repository.get_export(user_id, transfer.id)
            assert done is not None
            info = await storage.stat(file_key(user_id, transfer.id, done.original_filename))
            rows = done.processed_rows
        else:
            seconds, rows, info = await _raw_copy(settings, storage, user_id, created_from)
    finally:
        await close_database(engine)
    return {
        "seconds": seconds,
        "rows": rows,
        "bytes": info.size,
        "rss_peak_mb": rss_mb(),
        "rss_ready_mb": ready,
    }


async def _raw_copy(settings: Any, storage: Any, user_id: int, created_from: str) -> Any:
    """COPY (SELECT ...) TO STDOUT WITH CSV, its chunks streamed into storage.put."""
    conn = await asyncpg.connect(settings.database_url)
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=64)
    day = date.fromisoformat(created_from) if created_from else date(1970, 1, 1)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)

    async def output(chunk: bytes) -> None:
        await chunks.put(bytes(chunk))

    async def produce() -> None:
        try:
            await conn.copy_from_query(
                f"SELECT {COLUMNS} FROM customers WHERE user_id = $1 AND created_at >= $2 "  # noqa: S608
                "ORDER BY created_at DESC, id DESC",
                user_id,
                start,
                output=output,
                format="csv",
                header=True,
            )
        finally:
            await chunks.put(None)

    async def stream() -> Any:
        while (chunk := await chunks.get()) is not None:
            yield chunk

    began = time.perf_counter()
    try:
        producer = asyncio.create_task(produce())
        info = await storage.put(f"bench/raw-{time.monotonic_ns()}.csv", stream(), "text/csv")
        await producer
        rows = await conn.fetchval(
            "SELECT count(*) FROM customers WHERE user_id = $1 AND created_at >= $2",
            user_id,
            start,
        )
    finally:
        await conn.close()
    return time.perf_counter() - began, int(rows), info


# --- the benchmark ------------------------------------------------------------------------------


def _run(mode: str, env: dict[str, str], user_id: int, created_from: str = "") -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.perf.test_export_bench", mode, str(user_id), created_from],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def _tenth_start(url: str, user_id: int, rows: int) -> str:
    """The first day of the newest tenth of the book: the smaller export's filter."""
    conn = await asyncpg.connect(url)
    try:
        moment = await conn.fetchval(
            "SELECT created_at FROM customers WHERE user_id = $1 "
            "ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1",
            user_id,
            rows // 10,
        )
    finally:
        await conn.close()
    return str(moment.astimezone(UTC).date())


def test_export_vs_raw_copy_and_flat_memory(
    bench_database: BenchDatabase, s3_endpoint: str, tmp_path: Path
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("S3_")}
    env |= {
        "DATABASE_URL": bench_database.url,
        "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
        "S3_ENDPOINT": s3_endpoint,
        "S3_ACCESS_KEY": "testing",
        "S3_SECRET_KEY": "testing",
        "S3_BUCKET": f"export-bench-{time.monotonic_ns()}",
        "S3_SECURE": "false",
        "MAIL_URL": f"file://{tmp_path / 'mail'}",
        "LOG_LEVEL": "WARNING",
    }
    user_id, total = bench_database.user_id, bench_database.main_rows
    tenth = asyncio.run(_tenth_start(bench_database.url, user_id, total))
    small = _run("export", env, user_id, tenth)
    raw = _run("copy", env, user_id)
    export = _run("export", env, user_id)
    assert export["rows"] == raw["rows"] == total
    ratio = export["seconds"] / raw["seconds"]
    spread = abs(export["rss_peak_mb"] - small["rss_peak_mb"]) / small["rss_peak_mb"]
    rows = [
        ("raw COPY ... TO STDOUT piped to S3", f"{raw['seconds']:.1f}s", "", ""),
        ("  bytes", f"{raw['bytes']:,}", "", ""),
        ("export job (keyset batches of CSV, S3)", f"{export['seconds']:.1f}s", "", ""),
        ("  bytes", f"{export['bytes']:,}", "", ""),
        ("  rows per second", f"{export['rows'] / export['seconds']:,.0f}", "", ""),
        ("export / raw COPY", f"{ratio:.2f}x", f"<= {RATIO_TARGET:.0f}x",
         verdict(ratio <= RATIO_TARGET)),
        (f"peak RSS, export of {small['rows']:,} rows", f"{small['rss_peak_mb']:.0f} MB",
         f"<= {RSS_TARGET_MB:.0f} MB", verdict(small["rss_peak_mb"] <= RSS_TARGET_MB)),
        (f"peak RSS, export of {export['rows']:,} rows", f"{export['rss_peak_mb']:.0f} MB",
         f"<= {RSS_TARGET_MB:.0f} MB", verdict(export["rss_peak_mb"] <= RSS_TARGET_MB)),
        ("  of which before exporting (imports, pools)", f"{export['rss_ready_mb']:.0f} MB",
         "", ""),
        ("difference of the two peaks", f"{spread:.0%}", f"< {FLAT_TARGET:.0%}",
         verdict(spread < FLAT_TARGET)),
    ]  # fmt: skip
    print_table(
        f"exports: {total:,} customers to CSV on S3 (moto), PostgreSQL "
        f"({'quick' if QUICK else 'full'})",
        rows,
    )
    size("export: customers exported", total)
    record(
        "export: 1 file of the whole book",
        export["seconds"],
        "s",
        baseline=raw["seconds"],
        target=RATIO_TARGET * raw["seconds"],
        note="baseline: COPY (SELECT ...) TO STDOUT piped to the same storage",
    )
    record(
        f"export: worker peak RSS, {small['rows']:,} rows",
        small["rss_peak_mb"],
        "MB",
        target=RSS_TARGET_MB,
    )
    record(
        f"export: worker peak RSS, {export['rows']:,} rows",
        export["rss_peak_mb"],
        "MB",
        target=RSS_TARGET_MB,
    )
    record("export: difference of the two peaks", spread * 100, "%", target=FLAT_TARGET * 100)


if __name__ == "__main__":
    mode, user, created_from = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    print(json.dumps(asyncio.run(_child(mode, user, created_from))))

"""The audit benchmark of issue 5, against PostgreSQL (and moto's S3 server for archives).

Run with `make bench` (or `BENCH_QUICK=1 make bench` for a small run). Figures are
printed beside the issue's targets with PASS or MISS, never asserted: only correctness
(every entry archived once, checksums, an intact chain) is.

1. An update with its audit entry against the same update without auditing, side by
   side in one process: the customer service over the same repository, with and without
   the audit hooks, alternating, on a table that already holds entries.
2. Archiving: entries seeded by COPY (valid hash chains, 10 users over 100 days, so one
   object per user and day of 1,000 entries), then again over 10 days (100 objects of
   10,000), each time the archive job run in a process of its own, as a worker runs it,
   against moto's S3 server; entries per second and that process's peak RSS (VmHWM).

Sizes: BENCH_QUICK=1 for a small run (20,000 entries: 200 then 1,000 per object);
BENCH_AUDIT_ENTRIES and BENCH_AUDIT_DAYS ("100,10") to vary.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from app.audit.chain import GENESIS, entry_hash
from app.audit.context import AuditContext
from app.audit.repository import ENTRY_COLUMNS, json_text
from app.audit.service import AuditService
from app.customers.models import CustomerInput
from app.customers.repository import PiccoloCustomerRepository
from app.customers.service import CustomerService
from app.lib.db import bind_tables, close_database, open_database, postgres_engine
from app.lib.storage import build_storage
from app.settings import Settings
from tests.fixtures.services import ROOT, run_migrations, scratch_postgres
from tests.perf.results import record, size

pytestmark = pytest.mark.perf

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0", "false")
# Update benchmark: measured pairs (sequential) and updates per writer (concurrent).
PAIRS = 300 if QUICK else 3000
CONCURRENT_WRITERS = 10
CONCURRENT_UPDATES = 50 if QUICK else 300
EXISTING_ENTRIES = 20_000 if QUICK else 1_000_000  # already in the table while measuring
# Archive benchmark: ARCHIVE_USERS users over so many days (one object per user and day),
# twice: many small objects, then ten times fewer, larger ones.
ARCHIVE_ENTRIES = 20_000 if QUICK else int(os.environ.get("BENCH_AUDIT_ENTRIES", "1000000"))
ARCHIVE_USERS = 10
_DAYS = os.environ.get("BENCH_AUDIT_DAYS", "10,2" if QUICK else "100,10")
ARCHIVE_DAYS = [int(days) for days in _DAYS.split(",")]
COPY_CHUNK = 50_000

RATIO_TARGET = 1.5
RATE_TARGET = 50_000.0
RSS_TARGET_MB = 256.0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_table(title: str, rows: list[tuple[str, str, str, str]]) -> None:
    width = max(len(row[0]) for row in rows)
    print(f"\n{title}")
    print(f"  {'figure':<{width}}  {'measured':>14}  {'target':>10}  result")
    for name, value, target, result in rows:
        print(f"  {name:<{width}}  {value:>14}  {target:>10}  {result}")


@pytest.fixture(scope="module")
def bench_url(postgres_server_url: str) -> Iterator[str]:
    with scratch_postgres(postgres_server_url, "audit_bench") as url:
        run_migrations(url)
        yield url


async def make_users(conn: asyncpg.Connection, count: int, label: str) -> list[int]:
    return [
        await conn.fetchval(
            "INSERT INTO users (name, email, password_hash) VALUES ($1, $2, '-') RETURNING id",
            f"{label} {number}",
            f"{label}-{number}-{time.monotonic_ns()}@bench.test",
        )
        for number in range(count)
    ]


def chained_rows(users: list[int], days: list[datetime], per_day: int) -> Iterator[tuple[Any, ...]]:
    """Entries as the recorder writes them (valid chains), in id order: day by day, each
    user's entries of the day together."""
    previous = dict.fromkeys(users, GENESIS)
    for day in days:
        for user_id in users:
            step = timedelta(seconds=80_000 / per_day)
            for number in range(per_day):
                row: dict[str, Any] = {
                    "user_id": user_id,
                    "actor_id": user_id,
                    "customer_id": 1000 + number % 400,
                    "customer_label": f"Customer {number % 400} <c{number % 400}@bench.test>",
                    "event": "updated",
                    "old_values": {"notes": f"Called about the renewal, take {number}."},
                    "new_values": {"notes": f"Called about the renewal, take {number + 1}."},
                    "ip": f"198.51.100.{number % 250}",
                    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
                    "request_id": f"{user_id:08x}{number:024x}",
                    "import_id": None,
                    "created_at": day + step * number,
                    "prev_hash": previous[user_id],
                }
                row["hash"] = previous[user_id] = entry_hash(row)
                yield tuple(
                    json_text(row[name]) if name in ("old_values", "new_values") else row[name]
                    for name in ENTRY_COLUMNS
                )


async def copy_entries(conn: asyncpg.Connection, rows: Iterator[tuple[Any, ...]]) -> int:
    copied = 0
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == COPY_CHUNK:
            await conn.copy_records_to_table("audit_logs", records=chunk, columns=ENTRY_COLUMNS)
            copied += len(chunk)
            chunk = []
    if chunk:
        await conn.copy_records_to_table("audit_logs", records=chunk, columns=ENTRY_COLUMNS)
        copied += len(chunk)
    return copied


# --- 1. an update with and without its audit entry ---------------------------------------------


async def _timed(call: Callable[[], Awaitable[Any]]) -> float:
    began = time.perf_counter()
    await call()
    return time.perf_counter() - began


def _ms(values: list[float], quantile: float | None = None) -> float:
    if quantile is None:
        return statistics.fmean(values) * 1000
    return statistics.quantiles(values, n=100)[int(quantile * 100) - 1] * 1000


async def _measure_updates(url: str) -> list[tuple[str, str, str, str]]:
    conn = await asyncpg.connect(url)
    try:
        users = await make_users(conn, CONCURRENT_WRITERS, "writer")
        filler = await make_users(conn, 50, "filler")
        now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        days = [now - timedelta(days=n) for n in range(20, 0, -1)]
        await copy_entries(conn, chained_rows(filler, days, EXISTING_ENTRIES // 1000))
        await conn.execute("VACUUM ANALYZE audit_logs")
    finally:
        await conn.close()

    engine = postgres_engine(url, log_queries=False)  # as the app connects
    bind_tables(engine)
    await open_database(engine, CONCURRENT_WRITERS + 2)
    try:
        repository = PiccoloCustomerRepository()
        plain = CustomerService(repository, emit=lambda event, change: None)
        audit = AuditService(customers=repository)
        audited = {
            user_id: audit.customer_service(
                AuditContext(actor_id=user_id, ip="203.0.113.5", request_id="bench")
            )
            for user_id in users
        }
        targets: dict[int, tuple[str, str]] = {}
        for user_id in users:
            first = await plain.create(user_id, CustomerInput(name="Plain", email="p@bench.test"))
            second = await plain.create(user_id, CustomerInput(name="Aud", email="a@bench.test"))
            targets[user_id] = (first.slug, second.slug)

        counter = iter(range(10**9))

        async def update_plain(user_id: int) -> None:
            await plain.update(user_id, targets[user_id][0], {"notes": f"n{next(counter)}"})

        async def update_audited(user_id: int) -> None:
            await audited[user_id].update(
                user_id, targets[user_id][1], {"notes": f"n{next(counter)}"}
            )

        one = users[0]
        for _ in range(50):  # warm up: pool, prepared statements, caches
            await update_plain(one)
            await update_audited(one)
        plain_times: list[float] = []
        audited_times: list[float] = []
        for number in range(PAIRS):
            # Alternate which goes first, so drift hits both alike.
            if number % 2:
                plain_times.append(await _timed(lambda: update_plain(one)))
                audited_times.append(await _timed(lambda: update_audited(one)))
            else:
                audited_times.append(await _timed(lambda: update_audited(one)))
                plain_times.append(await _timed(lambda: update_plain(one)))

        async def run_concurrently(update: Callable[[int], Awaitable[None]]) -> float:
            async def writer(user_id: int) -> None:
                for _ in range(CONCURRENT_UPDATES):
                    await update(user_id)

            began = time.perf_counter()
            await asyncio.gather(*(writer(user_id) for user_id in users))
            return CONCURRENT_WRITERS * CONCURRENT_UPDATES / (time.perf_counter() - began)

        plain_rate = await run_concurrently(update_plain)
        audited_rate = await run_concurrently(update_audited)
        plain_rate = max(plain_rate, await run_concurrently(update_plain))
        audited_rate = max(audited_rate, await run_concurrently(update_audited))
        for user_id in users[:2]:
            report = await audit.verify_chain(user_id)
            assert report.intact, report.first_break
    finally:
        await close_database(engine)

    ratio_mean = _ms(audited_times) / _ms(plain_times)
    ratio_p50 = _ms(audited_times, 0.5) / _ms(plain_times, 0.5)
    # Each pair ran back to back, so it saw the same machine: the median of the pairs'
    # ratios is the figure least moved by other work on the machine.
    ratio_paired = statistics.median(a / p for a, p in zip(audited_times, plain_times, strict=True))
    ratio_rate = plain_rate / audited_rate
    size("audit: update pairs measured", PAIRS)
    size("audit: entries in the table while updating", EXISTING_ENTRIES)
    record("audit: update, no audit (mean)", _ms(plain_times), "ms")
    record(
        "audit: update + audit entry (mean)",
        _ms(audited_times),
        "ms",
        baseline=_ms(plain_times),
        note="baseline: the same update without auditing, same process",
    )
    record("audit: cost ratio, median of pairs", ratio_paired, "x", target=RATIO_TARGET)
    record("audit: cost ratio, mean", ratio_mean, "x", target=RATIO_TARGET)
    record("audit: cost ratio, p50", ratio_p50, "x", target=RATIO_TARGET)
    record(
        f"audit: updates/s with audit, {CONCURRENT_WRITERS} writers",
        audited_rate,
        "/s",
        baseline=plain_rate,
        better="higher",
    )
    record("audit: cost ratio, throughput (concurrent)", ratio_rate, "x", target=RATIO_TARGET)
    return [
        ("update, no audit: mean / p50 / p95 ms", _trio(plain_times), "", ""),
        ("update + audit entry: mean / p50 / p95 ms", _trio(audited_times), "", ""),
        ("cost ratio, median of pairs (sequential)", f"{ratio_paired:.2f}x",
         f"<= {RATIO_TARGET}x", verdict(ratio_paired <= RATIO_TARGET)),
        ("cost ratio, mean (sequential)", f"{ratio_mean:.2f}x", f"<= {RATIO_TARGET}x",
         verdict(ratio_mean <= RATIO_TARGET)),
        ("cost ratio, p50 (sequential)", f"{ratio_p50:.2f}x", f"<= {RATIO_TARGET}x",
         verdict(ratio_p50 <= RATIO_TARGET)),
        (f"updates/s, {CONCURRENT_WRITERS} writers: no audit / audit",
         f"{plain_rate:,.0f} / {audited_rate:,.0f}", "", ""),
        ("cost ratio, throughput (concurrent)", f"{ratio_rate:.2f}x", f"<= {RATIO_TARGET}x",
         verdict(ratio_rate <= RATIO_TARGET)),
    ]  # fmt: skip


def _trio(values: list[float]) -> str:
    return f"{_ms(values):.2f}/{_ms(values, 0.5):.2f}/{_ms(values, 0.95):.2f}"


def test_an_update_with_its_audit_entry_vs_without(bench_url: str) -> None:
    rows = asyncio.run(_measure_updates(bench_url))
    title = (
        f"audit: update cost, {PAIRS:,} pairs side by side, {EXISTING_ENTRIES:,} entries in "
        f"the table ({'quick' if QUICK else 'full'}; Python {platform.python_version()})"
    )
    print_table(title, rows)


# --- 2. archiving ------------------------------------------------------------------------------


async def _seed_archive(url: str, archive_days: int) -> tuple[list[int], datetime, float]:
    conn = await asyncpg.connect(url)
    try:
        users = await make_users(conn, ARCHIVE_USERS, "archived")
        now = datetime.now(UTC)
        start = (now - timedelta(days=100 + archive_days)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        days = [start + timedelta(days=n) for n in range(archive_days)]
        per_day = ARCHIVE_ENTRIES // (ARCHIVE_USERS * archive_days)
        began = time.perf_counter()
        copied = await copy_entries(conn, chained_rows(users, days, per_day))
        await conn.execute("VACUUM ANALYZE audit_logs")
        assert copied == per_day * ARCHIVE_USERS * archive_days
        return users, now, time.perf_counter() - began
    finally:
        await conn.close()


async def _check_archive(url: str, users: list[int], entries: int, days: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        left = await conn.fetchval(
            "SELECT count(*) FROM audit_logs WHERE user_id = ANY($1::bigint[])", users
        )
        archived = await conn.fetchval(
            "SELECT coalesce(sum(entries), 0) FROM audit_archives WHERE user_id = ANY($1)", users
        )
        objects = await conn.fetchval(
            "SELECT count(*) FROM audit_archives WHERE user_id = ANY($1)", users
        )
    finally:
        await conn.close()
    assert (left, archived) == (0, entries)
    assert objects == ARCHIVE_USERS * days


async def _verify_one(url: str, env: dict[str, str], user_id: int, days: int) -> None:
    """One user's chain, read back from the objects the run wrote: intact."""
    settings = Settings.from_env(env)
    engine = postgres_engine(url, log_queries=False)  # as the app connects
    bind_tables(engine)
    await open_database(engine, 2)
    try:
        storage = build_storage(settings)
        report = await AuditService(storage=storage).verify_chain(user_id)
    finally:
        await close_database(engine)
    assert report.intact, report.first_break
    assert report.archives == days


@pytest.mark.parametrize("days", ARCHIVE_DAYS)
def test_archiving_throughput_and_memory(
    bench_url: str, s3_endpoint: str, tmp_path: Any, days: int
) -> None:
    users, _now, seed_seconds = asyncio.run(_seed_archive(bench_url, days))
    per_object = ARCHIVE_ENTRIES // (ARCHIVE_USERS * days)
    entries = per_object * ARCHIVE_USERS * days
    env = {key: value for key, value in os.environ.items() if not key.startswith("S3_")}
    env |= {
        "DATABASE_URL": bench_url,
        "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
        "S3_ENDPOINT": s3_endpoint,
        "S3_ACCESS_KEY": "testing",
        "S3_SECRET_KEY": "testing",
        "S3_BUCKET": f"audit-bench-{time.monotonic_ns()}",
        "S3_SECURE": "false",
        "STORAGE_DIR": str(tmp_path / "unused"),
        "MAIL_URL": f"file://{tmp_path / 'mail'}",
        "LOG_LEVEL": "WARNING",
        "AUDIT_ARCHIVE_AFTER_DAYS": "90",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.perf.audit_archive_run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["entries"] == entries
    asyncio.run(_check_archive(bench_url, users, entries, days))
    asyncio.run(_verify_one(bench_url, env, users[0], days))
    rate = result["entries"] / result["seconds"]
    label = f"audit: archive {entries:,} entries, {per_object:,} per object"
    size(f"{label}: objects", result["archives"])
    record(f"{label}: entries/s", rate, "/s", target=RATE_TARGET, better="higher")
    record(f"{label}: peak RSS", result["rss_peak_mb"], "MB", target=RSS_TARGET_MB)
    rows = [
        ("seeded by COPY (with hashes)", f"{entries:,} in {seed_seconds:.1f}s", "", ""),
        ("objects written (one per user and day)",
         f"{result['archives']:,} x {per_object:,}", "", ""),
        ("archive run", f"{result['seconds']:.1f}s", "", ""),
        ("entries archived per second", f"{rate:,.0f}", f">= {RATE_TARGET:,.0f}",
         verdict(rate >= RATE_TARGET)),
        ("peak RSS of the archiving process", f"{result['rss_peak_mb']:.0f} MB",
         f"< {RSS_TARGET_MB:.0f} MB", verdict(result["rss_peak_mb"] < RSS_TARGET_MB)),
        ("  of which before archiving (imports, pools)", f"{result['rss_ready_mb']:.0f} MB",
         "", ""),
    ]  # fmt: skip
    print_table(
        f"audit: archiving {entries:,} entries, {per_object:,} per object, to S3 (moto), "
        f"PostgreSQL ({'quick' if QUICK else 'full'})",
        rows,
    )

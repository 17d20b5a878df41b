"""The load test of issue 8: the whole app under mixed traffic from many simulated users,
and the list fragment under two ASGI servers (uvicorn and granian).

The world (one scratch PostgreSQL database, migrated):
- BENCH_LOAD_USERS (50) verified users, each with a book of BENCH_LOAD_BOOK customers
  (default BENCH_CUSTOMERS / 100 = 10,000, so 500,000 rows in all; at least 1,000 each,
  which is what BENCH_QUICK=1 gives), seeded by COPY as in the customers benchmark;
- a real SAQ worker process (``saq jobs.worker.settings``) on the same database and Redis
  (TEST_REDIS_URL, a queue of its own), folder storage shared by the web and the worker;
- the real app under uvicorn, BENCH_WEB_PROCESSES processes (1, as `crm serve` runs it).

The traffic: each simulated user has an httpx client of its own (one connection, its own
cookies), signs in through the real form, then loops until BENCH_LOAD_SECONDS (60; quick:
15) have passed, with think times between actions (0.5 to 2 s; 0.1 to 0.25 s between
keystrokes): browse the dashboard (the page, then a sort and the next page as htmx
fragments), search as you type (successive prefixes of a word, each the fragment with
``HX-Request: true``), open a customer (its page and the timeline fragment it loads),
inline edit a cell (GET the edit fragment, POST the new value with the CSRF token). Three
users also import a BENCH_LOAD_IMPORT_ROWS-row CSV (10,000; quick: 2,000) through
``POST /api/v1/imports`` with a token and follow it until the worker finished it; two
users export their book through ``POST /api/v1/exports`` and download the file (skipped
with a note when that route does not exist).

Reported per route template: count, p50, p95, p99, errors (any status the flow did not
expect, or no answer). Recorded in the run's table: throughput, errors (target 0), the
p95 of every route, search p95 (target ≤ 100 ms), import and export durations.

The ASGI servers: the list fragment (``GET /customers`` with ``HX-Request``), 10
concurrent clients in a closed loop, under ``uvicorn`` and ``granian --interface asgi``
with the same number of processes, alternating (two rounds each, the better kept; quick:
one). granian is not a dependency of the app: without it the comparison is skipped with
a note. Nothing here asserts a timing: the tests fail only if the flows themselves break
(a sign-in refused, nothing answered, an import that never finishes).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import html
import itertools
import os
import random
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from tests.fixtures.services import (
    ROOT,
    TEST_REDIS_URL,
    free_port,
    run_migrations,
    scratch_postgres,
)
from tests.perf.conftest import (
    CHUNK,
    COLUMNS,
    MAIN_ROWS,
    PASSWORD,
    QUICK,
    SECRET_KEY,
    SPAN,
    STAGING,
    Generator,
    forget_cache,
)
from tests.perf.results import record, size
from tests.perf.test_customers_bench import Stats, load, sign_in

pytestmark = pytest.mark.perf

USERS = int(os.environ.get("BENCH_LOAD_USERS", "50"))
BOOK = int(os.environ.get("BENCH_LOAD_BOOK", str(max(MAIN_ROWS // 100, 1000))))
SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "15" if QUICK else "60"))
PROCESSES = int(os.environ.get("BENCH_WEB_PROCESSES", "1"))
IMPORT_ROWS = int(os.environ.get("BENCH_LOAD_IMPORT_ROWS", "2000" if QUICK else "10000"))
IMPORTERS = 3
EXPORTERS = 2
SEARCH_P95_TARGET_MS = 100.0
FINISH_GRACE = 180.0  # seconds an import or export may take past the load window
# The ASGI comparison: a closed loop of 10 clients on the list fragment.
SERVER_REQUESTS = int(os.environ.get("BENCH_THROUGHPUT_REQUESTS", "300" if QUICK else "1500"))
SERVER_ROUNDS = 1 if QUICK else 2
SEARCH_WORDS = ["garcia", "tanaka", "williams", "seattle", "orchids", "martinez", "rossi"]
SORTS = ["-created", "created", "name", "-name", "-updated", "updated"]
JOB_TITLES = ["Buyer", "Head of IT", "Sales Manager", "Founder", "Analyst", "Consultant"]
SEARCH_ROUTE = "GET /customers?q= (htmx)"

SLUG_LINK = re.compile(r'href="/customers/([a-z0-9][a-z0-9-]*)"')
NEXT_LINK = re.compile(r'href="(/customers\?[^"]*cursor=[^"]*)"')
CSRF_FIELD = re.compile(
    r'name="_csrf_token"\s+value="([^"]+)"|value="([^"]+)"\s+name="_csrf_token"'
)
BODY_CSRF = re.compile(r"X-CSRFToken&#34;: &#34;([^&]+)&#34;|\"X-CSRFToken\": \"([^\"]+)\"")


# --- the world -------------------------------------------------------------------------------


@dataclass
class World:
    url: str
    emails: list[str]
    tokens: dict[int, str]  # user number -> API token, for the importers and exporters
    import_file: Path
    home: Path
    queue: str
    seed_seconds: float

    def env(self, port: int) -> dict[str, str]:
        """The environment of the app and of the worker: one database, Redis, queue, folder."""
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("S3_")},
            "DATABASE_URL": self.url,
            "REDIS_URL": TEST_REDIS_URL,
            "JOBS_QUEUE": self.queue,
            "SECRET_KEY": SECRET_KEY,
            "APP_URL": f"http://127.0.0.1:{port}",
            "STORAGE_DIR": str(self.home / "storage"),
            "MAIL_URL": f"file://{self.home / 'mail'}",
        }


async def _seed(url: str) -> tuple[list[str], dict[int, str]]:
    from app.accounts.passwords import hash_password

    conn = await asyncpg.connect(url)
    try:
        now = datetime.now(UTC)
        password_hash = hash_password(PASSWORD)
        emails = [f"load-user-{number}@example.com" for number in range(USERS)]
        ids = [
            await conn.fetchval(
                "INSERT INTO users (name, email, password_hash, email_verified_at, is_admin, "
                "created_at, updated_at) VALUES ($1, $2, $3, $4, false, $4, $4) RETURNING id",
                f"Load User {number}",
                email,
                password_hash,
                now,
            )
            for number, email in enumerate(emails)
        ]
        generator = Generator(random.Random(8))
        rows = itertools.chain.from_iterable(
            generator.customers(user_id, BOOK, now - SPAN) for user_id in ids
        )
        await conn.execute(STAGING)
        while chunk := list(itertools.islice(rows, CHUNK)):
            await conn.copy_records_to_table("customers_staging", records=chunk, columns=COLUMNS)
        columns = ", ".join(COLUMNS)
        await conn.execute(
            f"INSERT INTO customers ({columns}) "  # noqa: S608
            f"SELECT {columns} FROM customers_staging ORDER BY created_at"
        )
        await conn.execute("DROP TABLE customers_staging")
        await conn.execute("VACUUM (ANALYZE) customers")
        # Tokens as the service writes them (sha256 of the secret), for the API users.
        tokens = {}
        for number in range(IMPORTERS + EXPORTERS):
            secret = secrets.token_urlsafe(40)
            token_id = await conn.fetchval(
                "INSERT INTO api_tokens (user_id, name, token_hash, abilities, created_at) "
                "VALUES ($1, 'load test', encode(sha256($2::bytea), 'hex'), '[\"*\"]', now()) "
                "RETURNING id",
                ids[number],
                secret.encode(),
            )
            tokens[number] = f"{token_id}|{secret}"
        return emails, tokens
    finally:
        await conn.close()


def _write_import(path: Path, rows: int) -> None:
    """A CSV of new contacts (headers the importer maps by name), streamed to disk."""
    generator = Generator(random.Random(9))
    with path.open("w", encoding="utf-8", newline="") as output:
        writer = csv.writer(output)
        writer.writerow(["Name", "Email", "Phone", "Organization", "Job Title", "Notes"])
        for row in generator.customers(0, rows, datetime.now(UTC) - SPAN):
            _, _, name, email, _, phone, organization, job_title, notes, _, _ = row
            writer.writerow([name, "import." + email, phone, organization, job_title, notes])


@contextlib.contextmanager
def _worker(world: World) -> Iterator[subprocess.Popen[bytes]]:
    """``saq jobs.worker.settings``, as deployed, on the world's queue; stopped after."""
    import redis

    log = world.home / "worker.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "saq", "jobs.worker.settings"],
            cwd=ROOT,
            env=world.env(free_port()),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        deadline = time.monotonic() + 60
        while not any(client.scan_iter(match=f"saq:{world.queue}:worker_info:*")):
            if process.poll() is not None:
                raise RuntimeError(f"the saq worker exited:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the saq worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        for key in client.scan_iter(match=f"saq:*{world.queue}*", count=500):
            client.delete(key)
        client.close()


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("load")
    with scratch_postgres(postgres_server_url, "load") as url:
        began = time.perf_counter()
        run_migrations(url)
        emails, tokens = asyncio.run(_seed(url))
        import_file = home / "contacts.csv"
        _write_import(import_file, IMPORT_ROWS)
        built = World(
            url=url,
            emails=emails,
            tokens=tokens,
            import_file=import_file,
            home=home,
            queue=f"bench-load-{uuid.uuid4().hex[:8]}",
            seed_seconds=time.perf_counter() - began,
        )
        with _worker(built):
            yield built


# --- the server -----------------------------------------------------------------------------


def server_command(kind: str, port: int) -> list[str]:
    if kind == "uvicorn":
        # What `crm serve` runs (no access log, no proxy headers), with --workers.
        return [
            sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(PROCESSES), "--no-access-log",
            "--no-proxy-headers",
        ]  # fmt: skip
    return [
        str(Path(sys.executable).parent / "granian"), "--interface", "asgi",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(PROCESSES),
        "--no-ws", "--log-level", "warning", "app.main:app",
    ]  # fmt: skip


@contextlib.contextmanager
def running_server(world: World, kind: str) -> Iterator[tuple[str, int]]:
    forget_cache()  # pages cached for the same user ids by an earlier run's database
    port = free_port()
    log = world.home / f"{kind}-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            server_command(kind, port),
            cwd=ROOT,
            env=world.env(port),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{kind} exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{kind} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base_url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Traffic:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)
    durations: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    notes: list[str] = field(default_factory=list)

    def error(self, route: str, what: str) -> None:
        self.errors[route] += 1
        if len(self.samples) < 10:
            self.samples.append(f"{route}: {what}"[:300])

    async def call(
        self,
        client: httpx.AsyncClient,
        route: str,
        method: str,
        url: str,
        expect: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> httpx.Response | None:
        began = time.perf_counter()
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            self.error(route, f"{type(error).__name__}: {error}")
            return None
        self.latencies[route].append(time.perf_counter() - began)
        if response.status_code not in expect:
            self.error(route, f"{response.status_code} for {url}: {response.text[:200]!r}")
            return None
        return response


def percentile(values: list[float], p: float) -> float:
    return Stats(values, 0, 1.0).percentile(p)


HX = {"HX-Request": "true"}


class SimulatedUser:
    def __init__(self, number: int, world: World, base_url: str, traffic: Traffic) -> None:
        self.number = number
        self.world = world
        self.traffic = traffic
        self.rng = random.Random(number)
        self.client = httpx.AsyncClient(
            base_url=base_url,
            timeout=60,
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=2),
        )
        self.slugs: list[str] = []
        self.csrf = ""

    async def think(self, low: float = 0.5, high: float = 2.0) -> None:
        await asyncio.sleep(self.rng.uniform(low, high))

    def _learn(self, page: str) -> None:
        found = SLUG_LINK.findall(page)
        if found:
            self.slugs = [slug for slug in dict.fromkeys(found) if slug != "new"] or self.slugs

    async def start(self) -> None:
        await sign_in(self.client, self.world.emails[self.number])
        response = await self.client.get("/customers")
        assert response.status_code == 200, response.text[:300]
        self._learn(response.text)
        token = BODY_CSRF.search(response.text)
        self.csrf = html.unescape(next(g for g in token.groups() if g)) if token else ""
        assert self.slugs, "the dashboard listed no customer"

    async def browse(self) -> None:
        page = await self.traffic.call(self.client, "GET /customers (page)", "GET", "/customers")
        if page is not None:
            self._learn(page.text)
        await self.think(0.3, 1.0)
        sort = self.rng.choice(SORTS)
        fragment = await self.traffic.call(
            self.client, "GET /customers?sort= (htmx)", "GET", f"/customers?sort={sort}", headers=HX
        )
        if fragment is None:
            return
        self._learn(fragment.text)
        following = NEXT_LINK.search(fragment.text)
        if following:
            await self.think(0.3, 1.0)
            await self.traffic.call(
                self.client,
                "GET /customers?cursor= (htmx)",
                "GET",
                html.unescape(following.group(1)),
                headers=HX,
            )

    async def search(self) -> None:
        word = self.rng.choice(SEARCH_WORDS)
        for end in range(2, len(word) + 1):
            await self.traffic.call(
                self.client, SEARCH_ROUTE, "GET", "/customers", params={"q": word[:end]}, headers=HX
            )
            await self.think(0.1, 0.25)

    async def open_customer(self) -> None:
        slug = self.rng.choice(self.slugs)
        await self.traffic.call(self.client, "GET /customers/{slug}", "GET", f"/customers/{slug}")
        await self.traffic.call(
            self.client,
            "GET /customers/{slug}/timeline (htmx)",
            "GET",
            f"/customers/{slug}/timeline",
            headers=HX,
        )

    async def edit_cell(self) -> None:
        slug = self.rng.choice(self.slugs)
        form = await self.traffic.call(
            self.client,
            "GET /customers/{slug}/cells/{field}/edit (htmx)",
            "GET",
            f"/customers/{slug}/cells/job_title/edit",
            headers=HX,
        )
        if form is None:
            return
        found = CSRF_FIELD.search(form.text)
        token = html.unescape(next(g for g in found.groups() if g)) if found else self.csrf
        await self.think(0.5, 1.5)  # typing the new value
        await self.traffic.call(
            self.client,
            "POST /customers/{slug}/cells/{field} (htmx)",
            "POST",
            f"/customers/{slug}/cells/job_title",
            data={"job_title": self.rng.choice(JOB_TITLES), "_csrf_token": token},
            headers={**HX, "X-CSRFToken": self.csrf or token},
        )

    async def _follow(self, kind: str, location: str, bearer: dict[str, str]) -> dict[str, Any]:
        """Poll the job's resource every second until it is no longer queued or running."""
        deadline = time.monotonic() + SECONDS + FINISH_GRACE
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            answer = await self.traffic.call(
                self.client, f"GET /api/v1/{kind}/{{id}}", "GET", location, headers=bearer
            )
            if answer is None:
                continue
            body: dict[str, Any] = answer.json()
            if body["status"] not in ("queued", "running"):
                return body
        self.traffic.error(f"POST /api/v1/{kind}", f"not finished {FINISH_GRACE:.0f}s after")
        return {"status": "unfinished"}

    async def import_file(self) -> None:
        bearer = {"Authorization": f"Bearer {self.world.tokens[self.number]}"}
        began = time.perf_counter()
        with self.world.import_file.open("rb") as upload:
            created = await self.traffic.call(
                self.client,
                "POST /api/v1/imports",
                "POST",
                "/api/v1/imports",
                expect=(202,),
                files={"file": ("contacts.csv", upload, "text/csv")},
                headers=bearer,
            )
        if created is None:
            return
        body = await self._follow("imports", f"/api/v1/imports/{created.json()['id']}", bearer)
        seconds = time.perf_counter() - began
        if body["status"] != "completed":
            self.traffic.error("POST /api/v1/imports", f"ended {body['status']}: {body}")
            return
        self.traffic.durations["import"].append(seconds)
        self.traffic.notes.append(
            f"user {self.number}: import of {IMPORT_ROWS:,} rows completed in {seconds:.1f} s "
            f"(created {body.get('created')}, skipped {body.get('skipped')}, failed "
            f"{body.get('failed')})"
        )

    async def export(self) -> None:
        bearer = {"Authorization": f"Bearer {self.world.tokens[self.number]}"}
        began = time.perf_counter()
        created = await self.traffic.call(
            self.client,
            "POST /api/v1/exports",
            "POST",
            "/api/v1/exports",
            expect=(202,),
            json={"format": "csv"},
            headers=bearer,
        )
        if created is None:
            return
        body = await self._follow("exports", f"/api/v1/exports/{created.json()['id']}", bearer)
        if body["status"] != "completed" or not body.get("download_url"):
            self.traffic.error("POST /api/v1/exports", f"ended {body['status']}: {body}")
            return
        route = "GET export download"
        began_download = time.perf_counter()
        size_bytes = 0
        try:
            async with self.client.stream("GET", body["download_url"]) as download:
                if download.status_code != 200:
                    self.traffic.error(route, f"{download.status_code}")
                    return
                async for chunk in download.aiter_bytes():
                    size_bytes += len(chunk)
        except httpx.HTTPError as error:
            self.traffic.error(route, f"{type(error).__name__}: {error}")
            return
        self.traffic.latencies[route].append(time.perf_counter() - began_download)
        seconds = time.perf_counter() - began
        self.traffic.durations["export"].append(seconds)
        self.traffic.notes.append(
            f"user {self.number}: export of {body.get('rows')} rows ({size_bytes:,} bytes) "
            f"completed and downloaded in {seconds:.1f} s"
        )

    async def run(self, deadline: float, job: str | None) -> None:
        actions = [self.browse, self.search, self.open_customer, self.edit_cell]
        weights = [3, 3, 2, 2]
        job_at = time.monotonic() + self.rng.uniform(0, SECONDS / 3) if job else None
        await self.think(0, 2.0)  # users do not all start at once
        while time.monotonic() < deadline:
            if job_at is not None and time.monotonic() >= job_at:
                job_at = None
                await (self.import_file() if job == "import" else self.export())
                continue
            await self.rng.choices(actions, weights)[0]()
            await self.think()

    async def close(self) -> None:
        await self.client.aclose()


async def _exports_route(base_url: str) -> bool:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        schema = await client.get("/schema/openapi.json")
    return schema.status_code == 200 and "/api/v1/exports" in schema.json().get("paths", {})


async def _mixed_load(world: World, base_url: str) -> tuple[Traffic, float]:
    traffic = Traffic()
    users = [SimulatedUser(number, world, base_url, traffic) for number in range(USERS)]
    exports = await _exports_route(base_url)
    if not exports:
        traffic.notes.append("POST /api/v1/exports does not exist yet: the exports were skipped")
    jobs: dict[int, str] = dict.fromkeys(range(IMPORTERS), "import")
    if exports:
        jobs |= dict.fromkeys(range(IMPORTERS, IMPORTERS + EXPORTERS), "export")
    try:
        gate = asyncio.Semaphore(4)  # sign-ins hash passwords: not all 50 at once

        async def start(user: SimulatedUser) -> None:
            async with gate:
                await user.start()

        await asyncio.gather(*(start(user) for user in users))
        began = time.monotonic()
        await asyncio.gather(*(user.run(began + SECONDS, jobs.get(user.number)) for user in users))
        return traffic, time.monotonic() - began
    finally:
        await asyncio.gather(*(user.close() for user in users))


def _report(traffic: Traffic, elapsed: float, load_before: float, cpu: dict[str, float]) -> None:
    routes = sorted(traffic.latencies.keys() | traffic.errors.keys())
    total = sum(len(traffic.latencies[route]) for route in routes)
    errors = sum(traffic.errors.values())
    width = max(len(route) for route in routes)
    print(
        f"\nload test: {USERS} simulated users for {elapsed:.0f} s, uvicorn with {PROCESSES} "
        f"process(es), a SAQ worker, {BOOK:,} customers per user; load average (1 min) "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    print(
        f"  {'route':<{width}}  {'count':>6}  {'p50 ms':>7}  {'p95 ms':>7}  {'p99 ms':>7}  errors"
    )
    for route in routes:
        values = traffic.latencies[route]
        print(
            f"  {route:<{width}}  {len(values):>6}  {percentile(values, 50):7.1f}  "
            f"{percentile(values, 95):7.1f}  {percentile(values, 99):7.1f}  "
            f"{traffic.errors.get(route, 0)}"
        )
    print(f"  throughput: {total / elapsed:.1f} answered requests/s; errors: {errors}")
    print(
        "  CPU used during the load, in % of one core: "
        + ", ".join(f"{name} {share:.0f} %" for name, share in cpu.items())
        + f" (the machine has {os.cpu_count()} cores)"
    )
    for sample in traffic.samples:
        print(f"  error: {sample}")
    for note in traffic.notes:
        print(f"  - {note}")

    size("load: simulated users", USERS)
    size("load: customers per user", BOOK)
    size("load: seconds", SECONDS)
    size("load: web processes (uvicorn)", PROCESSES)
    size("load: rows per import", IMPORT_ROWS)
    record(
        "load: throughput (mixed traffic)",
        total / elapsed,
        "req/s",
        better="higher",
        note="CPU % of one core: " + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items()),
    )
    record(
        "load: errors",
        errors,
        "",
        target=0,
        note="; ".join(traffic.samples[:3]) if errors else "",
    )
    for route in routes:
        values = traffic.latencies[route]
        record(
            f"load: {route} (p95)",
            percentile(values, 95),
            "ms",
            target=SEARCH_P95_TARGET_MS if route == SEARCH_ROUTE else None,
            note=f"n={len(values)}, p50 {percentile(values, 50):.1f}, "
            f"p99 {percentile(values, 99):.1f} ms",
        )
    for kind, seconds in traffic.durations.items():
        record(f"load: {kind} start to finish (slowest)", max(seconds), "s",
               note=f"{len(seconds)} done during the load")  # fmt: skip


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def test_mixed_load_of_many_users(world: World) -> None:
    load_before = os.getloadavg()[0]
    with running_server(world, "uvicorn") as (base_url, pid):
        app, generator = psutil.Process(pid), psutil.Process()
        before = {"app": _cpu(app), "load generator": _cpu(generator)}
        traffic, elapsed = asyncio.run(_mixed_load(world, base_url))
        after = {"app": _cpu(app), "load generator": _cpu(generator)}
    cpu = {name: (after[name] - before[name]) * 100 / elapsed for name in before}
    _report(traffic, elapsed, load_before, cpu)
    # The flows ran: requests were answered, and every import the users started finished.
    assert sum(len(values) for values in traffic.latencies.values()) > USERS
    assert len(traffic.durations["import"]) == IMPORTERS, traffic.samples


# --- uvicorn against granian ----------------------------------------------------------------


async def _list_fragment(base_url: str, email: str) -> Stats:
    limits = httpx.Limits(max_connections=10, max_keepalive_connections=10)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        await sign_in(client, email)

        async def call(_: int) -> None:
            response = await client.get("/customers", headers=HX)
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code} for /customers")

        for number in range(30):
            await call(number)
        return await load(call, SERVER_REQUESTS)


def test_list_fragment_under_uvicorn_and_granian(world: World) -> None:
    kinds = ["uvicorn"]
    if (Path(sys.executable).parent / "granian").exists():
        kinds.append("granian")
    else:
        print("\ngranian is not installed (.venv/bin/pip install granian): uvicorn alone")
    best: dict[str, Stats] = {}
    emails = iter(world.emails)  # a user per sign-in: the login limit counts per email
    for _round in range(SERVER_ROUNDS):
        for kind in kinds:
            with running_server(world, kind) as (base_url, _pid):
                stats = asyncio.run(_list_fragment(base_url, next(emails)))
            assert stats.count, f"{kind}: nothing answered: {stats.first_error}"
            if kind not in best or stats.p95 < best[kind].p95:
                best[kind] = stats
    print(
        f"\nASGI servers: GET /customers (htmx fragment), 10 clients, {SERVER_REQUESTS} "
        f"requests, {PROCESSES} process(es), best of {SERVER_ROUNDS} round(s)"
    )
    for kind, stats in best.items():
        print(
            f"  {kind:<8} p50 {stats.p50:6.1f} ms  p95 {stats.p95:6.1f} ms  "
            f"{stats.rps:6.0f} req/s  errors {stats.errors}"
        )
    uvicorn = best["uvicorn"]
    record("asgi: list fragment, uvicorn (p95)", uvicorn.p95, "ms")
    record("asgi: list fragment, uvicorn (throughput)", uvicorn.rps, "req/s", better="higher")
    if "granian" not in best:
        record("asgi: list fragment, granian", float("nan"), "", note="granian not installed")
        return
    granian = best["granian"]
    record(
        "asgi: list fragment, granian (p95)",
        granian.p95,
        "ms",
        baseline=uvicorn.p95,
        note="baseline: uvicorn, same processes and load",
    )
    record(
        "asgi: list fragment, granian (throughput)",
        granian.rps,
        "req/s",
        baseline=uvicorn.rps,
        better="higher",
        note="baseline: uvicorn, same processes and load",
    )
    gain = granian.rps / uvicorn.rps - 1 if uvicorn.rps else 0.0
    print(
        f"  granian serves {gain:+.0%} requests/s compared with uvicorn"
        + (" (more than 10 % faster)" if gain > 0.10 else "")
    )

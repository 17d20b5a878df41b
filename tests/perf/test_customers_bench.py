"""The customers benchmark of issue 4, against PostgreSQL and the real app in one process.

Run with `make bench` (or `BENCH_QUICK=1 make bench` for 10,000 rows). Each figure is
measured twice in the same run, at the same concurrency: through the app (HTTP, session,
template, repository) and as the raw SQL statements the repository sends for that page,
straight through asyncpg. The table prints both, their ratio, and the issue's target
beside the measured value. Timings are printed, never asserted: only a loose bound
catches a benchmark that measured nothing but errors or a hang.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import psutil
import pytest
from bs4 import BeautifulSoup
from piccolo.engine.postgres import PostgresEngine
from piccolo.querystring import QueryString

from app.customers.models import ListQuery
from app.customers.repository import Cursor, PiccoloCustomerRepository
from app.lib.db import POSTGRES_SERVER_SETTINGS, bind_tables
from tests.perf.conftest import PASSWORD, QUICK, BenchDatabase, serve
from tests.perf.lean_http import LeanClient
from tests.perf.results import record, size
from tests.perf.search_floor import floor, mean_ms

pytestmark = pytest.mark.perf

CONCURRENCY = 10
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "300"))  # per latency figure
THROUGHPUT_REQUESTS = int(os.environ.get("BENCH_THROUGHPUT_REQUESTS", "1500"))
CAP_SECONDS = 60.0  # per figure, whatever the request count
# Requests per figure before measuring, sent by the CONCURRENCY clients as the measured
# ones are: the app's pool opens its connections (it starts with one) and each of them
# prepares the page's statements, as the raw side's pool did before its run. A warm-up
# sent one request at a time left that to the first measured requests: their slowest
# were most of the p95 of a 300-request figure.
WARM_UP = 100
DEEP_ROW = 40_000
API_TOKENS = 60  # the API allows 120 requests a minute per token: rotate through many

# Realistic searches over the generated data (names weighted like real ones, notes from a
# vocabulary): common and rare words, a name, an organization, and words being typed.
ONE_WORD = ["garcia", "tanaka", "orchids", "seattle", "williams", "ferrari", "acme", "audit"]
TWO_WORDS = [
    "maria garcia",
    "james smith",
    "wei chen",
    "anna rossi",
    "david kim",
    "emma tanaka",
    "acme logistics",
    "renewal invoice",
]
PREFIXES = ["gar", "ross", "tan", "proc", "seat", "will", "mart", "ander"]
COMMON_WORD = ["smith"]  # the most common last name: a stress case, printed for information
SEARCHES = ONE_WORD + TWO_WORDS + PREFIXES + COMMON_WORD
# Count caps under which PostgreSQL's share of each search is measured (the first).
FLOOR_CAPS = (10_000, 1_000, 100)


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: list[float]
    errors: int
    seconds: float
    first_error: str = ""

    @property
    def count(self) -> int:
        return len(self.latencies)

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[index] * 1000

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p95(self) -> float:
        return self.percentile(95)

    @property
    def rps(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


async def load(call: Callable[[int], Awaitable[None]], requests: int) -> Stats:
    """``requests`` calls by CONCURRENCY clients, each waiting for its answer before the next;
    stops early at CAP_SECONDS."""
    latencies: list[float] = []
    errors: list[str] = []
    counter = itertools.count()
    deadline = time.perf_counter() + CAP_SECONDS

    async def client() -> None:
        while time.perf_counter() < deadline and (number := next(counter)) < requests:
            began = time.perf_counter()
            try:
                await call(number)
            except Exception as error:
                errors.append(f"{type(error).__name__}: {error}"[:300])
                continue
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return Stats(latencies, len(errors), time.perf_counter() - began, errors[0] if errors else "")


@dataclass
class Figure:
    name: str
    target: str  # as the issue says it
    kind: str  # "p95" (ms, lower is better) or "rps" (higher is better)
    limit: float | None  # the target's number; None: printed for information
    ours: Stats
    raw: Stats
    app_cpu_ms: float = float("nan")  # the app process's CPU time per request
    client_cpu_ms: float = float("nan")  # the load generator's CPU time per request

    @property
    def value(self) -> float:
        return self.ours.p95 if self.kind == "p95" else self.ours.rps

    @property
    def verdict(self) -> str:
        if self.limit is None:
            return "info"
        met = self.value <= self.limit if self.kind == "p95" else self.value >= self.limit
        return "PASS" if met else "MISS"


@dataclass
class Report:
    database: BenchDatabase
    surface: str = ""
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        header = (
            f"| {'figure':<46} | {'target':<12} | {'ours p50':>8} | {'ours p95':>8} "
            f"| {'ours req/s':>10} | {'raw p50':>7} | {'raw p95':>7} | {'raw req/s':>9} "
            f"| {'ours/raw':>8} | {'app CPU':>7} | {'client CPU':>10} | {'result':<6} |"
        )
        lines = [
            header,
            "|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|",
        ]
        for f in self.figures:
            if f.kind == "p95":
                ratio = f"{f.ours.p95 / f.raw.p95 if f.raw.p95 else float('nan'):8.1f}"
            else:
                ratio = f"{f.ours.rps / f.raw.rps if f.raw.rps else float('nan'):8.2f}"
            lines.append(
                f"| {f.name:<46} | {f.target:<12} | {f.ours.p50:8.1f} | {f.ours.p95:8.1f} "
                f"| {f.ours.rps:10.0f} | {f.raw.p50:7.2f} | {f.raw.p95:7.2f} | {f.raw.rps:9.0f} "
                f"| {ratio} | {f.app_cpu_ms:7.2f} | {f.client_cpu_ms:10.2f} "
                f"| {f.verdict:<6} |"
            )
        return "\n".join(lines)

    def render(self) -> str:
        db = self.database
        cpu = _cpu_model()
        seeding = "\n".join(
            f"  {step:<36} {seconds:8.1f} s" for step, seconds in db.seconds.items()
        )
        parts = [
            "",
            f"customers benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
            f"{' (BENCH_QUICK)' if QUICK else ''}",
            f"machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; "
            f"{self.postgres_version}",
            f"data: {db.main_rows:,} customers in the measured book, "
            f"{len(db.other_user_ids)} other users with {db.other_rows:,} each",
            f"load: {CONCURRENCY} concurrent clients, {REQUESTS} requests per latency figure, "
            f"{THROUGHPUT_REQUESTS} for throughput, one uvicorn process; "
            "times in ms; ours/raw = p95 ratio (throughput: req/s ratio); "
            "app CPU and client CPU = CPU ms per request of the app process and of the load "
            "generator, which share the machine's cores with PostgreSQL",
            f"measured surface: {self.surface}",
            f"load average (1 min) at the start and the end of the measurements: "
            f"{self.load_before:.1f}, {os.getloadavg()[0]:.1f} (anything above 0 was other work "
            "on the same cores)",
            "seeding:",
            seeding,
            "",
            self.table(),
            *[f"- {note}" for note in self.notes],
            "",
        ]
        return "\n".join(parts)

    postgres_version: str = ""
    load_before: float = 0.0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


@contextmanager
def profiling(pid: int, name: str) -> Iterator[None]:
    """With BENCH_PROFILE=folder, py-spy samples the app process during the figure and
    writes its stacks there, one file per figure, in the collapsed format that
    flamegraph.pl and speedscope read. py-spy is not a dependency: pip install it."""
    folder = os.environ.get("BENCH_PROFILE")
    if not folder:
        yield
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    spy = subprocess.Popen(
        [
            shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "250",
            "--format",
            "raw",
            "-o",
            f"{folder}/{slug}.txt",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)  # py-spy attaches before the load starts
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


# --- the SQL the app sends, captured once, replayed raw ---------------------------------------

Statement = tuple[str, list[Any]]


@contextmanager
def capturing(engine: PostgresEngine) -> Iterator[list[Statement]]:
    """Record every statement Piccolo sends to ``engine``, compiled as asyncpg receives it."""
    captured: list[Statement] = []
    original = PostgresEngine.run_querystring

    async def run(self: PostgresEngine, querystring: QueryString, in_pool: bool = True) -> Any:
        if self is engine:
            sql, args = querystring.compile_string(engine_type="postgres")
            captured.append((sql, list(args)))
        return await original(self, querystring, in_pool=in_pool)

    PostgresEngine.run_querystring = run  # type: ignore[method-assign]
    try:
        yield captured
    finally:
        PostgresEngine.run_querystring = original  # type: ignore[method-assign]


@dataclass
class Page:
    """One page as a client asks for it, and the statements the repository sends for it."""

    params: dict[str, Any]
    statements: list[Statement]
    count: int
    count_capped: bool


async def page_sql(engine: PostgresEngine, user_id: int, params: dict[str, Any]) -> Page:
    repository = PiccoloCustomerRepository()
    with capturing(engine) as captured:
        page = await repository.list_page(user_id, ListQuery(**params))
    return Page(params, list(captured), page.count, page.count_capped)


# --- the clients ------------------------------------------------------------------------------


async def sign_in(client: httpx.AsyncClient, email: str) -> None:
    """Through the real form: GET /login for the CSRF token and cookie, then POST it."""
    form = await client.get("/login")
    assert form.status_code == 200, form.text[:500]
    token_input = BeautifulSoup(form.text, "html.parser").select_one("input[name=_csrf_token]")
    assert token_input is not None, "no CSRF field on the login form"
    signed = await client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "_csrf_token": str(token_input["value"])},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text[:500]
    assert "crm_session" in client.cookies


async def api_tokens(database: BenchDatabase, count: int) -> list[str]:
    """Tokens made as the service makes them (sha256 of the secret), straight in the table."""
    conn = await asyncpg.connect(database.url)
    try:
        tokens = []
        for number in range(count):
            secret = secrets.token_urlsafe(40)
            token_id = await conn.fetchval(
                "INSERT INTO api_tokens (user_id, name, token_hash, abilities, created_at) "
                "VALUES ($1, $2, $3, '[\"*\"]', now()) RETURNING id",
                database.user_id,
                f"bench {number}",
                hashlib.sha256(secret.encode()).hexdigest(),
            )
            tokens.append(f"{token_id}|{secret}")
        return tokens
    finally:
        await conn.close()


def rotating_bearer(tokens: list[str]) -> Callable[[int], dict[str, str]]:
    return lambda number: {"Authorization": f"Bearer {tokens[number % len(tokens)]}"}


async def fragment_ready(client: httpx.AsyncClient) -> bool:
    response = await client.get("/customers", headers={"HX-Request": "true"})
    return response.status_code == 200 and "<html" not in response.text[:500].lower()


@dataclass
class Surface:
    """Where the app is asked for pages: the /customers fragment, or the JSON API."""

    name: str
    client: LeanClient  # the load's requests; sign-in and set-up go through httpx
    path: str
    headers: Callable[[int], dict[str, str]]

    def url(self, params: dict[str, Any]) -> str:
        query = {k: v for k, v in params.items() if v not in (None, "")}
        return self.path + ("?" + urlencode(query) if query else "")

    async def get(self, number: int, params: dict[str, Any]) -> None:
        answer = await self.client.get(self.url(params), self.headers(number))
        if answer.status != 200:
            raise RuntimeError(f"{answer.status} for {self.url(params)}")


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Measured:
    ours: Stats
    raw: Stats
    app_cpu_ms: float  # the app process's CPU time per answered request
    client_cpu_ms: float  # this process's (the load generator's) CPU time per request


async def measure(
    surface: Surface,
    pool: asyncpg.Pool,
    pages: list[Page],
    requests: int,
    server_pid: int,
) -> Measured:
    async def ours(number: int) -> None:
        await surface.get(number, pages[number % len(pages)].params)

    async def raw(number: int) -> None:
        async with pool.acquire() as conn:
            for sql, args in pages[number % len(pages)].statements:
                await conn.fetch(sql, *args)

    await load(ours, WARM_UP)
    await load(raw, WARM_UP)
    server, client = psutil.Process(server_pid), psutil.Process()
    server_before, client_before = sum(server.cpu_times()[:2]), sum(client.cpu_times()[:2])
    measured_ours = await load(ours, requests)
    server_cpu = sum(server.cpu_times()[:2]) - server_before
    client_cpu = sum(client.cpu_times()[:2]) - client_before
    answered = max(measured_ours.count + measured_ours.errors, 1)
    return Measured(
        ours=measured_ours,
        raw=await load(raw, requests),
        app_cpu_ms=server_cpu * 1000 / answered,
        client_cpu_ms=client_cpu * 1000 / answered,
    )


def hits(pages: list[Page]) -> str:
    counts = [f"{p.count:,}{'+' if p.count_capped else ''}" for p in pages]
    return ", ".join(f"{p.params.get('q')}: {c}" for p, c in zip(pages, counts, strict=True))


async def test_customers_benchmark(bench_database: BenchDatabase, tmp_path: Path) -> None:
    database = bench_database
    report = Report(database, load_before=os.getloadavg()[0])
    engine = PostgresEngine(
        config={"dsn": database.url, "server_settings": POSTGRES_SERVER_SETTINGS}
    )
    bind_tables(engine)
    await engine.start_connection_pool(min_size=1, max_size=2)
    # The raw side connects as the app does (the same server settings), so both run the
    # same plans.
    pool = await asyncpg.create_pool(
        database.url,
        min_size=CONCURRENCY,
        max_size=CONCURRENCY,
        server_settings=POSTGRES_SERVER_SETTINGS,
    )
    size("customers: measured book", database.main_rows)
    size("customers: other users x their books", f"{len(database.other_user_ids)} x "
         f"{database.other_rows:,}")  # fmt: skip
    size("customers: requests per latency figure", REQUESTS)
    size("customers: concurrent clients", CONCURRENCY)
    try:
        report.postgres_version = "PostgreSQL " + str(await pool.fetchval("SHOW server_version"))
        user = database.user_id
        depth = min(DEEP_ROW, database.main_rows - 100)
        edge = await pool.fetchrow(
            "SELECT created_at, id FROM customers WHERE user_id = $1 "
            "ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1",
            user,
            depth - 1,
        )
        deep_cursor = Cursor("-created", True, edge["created_at"], edge["id"]).encode()

        async def pages(params: list[dict[str, Any]]) -> list[Page]:
            return [await page_sql(engine, user, p) for p in params]

        first = await pages([{}])
        deep = await pages([{"cursor": deep_cursor}])
        one_word = await pages([{"q": q} for q in ONE_WORD])
        two_words = await pages([{"q": q} for q in TWO_WORDS])
        prefixes = await pages([{"q": q} for q in PREFIXES])
        common = await pages([{"q": q} for q in COMMON_WORD])
        repository = PiccoloCustomerRepository()
        with capturing(engine) as organizations_sql:
            organization_names = await repository.organizations(user)
        timings = []
        for _ in range(20):
            began = time.perf_counter()
            for sql, args in organizations_sql:
                await pool.fetch(sql, *args)
            timings.append((time.perf_counter() - began) * 1000)
        record("customers: organization list, raw SQL (median, alone)", sorted(timings)[10], "ms")
        # PostgreSQL's own share of a search under three count rules: the floor under the
        # search figures, whatever the app does (tests/perf/search_floor.py).
        async with pool.acquire() as conn:
            for cap in FLOOR_CAPS:
                lines = await floor(conn, user, SEARCHES, cap)
                record(
                    f"customers: search, PostgreSQL alone, count exact to {cap:,} (mean)",
                    mean_ms(lines),
                    "ms",
                    note="one client, fastest of 3, the cheaper of two count plans",
                )
        report.notes += [
            f"the organization list ({len(organization_names):,} names, which the dashboard "
            f"shows in its filter) costs {sorted(timings)[10]:.1f} ms of raw SQL (median, alone)",
            f"one-word hits: {hits(one_word)}",
            f"two-word hits: {hits(two_words)}",
            f"prefix hits: {hits(prefixes)}",
            f"first page: {first[0].count:,}{'+' if first[0].count_capped else ''} "
            f"customers counted; deep page starts after row {depth:,} (keyset cursor)",
        ]

        limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)  # set-up only
        for cache in (False, True):
            with serve(database, cache=cache, log_dir=tmp_path) as server:
                async with (
                    httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=30) as setup,
                    LeanClient(server.base_url, size=CONCURRENCY) as lean,
                ):
                    await sign_in(setup, database.email)
                    lean.use_cookies(setup.cookies)
                    tokens = await api_tokens(database, API_TOKENS)
                    api = Surface(
                        "JSON API GET /api/v1/customers",
                        lean,
                        "/api/v1/customers",
                        rotating_bearer(tokens),
                    )
                    fragment = Surface(
                        "fragment GET /customers with HX-Request",
                        lean,
                        "/customers",
                        lambda n: {"HX-Request": "true"},
                    )
                    web = fragment if await fragment_ready(setup) else api
                    if web is api and not cache:
                        report.notes.append(
                            "the /customers fragment did not answer 200 yet: the figures "
                            "were measured on the JSON API list endpoint instead"
                        )
                    report.surface = web.name

                    async def figure(
                        name: str,
                        target: str,
                        kind: str,
                        limit: float | None,
                        surface: Surface,
                        chosen: list[Page],
                        requests: int = REQUESTS,
                    ) -> None:
                        with profiling(server.pid, name):
                            measured = await measure(surface, pool, chosen, requests, server.pid)
                        ours = measured.ours
                        assert ours.count, f"{name}: no request succeeded: {ours.first_error}"
                        if ours.errors:
                            report.notes.append(
                                f"{name}: {ours.errors} errors ({ours.first_error})"
                            )
                        report.figures.append(
                            Figure(
                                name,
                                target,
                                kind,
                                limit,
                                ours,
                                measured.raw,
                                app_cpu_ms=measured.app_cpu_ms,
                                client_cpu_ms=measured.client_cpu_ms,
                            )
                        )
                        p95 = kind == "p95"
                        record(
                            f"customers: {name}" + (" (p95)" if p95 else ""),
                            ours.p95 if p95 else ours.rps,
                            "ms" if p95 else "req/s",
                            baseline=measured.raw.p95 if p95 else measured.raw.rps,
                            target=limit,
                            better="lower" if p95 else "higher",
                            note=f"baseline: the page's SQL through asyncpg; {ours.errors} errors"
                            if ours.errors
                            else "",
                        )

                    if not cache:
                        await figure("search, one word", "p95 ≤ 50 ms", "p95", 50, web, one_word)
                        await figure("search, two words", "p95 ≤ 50 ms", "p95", 50, web, two_words)
                        await figure(
                            "search, prefix as typed", "p95 ≤ 50 ms", "p95", 50, web, prefixes
                        )
                        await figure(
                            "search, very common word (smith)", "-", "p95", None, web, common
                        )
                        await figure("list, first page", "p95 ≤ 30 ms", "p95", 30, web, first)
                        await figure(
                            f"list, page after row {depth:,}", "p95 ≤ 30 ms", "p95", 30, web, deep
                        )
                        await figure(
                            "list, throughput (first page)",
                            "≥ 300 req/s",
                            "rps",
                            300,
                            web,
                            first,
                            THROUGHPUT_REQUESTS,
                        )
                        await figure("JSON API, first page", "-", "p95", None, api, first)
                        await figure("JSON API, search one word", "-", "p95", None, api, one_word)
                    else:
                        await figure(
                            "cache on: list, first page", "p95 ≤ 30 ms", "p95", 30, web, first
                        )
                        await figure(
                            "cache on: list, throughput",
                            "≥ 300 req/s",
                            "rps",
                            300,
                            web,
                            first,
                            THROUGHPUT_REQUESTS,
                        )
                        await figure(
                            "cache on: search, one word", "p95 ≤ 50 ms", "p95", 50, web, one_word
                        )
    finally:
        await pool.close()
        await engine.close_connection_pool()

    print(report.render())
    output = os.environ.get("BENCH_OUTPUT")
    if output:
        Path(output).write_text(report.render())
    # A loose sanity bound, not a target: the app answered, and not absurdly slowly.
    for f in report.figures:
        assert f.ours.count >= min(REQUESTS, 50), f"{f.name}: too few answers"
        assert f.ours.p50 < 5_000, f"{f.name}: a median over 5 s means something is broken"

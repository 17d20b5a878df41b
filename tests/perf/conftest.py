"""The benchmark's world: a scratch PostgreSQL database seeded by COPY with a large book of
realistic customers, and the real app served by one uvicorn process.

Sizes (environment of the benchmark run, not of the app):
- BENCH_CUSTOMERS: customers in the measured user's book (default 1,000,000);
- BENCH_QUICK=1: 10,000 instead, for a run of a minute or two;
- BENCH_OTHERS: other users, each with BENCH_CUSTOMERS / 100 customers (default 10).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.services import (
    ROOT,
    TEST_REDIS_URL,
    free_port,
    run_migrations,
    scratch_postgres,
)
from tests.perf.report import pytest_sessionfinish, pytest_terminal_summary  # noqa: F401  one table

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0", "false")
MAIN_ROWS = 10_000 if QUICK else int(os.environ.get("BENCH_CUSTOMERS", "1000000"))
OTHER_USERS = int(os.environ.get("BENCH_OTHERS", "10"))
OTHER_ROWS = max(MAIN_ROWS // 100, 1)
# The app's JSON logging is on in this process (tests import app.main): one line per
# benchmark request from httpx would drown the table.
logging.getLogger("httpx").setLevel(logging.WARNING)

PASSWORD = "bench-velvet-plum-tart-1887"
SECRET_KEY = "bench-secret-key-that-is-long-enough-0123456789"
CHUNK = 50_000  # rows per COPY call: memory stays flat whatever the size
SPAN = timedelta(days=3 * 365)  # the book grew over three years

# --- realistic data -------------------------------------------------------------------------


def words(text: str) -> list[str]:
    return text.split()


FIRST_NAMES = words(
    """
james mary robert patricia john jennifer michael linda david elizabeth william barbara
richard susan joseph jessica thomas sarah charles karen christopher lisa daniel nancy
matthew betty anthony margaret mark sandra donald ashley steven kimberly paul emily andrew
donna joshua michelle kenneth carol kevin amanda brian dorothy george melissa timothy
deborah ronald stephanie edward rebecca jason sharon jeffrey laura ryan cynthia jacob
kathleen gary amy nicholas angela eric shirley jonathan anna stephen brenda larry pamela
justin emma scott nicole brandon helen benjamin samantha samuel katherine gregory christine
alexander debra frank rachel patrick carolyn raymond janet jack catherine dennis maria
jerry heather tyler diane aaron ruth jose julie adam olivia nathan joyce henry virginia
douglas victoria zachary kelly peter lauren kyle christina ethan joan walter evelyn noah
judith jeremy megan christian andrea keith cheryl roger hannah terry jacqueline gerald
martha harold gloria sean teresa austin ann carl sara arthur madison lawrence frances
dylan kathryn jesse janice jordan jean bryan abigail billy alice joe judy bruce sophia
gabriel grace logan denise albert amber willie doris alan marilyn juan danielle wayne
beverly elijah isabella randy theresa roy diana vincent natalie ralph brittany eugene
charlotte russell marie bobby kayla mason alexis philip lori louis ana sofia mateo lucia
hugo ines rafael carmen diego elena pablo marta javier laura sergio paula jorge alba
luca giulia marco chiara matteo sara lorenzo francesca yuki haruto sakura ren aiko kenji
wei li fang jun mei chen priya arjun ananya rohan aisha omar fatima yusuf leila amir
"""
)

LAST_NAMES = words(
    """
smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez
gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white
harris sanchez clark ramirez lewis robinson walker young allen king wright scott torres
nguyen hill flores green adams nelson baker hall rivera campbell mitchell carter roberts
gomez phillips evans turner diaz parker cruz edwards collins reyes stewart morris morales
murphy cook rogers gutierrez ortiz morgan cooper peterson bailey reed kelly howard ramos
kim cox ward richardson watson brooks chavez wood james bennett gray mendoza ruiz hughes
price alvarez castillo sanders patel myers long ross foster jimenez powell jenkins perry
russell sullivan bell coleman butler henderson barnes gonzales fisher vasquez simmons
romero jordan patterson alexander hamilton graham reynolds griffin wallace moreno west
cole hayes bryant herrera gibson ellis tran medina aguilar stevens murray ford castro
marshall owens harrison fernandez mcdonald woods washington kennedy wells vargas henry
chen freeman webb tucker guzman burns crawford olson simpson porter hunter gordon mendez
silva shaw snyder mason dixon munoz hunt hicks holmes palmer wagner black robertson boyd
rose stone salazar fox warren mills meyer rice schmidt garza daniels ferguson nichols
stephens soto weaver ryan gardner payne grant dunn kelley spencer hawkins arnold pierce
vazquez hansen peters santos hart bradley knight elliott cunningham duncan armstrong
hudson carroll lane riley andrews alvarado ray delgado berry perkins hoffman johnston
matthews pena richards contreras willis carpenter lawrence sandoval rossi bianchi
ferrari russo tanaka suzuki sato watanabe wang zhang liu singh kumar sharma khan ali
mueller schneider fischer weber dubois moreau laurent lefebvre novak kowalski nowak
"""
)

ORG_FIRST = words(
    """
acme apex atlas aurora azure beacon birch blue bright cedar clear cobalt coral crest
crystal delta eagle echo ember evergreen falcon fern first fox frontier golden granite
green harbor hawk highland horizon iron ivy jade keystone lake laurel legacy liberty lime
lunar maple meadow mercury metro midwest north nova oak ocean olive omega orbit pacific
peak pine pioneer polar prime quantum quartz rapid red ridge river rock royal sage
sierra silver sky solar spring star sterling stone summit sun swift terra thunder
tidal titan true union united valley vertex vista west white wild willow
"""
)
ORG_SECOND = words(
    """
analytics bakery biotech builders capital clinic consulting dental design energy
engineering foods freight furniture health hotels industries insurance labs legal
logistics marine media motors partners pharma realty robotics software systems textiles
travel ventures wines works
"""
)
ORG_FORMS = ["", " Inc", " LLC", " Ltd", " Group", " & Co"]

JOB_TITLES = """
CEO|CTO|CFO|COO|Founder|Owner|Partner|Director of Sales|Sales Manager|Account Executive|
Purchasing Manager|Buyer|Procurement Lead|Office Manager|Operations Manager|Head of IT|
IT Manager|Software Engineer|Engineering Manager|Product Manager|Marketing Manager|
Marketing Director|Brand Manager|HR Manager|Recruiter|Accountant|Controller|Analyst|
Consultant|Project Manager|Designer|Architect|Facilities Manager|Customer Success Manager|
Support Lead|Legal Counsel|Researcher|Teacher|Nurse|Physician|Chef|Store Manager
""".replace("\n", "").split("|")

NOTE_WORDS = words(
    """
meeting call email follow up proposal contract renewal invoice payment discount order
shipment delivery delayed urgent budget quarter annual review demo trial pilot onboarding
training support ticket issue resolved feedback survey referral introduced conference
trade fair booth lunch coffee dinner visit office warehouse factory site tour agreed
signed quote pricing tier upgrade downgrade cancelled paused prefers morning afternoon
evening weekday phone video zoom teams slack decision maker champion blocker legal
procurement security questionnaire compliance audit integration api import export data
migration spreadsheet dashboard report monthly weekly daily newsletter webinar case study
testimonial reference partner reseller distributor wholesale retail online store catalog
sample samples color size fabric wood steel glass paper packaging label logo print
brochure website launch campaign event sponsor holiday gift birthday anniversary family
kids vacation travel flight hotel spain italy france germany japan canada mexico brazil
london paris berlin madrid tokyo toronto chicago boston denver austin seattle miami
garden gardening orchids tea wine cheese chocolate coffee cycling running tennis golf
football baseball basketball sailing hiking skiing photography music piano guitar
books reading cooking baking painting chess yoga marathon charity volunteer school
university alumni mba engineering medicine nursing hospital clinic pharmacy lab research
grant funding investor board hiring expansion relocation remote hybrid headquarters
branch regional national international new existing former lost won churn risk happy
unhappy complaint praise excellent slow fast reliable expensive cheap competitor switch
evaluate shortlist rfp tender deadline friday monday next week month year spring summer
autumn winter q1 q2 q3 q4 asap later reminder callback voicemail left message no answer
"""
)

DOMAINS = ["example.com", "mail.test", "inbox.test", "post.example", "corp.example"]


def organizations() -> list[str]:
    """About 2,000 distinct organization names."""
    rng = random.Random(7)
    names = [f"{a.title()} {b.title()}" for a, b in itertools.product(ORG_FIRST, ORG_SECOND)]
    rng.shuffle(names)
    return [name + rng.choice(ORG_FORMS) for name in names[:2000]]


def _weights(count: int, exponent: float) -> list[float]:
    # Zipf-like: a few words are common, most are rare, as in real notes.
    return list(itertools.accumulate(1 / (rank + 1) ** exponent for rank in range(count)))


@dataclass
class Generator:
    rng: random.Random
    orgs: list[str] = field(default_factory=organizations)

    def __post_init__(self) -> None:
        self.note_weights = _weights(len(NOTE_WORDS), 0.6)
        self.first_weights = _weights(len(FIRST_NAMES), 0.6)
        self.last_weights = _weights(len(LAST_NAMES), 0.6)

    def notes(self) -> str:
        count = self.rng.choice((0, 0, 5, 8, 12, 20, 30, 45))
        if not count:
            return ""
        words = self.rng.choices(NOTE_WORDS, cum_weights=self.note_weights, k=count)
        words[0] = words[0].capitalize()
        return " ".join(words) + "."

    def customers(self, user_id: int, count: int, start: datetime) -> Iterator[tuple[Any, ...]]:
        """(user_id, slug, name, email, email_normalized, phone, organization, job_title,
        notes, created_at, updated_at), created in order over SPAN."""
        rng = self.rng
        step = SPAN / max(count, 1)
        for number in range(count):
            first = rng.choices(FIRST_NAMES, cum_weights=self.first_weights)[0]
            last = rng.choices(LAST_NAMES, cum_weights=self.last_weights)[0]
            org = rng.choice(self.orgs) if rng.random() < 0.85 else ""
            domain = (
                org.split()[0].lower() + "-" + org.split()[1].lower() + ".example"
                if org
                else rng.choice(DOMAINS)
            )
            email = f"{first}.{last}{number}@{domain}"
            created = start + step * number + timedelta(seconds=rng.randint(0, 59))
            edited = timedelta(days=rng.randint(1, 30)) if rng.random() < 0.3 else timedelta()
            updated = min(created + edited, start + SPAN)
            yield (
                user_id,
                f"{first}-{last}-{number}",
                f"{first.title()} {last.title()}",
                email,
                email.lower(),
                f"+1 555 {rng.randint(0, 9999999):07d}" if rng.random() < 0.7 else "",
                org,
                rng.choice(JOB_TITLES) if rng.random() < 0.8 else "",
                self.notes(),
                created,
                updated,
            )


# --- the seeded database ---------------------------------------------------------------------

COLUMNS = (
    "user_id",
    "slug",
    "name",
    "email",
    "email_normalized",
    "phone",
    "organization",
    "job_title",
    "notes",
    "created_at",
    "updated_at",
)
STAGING = """
CREATE UNLOGGED TABLE customers_staging (
    user_id bigint, slug text, name text, email text, email_normalized text, phone text,
    organization text, job_title text, notes text,
    created_at timestamptz, updated_at timestamptz
)
"""


@dataclass
class BenchDatabase:
    url: str
    user_id: int  # the owner of the large book
    email: str
    other_user_ids: list[int]
    main_rows: int
    other_rows: int
    seconds: dict[str, float]  # what seeding cost, step by step


async def _seed(url: str) -> BenchDatabase:
    import asyncpg

    from app.accounts.passwords import hash_password

    seconds: dict[str, float] = {}
    conn = await asyncpg.connect(url)
    try:
        now = datetime.now(UTC)
        email = "bench-owner@example.com"
        users = [("Bench Owner", email)] + [
            (f"Other {n}", f"bench-other-{n}@example.com") for n in range(OTHER_USERS)
        ]
        ids = []
        for name, address in users:
            ids.append(
                await conn.fetchval(
                    "INSERT INTO users (name, email, password_hash, email_verified_at, "
                    "is_admin, created_at, updated_at) VALUES ($1, $2, $3, $4, false, $4, $4) "
                    "RETURNING id",
                    name,
                    address,
                    hash_password(PASSWORD),
                    now,
                )
            )
        generator = Generator(random.Random(20261125))
        start = now - SPAN
        books = [generator.customers(ids[0], MAIN_ROWS, start)] + [
            generator.customers(user_id, OTHER_ROWS, start) for user_id in ids[1:]
        ]
        rows = itertools.chain.from_iterable(books)

        await conn.execute(STAGING)
        began = time.perf_counter()
        generating = 0.0
        while True:
            mark = time.perf_counter()
            chunk = list(itertools.islice(rows, CHUNK))
            generating += time.perf_counter() - mark
            if not chunk:
                break
            await conn.copy_records_to_table("customers_staging", records=chunk, columns=COLUMNS)
        seconds["generate rows (Python)"] = generating
        seconds["COPY into staging"] = time.perf_counter() - began - generating

        began = time.perf_counter()
        columns = ", ".join(COLUMNS)
        # In creation order, all users interleaved, as a book that grew over time is stored.
        await conn.execute(
            f"INSERT INTO customers ({columns}) "  # noqa: S608
            f"SELECT {columns} FROM customers_staging ORDER BY created_at"
        )
        seconds["INSERT ... SELECT into customers"] = time.perf_counter() - began
        await conn.execute("DROP TABLE customers_staging")

        began = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE) customers")
        seconds["VACUUM ANALYZE"] = time.perf_counter() - began
    finally:
        await conn.close()
    return BenchDatabase(
        url=url,
        user_id=ids[0],
        email=email,
        other_user_ids=ids[1:],
        main_rows=MAIN_ROWS,
        other_rows=OTHER_ROWS,
        seconds=seconds,
    )


async def _seeded(url: str) -> BenchDatabase:
    """A database that an earlier run (or tests/perf/conftest.py's _seed) already filled."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT u.id, u.email, (SELECT count(*) FROM customers c WHERE c.user_id = u.id) AS n "
            "FROM users AS u WHERE u.email LIKE 'bench-%@example.com' ORDER BY u.id"
        )
    finally:
        await conn.close()
    owner = next(row for row in rows if row["email"] == "bench-owner@example.com")
    others = [row for row in rows if row["id"] != owner["id"]]
    return BenchDatabase(
        url=url,
        user_id=owner["id"],
        email=owner["email"],
        other_user_ids=[row["id"] for row in others],
        main_rows=owner["n"],
        other_rows=others[0]["n"] if others else 0,
        seconds={},
    )


@pytest.fixture(scope="session")
def bench_database(postgres_server_url: str) -> Iterator[BenchDatabase]:
    seeded = os.environ.get("BENCH_SEEDED_DATABASE_URL")
    if seeded:
        # For working on the app between runs: seeding a million rows takes minutes.
        yield asyncio.run(_seeded(seeded))
        return
    with scratch_postgres(postgres_server_url, "bench") as url:
        began = time.perf_counter()
        run_migrations(url)
        migrated = time.perf_counter() - began
        database = asyncio.run(_seed(url))
        database.seconds = {"migrations": migrated, **database.seconds}
        yield database


# --- the app in its own process ----------------------------------------------------------------


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def forget_cache(redis_url: str = TEST_REDIS_URL) -> None:
    """Drop the app's cached pages from Redis: they are keyed by user id, and a scratch
    database of an earlier run (within the cache's 5 minutes) had users with the same ids."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match="crm_cache:*", count=1000):
            client.delete(key)
    finally:
        client.close()


@contextlib.contextmanager
def serve(database: BenchDatabase, *, cache: bool, log_dir: Path) -> Iterator[Server]:
    """`python -m app.cli serve`: one uvicorn process, as `crm serve` runs in production."""
    forget_cache()
    port = free_port()
    log = log_dir / f"server-{port}.log"
    env = {
        **os.environ,
        "DATABASE_URL": database.url,
        "REDIS_URL": TEST_REDIS_URL,
        "SECRET_KEY": SECRET_KEY,
        "CACHE_ENABLED": "true" if cache else "false",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "APP_URL": f"http://127.0.0.1:{port}",
        "STORAGE_DIR": str(log_dir / "storage"),
        "MAIL_URL": f"file://{log_dir / 'mail'}",
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield Server(base_url=base_url, process=process, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

"""The CSV file is exactly, byte for byte, what ``csv.writer`` writes from the dashboard's
list with the formula guard applied: on PostgreSQL the database writes the lines
(``CSV_LINE_SQL``), on SQLite Python does (``csv_rows``), and both must agree on every
quote, apostrophe, line end and timestamp."""

from __future__ import annotations

import csv
import io
import random
import uuid
from datetime import timedelta

import pytest

from app.customers.models import Customer, ListQuery
from app.customers.tables import Customer as CustomerTable
from app.exports.writer import HEADER
from app.transfers.csv_reader import guard_formula, strip_formula_guard
from tests.exports.conftest import BASE_TIME, Run, listed

# Values where quoting or the formula guard could go wrong, one by one.
EDGES = [
    "",
    "'",
    "''",
    "'plain",
    "'=x",
    "''+y",
    "'''-z",
    "'@",
    "'\tx",
    "=",
    "+",
    "-",
    "@",
    "\t",
    "\r",
    "\n",
    "\r\n",
    "a,b",
    '"',
    '""',
    'say "hi"',
    "x\r\ny",
    " leading space",
    "trailing space ",
    "a;b",
    '=1+2,"3"\n',
    "Zoë 日本語 😀",
]
# Characters that matter to CSV or to the guard, and some that do not.
ALPHABET = [",", '"', "\r", "\n", "\t", "=", "+", "-", "@", "'", " ", ";", "a", "Z", "é", "😀"]
TEXT_CELLS = ("name", "email", "phone", "organization", "job_title", "notes")


def fuzzed(rng: random.Random) -> str:
    return "".join(rng.choices(ALPHABET, k=rng.randint(0, 7)))


async def seed_edges(user_id: int) -> None:
    rng = random.Random(20261125)
    values = EDGES + [fuzzed(rng) for _ in range(60)]
    objects = []
    for number in range(len(values)):
        # Each edge value lands in every text cell of some row; times with and without
        # microseconds (isoformat leaves them out when there are none).
        cells = {
            name: values[(number + shift) % len(values)] for shift, name in enumerate(TEXT_CELLS)
        }
        created = BASE_TIME + timedelta(minutes=number, microseconds=(number % 3) * 250_001)
        email = f"{cells['email']}{number}"
        objects.append(
            CustomerTable(
                user_id=user_id,
                slug=f"edge-{number}-{uuid.uuid4().hex[:6]}",
                email=email,
                email_normalized=email.lower(),
                created_at=created,
                updated_at=created + timedelta(microseconds=number % 2),
                **{name: cells[name] for name in TEXT_CELLS if name != "email"},
            )
        )
    await CustomerTable.insert(*objects)


def expected_file(customers: list[Customer]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    for c in customers:
        writer.writerow(
            [
                *(guard_formula(getattr(c, name)) for name in TEXT_CELLS),
                c.created_at.isoformat(),
                c.updated_at.isoformat(),
                c.slug,
            ]
        )
    return buffer.getvalue().encode("utf-8")


@pytest.mark.parametrize(
    "query",
    [ListQuery(), ListQuery(sort="name"), ListQuery(sort="-updated"), ListQuery(q="a")],
    ids=["newest", "by-name", "updated", "relevance"],
)
async def test_the_file_is_csv_writer_output_byte_for_byte(
    run: Run, user_id: int, query: ListQuery
) -> None:
    await seed_edges(user_id)
    done = await run.full(query, batch_rows=7)
    assert done.status == "completed", done.error_message
    wanted = await listed(user_id, query)
    assert done.processed_rows == len(wanted) > 7
    if not query.q:
        assert len(wanted) == len(EDGES) + 60
    assert await run.content(done) == expected_file(wanted)


async def test_the_import_side_reads_back_every_original_value(run: Run, user_id: int) -> None:
    await seed_edges(user_id)
    data = await run.content(await run.full(batch_rows=7))
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))[1:]
    book = {c.slug: c for c in await listed(user_id, ListQuery())}
    assert len(rows) == len(book)
    for row in rows:
        customer = book[row[8]]
        # "'=x" must be written "''=x": the import takes one apostrophe off again.
        assert [strip_formula_guard(cell) for cell in row[:6]] == [
            getattr(customer, name) for name in TEXT_CELLS
        ]

"""A customer export as people bring them to an import: a Google Contacts CSV (its real
header), messy values, and some rows whose emails are already in the book.

``write_export(path, rows, existing_emails)`` streams the file to disk (nothing is held
but one row) and returns what an import of it must end with. What is messy, per row:
whitespace around values and doubled inside names, emails in mixed case, phones in six
formats, notes with commas, quotes and line breaks (quoted fields spanning lines), a
middle name now and then, a first name only in the last-name column; 0.3 % of the rows
are broken (an email without a domain, or no email at all) and 1 % carry the email of a
customer already in the book (``existing_emails``, in any case), which the default
policy skips.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from tests.perf.conftest import FIRST_NAMES, JOB_TITLES, LAST_NAMES, Generator

HEADER = [
    "First Name",
    "Middle Name",
    "Last Name",
    "Nickname",
    "Birthday",
    "Notes",
    "Labels",
    "E-mail 1 - Label",
    "E-mail 1 - Value",
    "Phone 1 - Label",
    "Phone 1 - Value",
    "Organization Name",
    "Organization Title",
]
MAIL_DOMAINS = ["gmail.test", "outlook.test", "yahoo.test", "icloud.test", "proton.test"]
LABELS = ["* myContacts", "* myContacts ::: Clients", "* myContacts ::: Leads", "Imported"]
DUPLICATE_SHARE = 0.01
BROKEN_SHARE = 0.003


@dataclass(frozen=True)
class Export:
    path: Path
    rows: int
    bytes: int
    created: int  # what the import must count with the default policy (skip)
    skipped: int
    failed: int


def _phone(rng: random.Random) -> str:
    digits = f"{rng.randint(200, 999)}{rng.randint(0, 9_999_999):07d}"
    shapes = (
        f"+1 {digits[:3]} {digits[3:6]} {digits[6:]}",
        f"({digits[:3]}) {digits[3:6]}-{digits[6:]}",
        f"{digits[:3]}.{digits[3:6]}.{digits[6:]}",
        f"+1{digits}",
        f" {digits[:3]}-{digits[3:6]}-{digits[6:]} ",
        "",
    )
    return rng.choice(shapes)


def write_export(path: Path, rows: int, existing_emails: list[str], seed: int = 6) -> Export:
    rng = random.Random(seed)
    people = Generator(rng)
    duplicates = iter(rng.sample(existing_emails, min(len(existing_emails), rows)))
    created = skipped = failed = 0
    with path.open("w", encoding="utf-8", newline="") as output:
        writer = csv.writer(output, lineterminator="\r\n")
        writer.writerow(HEADER)
        for number in range(rows):
            first = rng.choices(FIRST_NAMES, cum_weights=people.first_weights)[0]
            last = rng.choices(LAST_NAMES, cum_weights=people.last_weights)[0]
            org = rng.choice(people.orgs) if rng.random() < 0.7 else ""
            chance = rng.random()
            if chance < BROKEN_SHARE:
                email = f"{first}.{last}@" if chance < BROKEN_SHARE / 2 else ""
                failed += 1
            elif chance < BROKEN_SHARE + DUPLICATE_SHARE and (taken := next(duplicates, "")):
                email = taken.upper() if rng.random() < 0.3 else taken
                skipped += 1
            else:
                email = f"{first}.{last}.{number}@{rng.choice(MAIL_DOMAINS)}"
                if rng.random() < 0.2:
                    email = email.title()
                if rng.random() < 0.05:
                    email = f"  {email} "
                created += 1
            notes = " ".join(people.notes().split()[:8])
            if notes and rng.random() < 0.2:
                notes = notes.replace(" ", ', "', 1) + '"\nCalled back, see thread.'
            first_cell = first.title() if rng.random() > 0.02 else ""
            last_cell = last.title() if first_cell else f"{first.title()} {last.title()}"
            if rng.random() < 0.05:
                first_cell = f" {first_cell}  "
            writer.writerow(
                [
                    first_cell,
                    rng.choice(FIRST_NAMES).title() if rng.random() < 0.1 else "",
                    last_cell,
                    "",
                    f"19{rng.randint(50, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                    if rng.random() < 0.15
                    else "",
                    notes,
                    rng.choice(LABELS),
                    "* Work" if org else "* Home",
                    email,
                    "Mobile" if rng.random() < 0.6 else "Work",
                    _phone(rng),
                    org,
                    rng.choice(JOB_TITLES) if rng.random() < 0.6 else "",
                ]
            )
    return Export(path, rows, path.stat().st_size, created, skipped, failed)

"""Which column of an uploaded file feeds which customer field, and one row turned into a
customer's values (or a reason in words why it cannot be).

``suggest_mapping`` reads a header the way the exports of common tools write it (Google
Contacts, Outlook, LinkedIn, HubSpot, Salesforce, Apple/iCloud-style, ours, plain English and
a few German, French and Spanish words); a person adjusts it on the mapping page;
``validate_mapping`` says what is still missing; ``apply_mapping`` turns each row's values
into a ``MappedRow``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

from app.customers.models import CustomerInput
from app.customers.service import RULES
from app.lib.validation import email_problem, normalize_email
from app.transfers.csv_reader import strip_formula_guard
from app.transfers.errors import MappingError


class Target(StrEnum):
    name = "name"
    first_name = "first_name"
    last_name = "last_name"
    email = "email"
    phone = "phone"
    organization = "organization"
    job_title = "job_title"
    notes = "notes"
    ignore = "ignore"


TARGET_LABELS: dict[Target, str] = {
    Target.name: "Name",
    Target.first_name: "First name",
    Target.last_name: "Last name",
    Target.email: "Email",
    Target.phone: "Phone",
    Target.organization: "Organization",
    Target.job_title: "Job title",
    Target.notes: "Notes",
    Target.ignore: "Ignore",
}
# At most one column each. First and last name take several (middle names join the first
# name, in column order); notes take several (one line each, "Header: value").
SINGLE_TARGETS = (Target.name, Target.email, Target.phone, Target.organization, Target.job_title)

# How a header is written by the tools people export from, best first within a target: when
# several columns match one single target, the best-ranked wins and the others are ignored
# (Google's "E-mail 2 - Value", Outlook's "Home Phone" beside "Mobile Phone").
ALIASES: dict[Target, tuple[str, ...]] = {
    Target.name: (
        "name",  # ours, Google (old), Apple
        "full name",
        "display name",
        "contact name",
        "contact full name",
        "customer name",
        "client name",
        "contact",
        "customer",
        "client",
        "person",
        "nom complet",
        "vollständiger name",
        "nombre completo",
    ),
    Target.first_name: (
        "first name",  # Google (new), Outlook, LinkedIn, HubSpot, Salesforce, Apple
        "firstname",
        "given name",  # Google (old)
        "first",
        "forename",
        "vorname",
        "prénom",
        "nombre",
        # Middle names: they join the first name, between it and the last name.
        "middle name",  # Google (new), Outlook
        "additional name",  # Google (old)
        "middle",
        "middle initial",
    ),
    Target.last_name: (
        "last name",
        "lastname",
        "family name",  # Google (old)
        "surname",
        "last",
        "nachname",
        "familienname",
        "nom de famille",
        "nom",
        "apellido",
        "apellidos",
    ),
    Target.email: (
        "email",  # ours, HubSpot, Salesforce
        "email address",  # LinkedIn
        "e-mail address",  # Outlook
        "e-mail 1 - value",  # Google
        "primary email",
        "email (work)",  # Apple-style
        "work email",
        "business email",
        "email (home)",
        "home email",
        "personal email",
        "email (other)",
        "other email",
        "mail",
        "courriel",
        "adresse e-mail",
        "e-mail-adresse",
        "correo electrónico",
        "correo",
    ),
    Target.phone: (
        "phone",  # ours, Salesforce
        "phone number",  # HubSpot
        "telephone",
        "telephone number",
        "tel",
        "phone 1 - value",  # Google
        "mobile phone",  # Outlook
        "mobile",  # Salesforce
        "mobile phone number",  # HubSpot
        "mobile number",
        "cell phone",
        "cell",
        "phone (mobile)",  # Apple-style
        "phone (iphone)",
        "iphone",
        "business phone",  # Outlook
        "work phone",
        "phone (work)",
        "office phone",
        "direct phone",
        "primary phone",  # Outlook; often empty there, hence after mobile and business
        "phone (main)",
        "main phone",
        "company main phone",
        "home phone",
        "phone (home)",
        "other phone",
        "telefon",
        "telefonnummer",
        "handy",
        "mobil",
        "téléphone",
        "portable",
        "teléfono",
        "móvil",
    ),
    Target.organization: (
        "organization",  # ours, Apple-style
        "organisation",
        "company",  # Outlook, LinkedIn
        "company name",  # HubSpot
        "organization name",  # Google (new)
        "organization 1 - name",  # Google (old)
        "account name",  # Salesforce
        "employer",
        "business name",
        "associated company",  # HubSpot
        "account",  # Outlook (a billing account, mostly empty: ranked last)
        "firma",
        "unternehmen",
        "société",
        "entreprise",
        "empresa",
    ),
    Target.job_title: (
        "job title",  # ours (job_title), Outlook, HubSpot, Apple-style
        "title",  # Salesforce; a name prefix in Outlook: resolved by the rest of the header
        "position",  # LinkedIn
        "role",
        "job role",
        "job",
        "organization title",  # Google (new)
        "organization 1 - title",  # Google (old)
        "designation",
        "occupation",  # Google (old), beside "Organization 1 - Title"
        "berufsbezeichnung",
        "poste",
        "fonction",
        "cargo",
        "puesto",
    ),
    Target.notes: (
        "notes",  # ours, Google, Outlook
        "note",  # Apple-style
        "description",  # Salesforce
        "comments",
        "comment",
        "remarks",
        "memo",
        "about",
        "bio",
        "notizen",
        "notiz",
        "bemerkungen",
        "kommentar",
        "remarques",
        "commentaires",
        "notas",
        "url",  # LinkedIn: the profile link is worth keeping
        "profile url",
        "linkedin url",
        "linkedin profile",
    ),
    Target.ignore: (
        # Named so that they are never guessed: prefixes, suffixes, our own bookkeeping.
        "salutation",
        "name prefix",
        "prefix",
        "suffix",
        "name suffix",
        "created at",
        "updated at",
        "slug",
        "record id",
        "id",
    ),
}

_NAME_PREFIX_KEYS = frozenset({"salutation", "nameprefix", "prefix"})
_TITLE_PREFIX_HINTS = frozenset({"middlename", "suffix", "namesuffix"})
_MIDDLE_KEYS = frozenset({"middlename", "additionalname", "middle", "middleinitial"})


def normalize_header(header: str) -> str:
    """Case, accents, spaces, underscores, dashes, dots and brackets do not matter."""
    decomposed = unicodedata.normalize("NFKD", header.casefold())
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return re.sub(r"[\W_]+", "", bare)


def _build_index() -> dict[str, tuple[Target, int]]:
    index: dict[str, tuple[Target, int]] = {}
    for target, aliases in ALIASES.items():
        for rank, alias in enumerate(aliases):
            key = normalize_header(alias)
            if key in index and index[key][0] is not target:
                raise ValueError(f"header alias {alias!r} is listed for two targets")
            index.setdefault(key, (target, rank))
    return index


_ALIAS_INDEX = _build_index()


@dataclass(frozen=True, slots=True)
class _Plan:
    name: int | None
    first_names: tuple[int, ...]
    last_names: tuple[int, ...]
    email: int | None
    phone: int | None
    organization: int | None
    job_title: int | None
    notes: tuple[tuple[int, str], ...]  # (column, label); labels only when several


@dataclass(frozen=True)
class Mapping:
    """One target per column of ``header``, in order."""

    header: tuple[str, ...]
    targets: tuple[Target, ...]

    def __post_init__(self) -> None:
        if len(self.header) != len(self.targets):
            raise ValueError("a mapping needs one target per column")

    def columns(self, target: Target) -> list[int]:
        return [index for index, chosen in enumerate(self.targets) if chosen is target]

    @cached_property
    def plan(self) -> _Plan:
        """Which columns feed which field, worked out once for all the rows."""

        def first(target: Target) -> int | None:
            columns = self.columns(target)
            return columns[0] if columns else None

        notes = self.columns(Target.notes)
        # From several columns, each note keeps its header so the reader knows what it is.
        labels = [
            (self.header[i].strip() or f"Column {i + 1}") if len(notes) > 1 else "" for i in notes
        ]
        return _Plan(
            name=first(Target.name),
            first_names=tuple(self.columns(Target.first_name)),
            last_names=tuple(self.columns(Target.last_name)),
            email=first(Target.email),
            phone=first(Target.phone),
            organization=first(Target.organization),
            job_title=first(Target.job_title),
            notes=tuple(zip(notes, labels, strict=True)),
        )

    def to_dict(self) -> dict[str, list[str]]:
        """JSON-ready, for the transfer's options."""
        return {"header": list(self.header), "targets": [str(t) for t in self.targets]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Mapping:
        return cls.from_targets(data["header"], data["targets"])

    @classmethod
    def from_targets(cls, header: Sequence[str], targets: Sequence[str]) -> Mapping:
        """From the mapping page: one chosen target name per column."""
        if len(targets) != len(header):
            raise MappingError(
                [f"Choose a target for each of the {len(header)} columns ({len(targets)} given)."]
            )
        problems = [
            f'Column "{column}": "{target}" is not a field; choose one of {_target_list()}.'
            for column, target in zip(header, targets, strict=True)
            if target not in _TARGET_VALUES
        ]
        if problems:
            raise MappingError(problems)
        return cls(tuple(header), tuple(Target(target) for target in targets))

    @classmethod
    def from_names(cls, header: Sequence[str], chosen: dict[str, str]) -> Mapping:
        """From the API: ``{source_header: target}``; columns not named are ignored."""
        problems = []
        for column, target in chosen.items():
            if column not in header:
                problems.append(f'The file has no column "{column}".')
            elif target not in _TARGET_VALUES:
                problems.append(
                    f'Column "{column}": "{target}" is not a field; choose one of {_target_list()}.'
                )
        if problems:
            raise MappingError(problems)
        # A header named twice: the mapping applies to its first column.
        first_of: dict[str, int] = {}
        for index, column in enumerate(header):
            first_of.setdefault(column, index)
        targets = [Target.ignore] * len(header)
        for column, target in chosen.items():
            targets[first_of[column]] = Target(target)
        return cls(tuple(header), tuple(targets))


_TARGET_VALUES = frozenset(str(target) for target in Target)


def _target_list() -> str:
    return ", ".join(str(target) for target in Target)


def suggest_mapping(header: Sequence[str]) -> Mapping:
    """The mapping the header implies; every column gets a target (``ignore`` if unknown)."""
    keys = [normalize_header(column) for column in header]
    found: list[tuple[Target, int] | None] = [_ALIAS_INDEX.get(key) for key in keys]
    key_set = set(keys)

    has_first = any(
        f is not None and f[0] is Target.first_name and key not in _MIDDLE_KEYS
        for f, key in zip(found, keys, strict=True)
    )
    has_last = any(f is not None and f[0] is Target.last_name for f in found)
    other_job_title = any(
        f is not None and f[0] is Target.job_title and key != "title"
        for f, key in zip(found, keys, strict=True)
    )
    for index, key in enumerate(keys):
        hit = found[index]
        if hit is None:
            continue
        if key == "title":
            # Outlook's Title is "Mr."/"Dr." (its job title is "Job Title"); Salesforce's is
            # the job title (its prefix is "Salutation").
            if other_job_title or (
                not key_set & _NAME_PREFIX_KEYS and key_set & _TITLE_PREFIX_HINTS and has_first
            ):
                found[index] = (Target.ignore, 0)
        elif key == "name" and has_first and not has_last:
            # "Vorname, Name" (German) and "First Name, Name": the name is the family name.
            found[index] = (Target.last_name, 0)

    targets = [hit[0] if hit is not None else Target.ignore for hit in found]
    for target in SINGLE_TARGETS:
        contenders = [
            (hit[1], index)
            for index, hit in enumerate(found)
            if hit is not None and targets[index] is target
        ]
        if len(contenders) > 1:
            winner = min(contenders)[1]
            for _rank, index in contenders:
                if index != winner:
                    targets[index] = Target.ignore
    first_names = [i for i, t in enumerate(targets) if t is Target.first_name]
    if first_names and all(keys[i] in _MIDDLE_KEYS for i in first_names):
        # Only middle names and no first name: they are not a first name on their own.
        for index in first_names:
            targets[index] = Target.ignore
    return Mapping(tuple(header), tuple(targets))


def validate_mapping(mapping: Mapping) -> list[str]:
    """What stops an import with this mapping, in words; empty when it can go ahead."""
    problems = []
    has_name = bool(
        mapping.columns(Target.name)
        or mapping.columns(Target.first_name)
        or mapping.columns(Target.last_name)
    )
    if not has_name:
        problems.append(
            "Map a column to Name (or to First name and Last name): every customer needs a name."
        )
    if not mapping.columns(Target.email):
        problems.append("Map a column to Email: every customer needs an email address.")
    for target in SINGLE_TARGETS:
        columns = mapping.columns(target)
        if len(columns) > 1:
            names = _quoted_list(mapping.header[index] for index in columns)
            problems.append(
                f"Only one column can be mapped to {TARGET_LABELS[target]}, "
                f"but {names} are. Set the others to Ignore (or Notes)."
            )
    return problems


def _quoted_list(names: Iterable[str]) -> str:
    quoted = [f'"{name}"' for name in names]
    return ", ".join(quoted[:-1]) + " and " + quoted[-1] if len(quoted) > 1 else quoted[0]


@dataclass(frozen=True, slots=True)
class MappedRow:
    """A row's values as a customer's, trimmed; ``error`` (in words) means skip the row."""

    name: str
    email: str
    email_normalized: str
    phone: str
    organization: str
    job_title: str
    notes: str
    error: str | None

    def customer_input(self) -> CustomerInput:
        return CustomerInput(
            name=self.name,
            email=self.email,
            phone=self.phone,
            organization=self.organization,
            job_title=self.job_title,
            notes=self.notes,
        )


_LINE_BREAKS = re.compile(r"\r\n?")
_LIMITS = {field: longest for field, (_label, longest, _required) in RULES.items()}
# How the error messages name each field, and whether it is singular ("is") or not ("are").
_FIELD_WORDS = {
    "name": "name",
    "email": "email",
    "phone": "phone",
    "organization": "organization",
    "job_title": "job title",
    "notes": "notes",
}


def _cell(values: Sequence[str], index: int) -> str:
    # Short rows (trailing empty cells left out) read as empty.
    if index >= len(values):
        return ""
    value = values[index]
    return strip_formula_guard(value) if value[:1] == "'" else value


def _shown(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def apply_mapping(mapping: Mapping, values: Sequence[str], *, line: int | None = None) -> MappedRow:
    """Turn one row's values into a customer's: whitespace trimmed (and collapsed outside
    notes), our export's formula guard removed, a name from the name column or else from
    first + middle + last names, the email normalized, each value checked against the
    customer limits. ``error`` lists every problem, prefixed with ``line N:`` when given."""
    plan = mapping.plan

    def single(column: int | None) -> str:
        return "" if column is None else " ".join(_cell(values, column).split())

    def joined(columns: tuple[int, ...]) -> str:
        return " ".join(" ".join(_cell(values, column).split()) for column in columns).strip()

    name = single(plan.name)
    if not name:
        name = f"{joined(plan.first_names)} {joined(plan.last_names)}".strip()
    email = "" if plan.email is None else _cell(values, plan.email).strip()
    fields = {
        "name": name,
        "email": email,
        "phone": single(plan.phone),
        "organization": single(plan.organization),
        "job_title": single(plan.job_title),
        "notes": _notes(plan.notes, values),
    }

    problems = []
    if not name:
        problems.append("name is missing")
    if not email:
        problems.append("email is missing")
    elif len(email) <= _LIMITS["email"] and email_problem(email) is not None:
        problems.append(f'email "{_shown(email)}" is not a valid address')
    for field, value in fields.items():
        limit = _LIMITS[field]
        if len(value) > limit:
            verb = "are" if field == "notes" else "is"
            problems.append(f"{_FIELD_WORDS[field]} {verb} longer than {limit:,} characters")

    error = None
    if problems:
        error = "; ".join(problems)
        if line is not None:
            error = f"line {line}: {error}"
    return MappedRow(
        name=name,
        email=email,
        email_normalized=normalize_email(email),
        phone=fields["phone"],
        organization=fields["organization"],
        job_title=fields["job_title"],
        notes=fields["notes"],
        error=error,
    )


def _notes(columns: tuple[tuple[int, str], ...], values: Sequence[str]) -> str:
    texts = []
    for index, label in columns:
        text = _cell(values, index)
        if "\r" in text:
            text = _LINE_BREAKS.sub("\n", text)
        text = text.strip()
        if text:
            texts.append(f"{label}: {text}" if label else text)
    return "\n".join(texts)

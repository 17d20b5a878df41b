"""What the customers feature hands around: plain dataclasses, no ORM objects.

They cross the cache (msgspec-serialised), the service boundary and the event emitter,
so they hold only data. Controllers render them; nothing here knows about HTML except
``ListItem.snippet``, which is built HTML-safe by ``app.customers.search``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any

from markupsafe import Markup

from app.lib.validation import ValidationFailed

# The fields a person edits; slug, email_normalized and the timestamps are the service's.
EDITABLE_FIELDS = ("name", "email", "phone", "organization", "job_title", "notes")

SORTS = ("name", "-name", "created", "-created", "updated", "-updated", "relevance")
DEFAULT_SORT = "-created"
PAGE_SIZES = (25, 50, 100)
COUNT_CAP = 10_000
# A search of more words than this keeps the first ones: longer queries only slow the
# database down without finding anything a person would look for.
MAX_SEARCH_WORDS = 16


@dataclass(frozen=True)
class Customer:
    id: int
    user_id: int
    slug: str
    name: str
    email: str
    phone: str
    organization: str
    job_title: str
    notes: str
    created_at: datetime
    updated_at: datetime

    def editable_values(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in EDITABLE_FIELDS}


@dataclass(frozen=True)
class CustomerInput:
    """A customer as a form or the API sends it (untrimmed, unvalidated)."""

    name: str
    email: str
    phone: str = ""
    organization: str = ""
    job_title: str = ""
    notes: str = ""

    def values(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ListQuery:
    """One list or search request. Invalid values raise ValidationFailed with words."""

    q: str = ""
    organization: str | None = None
    created_from: date | None = None  # inclusive, a UTC day
    created_to: date | None = None  # inclusive, a UTC day
    sort: str | None = None  # None: relevance with a query, -created without
    limit: int = PAGE_SIZES[0]
    cursor: str | None = None  # opaque, from Page.next_cursor / Page.prev_cursor

    def __post_init__(self) -> None:
        errors = {}
        if self.sort is not None and self.sort not in SORTS:
            errors["sort"] = "Sort by name, created or updated (add - for descending)."
        if self.limit not in PAGE_SIZES:
            errors["limit"] = "Show 25, 50 or 100 customers per page."
        if self.created_from and self.created_to and self.created_to < self.created_from:
            errors["created_to"] = "The end date is before the start date."
        if errors:
            raise ValidationFailed(errors)

    @property
    def filter_key(self) -> dict[str, Any]:
        """What selects the rows, without order or position (the count depends on this)."""
        return {
            "q": self.q,
            "organization": self.organization or None,
            "created_from": self.created_from.isoformat() if self.created_from else None,
            "created_to": self.created_to.isoformat() if self.created_to else None,
        }


@dataclass(frozen=True)
class ListItem:
    customer: Customer
    # For search hits whose notes match: an excerpt of the notes, HTML-escaped, with
    # the matching words in <mark>. Safe to insert as HTML; see snippet_html.
    snippet: str | None = None
    rank: float | None = None  # relevance, only when sorted by relevance

    @property
    def snippet_html(self) -> Markup | None:
        # Built from escaped text in app.customers.search.snippet, so marking it safe
        # here is what lets Jinja render the <mark> tags without |safe in templates.
        return Markup(self.snippet) if self.snippet is not None else None  # noqa: S704


@dataclass(frozen=True)
class Page:
    items: list[ListItem]
    next_cursor: str | None
    prev_cursor: str | None
    count: int  # rows matching the filters (all pages), at most the cap
    count_capped: bool = False  # True: there are more than `count` ("10,000+")
    sort: str = DEFAULT_SORT  # the sort actually applied

    @property
    def count_label(self) -> str:
        return f"{self.count:,}+" if self.count_capped else f"{self.count:,}"

    @property
    def customers(self) -> list[Customer]:
        return [item.customer for item in self.items]


@dataclass(frozen=True)
class CountResult:
    value: int
    capped: bool  # more rows match than `value`


@dataclass(frozen=True)
class CustomerChange:
    """One write, as the audit hook (inside the transaction) and listeners (after it) see it.

    old_values / new_values hold only the editable fields that changed: everything for a
    create (new) and a delete (old), the changed fields for an update.
    """

    event: str  # customer.created | customer.updated | customer.deleted
    user_id: int
    customer_id: int
    slug: str
    label: str  # the customer's name, for trails that outlive the row
    old_values: dict[str, str] = field(default_factory=dict)
    new_values: dict[str, str] = field(default_factory=dict)
    before: Customer | None = None
    after: Customer | None = None

    @property
    def changed_fields(self) -> list[str]:
        return sorted(set(self.old_values) | set(self.new_values))

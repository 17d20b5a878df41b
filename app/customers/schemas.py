"""What the customers API reads and writes: the shapes published in the OpenAPI schema.

Field types only: the rules (required, lengths, email format, one email per book) live in
CustomerService, which answers in words, field by field. Clients know customers by slug;
ids never leave the server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from app.customers.models import Customer, CustomerInput, Page


class CustomerOut(msgspec.Struct):
    """A customer. Dates are ISO 8601 with a UTC offset."""

    slug: str
    name: str
    email: str
    phone: str
    organization: str
    job_title: str
    notes: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, customer: Customer) -> CustomerOut:
        return cls(
            slug=customer.slug,
            name=customer.name,
            email=customer.email,
            phone=customer.phone,
            organization=customer.organization,
            job_title=customer.job_title,
            notes=customer.notes,
            created_at=customer.created_at,
            updated_at=customer.updated_at,
        )


# Unknown fields are refused (422) rather than ignored: a client sending "slug" or a
# misspelt "jobtitle" learns at once that nothing was changed.
class CustomerCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new customer: name and email are required, the other fields default to empty."""

    name: str
    email: str
    phone: str = ""
    organization: str = ""
    job_title: str = ""
    notes: str = ""

    def to_input(self) -> CustomerInput:
        return CustomerInput(
            name=self.name,
            email=self.email,
            phone=self.phone,
            organization=self.organization,
            job_title=self.job_title,
            notes=self.notes,
        )


class CustomerPatch(msgspec.Struct, forbid_unknown_fields=True):
    """The fields to change; a field left out keeps its value. Send "" to clear an optional
    field. The slug never changes, so links to the customer keep working."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    email: str | msgspec.UnsetType = msgspec.UNSET
    phone: str | msgspec.UnsetType = msgspec.UNSET
    organization: str | msgspec.UnsetType = msgspec.UNSET
    job_title: str | msgspec.UnsetType = msgspec.UNSET
    notes: str | msgspec.UnsetType = msgspec.UNSET

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent."""
        return {
            name: value
            for name in self.__struct_fields__
            if (value := getattr(self, name)) is not msgspec.UNSET
        }


class CustomerPageOut(msgspec.Struct):
    """One page of customers.

    ``count`` is the number of customers matching the filters on all pages, exact up to
    10,000; beyond that it is 10000 with ``count_capped`` true (show it as "10,000+").
    Pass ``next_cursor`` (or ``prev_cursor``) back as ``cursor`` with the same ``sort``
    to get the next (or previous) page; null when there is no such page.

    ``sort`` is the order of this page: the one asked for, except that a search by
    relevance with more matches than the count shows (``count_capped``) comes newest
    first (``-created``) instead of ranked; its cursors go on in that order.
    """

    data: list[CustomerOut]
    next_cursor: str | None
    prev_cursor: str | None
    count: int
    count_capped: bool
    sort: str

    @classmethod
    def of(cls, page: Page) -> CustomerPageOut:
        return cls(
            data=[CustomerOut.of(customer) for customer in page.customers],
            next_cursor=page.next_cursor,
            prev_cursor=page.prev_cursor,
            count=page.count,
            count_capped=page.count_capped,
            sort=page.sort,
        )

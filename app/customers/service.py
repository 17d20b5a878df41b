"""Customer rules: validation, normalization, slugs, duplicate emails, one transaction per
write, the audit hook inside it and an event after it.

The only entry point for controllers, jobs and the CLI. It needs no request: give it a
repository and an ``emit`` callable (``app.emit`` in the web app,
``app.customers.events.run_listeners`` in a job or the CLI).
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from slugify import slugify

from app.customers.models import (
    EDITABLE_FIELDS,
    Customer,
    CustomerChange,
    CustomerInput,
    ListQuery,
    Page,
)
from app.customers.repository import CustomerRepository, EmailTaken, SlugTaken
from app.lib.validation import ValidationFailed, email_problem, normalize_email, text_problem

logger = logging.getLogger("crm.customers")

CREATED = "customer.created"
UPDATED = "customer.updated"
DELETED = "customer.deleted"

# field -> (how a message names it, longest allowed, required)
RULES: dict[str, tuple[str, int, bool]] = {
    "name": ("a name", 200, True),
    "email": ("an email address", 254, True),
    "phone": ("a phone number", 50, False),
    "organization": ("an organization", 200, False),
    "job_title": ("a job title", 200, False),
    "notes": ("notes", 10_000, False),
}
SLUG_BASE_MAX = 200  # the column holds 220: room for "-" and a long suffix
DEFAULT_SLUG = "customer"
# Slugs the browser pages use as paths of their own (/customers/new): never a customer's.
RESERVED_SLUGS = ("new", "bulk-delete")
# Each round of a same-name race lets at least one writer through, so this bounds how
# many creates of one name may collide at the same instant, not how many may exist.
MAX_SLUG_ATTEMPTS = 50

# Called by the service after each write with the event name and its CustomerChange;
# may return an awaitable (awaited) or nothing (app.emit schedules the listeners).
Emit = Callable[[str, CustomerChange], Awaitable[None] | None]
# THE AUDIT HOOK: awaited inside the write's transaction, after the row is written and
# before the commit, with the transaction (Piccolo's; queries in the same task join it)
# and the change. Whatever it writes commits or rolls back together with the customer;
# if it raises, the write is undone and no event is emitted.
OnWrite = Callable[[Any, CustomerChange], Awaitable[None]]
# The same for a bulk write (delete_many): all of its changes in one call, so the audit
# entries go in with one statement instead of one per row. Without it, on_write is
# called once per change.
OnWriteMany = Callable[[Any, Sequence[CustomerChange]], Awaitable[None]]


class CustomerNotFound(LookupError):
    """No customer with this slug in this user's book (another user's is not found too)."""


def slug_base(name: str) -> str:
    """The slug a name asks for: ASCII, lower-case, hyphens; "customer" when nothing is left."""
    return slugify(name, max_length=SLUG_BASE_MAX) or DEFAULT_SLUG


def next_free_slug(base: str, taken: Sequence[str]) -> str:
    """``base``, or ``base-N`` with N one above the highest suffix already taken."""
    pattern = re.compile(re.escape(base) + r"(?:-([0-9]+))?")
    numbers = [
        int(found.group(1) or 1) for slug in taken if (found := pattern.fullmatch(slug)) is not None
    ]
    return f"{base}-{max(numbers) + 1}" if numbers else base


def _clean(field: str, value: Any) -> str:
    text = "" if value is None else str(value)
    if field == "notes":
        # Browsers send textarea line breaks as CRLF; count and keep them as one character.
        text = text.replace("\r\n", "\n")
    return text.strip()


def _problems(values: Mapping[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for field, value in values.items():
        label, max_length, required = RULES[field]
        if field == "email":
            problem = email_problem(value)
        else:
            problem = text_problem(value, label, max_length=max_length, required=required)
        if problem:
            errors[field] = problem
    return errors


def _duplicate_email(existing: Customer | None) -> ValidationFailed:
    if existing is None:
        return ValidationFailed({"email": "You already have a customer with this email."})
    return ValidationFailed(
        {"email": f"You already have a customer with this email: {existing.name}."}
    )


class CustomerService:
    def __init__(
        self,
        repository: CustomerRepository,
        emit: Emit,
        on_write: OnWrite | None = None,
        on_write_many: OnWriteMany | None = None,
    ) -> None:
        self.repository = repository
        self._emit = emit
        self._on_write = on_write
        self._on_write_many = on_write_many

    # --- reads -------------------------------------------------------------------------

    async def find_by_slug(self, user_id: int, slug: str) -> Customer | None:
        return await self.repository.get_by_slug(user_id, slug)

    async def get_by_slug(self, user_id: int, slug: str) -> Customer:
        customer = await self.repository.get_by_slug(user_id, slug)
        if customer is None:
            raise CustomerNotFound(slug)
        return customer

    async def list_page(self, user_id: int, query: ListQuery | None = None) -> Page:
        """A page of the list, or of search results when ``query.q`` has words.

        Raises repository.InvalidCursor for a cursor this app did not make.
        """
        return await self.repository.list_page(user_id, query or ListQuery())

    search = list_page

    async def organizations(self, user_id: int) -> list[str]:
        return await self.repository.organizations(user_id)

    # --- writes --------------------------------------------------------------------------

    async def create(self, user_id: int, data: CustomerInput) -> Customer:
        values = {field: _clean(field, value) for field, value in data.values().items()}
        errors = _problems(values)
        if errors:
            raise ValidationFailed(errors)
        email_normalized = normalize_email(values["email"])
        clean = CustomerInput(**values)
        base = slug_base(values["name"])
        for _attempt in range(MAX_SLUG_ATTEMPTS):
            try:
                async with self.repository.transaction() as tx:
                    duplicate = await self.repository.get_by_email_normalized(
                        user_id, email_normalized
                    )
                    if duplicate is not None:
                        raise _duplicate_email(duplicate)
                    taken = await self.repository.slugs_starting_with(user_id, base)
                    customer = await self.repository.insert(
                        user_id,
                        next_free_slug(base, [*taken, *RESERVED_SLUGS]),
                        clean,
                        email_normalized,
                    )
                    change = CustomerChange(
                        event=CREATED,
                        user_id=user_id,
                        customer_id=customer.id,
                        slug=customer.slug,
                        label=customer.name,
                        new_values=customer.editable_values(),
                        after=customer,
                    )
                    await self._written(tx, change)
            except SlugTaken:
                # Someone took this slug since we looked: look again, in a new transaction.
                continue
            except EmailTaken:
                existing = await self.repository.get_by_email_normalized(user_id, email_normalized)
                raise _duplicate_email(existing) from None
            await self._announce(change)
            return customer
        raise RuntimeError(f"no free slug for {base!r} after {MAX_SLUG_ATTEMPTS} attempts")

    async def update(
        self, user_id: int, slug: str, changes: CustomerInput | Mapping[str, Any]
    ) -> Customer:
        """Change the given fields (a CustomerInput changes them all). The slug stays.

        Nothing is written, and no event emitted, when no value actually changes.
        """
        given = changes.values() if isinstance(changes, CustomerInput) else dict(changes)
        unknown = {field: "This field cannot be changed." for field in given if field not in RULES}
        if unknown:
            raise ValidationFailed(unknown)
        values = {field: _clean(field, value) for field, value in given.items()}
        errors = _problems(values)
        if errors:
            raise ValidationFailed(errors)
        try:
            async with self.repository.transaction() as tx:
                before = await self.repository.get_for_update(user_id, slug)
                if before is None:
                    raise CustomerNotFound(slug)
                diff = {f: v for f, v in values.items() if getattr(before, f) != v}
                if not diff:
                    return before
                columns = dict(diff)
                if "email" in diff:
                    columns["email_normalized"] = normalize_email(diff["email"])
                    other = await self.repository.get_by_email_normalized(
                        user_id, columns["email_normalized"]
                    )
                    if other is not None and other.id != before.id:
                        raise _duplicate_email(other)
                after = await self.repository.update(user_id, slug, columns)
                if after is None:  # unreachable: the row is locked
                    raise CustomerNotFound(slug)
                change = CustomerChange(
                    event=UPDATED,
                    user_id=user_id,
                    customer_id=after.id,
                    slug=after.slug,
                    label=after.name,
                    old_values={f: getattr(before, f) for f in EDITABLE_FIELDS if f in diff},
                    new_values={f: getattr(after, f) for f in EDITABLE_FIELDS if f in diff},
                    before=before,
                    after=after,
                )
                await self._written(tx, change)
        except EmailTaken:
            email = normalize_email(values.get("email", ""))
            existing = await self.repository.get_by_email_normalized(user_id, email)
            raise _duplicate_email(existing) from None
        await self._announce(change)
        return after

    async def delete(self, user_id: int, slug: str) -> Customer:
        deleted = await self._delete(user_id, [slug])
        if not deleted:
            raise CustomerNotFound(slug)
        return deleted[0]

    async def delete_many(self, user_id: int, slugs: Sequence[str]) -> list[Customer]:
        """Delete the user's customers with these slugs in one transaction; slugs that are
        not in the user's book are ignored. Returns the customers deleted."""
        return await self._delete(user_id, list(dict.fromkeys(slugs)))

    async def _delete(self, user_id: int, slugs: list[str]) -> list[Customer]:
        if not slugs:
            return []
        async with self.repository.transaction() as tx:
            deleted = await self.repository.delete_many(user_id, slugs)
            changes = [
                CustomerChange(
                    event=DELETED,
                    user_id=user_id,
                    customer_id=customer.id,
                    slug=customer.slug,
                    label=customer.name,
                    old_values=customer.editable_values(),
                    before=customer,
                )
                for customer in deleted
            ]
            await self._written_many(tx, changes)
        for change in changes:
            await self._announce(change)
        return deleted

    # --- hooks ---------------------------------------------------------------------------

    async def _written(self, tx: Any, change: CustomerChange) -> None:
        """Inside the transaction: the audit issue's entry goes here (see OnWrite)."""
        if self._on_write is not None:
            await self._on_write(tx, change)

    async def _written_many(self, tx: Any, changes: Sequence[CustomerChange]) -> None:
        """Inside the transaction of a bulk write (see OnWriteMany)."""
        if not changes:
            return
        if self._on_write_many is not None:
            await self._on_write_many(tx, changes)
            return
        for change in changes:
            await self._written(tx, change)

    async def _announce(self, change: CustomerChange) -> None:
        """After the commit: tell the listeners. The write stands whatever they do."""
        try:
            result = self._emit(change.event, change)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("could not emit %s for %s", change.event, change.slug)

"""How the audit trail is shown: entries with their actor's name and their customer's
current slug (both looked up once per page, never per entry), and the API's JSON shapes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from app.accounts.tables import User
from app.audit.models import AuditEntry, FieldChange
from app.customers.tables import Customer as CustomerTable


@dataclass(frozen=True)
class ShownEntry:
    """An entry as a page shows it: who made it, and where its customer lives now."""

    entry: AuditEntry
    actor_name: str | None
    customer_slug: str | None  # None when the customer is gone (or was never one)

    @property
    def changes(self) -> list[FieldChange]:
        return self.entry.changes


async def actor_names(
    actor_ids: Sequence[int | None], known: Mapping[int, str] | None = None
) -> dict[int, str]:
    """Names of the accounts behind ``actor_ids``: one query for a whole page, none when
    every actor is among ``known`` (the signed-in account, the usual author of its own
    book's changes)."""
    names = dict(known or {})
    wanted = sorted({actor for actor in actor_ids if actor is not None and actor not in names})
    if wanted:
        rows = await User.select(User.id, User.name).where(User.id.is_in(wanted))
        names.update({int(row["id"]): str(row["name"]) for row in rows})
    return names


async def customer_slugs(user_id: int, customer_ids: Sequence[int | None]) -> dict[int, str]:
    """Current slugs of the user's customers among ``customer_ids``: one query a page.
    A deleted customer has none."""
    wanted = sorted({customer for customer in customer_ids if customer is not None})
    if not wanted:
        return {}
    rows = await CustomerTable.select(CustomerTable.id, CustomerTable.slug).where(
        (CustomerTable.user_id == user_id) & CustomerTable.id.is_in(wanted)
    )
    return {int(row["id"]): str(row["slug"]) for row in rows}


async def shown(
    user_id: int,
    entries: Sequence[AuditEntry],
    *,
    slugs: bool = True,
    known: Mapping[int, str] | None = None,
) -> list[ShownEntry]:
    """The entries with names and slugs: at most two queries whatever the page size;
    ``known`` names accounts already at hand (the signed-in one)."""
    names = await actor_names([entry.actor_id for entry in entries], known)
    found = await customer_slugs(user_id, [e.customer_id for e in entries]) if slugs else {}
    return [
        ShownEntry(
            entry=entry,
            actor_name=names.get(entry.actor_id) if entry.actor_id is not None else None,
            customer_slug=found.get(entry.customer_id) if entry.customer_id is not None else None,
        )
        for entry in entries
    ]


class ActorOut(msgspec.Struct):
    """Who made the change: an account of this app (its name), or none (a job, the CLI)."""

    id: int
    name: str | None


class AuditEntryOut(msgspec.Struct):
    """One audit entry. ``old_values`` / ``new_values`` hold, for an update, only the
    fields that changed. ``customer_slug`` is null once the customer is deleted; its
    ``customer_id`` still filters the trail (``customer=<id>``)."""

    id: int
    event: str
    customer_id: int | None
    customer_slug: str | None
    customer_label: str
    actor_id: int | None
    actor: ActorOut | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    import_id: int | None
    old_values: dict[str, Any] | None
    new_values: dict[str, Any] | None
    created_at: datetime
    archived: bool

    @classmethod
    def of(cls, item: ShownEntry) -> AuditEntryOut:
        entry = item.entry
        return cls(
            id=entry.id,
            event=entry.event,
            customer_id=entry.customer_id,
            customer_slug=item.customer_slug,
            customer_label=entry.customer_label,
            actor_id=entry.actor_id,
            actor=ActorOut(id=entry.actor_id, name=item.actor_name)
            if entry.actor_id is not None
            else None,
            ip=entry.ip,
            user_agent=entry.user_agent,
            request_id=entry.request_id,
            import_id=entry.import_id,
            old_values=entry.old_values,
            new_values=entry.new_values,
            created_at=entry.created_at,
            archived=entry.archived,
        )


class AuditPageOut(msgspec.Struct):
    """A page of entries, newest first; pass ``next_cursor`` back as ``cursor`` for the
    older ones (null on the last page)."""

    data: list[AuditEntryOut]
    next_cursor: str | None

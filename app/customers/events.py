"""Listeners of customer events, registered on the app (``listeners=customer_listeners``).

The service emits ``customer.created``, ``customer.updated`` and ``customer.deleted``
after the write's transaction commits, with one CustomerChange as the only argument.
"""

from __future__ import annotations

import logging

from litestar.events import EventListener, listener

from app.customers.models import CustomerChange
from app.customers.service import CREATED, DELETED, UPDATED

logger = logging.getLogger("crm.customers")

CUSTOMER_EVENTS = (CREATED, UPDATED, DELETED)


@listener(*CUSTOMER_EVENTS)
async def log_customer_change(change: CustomerChange) -> None:
    logger.info(
        "%s %s",
        change.event,
        change.slug,
        extra={
            "fields": {
                "event": change.event,
                "user_id": change.user_id,
                "customer": change.slug,
                "changed": change.changed_fields,
            }
        },
    )


customer_listeners: list[EventListener] = [log_customer_change]


async def run_listeners(event: str, change: CustomerChange) -> None:
    """An ``emit`` for code that runs without the app (jobs, the CLI): the listeners are
    awaited right away, in order. Their errors are logged, as the app's emitter does."""
    for registered in customer_listeners:
        if event in registered.event_ids:
            await registered.fn(change)

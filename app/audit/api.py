"""JSON API of the audit trail: a customer's history, the whole trail with filters, and
one entry by id. Pages: ``{"data": [...], "next_cursor": ...}``, newest first, reading on
from the database into the archives behind one cursor.

Every route goes through ``bearer_guard``; only the token owner's entries are ever read.
Another user's customer slug or entry id is 404, as a missing one is. Invalid parameters
are 422 ``{"errors": {parameter: message}}``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, Parameter, QueryParameter
from litestar.types import ControllerRouterHandler

from app.accounts.bearer import BEARER_RESPONSES, BEARER_SECURITY, bearer_guard, error_spec
from app.accounts.repository import Account, TokenRecord
from app.accounts.schemas import ValidationErrorOut
from app.audit.models import DEFAULT_LIMIT, EVENTS, MAX_LIMIT
from app.audit.schemas import AuditEntryOut, AuditPageOut, shown
from app.audit.service import AuditEntryNotFound, AuditService, InvalidCursor
from app.customers.service import CustomerService
from app.errors import ApiOperation
from app.lib.validation import ValidationFailed

ApiRequest = Request[Account, TokenRecord, Any]
Audit = NamedDependency[AuditService]  # the app's "audit" dependency
Customers = NamedDependency[CustomerService]  # the app's "customers" dependency

BAD_CURSOR = "This cursor is not valid: pass back a next_cursor from a response."
NOT_FOUND = error_spec("You have no customer with this slug, or no entry with this id")
INVALID = ResponseSpec(
    data_container=ValidationErrorOut,
    description='Invalid input: `{"errors": {parameter: message}}`',
)
CursorParam = Annotated[
    str | None, Parameter(description="`next_cursor` of a previous page.", max_length=500)
]
LimitParam = Annotated[int, Parameter(description=f"Entries per page, 1 to {MAX_LIMIT}.")]


async def _page(
    audit: AuditService,
    user_id: int,
    customer_id: int | None,
    *,
    event: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    cursor: str | None,
    limit: int,
) -> AuditPageOut:
    try:
        trail = await audit.trail(
            user_id,
            customer_id,
            event=event,
            date_from=date_from,
            date_to=date_to,
            cursor=cursor or None,
            limit=limit,
        )
    except InvalidCursor:
        raise ValidationFailed({"cursor": BAD_CURSOR}) from None
    except ValidationFailed as error:
        # The service names the range's end "date_to"; the API calls it "to".
        renamed = {"date_to": "to", "date_from": "from"}
        raise ValidationFailed({renamed.get(k, k): v for k, v in error.errors.items()}) from None
    items = await shown(user_id, trail.entries)
    return AuditPageOut(
        data=[AuditEntryOut.of(item) for item in items], next_cursor=trail.next_cursor
    )


def _day(name: str, text: str | None) -> date | None:
    # Parsed here, not by Litestar, so the error names the parameter as the client sent it.
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed({name: "Enter a date as YYYY-MM-DD."}) from None


class AuditApiController(Controller):
    tags = ["audit"]
    guards = [bearer_guard]
    security = BEARER_SECURITY

    @get(
        "/customers/{slug:str}/audit",
        operation_class=ApiOperation,
        summary="A customer's history",
        description="The customer's audit entries, newest first, archived ones included.",
        responses={**BEARER_RESPONSES, 404: NOT_FOUND, 422: INVALID},
    )
    async def customer_audit(
        self,
        request: ApiRequest,
        slug: FromPath[str],
        customers: Customers,
        audit: Audit,
        cursor: CursorParam = None,
        limit: LimitParam = DEFAULT_LIMIT,
    ) -> AuditPageOut:
        customer = await customers.find_by_slug(request.user.id, slug)
        if customer is None:
            raise NotFoundException()
        return await _page(audit, request.user.id, customer.id, cursor=cursor, limit=limit)

    @get(
        "/audit",
        operation_class=ApiOperation,
        summary="Your audit trail",
        description=(
            "All your entries, newest first, archived ones included. `customer` is a "
            "customer's slug, or the `customer_id` of an entry (a deleted customer's "
            "history stays readable that way). `from` and `to` are UTC days, both included."
        ),
        responses={**BEARER_RESPONSES, 404: NOT_FOUND, 422: INVALID},
    )
    async def trail(
        self,
        request: ApiRequest,
        customers: Customers,
        audit: Audit,
        event: Annotated[str | None, Parameter(description=f"One of: {', '.join(EVENTS)}.")] = None,
        date_from: Annotated[
            str | None,
            QueryParameter(name="from", format="date", description="Entries on or after this day."),
        ] = None,
        date_to: Annotated[
            str | None,
            QueryParameter(name="to", format="date", description="Entries on or before this day."),
        ] = None,
        customer: Annotated[
            str | None,
            Parameter(description="A customer's slug, or a customer_id.", max_length=220),
        ] = None,
        cursor: CursorParam = None,
        limit: LimitParam = DEFAULT_LIMIT,
    ) -> AuditPageOut:
        user_id = request.user.id
        start, end = _day("from", date_from), _day("to", date_to)
        customer_id: int | None = None
        if customer:
            if customer.isascii() and customer.isdigit():
                # An id only ever matches this user's entries: the trail is scoped by user.
                customer_id = int(customer)
            else:
                found = await customers.find_by_slug(user_id, customer)
                if found is None:
                    raise NotFoundException()
                customer_id = found.id
        return await _page(
            audit,
            user_id,
            customer_id,
            event=event or None,
            date_from=start,
            date_to=end,
            cursor=cursor,
            limit=limit,
        )

    @get(
        "/audit/{entry_id:int}",
        operation_class=ApiOperation,
        summary="One audit entry",
        responses={**BEARER_RESPONSES, 404: NOT_FOUND},
    )
    async def entry(
        self, request: ApiRequest, entry_id: FromPath[int], audit: Audit
    ) -> AuditEntryOut:
        try:
            entry = await audit.get_entry(request.user.id, entry_id)
        except AuditEntryNotFound:
            raise NotFoundException() from None
        return AuditEntryOut.of((await shown(request.user.id, [entry]))[0])


audit_api_route_handlers: list[ControllerRouterHandler] = [AuditApiController]

"""JSON API of customers: list and search, create, read, change and delete by slug.

Every route goes through ``bearer_guard``: the token's owner is ``request.user`` and only
that user's book is ever read or written. Another user's customer is "not found" (404),
never "forbidden". Invalid input of any kind, body or query, is 422
``{"errors": {field or parameter: message}}``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, Parameter
from litestar.types import ControllerRouterHandler

from app.accounts.bearer import BEARER_RESPONSES, BEARER_SECURITY, bearer_guard, error_spec
from app.accounts.repository import Account, TokenRecord
from app.accounts.schemas import ValidationErrorOut
from app.customers.models import COUNT_CAP, PAGE_SIZES, ListQuery
from app.customers.repository import InvalidCursor
from app.customers.schemas import CustomerCreate, CustomerOut, CustomerPageOut, CustomerPatch
from app.customers.service import CustomerNotFound, CustomerService
from app.errors import ApiOperation
from app.lib.validation import ValidationFailed

ApiRequest = Request[Account, TokenRecord, Any]
Customers = NamedDependency[CustomerService]  # the app's "customers" dependency

BAD_CURSOR = (
    "This cursor is not valid: pass back a next_cursor or prev_cursor from a response "
    "with the same sort."
)

NOT_FOUND = error_spec("You have no customer with this slug")
INVALID = ResponseSpec(
    data_container=ValidationErrorOut,
    description='Invalid input: `{"errors": {field: message}}`',
)


def _not_found() -> NotFoundException:
    # The same answer whether the slug is free or another user's: existence is not leaked.
    return NotFoundException()


class CustomerApiController(Controller):
    path = "/customers"
    tags = ["customers"]
    guards = [bearer_guard]
    security = BEARER_SECURITY

    @get(
        "/",
        operation_class=ApiOperation,
        summary="List or search your customers",
        description=(
            "One page of your customers, newest first by default. With `q`, a full-text "
            "search over name, email, organization, job title and notes: every word must "
            "match, the last one as a prefix, best matches first (when more than "
            f"{COUNT_CAP:,} customers match, newest first instead: `sort` in the answer "
            "says `-created`). Pages follow each other "
            "by cursor: pass `next_cursor` or `prev_cursor` back as `cursor`, with the same "
            f"`sort`. `count` is exact up to {COUNT_CAP:,}; beyond that it is {COUNT_CAP} "
            'with `count_capped` true (show it as "10,000+").'
        ),
        responses={**BEARER_RESPONSES, 422: INVALID},
    )
    async def list_customers(
        self,
        request: ApiRequest,
        customers: Customers,
        q: Annotated[
            str,
            Parameter(
                description="Words to search for; punctuation is plain text, never syntax.",
                max_length=1000,
            ),
        ] = "",
        organization: Annotated[
            str | None, Parameter(description="Only customers of this organization (exact).")
        ] = None,
        created_from: Annotated[
            date | None,
            Parameter(description="Only customers created on or after this day (UTC)."),
        ] = None,
        created_to: Annotated[
            date | None,
            Parameter(description="Only customers created on or before this day (UTC)."),
        ] = None,
        sort: Annotated[
            str | None,
            Parameter(
                description="`name`, `created` or `updated`; prefix `-` for descending; "
                "`relevance` with a query. Default: relevance with `q`, `-created` without.",
            ),
        ] = None,
        limit: Annotated[
            int, Parameter(description=f"Customers per page: one of {list(PAGE_SIZES)}.")
        ] = PAGE_SIZES[0],
        cursor: Annotated[
            str | None,
            Parameter(description="`next_cursor` or `prev_cursor` of a previous page."),
        ] = None,
    ) -> CustomerPageOut:
        query = ListQuery(
            q=q,
            organization=organization or None,
            created_from=created_from,
            created_to=created_to,
            sort=sort or None,
            limit=limit,
            cursor=cursor or None,
        )
        try:
            page = await customers.list_page(request.user.id, query)
        except InvalidCursor:
            raise ValidationFailed({"cursor": BAD_CURSOR}) from None
        return CustomerPageOut.of(page)

    @post(
        "/",
        operation_class=ApiOperation,
        summary="Add a customer",
        description="Name and email are required; the email must be new to your book "
        "(compared case-insensitively). The slug is made from the name and never changes.",
        responses={**BEARER_RESPONSES, 422: INVALID},
        response_headers=[
            ResponseHeader(
                name="Location",
                description="The new customer's URL in this API.",
                documentation_only=True,
            )
        ],
    )
    async def create_customer(
        self, request: ApiRequest, data: JSONBody[CustomerCreate], customers: Customers
    ) -> Response[CustomerOut]:
        customer = await customers.create(request.user.id, data.to_input())
        location = request.app.route_reverse("api_customer", slug=customer.slug)
        return Response(CustomerOut.of(customer), status_code=201, headers={"Location": location})

    @get(
        "/{slug:str}",
        name="api_customer",
        operation_class=ApiOperation,
        summary="One of your customers",
        responses={**BEARER_RESPONSES, 404: NOT_FOUND},
    )
    async def get_customer(
        self, request: ApiRequest, slug: FromPath[str], customers: Customers
    ) -> CustomerOut:
        try:
            return CustomerOut.of(await customers.get_by_slug(request.user.id, slug))
        except CustomerNotFound:
            raise _not_found() from None

    @patch(
        "/{slug:str}",
        operation_class=ApiOperation,
        summary="Change some fields of a customer",
        description="Only the fields sent change; the others keep their values. "
        "The slug stays the same when the name changes.",
        responses={**BEARER_RESPONSES, 404: NOT_FOUND, 422: INVALID},
    )
    async def update_customer(
        self,
        request: ApiRequest,
        slug: FromPath[str],
        data: JSONBody[CustomerPatch],
        customers: Customers,
    ) -> CustomerOut:
        try:
            return CustomerOut.of(await customers.update(request.user.id, slug, data.changes()))
        except CustomerNotFound:
            raise _not_found() from None

    @delete(
        "/{slug:str}",
        operation_class=ApiOperation,
        summary="Delete a customer",
        responses={**BEARER_RESPONSES, 404: NOT_FOUND},
    )
    async def delete_customer(
        self, request: ApiRequest, slug: FromPath[str], customers: Customers
    ) -> None:
        try:
            await customers.delete(request.user.id, slug)
        except CustomerNotFound:
            raise _not_found() from None


customer_api_route_handlers: list[ControllerRouterHandler] = [CustomerApiController]

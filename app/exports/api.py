"""JSON API of exports: queue an export of a (filtered, sorted) list, follow it, list them.

Every route goes through ``bearer_guard``; another user's export is "not found" (404).
Invalid input is 422 ``{"errors": {field: message}}`` in words.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.types import ControllerRouterHandler

from app.accounts.bearer import BEARER_RESPONSES, BEARER_SECURITY, bearer_guard, error_spec
from app.accounts.repository import Account, TokenRecord
from app.accounts.schemas import ValidationErrorOut
from app.audit.context import AuditContext
from app.errors import ApiOperation
from app.exports.dependencies import list_query, provide_export_service
from app.exports.schemas import ExportCreate, ExportListOut, ExportOut, ExportQueuedOut
from app.exports.service import ExportNotFound, ExportService

ApiRequest = Request[Account, TokenRecord, Any]
Exports = NamedDependency[ExportService]

NOT_FOUND = error_spec("You have no export with this id")
INVALID = ResponseSpec(
    data_container=ValidationErrorOut,
    description='Invalid input: `{"errors": {field: message}}`',
)


class ExportApiController(Controller):
    path = "/exports"
    tags = ["exports"]
    guards = [bearer_guard]
    security = BEARER_SECURITY
    dependencies = {"exports": Provide(provide_export_service, sync_to_thread=False)}

    @post(
        "/",
        operation_class=ApiOperation,
        summary="Export customers to CSV or XLSX",
        description=(
            "Queues an export of every customer the same query to GET /api/v1/customers "
            "lists (`q`, `organization`, `created_from`, `created_to`, `sort`; all pages, in "
            "that order), or only of `slugs`. `format` is `csv` (UTF-8; `bom: true` adds a "
            "byte order mark for Excel) or `xlsx`. Answers 202 with the export's id; follow "
            "it with GET /api/v1/exports/{id} until `download_url` appears."
        ),
        responses={**BEARER_RESPONSES, 422: INVALID},
        status_code=202,
    )
    async def create_export(
        self, request: ApiRequest, data: JSONBody[ExportCreate], exports: Exports
    ) -> Response[ExportQueuedOut]:
        query = list_query(data.q, data.organization, data.created_from, data.created_to, data.sort)
        transfer = await exports.create(
            request.user.id,
            query,
            data.slugs,
            data.format,
            data.bom,
            AuditContext.from_connection(request),
        )
        location = request.app.route_reverse("api_export", transfer_id=transfer.id)
        return Response(
            ExportQueuedOut(id=transfer.id, status=transfer.status),
            status_code=202,
            headers={"Location": location},
        )

    @get(
        "/",
        operation_class=ApiOperation,
        summary="Your exports, newest first",
        responses=BEARER_RESPONSES,
    )
    async def list_exports(self, request: ApiRequest, exports: Exports) -> ExportListOut:
        found = await exports.list_exports(request.user.id)
        return ExportListOut(data=[ExportOut.of(view) for view in found])

    @get(
        "/{transfer_id:int}",
        name="api_export",
        operation_class=ApiOperation,
        summary="One export and its progress",
        description="`download_url` (once completed, until it expires) is valid for 15 "
        "minutes; ask again for a fresh one.",
        responses={**BEARER_RESPONSES, 404: NOT_FOUND},
    )
    async def get_export(
        self, request: ApiRequest, transfer_id: FromPath[int], exports: Exports
    ) -> ExportOut:
        try:
            return ExportOut.of(await exports.view(request.user.id, transfer_id))
        except ExportNotFound:
            raise NotFoundException() from None


export_api_route_handlers: list[ControllerRouterHandler] = [ExportApiController]

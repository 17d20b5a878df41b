"""JSON API of imports: upload a CSV (multipart) and start it, follow its progress,
cancel it, undo it.

Every route goes through ``bearer_guard``; another user's import is "not found" (404).
Invalid input is 422 ``{"errors": {field: message}}``: a file too large, empty or not a
CSV (``file``), a mapping without name or email (``mapping``), an unknown policy.

The upload route alone accepts a body up to the default IMPORT_MAX_BYTES plus room for
the multipart envelope; the service enforces the configured IMPORT_MAX_BYTES while it
streams the file to storage. Litestar spools the multipart file to a temporary file
(memory stays flat) before the handler streams it on to storage.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, FromPath
from litestar.types import ControllerRouterHandler

from app.accounts.bearer import BEARER_RESPONSES, BEARER_SECURITY, bearer_guard, error_spec
from app.accounts.repository import Account, TokenRecord
from app.accounts.schemas import ValidationErrorOut
from app.audit.context import AuditContext
from app.errors import ApiOperation
from app.lib.validation import ValidationFailed
from app.settings import Settings
from app.transfers.dependencies import provide_import_service
from app.transfers.schemas import ImportForm, ImportListOut, ImportOut, UndoOut
from app.transfers.service import ImportNotFound, ImportService

ApiRequest = Request[Account, TokenRecord, Any]
Imports = NamedDependency[ImportService]

# The default IMPORT_MAX_BYTES and room for the multipart envelope and the other fields.
UPLOAD_BODY_LIMIT = Settings.import_max_bytes + 1024 * 1024

NOT_FOUND = error_spec("You have no import with this id")
INVALID = ResponseSpec(
    data_container=ValidationErrorOut,
    description='Invalid input: `{"errors": {field: message}}`',
)


def _mapping(raw: str | None) -> dict[str, str] | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise ValidationFailed(
            {"mapping": 'Send the mapping as a JSON object: {"Column": "field", ...}.'}
        ) from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValidationFailed(
            {"mapping": 'Send the mapping as a JSON object: {"Column": "field", ...}.'}
        )
    return value


class ImportApiController(Controller):
    path = "/imports"
    tags = ["imports"]
    guards = [bearer_guard]
    security = BEARER_SECURITY
    dependencies = {"imports": Provide(provide_import_service, sync_to_thread=False)}

    @post(
        "/",
        operation_class=ApiOperation,
        summary="Import customers from a CSV file",
        description=(
            "Upload a CSV file (multipart field `file`) and start importing it. `mapping` "
            '(optional) is a JSON object `{"source header": "target field"}` with targets '
            "name, first_name, last_name, email, phone, organization, job_title, notes or "
            "ignore; without it the columns are mapped from their headers. `on_duplicate` "
            "says what happens to a row whose email is already in your book: `skip` "
            "(default), `update` (overwrite with the row's non-empty values) or `merge` "
            "(fill only empty fields). Answers 202 with the import; follow its progress "
            "with GET /api/v1/imports/{id}."
        ),
        responses={**BEARER_RESPONSES, 422: INVALID},
        request_max_body_size=UPLOAD_BODY_LIMIT,
        status_code=202,
    )
    async def create_import(
        self,
        request: ApiRequest,
        data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        imports: Imports,
    ) -> Response[ImportOut]:
        if data.file is None or not isinstance(data.file, UploadFile):
            raise ValidationFailed({"file": "Attach the CSV file as the multipart field `file`."})
        mapping = _mapping(data.mapping)
        try:
            transfer = await imports.create_import(
                request.user.id,
                data.file.filename,
                data.file,
                mapping=mapping,
                on_duplicate=data.on_duplicate,
            )
        finally:
            await data.file.close()
        location = request.app.route_reverse("api_import", transfer_id=transfer.id)
        return Response(ImportOut.of(transfer), status_code=202, headers={"Location": location})

    @get(
        "/",
        operation_class=ApiOperation,
        summary="Your imports, newest first",
        responses=BEARER_RESPONSES,
    )
    async def list_imports(self, request: ApiRequest, imports: Imports) -> ImportListOut:
        found = await imports.list_imports(request.user.id)
        return ImportListOut(data=[ImportOut.of(t, await imports.report_url(t)) for t in found])

    @get(
        "/{transfer_id:int}",
        name="api_import",
        operation_class=ApiOperation,
        summary="One import and its progress",
        description="`error_report_url` (when rows failed) is valid for 15 minutes.",
        responses={**BEARER_RESPONSES, 404: NOT_FOUND},
    )
    async def get_import(
        self, request: ApiRequest, transfer_id: FromPath[int], imports: Imports
    ) -> ImportOut:
        try:
            return ImportOut.of_view(await imports.view(request.user.id, transfer_id))
        except ImportNotFound:
            raise NotFoundException() from None

    @post(
        "/{transfer_id:int}/cancel",
        operation_class=ApiOperation,
        summary="Cancel an import",
        description="A running import stops at its next chunk; the rows it committed stay.",
        responses={**BEARER_RESPONSES, 404: NOT_FOUND, 422: INVALID},
        status_code=202,
    )
    async def cancel_import(
        self, request: ApiRequest, transfer_id: FromPath[int], imports: Imports
    ) -> ImportOut:
        try:
            return ImportOut.of(await imports.cancel(request.user.id, transfer_id))
        except ImportNotFound:
            raise NotFoundException() from None

    @post(
        "/{transfer_id:int}/undo",
        operation_class=ApiOperation,
        summary="Undo a finished import",
        description="Deletes the customers it created and restores the previous values of "
        "the ones it updated or merged, in one audited operation.",
        responses={**BEARER_RESPONSES, 404: NOT_FOUND, 422: INVALID},
        status_code=200,
    )
    async def undo_import(
        self, request: ApiRequest, transfer_id: FromPath[int], imports: Imports
    ) -> UndoOut:
        try:
            result = await imports.undo(
                request.user.id, transfer_id, AuditContext.from_connection(request)
            )
        except ImportNotFound:
            raise NotFoundException() from None
        return UndoOut.of(transfer_id, result)


import_api_route_handlers: list[ControllerRouterHandler] = [ImportApiController]

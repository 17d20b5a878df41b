"""Browser pages of exports: queue one from the dashboard ("Export" the whole filtered
list, or "Export selected"), watch it on its page (a fragment that polls itself every
second while it runs), download it through a fresh 15-minute link, cancel or retry it.

Every form posts for real (303 after success) and works without JavaScript; htmx only
polls the progress fragment and sends "Export selected" from the bulk form (answered
with ``HX-Redirect`` so the browser lands on the export's page either way).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from litestar.response import Redirect, Response
from litestar.types import ControllerRouterHandler

from app.accounts.auth import verified_guard
from app.accounts.web import account_of
from app.audit.context import AuditContext
from app.customers.web import FIELD_LABELS, SORT_OPTIONS, Filters
from app.errors import error_response
from app.exports.dependencies import list_query, provide_export_service
from app.exports.service import (
    FORMAT_NAMES,
    ExportNotFound,
    ExportService,
    ExportUnavailable,
    ExportView,
)
from app.exports.writer import CSV, XLSX
from app.lib.flash import flash
from app.lib.htmx import is_htmx, render
from app.lib.validation import ValidationFailed

Exports = NamedDependency[ExportService]

# The dashboard's format select (templates/customers/index.html) -> (format, bom).
_FORMATS = {"csv": (CSV, False), "csv_bom": (CSV, True), "xlsx": (XLSX, False)}
SELECTED = "selected"


def not_found(request: Request, _: ExportNotFound) -> Response[Any]:
    # Another user's export is "not found" too: whether it exists is not theirs to learn.
    return error_response(request, 404)


def _filters_text(view: ExportView) -> list[str]:
    """The list an export was taken from, in words."""
    filters = view.filters
    words = []
    if filters.get("q"):
        words.append(f"Search “{filters['q']}”")
    if filters.get("organization"):
        words.append(f"Organization {filters['organization']}")
    if filters.get("created_from"):
        words.append(f"Created from {filters['created_from']}")
    if filters.get("created_to"):
        words.append(f"Created to {filters['created_to']}")
    sort = dict(SORT_OPTIONS).get(filters.get("sort") or "")
    if sort and filters.get("sort"):
        words.append(f"Sorted: {sort}")
    return words


class ExportController(Controller):
    path = "/exports"
    include_in_schema = False
    guards = [verified_guard]
    dependencies = {"exports": Provide(provide_export_service, sync_to_thread=False)}
    exception_handlers = {ExportNotFound: not_found}

    @post("/", name="export_create")
    async def create(self, request: Request, exports: Exports) -> Response[Any]:
        account = account_of(request)
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        filters = Filters.from_params(values)
        back = filters.url(request.app.route_reverse("customers"))
        fmt, bom = _FORMATS.get(values.get("format", "csv"), ("", False))
        selected = values.get("scope") == SELECTED
        slugs = [s for s in form.getall("slugs", []) if isinstance(s, str)] if selected else None
        try:
            query = list_query(
                filters.q,
                filters.organization,
                filters.created_from,
                filters.created_to,
                filters.sort,
            )
            transfer = await exports.create(
                account.id, query, slugs, fmt, bom, AuditContext.from_connection(request)
            )
        except ValidationFailed as error:
            flash(request, " ".join(error.errors.values()), "error")
            return self._go(request, back)
        what = f"{len(slugs):,} selected customers" if slugs is not None else "your list"
        flash(request, f"Exporting {what}: the file will be ready here in a moment.")
        return self._go(request, request.app.route_reverse("export_show", transfer_id=transfer.id))

    @staticmethod
    def _go(request: Request, url: str) -> Response[Any]:
        if is_htmx(request):
            # "Export selected" goes through htmx from the bulk form: move the whole page.
            return Response(content="", headers={"HX-Redirect": url, "Vary": "HX-Request"})
        return Redirect(url, status_code=303)

    @get("/{transfer_id:int}", name="export_show")
    async def show(
        self, request: Request, transfer_id: FromPath[int], exports: Exports
    ) -> Response[str]:
        return await self._page(request, exports, transfer_id, block="progress")

    @get("/{transfer_id:int}/progress", name="export_progress")
    async def progress(
        self, request: Request, transfer_id: FromPath[int], exports: Exports
    ) -> Response[str]:
        return await self._page(request, exports, transfer_id, block="progress")

    async def _page(
        self, request: Request, exports: ExportService, transfer_id: int, *, block: str
    ) -> Response[str]:
        view = await exports.view(account_of(request).id, transfer_id)
        return render(
            request,
            "exports/show.html",
            {
                "view": view,
                "transfer": view.transfer,
                "htmx": is_htmx(request),
                "format_name": FORMAT_NAMES.get(view.format, view.format),
                "filters_text": _filters_text(view),
                "labels": FIELD_LABELS,
            },
            block=block,
        )

    @get("/{transfer_id:int}/download", name="export_download", cache=False)
    async def download(
        self, request: Request, transfer_id: FromPath[int], exports: Exports
    ) -> Response[Any]:
        account = account_of(request)
        try:
            url = await exports.download_url(account.id, transfer_id)
        except ExportUnavailable as error:
            if error.expired:
                transfer = await exports.get(account.id, transfer_id)
                return render(
                    request,
                    "exports/expired.html",
                    {"transfer": transfer, "message": error.message},
                    status_code=410,
                )
            flash(request, error.message, "error")
            return Redirect(
                request.app.route_reverse("export_show", transfer_id=transfer_id), status_code=303
            )
        return Redirect(url, status_code=303, headers={"Cache-Control": "no-store"})

    @post("/{transfer_id:int}/cancel", name="export_cancel")
    async def cancel(
        self, request: Request, transfer_id: FromPath[int], exports: Exports
    ) -> Response[Any]:
        try:
            await exports.cancel(account_of(request).id, transfer_id)
        except ValidationFailed as error:
            flash(request, " ".join(error.errors.values()), "error")
        else:
            flash(request, "Export cancelled.")
        return Redirect(
            request.app.route_reverse("export_show", transfer_id=transfer_id), status_code=303
        )

    @post("/{transfer_id:int}/retry", name="export_retry")
    async def retry(
        self, request: Request, transfer_id: FromPath[int], exports: Exports
    ) -> Response[Any]:
        try:
            await exports.retry(account_of(request).id, transfer_id)
        except ValidationFailed as error:
            flash(request, " ".join(error.errors.values()), "error")
        else:
            flash(request, "Export queued again.")
        return Redirect(
            request.app.route_reverse("export_show", transfer_id=transfer_id), status_code=303
        )


export_route_handlers: list[ControllerRouterHandler] = [ExportController]

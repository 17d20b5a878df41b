"""Browser pages of CSV imports: the list, the drop zone, the mapping page, live progress
and the result (error report, cancel, undo, retry).

Thin over ``ImportService``, like the JSON API. Every form posts for real (303 after
success, 422 with the message beside the field and the choices kept); ``static/imports.js``
only adds drag-and-drop and an upload progress bar, htmx only polls the progress fragment
(a named block of the show page, rendered without its trigger once the import has
finished so the polling stops). Another user's import is "not found" (404) on every route.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from litestar.response import Redirect, Response
from litestar.types import ControllerRouterHandler

from app.accounts.auth import verified_guard
from app.accounts.web import account_of
from app.audit.context import AuditContext
from app.errors import error_response
from app.lib.flash import flash
from app.lib.htmx import is_htmx, render
from app.lib.validation import ValidationFailed
from app.transfers.api import UPLOAD_BODY_LIMIT
from app.transfers.dependencies import provide_import_service
from app.transfers.importer import MERGE, SKIP, UPDATE
from app.transfers.mapping import TARGET_LABELS, Target
from app.transfers.repository import TransferRecord
from app.transfers.service import ImportNotFound, ImportService, ImportView
from app.transfers.tables import TransferStatus

Imports = NamedDependency[ImportService]
Context = NamedDependency[AuditContext]  # the app's "audit_context" dependency

PREVIEW_ROWS = 5
CHOOSE_FILE = "Choose a CSV file to import."
STATUS_LABELS = {
    TransferStatus.pending: "Waiting for its mapping",
    TransferStatus.queued: "Queued",
    TransferStatus.running: "Running",
    TransferStatus.completed: "Completed",
    TransferStatus.failed: "Failed",
    TransferStatus.cancelled: "Cancelled",
    TransferStatus.expired: "Expired",
}
ACTIVE = (TransferStatus.queued, TransferStatus.running)
POLICY_CHOICES = (
    (SKIP, "Skip", "Keep the customer as it is in your book and count the row as skipped."),
    (UPDATE, "Update", "Overwrite the customer's fields with the row's non-empty values."),
    (MERGE, "Merge", "Fill only the customer's empty fields from the row."),
)
TARGET_CHOICES = [(str(target), label) for target, label in TARGET_LABELS.items()]


def not_found(request: Request, _: ImportNotFound) -> Response[Any]:
    # Another user's import is "not found" too: whether it exists is not theirs to learn.
    return error_response(request, 404)


def _words(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'}"


def size_words(nbytes: int) -> str:
    """'512 MB': the upload limit as the page states it."""
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if nbytes >= size:
            return f"{nbytes / size:,.4g} {unit}"
    return f"{nbytes:,} bytes"


def duration_words(seconds: float) -> str:
    """'about 3 minutes': a time left, rounded to what a person can use."""
    if seconds < 60:
        return "less than a minute" if seconds >= 10 else "a few seconds"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {_words(minutes, 'minute')}"
    hours, minutes = divmod(minutes, 60)
    return f"about {_words(hours, 'hour')}" + (f" {_words(minutes, 'minute')}" if minutes else "")


@dataclass(frozen=True)
class Progress:
    """An import as its row on the list and its progress fragment show it."""

    transfer: TransferRecord
    now: datetime

    @property
    def id(self) -> int:
        return self.transfer.id

    @property
    def status(self) -> str:
        return str(self.transfer.status)

    @property
    def status_label(self) -> str:
        if self.cancel_requested and self.active:
            return "Cancelling"
        return STATUS_LABELS.get(TransferStatus(self.status), self.status)

    @property
    def pending(self) -> bool:
        return self.status == TransferStatus.pending

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def finished(self) -> bool:
        return not self.pending and not self.active

    @property
    def cancel_requested(self) -> bool:
        return bool(self.transfer.options.get("cancel_requested"))

    @property
    def undone(self) -> bool:
        return bool(self.transfer.options.get("undone_at"))

    @property
    def undo_counts(self) -> dict[str, int]:
        return dict(self.transfer.options.get("undo") or {})

    @property
    def can_undo(self) -> bool:
        done = self.status in (TransferStatus.completed, TransferStatus.cancelled)
        return done and not self.undone and bool(self.transfer.created or self.transfer.updated)

    @property
    def can_retry(self) -> bool:
        return self.status == TransferStatus.failed

    @property
    def processed(self) -> int:
        return self.transfer.processed_rows

    @property
    def total(self) -> int | None:
        total = self.transfer.total_rows
        return None if total is None else max(total, self.processed)

    @property
    def total_is_estimate(self) -> bool:
        return self.active

    @property
    def total_text(self) -> str:
        if self.total is None:
            return "an uncounted number of"
        return f"{'about ' if self.total_is_estimate else ''}{self.total:,}"

    @property
    def percent(self) -> int:
        if self.status == TransferStatus.completed:
            return 100
        if not self.total:
            return 0
        return min(100, self.processed * 100 // self.total)

    @property
    def elapsed(self) -> float | None:
        started = self.transfer.started_at
        if started is None:
            return None
        end = self.transfer.finished_at or self.now
        return max((end - started).total_seconds(), 0.0)

    @property
    def rate(self) -> float | None:
        """Rows per second since the start (of this run, resumes included)."""
        elapsed = self.elapsed
        if not elapsed or not self.processed:
            return None
        return self.processed / elapsed

    @property
    def rate_text(self) -> str | None:
        rate = self.rate
        return None if rate is None else f"{rate:,.0f} rows/s"

    @property
    def time_left_text(self) -> str | None:
        rate = self.rate
        if not self.active or rate is None or self.total is None:
            return None
        return duration_words(max(self.total - self.processed, 0) / rate)

    @property
    def live_text(self) -> str:
        """What the live region announces, in steps of 10 % so it is not read every second."""
        name = self.transfer.original_filename
        if self.status == TransferStatus.running:
            step = self.percent // 10 * 10
            return f"Importing {name}: {step} % done."
        if self.status == TransferStatus.completed:
            return f"Import of {name} completed."
        return f"Import of {name}: {self.status_label.lower()}."


class ImportPages(Controller):
    path = "/imports"
    include_in_schema = False
    guards = [verified_guard]
    dependencies = {"imports": Provide(provide_import_service, sync_to_thread=False)}
    exception_handlers = {ImportNotFound: not_found}

    # --- the list ------------------------------------------------------------------------

    @get("/", name="imports")
    async def index(self, request: Request, imports: Imports) -> Response[str]:
        account = account_of(request)
        now = datetime.now(UTC)
        items = [Progress(t, now) for t in await imports.list_imports(account.id)]
        return render(
            request, "imports/index.html", {"htmx": is_htmx(request), "items": items}, block="list"
        )

    @get("/{transfer_id:int}/row", name="import_row")
    async def row(self, request: Request, transfer_id: FromPath[int], imports: Imports) -> Any:
        """One row of the list, which a running import's row polls to refresh itself."""
        account = account_of(request)
        transfer = await imports.get(account.id, transfer_id)
        if not is_htmx(request):
            return Redirect(request.app.route_reverse("imports"), status_code=303)
        return render(
            request,
            "imports/index.html",
            {"htmx": True, "item": Progress(transfer, datetime.now(UTC))},
            block="row",
        )

    # --- upload --------------------------------------------------------------------------

    @get("/new", name="import_new")
    async def new(self, request: Request) -> Response[str]:
        return self._upload_page(request)

    @post("/", name="import_upload", request_max_body_size=UPLOAD_BODY_LIMIT)
    async def upload(self, request: Request, imports: Imports) -> Response[Any]:
        account = account_of(request)
        form = await request.form()
        upload = form.get("file")
        try:
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise ValidationFailed({"file": CHOOSE_FILE})
            try:
                transfer = await imports.upload(account.id, upload.filename, upload)
            finally:
                await upload.close()
        except ValidationFailed as error:
            return self._upload_page(request, error.errors, status_code=422)
        url = request.app.route_reverse("import_show", transfer_id=transfer.id)
        return Redirect(url, status_code=303)

    def _upload_page(
        self, request: Request, errors: Mapping[str, str] | None = None, status_code: int = 200
    ) -> Response[str]:
        return render(
            request,
            "imports/new.html",
            {
                "htmx": is_htmx(request),
                "errors": dict(errors or {}),
                "max_size": size_words(request.app.state.settings.import_max_bytes),
            },
            block="upload",
            status_code=status_code,
        )

    # --- one import: its mapping, then its progress and result ----------------------------

    @get("/{transfer_id:int}", name="import_show")
    async def show(self, request: Request, transfer_id: FromPath[int], imports: Imports) -> Any:
        account = account_of(request)
        view = await imports.view(account.id, transfer_id)
        if view.transfer.status == TransferStatus.pending:
            mapping = view.mapping
            chosen = [str(t) for t in mapping.targets] if mapping else []
            policy = str(view.transfer.options.get("on_duplicate") or SKIP)
            return self._mapping_page(request, view, chosen, policy)
        return self._progress_page(
            request, view, "imports/show.html", confirm_undo=False, block="progress"
        )

    def _mapping_page(
        self,
        request: Request,
        view: ImportView,
        chosen: list[str],
        policy: str,
        errors: Mapping[str, str] | None = None,
        status_code: int = 200,
    ) -> Response[str]:
        fmt = view.format
        assert fmt is not None, "an uploaded import is described"
        header = fmt.header
        if len(chosen) != len(header):
            chosen = [str(Target.ignore)] * len(header)
        rows = [
            [row[i] if i < len(row) else "" for i in range(len(header))]
            for row in fmt.preview_rows[:PREVIEW_ROWS]
        ]
        return render(
            request,
            "imports/mapping.html",
            {
                "htmx": is_htmx(request),
                "transfer": view.transfer,
                "format": fmt,
                "columns": list(zip(header, chosen, strict=True)),
                "rows": rows,
                "targets": TARGET_CHOICES,
                "policies": POLICY_CHOICES,
                "policy": policy,
                "errors": dict(errors or {}),
            },
            block="mapping",
            status_code=status_code,
        )

    def _progress_page(
        self,
        request: Request,
        view: ImportView,
        template: str,
        *,
        confirm_undo: bool,
        block: str,
        status_code: int = 200,
    ) -> Response[str]:
        item = Progress(view.transfer, datetime.now(UTC))
        return render(
            request,
            template,
            {
                "htmx": is_htmx(request),
                "item": item,
                "transfer": view.transfer,
                "has_report": view.error_report_url is not None,
                "confirm_undo": confirm_undo,
            },
            block=block,
            status_code=status_code,
        )

    @post("/{transfer_id:int}/start", name="import_start")
    async def start(self, request: Request, transfer_id: FromPath[int], imports: Imports) -> Any:
        account = account_of(request)
        view = await imports.view(account.id, transfer_id)  # 404 before reading anything
        form = await request.form()
        targets = [t for t in form.getall("target", []) if isinstance(t, str)]
        raw_policy = form.get("on_duplicate")
        policy = raw_policy if isinstance(raw_policy, str) else SKIP
        try:
            await imports.configure(account.id, transfer_id, targets, policy)
            await imports.start(account.id, transfer_id)
        except ValidationFailed as error:
            if "status" in error.errors:
                flash(request, error.errors["status"], "error")
                url = request.app.route_reverse("import_show", transfer_id=transfer_id)
                return Redirect(url, status_code=303)
            return self._mapping_page(request, view, targets, policy, error.errors, 422)
        url = request.app.route_reverse("import_show", transfer_id=transfer_id)
        return Redirect(url, status_code=303)

    @get("/{transfer_id:int}/progress", name="import_progress")
    async def progress(self, request: Request, transfer_id: FromPath[int], imports: Imports) -> Any:
        account = account_of(request)
        view = await imports.view(account.id, transfer_id)
        if view.transfer.status == TransferStatus.pending:
            url = request.app.route_reverse("import_show", transfer_id=transfer_id)
            if is_htmx(request):
                return Response(content="", headers={"HX-Redirect": url, "Vary": "HX-Request"})
            return Redirect(url, status_code=303)
        return self._progress_page(
            request, view, "imports/show.html", confirm_undo=False, block="progress"
        )

    @get("/{transfer_id:int}/errors.csv", name="import_errors")
    async def errors_csv(
        self, request: Request, transfer_id: FromPath[int], imports: Imports
    ) -> Any:
        account = account_of(request)
        view = await imports.view(account.id, transfer_id)
        if view.error_report_url is None:
            return error_response(request, 404, "This import has no error report.")
        # The storage link expires within minutes: pages link here, never to it.
        return Redirect(view.error_report_url, status_code=303)

    # --- cancel, undo, retry -----------------------------------------------------------

    @post("/{transfer_id:int}/cancel", name="import_cancel")
    async def cancel(self, request: Request, transfer_id: FromPath[int], imports: Imports) -> Any:
        account = account_of(request)
        try:
            transfer = await imports.cancel(account.id, transfer_id)
        except ValidationFailed as error:
            flash(request, " ".join(error.errors.values()), "error")
        else:
            if transfer.status == TransferStatus.cancelled:
                flash(request, "The import was cancelled before it started.")
            else:
                flash(
                    request,
                    "Cancelling: the import stops after the rows it is writing now. "
                    "The rows imported so far stay.",
                )
        return self._back(request, transfer_id)

    @post("/{transfer_id:int}/undo", name="import_undo")
    async def undo(
        self,
        request: Request,
        transfer_id: FromPath[int],
        imports: Imports,
        audit_context: Context,
    ) -> Any:
        account = account_of(request)
        view = await imports.view(account.id, transfer_id)
        form = await request.form()
        if form.get("confirm") != "yes":
            # The confirmation step, a page of its own so it works without JavaScript.
            return self._progress_page(
                request, view, "imports/undo.html", confirm_undo=True, block="confirm"
            )
        try:
            result = await imports.undo(account.id, transfer_id, audit_context)
        except ValidationFailed as error:
            flash(request, " ".join(error.errors.values()), "error")
        else:
            flash(
                request,
                f"Import undone: {_words(result.deleted, 'customer')} it created deleted, "
                f"{_words(result.restored, 'customer')} it changed restored.",
            )
        return self._back(request, transfer_id)

    @post("/{transfer_id:int}/retry", name="import_retry")
    async def retry(self, request: Request, transfer_id: FromPath[int], imports: Imports) -> Any:
        account = account_of(request)
        try:
            await imports.retry(account.id, transfer_id)
        except ValidationFailed as error:
            flash(request, " ".join(error.errors.values()), "error")
        else:
            flash(request, "The import is queued again: it goes on from where it stopped.")
        return self._back(request, transfer_id)

    def _back(self, request: Request, transfer_id: int) -> Response[Any]:
        url = request.app.route_reverse("import_show", transfer_id=transfer_id)
        if is_htmx(request):
            return Response(content="", headers={"HX-Redirect": url, "Vary": "HX-Request"})
        return Redirect(url, status_code=303)


import_route_handlers: list[ControllerRouterHandler] = [ImportPages]

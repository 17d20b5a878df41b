"""Browser pages of the audit trail: a customer's timeline (lazily loaded into the
customer's page, or a page of its own without JavaScript), ``/audit`` with its filters,
and the restore buttons.

Fragments are named blocks of their page's template (``app.lib.htmx.render``). Another
user's customer or entry is "not found" (404) on every route, restore POSTs included.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Response
from litestar.types import ControllerRouterHandler

from app.accounts.auth import verified_guard
from app.accounts.web import account_of
from app.audit.context import AuditContext
from app.audit.models import DEFAULT_LIMIT, EVENTS, MAX_LIMIT
from app.audit.render import EntryRenderer
from app.audit.schemas import shown
from app.audit.service import AuditEntryNotFound, AuditService, InvalidCursor, RestoreRefused
from app.customers.models import ListQuery
from app.customers.service import CustomerNotFound, CustomerService
from app.customers.web import FIELD_LABELS
from app.errors import error_response
from app.lib.flash import flash
from app.lib.htmx import is_htmx, render
from app.lib.validation import ValidationFailed

Audit = NamedDependency[AuditService]  # the app's "audit" dependency
Customers = NamedDependency[CustomerService]  # the app's "customers" dependency
Context = NamedDependency[AuditContext]  # the app's "audit_context" dependency

BAD_CURSOR = "That page link is not valid any more, so here is the newest page."
EVENT_LABELS = {
    "created": "Created",
    "updated": "Updated",
    "deleted": "Deleted",
    "imported": "Imported",
    "exported": "Exported",
    "restored": "Restored",
    "archive_deleted": "Archive deleted",
}
NO_CUSTOMER = "You have no customer matching this. Try their name, email or slug."


def not_found(request: Request, _: Exception) -> Response[Any]:
    # Another user's customer or entry is "not found" too: existence is not leaked.
    return error_response(request, 404)


def _limit(value: str | None) -> int:
    """The page size asked for in the query string (the timeline's, for tests and links)."""
    if value and value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_LIMIT:
        return int(value)
    return DEFAULT_LIMIT


def _entry_renderer(request: Request) -> EntryRenderer:
    """The app's entry renderer, made on first use (it needs the app's url_for)."""
    renderer = request.app.state.get("audit_entries")
    if renderer is None:
        url_for = request.app.template_engine.engine.globals["url_for"]  # type: ignore[union-attr]
        renderer = EntryRenderer(url_for, FIELD_LABELS, EVENT_LABELS)
        request.app.state["audit_entries"] = renderer
    return renderer


def _common(request: Request) -> dict[str, Any]:
    return {
        "htmx": is_htmx(request),
        "labels": FIELD_LABELS,
        "event_labels": EVENT_LABELS,
        "audit_entries": _entry_renderer(request),
    }


@dataclass(frozen=True)
class AuditFilters:
    """``/audit``'s query string as typed: shown back in the form and kept in links."""

    event: str = ""
    customer: str = ""
    customer_id: str = ""
    date_from: str = ""
    date_to: str = ""
    cursor: str = ""

    @classmethod
    def from_params(cls, params: Any) -> AuditFilters:
        values = {}
        for name in (f.name for f in fields(cls)):
            value = params.get(name)
            values[name] = value.strip() if isinstance(value, str) else ""
        return cls(**values)

    def url(self, base: str, **changes: str) -> str:
        values = {f.name: getattr(self, f.name) for f in fields(self)} | changes
        params = {name: value for name, value in values.items() if value}
        return f"{base}?{urlencode(params)}" if params else base

    def dates(self) -> tuple[date | None, date | None]:
        errors: dict[str, str] = {}
        found: list[date | None] = []
        for name in ("date_from", "date_to"):
            text = getattr(self, name)
            try:
                found.append(date.fromisoformat(text) if text else None)
            except ValueError:
                found.append(None)
                errors[name] = "Enter a date like 2026-03-01."
        if self.event and self.event not in EVENTS:
            errors["event"] = "Choose one of the events in the list."
        if self.customer_id and not (self.customer_id.isascii() and self.customer_id.isdigit()):
            errors["customer"] = "That customer link is not valid."
        if errors:
            raise ValidationFailed(errors)
        return found[0], found[1]


async def resolve_customer(customers: CustomerService, user_id: int, text: str) -> int | None:
    """The customer ``text`` names: a slug, else the best full-text match (name, email)."""
    exact = await customers.find_by_slug(user_id, text)
    if exact is not None:
        return exact.id
    page = await customers.list_page(user_id, ListQuery(q=text))
    return page.items[0].customer.id if page.items else None


class AuditController(Controller):
    include_in_schema = False
    guards = [verified_guard]
    exception_handlers = {CustomerNotFound: not_found, AuditEntryNotFound: not_found}

    # --- a customer's timeline ----------------------------------------------------------

    @get("/customers/{slug:str}/timeline", name="customer_timeline")
    async def timeline(
        self, request: Request, slug: FromPath[str], customers: Customers, audit: Audit
    ) -> Response[str]:
        account = account_of(request)
        customer = await customers.get_by_slug(account.id, slug)
        cursor = request.query_params.get("cursor") or None
        limit = _limit(request.query_params.get("limit"))
        error = None
        try:
            trail = await audit.trail(account.id, customer.id, cursor=cursor, limit=limit)
        except InvalidCursor:
            error = BAD_CURSOR
            trail = await audit.trail(account.id, customer.id, limit=limit)
        entries = await shown(
            account.id, trail.entries, slugs=False, known={account.id: account.name}
        )
        base = request.app.route_reverse("customer_timeline", slug=customer.slug)
        older = None
        if trail.next_cursor:
            older = f"{base}?{urlencode({'cursor': trail.next_cursor})}"
        return render(
            request,
            "audit/timeline.html",
            {
                **_common(request),
                "customer": customer,
                "entries": entries,
                "older_url": older,
                "continued": cursor is not None and error is None,
                "error": error,
            },
            block="entries",
            status_code=400 if error else 200,
        )

    # --- all of the user's entries -----------------------------------------------------

    @get("/audit", name="audit")
    async def index(self, request: Request, customers: Customers, audit: Audit) -> Response[str]:
        account = account_of(request)
        filters = AuditFilters.from_params(request.query_params)
        errors: dict[str, str] = {}
        status = 200
        entries: list[Any] = []
        next_cursor = None
        customer_label = ""
        try:
            date_from, date_to = filters.dates()
            customer_id: int | None = None
            if filters.customer_id:
                customer_id = int(filters.customer_id)
            elif filters.customer:
                customer_id = await resolve_customer(customers, account.id, filters.customer)
                if customer_id is None:
                    raise ValidationFailed({"customer": NO_CUSTOMER})
            try:
                trail = await audit.trail(
                    account.id,
                    customer_id,
                    event=filters.event or None,
                    date_from=date_from,
                    date_to=date_to,
                    cursor=filters.cursor or None,
                )
            except InvalidCursor:
                errors, status = {"cursor": BAD_CURSOR}, 400
                trail = await audit.trail(
                    account.id,
                    customer_id,
                    event=filters.event or None,
                    date_from=date_from,
                    date_to=date_to,
                )
            entries = await shown(account.id, trail.entries, known={account.id: account.name})
            next_cursor = trail.next_cursor
            if filters.customer_id and entries:
                customer_label = entries[0].entry.customer_label
        except ValidationFailed as error:
            errors, status = error.errors, 422
        base = request.app.route_reverse("audit")
        return render(
            request,
            "audit/index.html",
            {
                **_common(request),
                "filters": filters,
                "errors": errors,
                "entries": entries,
                "events": EVENTS,
                "customer_label": customer_label,
                "list_url": base,
                "clear_customer_url": AuditFilters(
                    event=filters.event, date_from=filters.date_from, date_to=filters.date_to
                ).url(base),
                "next_url": filters.url(base, cursor=next_cursor) if next_cursor else None,
                "first_url": filters.url(base, cursor="") if filters.cursor else None,
            },
            block="results",
            status_code=status,
        )

    # --- restore --------------------------------------------------------------------------

    @post("/audit/{entry_id:int}/restore", name="audit_restore_update")
    async def restore_update(
        self,
        request: Request,
        entry_id: FromPath[int],
        audit: Audit,
        audit_context: Context,
    ) -> Response[Any]:
        account = account_of(request)
        entry = await audit.get_entry(account.id, entry_id)  # 404 before anything else
        try:
            customer = await audit.restore_update(account.id, entry_id, audit_context)
        except (RestoreRefused, ValidationFailed) as error:
            return self._refused(request, error, back=self._back(request, entry.customer_id))
        message = f"Restored the earlier values of {customer.name}."
        url = request.app.route_reverse("customer_show", slug=customer.slug)
        if is_htmx(request):
            # The customer's page refreshes in place: its details and, through the event,
            # its timeline (which listens for customerUpdated).
            return render(
                request,
                "customers/show.html",
                {"htmx": True, "labels": FIELD_LABELS, "customer": customer, "notice": message},
                block="customer",
                trigger={"customerUpdated": {"slug": customer.slug, "restored": entry_id}},
            )
        flash(request, message)
        return Redirect(url, status_code=303)

    @post("/audit/{entry_id:int}/restore-customer", name="audit_restore_deleted")
    async def restore_deleted(
        self,
        request: Request,
        entry_id: FromPath[int],
        audit: Audit,
        audit_context: Context,
    ) -> Response[Any]:
        account = account_of(request)
        await audit.get_entry(account.id, entry_id)
        try:
            customer = await audit.restore_deleted(account.id, entry_id, audit_context)
        except (RestoreRefused, ValidationFailed) as error:
            return self._refused(request, error, back=request.app.route_reverse("audit"))
        flash(request, f"Restored {customer.name} as a customer.")
        url = request.app.route_reverse("customer_show", slug=customer.slug)
        if is_htmx(request):
            return Response(content="", headers={"HX-Redirect": url, "Vary": "HX-Request"})
        return Redirect(url, status_code=303)

    # --- helpers ---------------------------------------------------------------------------

    def _back(self, request: Request, customer_id: int | None) -> str:
        """Where a refused restore returns: the page it was asked from, when it is ours."""
        referer = request.headers.get("referer", "")
        origin = f"{request.url.scheme}://{request.url.netloc}"
        if referer.startswith(origin + "/"):
            return referer[len(origin) :]
        base = request.app.route_reverse("audit")
        return f"{base}?{urlencode({'customer_id': customer_id})}" if customer_id else base

    def _refused(
        self, request: Request, error: RestoreRefused | ValidationFailed, *, back: str
    ) -> Response[Any]:
        if isinstance(error, ValidationFailed):
            words = " ".join(error.errors.values())
            message = f"Could not restore: {words}"
        else:
            message = str(error)
        if is_htmx(request):
            # Nothing is swapped; the message comes out of band.
            return render(
                request,
                "base.html",
                {
                    "flash_messages": [{"message": message, "category": "error"}],
                    "flashes_oob": True,
                },
                block="flashes",
                headers={"HX-Reswap": "none"},
            )
        flash(request, message, "error")
        return Redirect(back, status_code=303)


audit_route_handlers: list[ControllerRouterHandler] = [AuditController]

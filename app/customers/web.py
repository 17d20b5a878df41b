"""Browser pages of customers: the dashboard (search, filters, keyset pages, inline cell
editing, bulk delete) and each customer's pages (new, show, edit, delete).

One template per page; an htmx request gets a named block of it (``app.lib.htmx.render``).
Controllers parse, call the CustomerService and render; the rules live in the service.
Every form posts for real (303 after success, 422 with the errors beside the fields);
htmx swaps the same responses in place and the server announces what changed with
``HX-Trigger`` (``customerCreated``, ``customerUpdated``, ``customerDeleted``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import date
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NoRouteMatchFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Response
from litestar.types import ControllerRouterHandler

from app.accounts.auth import verified_guard
from app.accounts.web import FormData, account_of, kept_values
from app.customers.models import EDITABLE_FIELDS, PAGE_SIZES, CustomerInput, ListQuery, Page
from app.customers.repository import InvalidCursor, effective_sort
from app.customers.rows import RowRenderer, cell_attrs
from app.customers.service import CustomerNotFound, CustomerService
from app.errors import error_response
from app.lib.flash import flash
from app.lib.htmx import is_htmx, render
from app.lib.validation import ValidationFailed

Customers = NamedDependency[CustomerService]  # the app's "customers" dependency

# The cells of the dashboard that edit in place, in the order Tab moves through them.
CELL_FIELDS = ("name", "email", "organization", "job_title")
FIELD_LABELS = {
    "name": "Name",
    "email": "Email",
    "phone": "Phone",
    "organization": "Organization",
    "job_title": "Job title",
    "notes": "Notes",
}
# (value, label) of the sort select; "" is the default: best match with a query, newest
# first without one.
SORT_OPTIONS = (
    ("", "Best match"),
    ("-created", "Newest first"),
    ("created", "Oldest first"),
    ("name", "Name A–Z"),  # noqa: RUF001  (an en dash, as intended)
    ("-name", "Name Z–A"),  # noqa: RUF001
    ("-updated", "Recently updated"),
    ("updated", "Least recently updated"),
)
# The route of the CSV import page; the empty book offers it once that page exists.
IMPORT_ROUTE = "import_new"
BAD_CURSOR = "That page link is not valid any more, so here is the first page."
NOTHING_SELECTED = "Select the customers to delete first."
MAX_SELECTED = max(PAGE_SIZES)


def _plural(count: int, label: str) -> str:
    return f"{count:,} {label}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class Filters:
    """The dashboard's query string as typed: shown back in the form, kept in links."""

    q: str = ""
    organization: str = ""
    created_from: str = ""
    created_to: str = ""
    sort: str = ""
    per_page: str = ""
    cursor: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Filters:
        values = {}
        for name in (f.name for f in fields(cls)):
            value = params.get(name)
            values[name] = value.strip() if isinstance(value, str) else ""
        return cls(**values)

    @property
    def active(self) -> bool:
        """Whether anything narrows the list (order and page size do not)."""
        return bool(self.q or self.organization or self.created_from or self.created_to)

    def params(self, *, cursor: bool = True) -> dict[str, str]:
        """The non-empty values, for links and hidden fields."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        if not cursor:
            values.pop("cursor")
        return {name: value for name, value in values.items() if value}

    def url(self, base: str, **changes: str) -> str:
        params = {**self.params(), **changes}
        params = {name: value for name, value in params.items() if value}
        return f"{base}?{urlencode(params)}" if params else base

    def query(self) -> ListQuery:
        """The ListQuery these values ask for; ValidationFailed names the form's fields."""
        errors: dict[str, str] = {}
        dates: dict[str, date | None] = {}
        for name in ("created_from", "created_to"):
            text = getattr(self, name)
            try:
                dates[name] = date.fromisoformat(text) if text else None
            except ValueError:
                dates[name] = None
                errors[name] = "Enter a date like 2026-03-01."
        limit = PAGE_SIZES[0]
        if self.per_page:
            if self.per_page.isascii() and self.per_page.isdigit():
                limit = int(self.per_page)
            else:
                limit = -1
        try:
            query = ListQuery(
                q=self.q,
                organization=self.organization or None,
                created_from=dates["created_from"],
                created_to=dates["created_to"],
                sort=self.sort or None,
                limit=limit,
                cursor=self.cursor or None,
            )
        except ValidationFailed as error:
            renamed = {"limit": "per_page"}
            errors.update({renamed.get(k, k): v for k, v in error.errors.items()})
        if errors:
            raise ValidationFailed(errors)
        return query


def _route_exists(request: Request, name: str) -> str | None:
    try:
        return request.app.route_reverse(name)
    except NoRouteMatchFoundException:
        return None


def _rows(request: Request) -> RowRenderer:
    """The app's row renderer, made on first use (it needs the app's url_for)."""
    renderer = request.app.state.get("customer_rows")
    if renderer is None:
        url_for = request.app.template_engine.engine.globals["url_for"]  # type: ignore[union-attr]
        renderer = RowRenderer(url_for, FIELD_LABELS, CELL_FIELDS)
        request.app.state["customer_rows"] = renderer
    return renderer


def page(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    block: str,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    trigger: Mapping[str, Any] | None = None,
) -> Response[str]:
    """``render`` with what every customers template needs: whether this is a fragment
    (fragments carry their own <title>, which htmx moves into the document head)."""
    return render(
        request,
        template,
        {
            "htmx": is_htmx(request),
            "labels": FIELD_LABELS,
            "rows": _rows(request),
            "cell_attrs": cell_attrs,
            **context,
        },
        block=block,
        status_code=status_code,
        headers=headers,
        trigger=trigger,
    )


def not_found(request: Request, _: CustomerNotFound) -> Response[Any]:
    # Another user's customer is "not found" too: whether it exists is not theirs to learn.
    return error_response(request, 404)


def _input(data: Mapping[str, str]) -> CustomerInput:
    return CustomerInput(**{name: data.get(name, "") for name in EDITABLE_FIELDS})


def _cell_field(field: str) -> str:
    if field not in CELL_FIELDS:
        raise CustomerNotFound(field)
    return field


class CustomerController(Controller):
    path = "/customers"
    include_in_schema = False
    guards = [verified_guard]
    exception_handlers = {CustomerNotFound: not_found}

    # --- the dashboard ---------------------------------------------------------------

    @get("/", name="customers")
    async def index(self, request: Request, customers: Customers) -> Response[str]:
        account = account_of(request)
        filters = Filters.from_params(request.query_params)
        errors: dict[str, str] = {}
        status = 200
        result: Page | None = None
        try:
            query = filters.query()
        except ValidationFailed as error:
            errors, status = error.errors, 422
        else:
            try:
                result = await customers.list_page(account.id, query)
            except InvalidCursor:
                errors, status = {"cursor": BAD_CURSOR}, 400
                filters = replace(filters, cursor="")
                result = await customers.list_page(account.id, replace(query, cursor=None))
        # The results fragment shows no filter form: skip the organization list for it.
        organizations = [] if is_htmx(request) else await customers.organizations(account.id)
        if filters.organization and filters.organization not in organizations:
            organizations = sorted([*organizations, filters.organization])
        base = request.app.route_reverse("customers")
        next_cursor = result.next_cursor if result else None
        prev_cursor = result.prev_cursor if result else None
        return page(
            request,
            "customers/index.html",
            {
                "filters": filters,
                "errors": errors,
                "result": result,
                "organizations": organizations,
                "sort_options": SORT_OPTIONS,
                "page_sizes": PAGE_SIZES,
                "cell_fields": CELL_FIELDS,
                "list_url": base,
                "self_url": filters.url(base),
                "next_url": filters.url(base, cursor=next_cursor) if next_cursor else None,
                "prev_url": filters.url(base, cursor=prev_cursor) if prev_cursor else None,
                "empty_book": result is not None and result.count == 0 and not filters.active,
                "import_url": _route_exists(request, IMPORT_ROUTE),
                "count_text": _count_text(result, query) if result else None,
            },
            block="results",
            status_code=status,
        )

    # --- bulk actions ----------------------------------------------------------------

    @post("/bulk-delete", name="customers_bulk_delete")
    async def bulk_delete(self, request: Request, customers: Customers) -> Response[Any]:
        account = account_of(request)
        form = await request.form()
        slugs = list(dict.fromkeys(s for s in form.getall("slugs", []) if isinstance(s, str)))
        filters = Filters.from_params(form)
        back = filters.url(request.app.route_reverse("customers"))
        if not slugs:
            flash(request, NOTHING_SELECTED, "error")
            return Redirect(back, status_code=303)
        if form.get("confirm") != "yes":
            # Without JavaScript the confirmation is a page of its own; with it, a dialog
            # has already asked (see static/app.js) and sent confirm=yes.
            # At most a page of them: a page is all anyone can select at once.
            found = [await customers.find_by_slug(account.id, s) for s in slugs[:MAX_SELECTED]]
            chosen = [customer for customer in found if customer is not None]
            if not chosen:
                flash(request, NOTHING_SELECTED, "error")
                return Redirect(back, status_code=303)
            # An htmx request without confirm=yes means no dialog asked: ask on the page.
            in_place = {"HX-Retarget": "#main", "HX-Reswap": "innerHTML"}
            return page(
                request,
                "customers/bulk_delete.html",
                {"chosen": chosen, "filters": filters, "back_url": back},
                block="confirm",
                headers=in_place if is_htmx(request) else None,
            )
        deleted = await customers.delete_many(account.id, slugs)
        message = f"Deleted {_plural(len(deleted), 'customer')}."
        if is_htmx(request):
            # The table reloads itself on customerDeleted; the message comes out of band.
            return render(
                request,
                "base.html",
                {
                    "flash_messages": [{"message": message, "category": "success"}],
                    "flashes_oob": True,
                },
                block="flashes",
                trigger={
                    "customerDeleted": {"slugs": [c.slug for c in deleted], "message": message}
                },
            )
        flash(request, message)
        return Redirect(back, status_code=303)

    # --- one customer ------------------------------------------------------------------

    @get("/new", name="customer_new")
    async def new(self, request: Request, customers: Customers) -> Response[str]:
        return await self._form(request, customers, None)

    @post("/", name="customer_create")
    async def create(self, request: Request, data: FormData, customers: Customers) -> Response[Any]:
        account = account_of(request)
        try:
            customer = await customers.create(account.id, _input(data))
        except ValidationFailed as error:
            return await self._form(
                request, customers, None, values=kept_values(data), errors=error.errors
            )
        url = request.app.route_reverse("customer_show", slug=customer.slug)
        if is_htmx(request):
            return page(
                request,
                "customers/show.html",
                {"customer": customer, "notice": "Customer created."},
                block="customer",
                headers={"HX-Push-Url": url},
                trigger={"customerCreated": {"slug": customer.slug}},
            )
        flash(request, f"Customer {customer.name} created.")
        return Redirect(url, status_code=303)

    @get("/{slug:str}", name="customer_show")
    async def show(
        self, request: Request, slug: FromPath[str], customers: Customers
    ) -> Response[str]:
        customer = await customers.get_by_slug(account_of(request).id, slug)
        return page(request, "customers/show.html", {"customer": customer}, block="customer")

    @get("/{slug:str}/edit", name="customer_edit")
    async def edit(
        self, request: Request, slug: FromPath[str], customers: Customers
    ) -> Response[str]:
        customer = await customers.get_by_slug(account_of(request).id, slug)
        return await self._form(request, customers, customer, values=customer.editable_values())

    @post("/{slug:str}/edit", name="customer_update")
    async def update(
        self, request: Request, slug: FromPath[str], data: FormData, customers: Customers
    ) -> Response[Any]:
        account = account_of(request)
        try:
            customer = await customers.update(account.id, slug, _input(data))
        except ValidationFailed as error:
            current = await customers.get_by_slug(account.id, slug)
            return await self._form(
                request, customers, current, values=kept_values(data), errors=error.errors
            )
        url = request.app.route_reverse("customer_show", slug=customer.slug)
        if is_htmx(request):
            return page(
                request,
                "customers/show.html",
                {"customer": customer, "notice": "Your changes have been saved."},
                block="customer",
                headers={"HX-Push-Url": url},
                trigger={"customerUpdated": {"slug": customer.slug}},
            )
        flash(request, "Your changes have been saved.")
        return Redirect(url, status_code=303)

    @get("/{slug:str}/delete", name="customer_delete")
    async def confirm_delete(
        self, request: Request, slug: FromPath[str], customers: Customers
    ) -> Response[str]:
        customer = await customers.get_by_slug(account_of(request).id, slug)
        return page(request, "customers/delete.html", {"customer": customer}, block="form")

    @post("/{slug:str}/delete", name="customer_destroy")
    async def destroy(
        self, request: Request, slug: FromPath[str], customers: Customers
    ) -> Response[Any]:
        customer = await customers.delete(account_of(request).id, slug)
        flash(request, f"Deleted {customer.name}.")
        back = request.app.route_reverse("customers")
        if is_htmx(request):
            # The customer's page is gone: the whole window moves to the list, where the
            # flash message waits.
            return Response(
                content="",
                status_code=200,
                headers={
                    "HX-Redirect": back,
                    "HX-Trigger": json.dumps({"customerDeleted": {"slugs": [customer.slug]}}),
                    "Vary": "HX-Request",
                },
            )
        return Redirect(back, status_code=303)

    # --- cells of the dashboard, edited in place ----------------------------------------

    @get("/{slug:str}/cells/{field:str}", name="customer_cell")
    async def cell(
        self, request: Request, slug: FromPath[str], field: FromPath[str], customers: Customers
    ) -> Response[str]:
        field = _cell_field(field)
        customer = await customers.get_by_slug(account_of(request).id, slug)
        return page(
            request, "customers/cell.html", {"customer": customer, "field": field}, block="cell"
        )

    @get("/{slug:str}/cells/{field:str}/edit", name="customer_cell_edit")
    async def edit_cell(
        self, request: Request, slug: FromPath[str], field: FromPath[str], customers: Customers
    ) -> Response[str]:
        field = _cell_field(field)
        customer = await customers.get_by_slug(account_of(request).id, slug)
        return page(
            request,
            "customers/cell.html",
            {
                "customer": customer,
                "field": field,
                "editing": True,
                "value": getattr(customer, field),
            },
            block="cell",
        )

    @post("/{slug:str}/cells/{field:str}", name="customer_cell_update")
    async def update_cell(
        self,
        request: Request,
        slug: FromPath[str],
        field: FromPath[str],
        data: FormData,
        customers: Customers,
    ) -> Response[Any]:
        field = _cell_field(field)
        account = account_of(request)
        before = await customers.get_by_slug(account.id, slug)
        value = data.get(field, "")
        try:
            after = await customers.update(account.id, slug, {field: value})
        except ValidationFailed as error:
            return page(
                request,
                "customers/cell.html",
                {
                    "customer": before,
                    "field": field,
                    "editing": True,
                    "value": value,
                    "error": error.errors.get(field) or " ".join(error.errors.values()),
                },
                block="cell",
                status_code=422,
            )
        changed = after != before
        if not is_htmx(request):
            flash(request, f"{FIELD_LABELS[field]} saved." if changed else "Nothing changed.")
            return Redirect(
                request.app.route_reverse("customer_show", slug=after.slug), status_code=303
            )
        return page(
            request,
            "customers/cell.html",
            # "saved" makes the row flash (static/app.css), only when something changed.
            {"customer": after, "field": field, "saved": changed},
            block="cell",
            trigger={"customerUpdated": {"slug": after.slug, "fields": [field]}}
            if changed
            else None,
        )

    # --- helpers ---------------------------------------------------------------------------

    async def _form(
        self,
        request: Request,
        customers: CustomerService,
        customer: Any,
        *,
        values: Mapping[str, str] | None = None,
        errors: Mapping[str, str] | None = None,
    ) -> Response[str]:
        organizations = await customers.organizations(account_of(request).id)
        return page(
            request,
            "customers/form.html",
            {
                "customer": customer,
                "values": values or {},
                "errors": errors or {},
                "organizations": organizations,
            },
            block="form",
            status_code=422 if errors else 200,
        )


def _count_text(result: Page, query: ListQuery) -> str:
    label = "customer" if result.count == 1 and not result.count_capped else "customers"
    text = f"{result.count_label} {label}"
    if effective_sort(query) == "relevance" and result.sort != "relevance":
        # More matches than the count shows: they are not ranked (see the repository).
        text += ", newest first. Add a word to rank them by best match"
    return text


customer_route_handlers: list[ControllerRouterHandler] = [CustomerController]

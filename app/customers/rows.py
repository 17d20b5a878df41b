"""The dashboard's rows and display cells, built in Python.

A list page is 25 to 100 rows of five cells, each with two links; rendered through Jinja
macros that was half of the app's CPU per page (a macro call per cell, autoescape and
``Markup`` per value, ``url_for`` per link). Here each row is one string join, each
value escaped once, and each link made from a per-page pattern. The markup is the one
``templates/customers/_macros.html`` documents (its ``edit_cell`` macro uses
``cell_attrs`` from here), and ``templates/customers/cell.html`` renders a single
display cell with the same function, so a swapped cell and a listed one cannot differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from html import escape as _escape
from urllib.parse import quote

from markupsafe import Markup

from app.customers.models import Customer, ListItem

SLUG = "__SLUG__"  # slugs are lower case: never in a real one; quote() keeps it
CELL_TITLE = "Click, or press Enter, to edit"


def _slug_in_url(slug: str) -> str:
    return quote(slug, safe="-._~@")


def _cell_attrs(slug: str, field: str) -> str:
    """The attributes that tie a cell to its customer and field; ``slug`` escaped."""
    scope = ' scope="row"' if field == "name" else ""
    return f'id="cell-{slug}-{field}" data-slug="{slug}" data-field="{field}"{scope}'


def cell_attrs(customer: Customer, field: str) -> Markup:
    """``_cell_attrs`` for the edit cell's template (display cells are built below)."""
    return Markup(_cell_attrs(_escape(customer.slug), field))  # noqa: S704  (escaped)


class RowRenderer:
    """Rows of one page: the links' patterns are made once, the slug put in per row."""

    def __init__(
        self,
        url_for: Callable[..., str],
        labels: Mapping[str, str],
        cell_fields: Iterable[str],
    ) -> None:
        self.labels = labels
        self.cell_fields = tuple(cell_fields)
        self.show_url = url_for("customer_show", slug=SLUG)
        self.edit_urls = {
            field: url_for("customer_cell_edit", slug=SLUG, field=field)
            for field in self.cell_fields
        }
        self.edit_labels = {field: _escape(labels[field].lower()) for field in labels}

    def cell(
        self,
        customer: Customer,
        field: str,
        *,
        snippet: Markup | None = None,
        saved: bool = False,
        url_slug: str | None = None,
        name: str | None = None,
        slug: str | None = None,
    ) -> str:
        # html.escape: plain str out (markupsafe's escape makes a Markup per value). The
        # URLs hold only percent-encoded or unreserved characters: nothing to escape.
        url_slug = url_slug if url_slug is not None else _slug_in_url(customer.slug)
        name = name if name is not None else _escape(customer.name)
        slug = slug if slug is not None else _escape(customer.slug)
        edit_url = self.edit_urls[field].replace(SLUG, url_slug)
        if field == "name":
            tag = "th"
            show_url = self.show_url.replace(SLUG, url_slug)
            content = f'<a class="customer-link" href="{show_url}">{name}</a>'
            if snippet:
                content += f'<span class="snippet">{snippet}</span>'
        else:
            tag = "td"
            value = getattr(customer, field)
            if value:
                content = f'<span class="cell-value">{_escape(value)}</span>'
            else:
                content = '<span class="cell-empty" aria-hidden="true">—</span>'
        saved_class = " cell-saved" if saved else ""
        return (
            f'<{tag} class="cell cell-{field}{saved_class}" {_cell_attrs(slug, field)}\n'
            f'  data-cell tabindex="-1" title="{CELL_TITLE}"\n'
            f'  hx-get="{edit_url}" hx-trigger="cell-edit" hx-target="this" hx-swap="outerHTML">'
            f"{content}"
            f'<a class="cell-edit-link" href="{edit_url}" tabindex="-1" hx-get="{edit_url}"\n'
            f'    hx-target="closest .cell" hx-swap="outerHTML"><span aria-hidden="true">✎</span>'
            f'<span class="visually-hidden"> Edit {self.edit_labels[field]} of {name}</span></a>\n'
            f"</{tag}>"
        )

    def row(self, item: ListItem, *, first: bool = False) -> str:
        customer = item.customer
        url_slug = _slug_in_url(customer.slug)
        slug = _escape(customer.slug)
        name = _escape(customer.name)
        show_url = self.show_url.replace(SLUG, url_slug)
        snippet = item.snippet_html
        cells = "\n  ".join(
            [
                self.cell(
                    customer,
                    field,
                    snippet=snippet if field == "name" else None,
                    url_slug=url_slug,
                    name=name,
                    slug=slug,
                )
                for field in self.cell_fields
            ]
        )
        created = customer.created_at
        return (
            f'<tr class="customer-row" id="customer-{slug}" data-row'
            f' tabindex="{0 if first else -1}"\n  data-href="{show_url}">\n'
            f'  <td class="col-select">\n'
            f'    <input class="row-select" type="checkbox" name="slugs" value="{slug}"'
            f' form="bulk-form"\n      data-row-select aria-label="Select {name}">\n'
            f"  </td>\n  {cells}\n"
            f'  <td class="col-created"><time datetime="{created.isoformat()}">'
            f"{created.year:04d}-{created.month:02d}-{created.day:02d}</time></td>\n"
            f"</tr>"
        )

    def display(self, customer: Customer, field: str, *, saved: bool = False) -> Markup:
        """One display cell, as htmx swaps it after an edit or a cancel."""
        return Markup(self.cell(customer, field, saved=saved))  # noqa: S704

    def rows(self, items: Iterable[ListItem]) -> Markup:
        return Markup(  # noqa: S704  (built from escaped values only)
            "\n".join(self.row(item, first=index == 0) for index, item in enumerate(items))
        )

"""Audit entries as HTML, built in Python for the timeline and /audit.

A timeline page is 25 entries; through a Jinja macro per entry (and one per value) its
rendering was a quarter of the app's CPU for the page. Here each entry is one string,
each value escaped once, and the links come from patterns made once. The timeline and
/audit call ``audit_entries.entries(...)`` (``app.audit.web`` puts an ``EntryRenderer``
in their context). An entry: its event, the customer (on /audit: a link while the
customer exists, "(deleted)" after, and a link to its history), who, when and from which
IP; for an update, each changed field as old -> new; and a restore form where one
applies (on the customer's page it swaps the page in place with htmx).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from markupsafe import Markup, escape

from app.audit.models import DELETED, RESTORED, UPDATED
from app.audit.schemas import ShownEntry
from app.customers.rows import SLUG

RESTORABLE_UPDATE = (UPDATED, RESTORED)
ENTRY_ID = 999_999_999_999  # stands for an entry id in the URL patterns


def _value(value: Any) -> str:
    if value is None or value == "":
        return '<span class="audit-empty" aria-label="empty">—</span>'
    return f'<span class="audit-value">{escape(value)}</span>'


class EntryRenderer:
    def __init__(
        self,
        url_for: Callable[..., str],
        field_labels: Mapping[str, str],
        event_labels: Mapping[str, str],
    ) -> None:
        self.field_labels = field_labels
        self.event_labels = event_labels
        self.customer_url = url_for("customer_show", slug=SLUG)
        self.history_url = url_for("audit") + "?customer_id="
        self.restore_update_url = url_for("audit_restore_update", entry_id=ENTRY_ID)
        self.restore_deleted_url = url_for("audit_restore_deleted", entry_id=ENTRY_ID)

    def _customer(self, item: ShownEntry) -> str:
        entry = item.entry
        label = escape(entry.customer_label)
        if item.customer_slug:
            url = escape(self.customer_url.replace(SLUG, item.customer_slug))
            html = f'<a href="{url}">{label}</a>'
        else:
            html = str(label)
            if entry.customer_id:
                html += ' <span class="muted">(deleted)</span>'
        if entry.customer_id:
            html += (
                f' · <a class="audit-history-link" href="{self.history_url}{entry.customer_id}">'
                "history</a>"
            )
        return f'\n    <span class="audit-customer">{html}</span>'

    def _restore(self, item: ShownEntry, csrf_input: Markup, on_customer_page: bool) -> str:
        entry = item.entry
        if (
            entry.event in RESTORABLE_UPDATE
            and entry.old_values
            and (on_customer_page or item.customer_slug)
        ):
            action = self.restore_update_url.replace(str(ENTRY_ID), str(entry.id))
            swap = (
                f' hx-post="{action}" hx-target="#customer" hx-swap="outerHTML"'
                if on_customer_page
                else ""
            )
            label = "Restore these values"
        elif entry.event == DELETED and entry.old_values:
            action = self.restore_deleted_url.replace(str(ENTRY_ID), str(entry.id))
            swap = ""
            label = "Restore customer"
        else:
            return ""
        return (
            f'\n  <form class="audit-restore" method="post" action="{action}"{swap}>\n'
            f"    {csrf_input}\n"
            f'    <button type="submit" class="button button-secondary button-small">{label}'
            "</button>\n  </form>"
        )

    def _changes(self, item: ShownEntry) -> str:
        entry = item.entry
        if entry.event not in RESTORABLE_UPDATE:
            return ""
        changes = entry.changes
        if not changes:
            return ""
        lines = []
        for change in changes:
            field = escape(change.field)
            label = escape(self.field_labels.get(change.field, change.field))
            lines.append(
                f'\n    <li class="audit-change" data-field="{field}">'
                f'<span class="audit-field">{label}:</span>\n'
                f'      <span class="audit-old">{_value(change.old)}</span> '
                '<span aria-hidden="true">→</span>'
                '<span class="visually-hidden"> changed to </span>\n'
                f'      <span class="audit-new">{_value(change.new)}</span></li>'
            )
        return f'\n  <ul class="audit-changes">{"".join(lines)}\n  </ul>'

    def entry(self, item: ShownEntry, csrf_input: Markup, *, on_customer_page: bool) -> str:
        entry = item.entry
        event = escape(entry.event)
        if item.actor_name:
            actor = escape(item.actor_name)
        elif entry.actor_id:
            actor = Markup(f"Account #{entry.actor_id}")  # noqa: S704  (an int)
        else:
            actor = Markup("System")
        customer = self._customer(item) if not on_customer_page and entry.customer_label else ""
        meta = (
            f'<span class="audit-actor">{actor}</span>\n'
            f'      · <time class="audit-when" datetime="{entry.created_at.isoformat()}">'
            f"{entry.created_at.strftime('%Y-%m-%d %H:%M:%S')} UTC</time>"
        )
        if entry.ip:
            meta += f'\n      · <span class="audit-ip">IP {escape(entry.ip)}</span>'
        if entry.archived:
            meta += '\n      · <span class="audit-archived">archived</span>'
        return (
            f'<li class="audit-entry audit-{event}" id="entry-{entry.id}" '
            f'data-entry-id="{entry.id}">\n'
            f'  <div class="audit-head">\n'
            f'    <span class="audit-event">'
            f"{escape(self.event_labels.get(entry.event, entry.event))}</span>"
            f"{customer}\n"
            f'    <span class="audit-meta">\n      {meta}\n    </span>\n'
            f"  </div>"
            f"{self._changes(item)}"
            f"{self._restore(item, csrf_input, on_customer_page)}\n"
            "</li>"
        )

    def entries(
        self, items: Iterable[ShownEntry], csrf_input: Markup, *, on_customer_page: bool = False
    ) -> Markup:
        return Markup(  # noqa: S704  (built from escaped values only)
            "".join(
                self.entry(item, csrf_input, on_customer_page=on_customer_page) for item in items
            )
        )

"""How controllers get the ExportService: the app's storage, job runner and settings."""

from __future__ import annotations

from litestar import Request

from app.customers.models import ListQuery
from app.customers.web import Filters
from app.exports.service import ExportService


def provide_export_service(request: Request) -> ExportService:
    state = request.app.state
    return ExportService(state.storage, state.get("jobs"), state.settings)


def list_query(
    q: str = "",
    organization: str = "",
    created_from: str = "",
    created_to: str = "",
    sort: str = "",
) -> ListQuery:
    """The dashboard's ListQuery from its fields as typed; ValidationFailed names them."""
    return Filters(
        q=q.strip(),
        organization=organization.strip(),
        created_from=created_from.strip(),
        created_to=created_to.strip(),
        sort=sort.strip(),
    ).query()

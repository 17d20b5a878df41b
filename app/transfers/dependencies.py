"""How controllers get the ImportService: the app's storage, job runner and settings."""

from __future__ import annotations

from litestar import Request

from app.audit.service import AuditService
from app.customers.cached import CachedCustomerRepository
from app.customers.dependencies import customer_repository_of
from app.lib.storage import Storage
from app.transfers.service import ImportService


def provide_import_service(request: Request) -> ImportService:
    state = request.app.state
    storage: Storage = state.storage
    repository = customer_repository_of(request.app)
    return ImportService(
        storage,
        state.get("jobs"),
        state.settings,
        audit=AuditService(storage=storage),
        invalidate=repository._bump if isinstance(repository, CachedCustomerRepository) else None,
    )

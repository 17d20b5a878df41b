"""How controllers get the audit service and the request's audit context."""

from __future__ import annotations

from litestar import Request

from app.audit.context import AuditContext
from app.audit.service import AuditService
from app.customers.dependencies import customer_repository_of


def provide_audit_context(request: Request) -> AuditContext:
    """Who is asking and from where: the actor, client IP, user agent and request id."""
    return AuditContext.from_connection(request)


def provide_audit_service(request: Request) -> AuditService:
    """The audit service over the app's storage, with the customer repository (restore
    writes through the customer service, audited as ``restored``)."""
    return AuditService(
        storage=request.app.state.get("storage"),
        customers=customer_repository_of(request.app),
        emit=request.app.emit,
    )

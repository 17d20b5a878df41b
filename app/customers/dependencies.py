"""How the app gets its CustomerService: the repository is bound once at start-up, and
every write through the service is audited with the request's actor, IP and id."""

from __future__ import annotations

from litestar import Litestar, Request
from litestar.di import NamedDependency
from litestar.stores.registry import StoreRegistry

from app.audit.context import AuditContext
from app.audit.service import AuditService
from app.customers.cached import DEFAULT_TTL, CachedCustomerRepository
from app.customers.repository import CustomerRepository, PiccoloCustomerRepository
from app.customers.service import CustomerService
from app.settings import Settings

CACHE_TTL = DEFAULT_TTL


def build_customer_repository(settings: Settings, stores: StoreRegistry) -> CustomerRepository:
    """The cached repository over the "cache" store (Redis in the full stack), unless
    CACHE_ENABLED=false."""
    repository = PiccoloCustomerRepository()
    if not settings.cache_enabled:
        return repository
    return CachedCustomerRepository(repository, stores.get("cache"), ttl=CACHE_TTL)


def customer_repository_of(app: Litestar) -> CustomerRepository:
    """The repository bound at start-up (built on first use when the state lacks it)."""
    state = app.state
    repository: CustomerRepository | None = state.get("customer_repository")
    if repository is None:
        repository = build_customer_repository(state.settings, app.stores)
        state.customer_repository = repository
    return repository


def provide_customer_service(
    request: Request, audit: NamedDependency[AuditService]
) -> CustomerService:
    # The audit hooks write each change's entry (actor, client IP, user agent, request
    # id of this request) in the same transaction as the change. Built on the request's
    # audit service (the "audit" dependency): a handler that takes both gets them one
    # after the other, where two independent dependencies cost Litestar a task group
    # per request (7 % of a timeline fragment's CPU, with py-spy).
    return audit.customer_service(AuditContext.from_connection(request))

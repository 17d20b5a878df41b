"""How the app gets its CustomerService: the repository is bound once at start-up."""

from __future__ import annotations

from litestar import Request
from litestar.stores.registry import StoreRegistry

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


def provide_customer_service(request: Request) -> CustomerService:
    state = request.app.state
    repository: CustomerRepository | None = state.get("customer_repository")
    if repository is None:
        repository = build_customer_repository(state.settings, request.app.stores)
        state.customer_repository = repository
    # The audit issue passes on_write= here: a hook that writes the audit entry (actor,
    # ip and request id from this request) in the same transaction as the change.
    return CustomerService(repository, emit=request.app.emit)

"""The application factory: ``create_app(settings)``; ``app`` for ASGI servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from litestar import Litestar, Router
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import ClientException, HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig
from redis.exceptions import RedisError

from app import errors
from app.accounts.api import api_route_handlers
from app.accounts.auth import LoginRequired, SessionUserMiddleware, VerificationRequired
from app.accounts.bearer import BEARER_SCHEME, RateLimitHeadersMiddleware
from app.accounts.dependencies import provide_account_service, provide_throttle
from app.accounts.web import SECRET_LINK_PREFIXES, account_route_handlers, signed_in_account
from app.admin.web import admin_route_handlers
from app.audit.api import audit_api_route_handlers
from app.audit.dependencies import provide_audit_context, provide_audit_service
from app.audit.web import audit_route_handlers
from app.customers.api import customer_api_route_handlers
from app.customers.dependencies import build_customer_repository, provide_customer_service
from app.customers.events import customer_listeners
from app.customers.web import customer_route_handlers
from app.exports.api import export_api_route_handlers
from app.exports.web import export_route_handlers
from app.jobs_centre.web import jobs_centre_route_handlers
from app.lib import db
from app.lib.compression import GzipMiddleware
from app.lib.flash import pop_flashes
from app.lib.jobs import build_job_runner
from app.lib.mail import build_mailer
from app.lib.metrics import RequestMetrics
from app.lib.requests import RequestContextMiddleware, configure_logging
from app.lib.security import (
    SecurityHeadersMiddleware,
    csrf_config,
    security_headers,
    session_config,
)
from app.lib.static import StaticAssets
from app.lib.storage import build_storage, storage_route_handlers
from app.lib.stores import build_store_registry, close_stores
from app.lib.throttle import Throttle
from app.lib.urls import UrlBuilder
from app.lib.validation import ValidationFailed
from app.metrics import metrics_route_handlers
from app.settings import Settings
from app.site import SiteController
from app.transfers.api import import_api_route_handlers
from app.transfers.web import import_route_handlers

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def allowed_hosts(settings: Settings) -> list[str]:
    """The host of APP_URL, plus loopback for health checks on the machine itself."""
    # The Host header includes a port when it is not the scheme's default.
    url = urlsplit(settings.app_url)
    local = {"127.0.0.1", "localhost", f"127.0.0.1:{settings.port}", f"localhost:{settings.port}"}
    return sorted({url.hostname or "localhost", url.netloc, *local})


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    engine = db.build_engine(settings)
    storage = build_storage(settings)
    mailer = build_mailer(settings)
    assets = StaticAssets()
    request_metrics = RequestMetrics()

    from jobs.registry import JOBS, SCHEDULED
    from jobs.worker import job_context as make_job_context

    job_context = make_job_context(settings, engine=engine, storage=storage, mailer=mailer)
    stores = build_store_registry(settings)
    job_context["stores"] = stores  # jobs that write customers move the cache's version
    job_runner = build_job_runner(settings, JOBS, SCHEDULED, job_context)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # Tables are bound here, not at import, so one process can host several apps
        # (the tests run the embedded and the full-stack profile side by side).
        db.bind_tables(engine)
        await db.open_database(engine, settings.database_pool_size)
        await storage.start()
        await job_runner.start()
        try:
            yield
        finally:
            # Graceful: the in-process runner finishes the jobs it holds before we close.
            await job_runner.stop()
            await db.close_database(engine)
            await close_stores(app.stores)

    template_config = TemplateConfig(directory=TEMPLATES_DIR, engine=JinjaTemplateEngine)
    session = session_config(settings)

    app = Litestar(
        route_handlers=[
            SiteController,
            *account_route_handlers,
            *customer_route_handlers,
            *audit_route_handlers,
            *import_route_handlers,
            *export_route_handlers,
            *jobs_centre_route_handlers,
            *admin_route_handlers,
            Router(
                path="/api/v1",
                route_handlers=[
                    *api_route_handlers,
                    *customer_api_route_handlers,
                    *audit_api_route_handlers,
                    *import_api_route_handlers,
                    *export_api_route_handlers,
                ],
                middleware=[RateLimitHeadersMiddleware],
            ),
            *storage_route_handlers,
            *metrics_route_handlers,
            assets.router(),
        ],
        lifespan=[lifespan],
        template_config=template_config,
        # Gzip through ISA-L at level 1 (app/lib/compression.py): a list page compresses 6
        # to 7 times already; higher levels cost several times the CPU for a few per cent.
        middleware=[GzipMiddleware, session.middleware, SessionUserMiddleware],
        dependencies={
            "accounts": Provide(provide_account_service, sync_to_thread=False),
            "throttle": Provide(provide_throttle, sync_to_thread=False),
            "customers": Provide(provide_customer_service, sync_to_thread=False),
            "audit": Provide(provide_audit_service, sync_to_thread=False),
            "audit_context": Provide(provide_audit_context, sync_to_thread=False),
        },
        listeners=customer_listeners,
        allowed_hosts=AllowedHostsConfig(allowed_hosts=allowed_hosts(settings)),
        openapi_config=OpenAPIConfig(
            title="CRM API",
            version="1",
            path="/schema",
            description="Customers, audit trail, imports and exports. "
            "Authenticate with `Authorization: Bearer <token>`.",
            components=Components(
                security_schemes={
                    BEARER_SCHEME: SecurityScheme(
                        type="http",
                        scheme="bearer",
                        bearer_format="<id>|<secret>",
                        description="A personal access token from POST /api/v1/auth/tokens.",
                    )
                }
            ),
        ),
        csrf_config=csrf_config(settings),
        stores=stores,
        plugins=[HTMXPlugin()],
        before_request=errors.refuse_impossible_ids,
        exception_handlers={
            LoginRequired: errors.handle_auth_required,
            VerificationRequired: errors.handle_auth_required,
            ValidationFailed: errors.handle_validation_failed,
            ClientException: errors.handle_client_error,
            HTTPException: errors.handle_http_exception,
            RedisError: errors.handle_backend_down,
            Exception: errors.handle_unexpected,
        },
        logging_config=None,
        state=State(
            {
                "settings": settings,
                "engine": engine,
                "storage": storage,
                "mailer": mailer,
                "jobs": job_runner,
                "assets": assets,
                "throttle": Throttle(stores.get("rate_limit")),
                "metrics": request_metrics,
                # Bound once: cached (per-user version keys in the "cache" store) or plain.
                "customer_repository": build_customer_repository(settings, stores),
                "templates_dir": TEMPLATES_DIR,
            }
        ),
    )
    jinja = app.template_engine.engine  # type: ignore[union-attr]
    jinja.globals["static_url"] = assets.url
    jinja.globals["url_for"] = UrlBuilder(app)
    jinja.globals["app_name"] = "CRM"
    jinja.globals["get_flashes"] = pop_flashes
    jinja.globals["current_account"] = signed_in_account
    # Outermost layers wrap even routing errors (404) and static files.
    app.asgi_handler = RequestContextMiddleware(
        SecurityHeadersMiddleware(app.asgi_handler, security_headers(settings)),
        secret_prefixes=SECRET_LINK_PREFIXES,
        metrics=request_metrics,
    )
    return app


# For ASGI servers (`crm serve` runs uvicorn on it).
# Building the app connects to nothing: connections open in the lifespan, so importing
# this module stays cheap.
app = create_app()

"""The API process's composition root: `create_app(settings)`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from crossdoc import __version__
from crossdoc.settings import Settings
from crossdoc.wiring.api import Services, build_services
from crossdoc.wiring.backup import catalog_backups
from search_api.audit_writer import Auditor
from search_api.docs import install_docs
from search_api.errors import install_error_handlers
from search_api.openapi import install_openapi
from search_api.routers import (
    admin,
    audit,
    auth,
    directory,
    documents,
    explain,
    folders,
    health,
    me,
    policies,
    replication,
    search,
    trash,
)
from search_api.web import pages as web_pages
from services.bootstrap import BootstrapReport, bootstrap

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """Build the application. Adapters are built from `settings` unless `services` is given."""
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        report: BootstrapReport = bootstrap(
            services.catalog,
            services.passwords.hash,
            admin_password=(
                settings.admin_password.get_secret_value() if settings.admin_password else None
            ),
            demo=settings.demo,
            verify_password=services.passwords.verify,
        )
        app.state.bootstrap = report
        auditor = Auditor(services.catalog)
        app.state.auditor = auditor
        # Embedded: the in-process worker draining the outbox; with a broker, the
        # thread that publishes Celery tasks (`crossdoc worker` processes index).
        services.dispatcher.start()
        services.jobs.start()  # the replicator and background scrub, if configured
        # The catalog's second site: a snapshot onto the replica every so often.
        backups = catalog_backups(settings)
        try:
            yield
        finally:
            if backups is not None:
                backups.stop()
            services.dispatcher.close()
            auditor.close()
            services.close()

    app = FastAPI(
        title="Crossdoc",
        version=__version__,
        description=(
            "범정부 문서 클라우드 · Cross-ministry document cloud with permission-aware search"
        ),
        lifespan=lifespan,
        # Served from packaged assets, not a CDN (docs.py); the schema is also at /openapi.json.
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
    )
    app.state.services = services
    install_error_handlers(app)

    api = APIRouter(prefix=API_PREFIX)
    routers = (
        auth.router,
        admin.router,
        audit.router,
        policies.router,
        explain.router,
        directory.router,
        documents.router,
        folders.router,
        search.router,
        me.router,
        trash.router,
        health.router,
        replication.router,
    )
    for router in routers:
        api.include_router(router)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(replication.metrics_router)
    install_openapi(
        app,
        [
            *((API_PREFIX, r) for r in routers),
            ("", health.router),
            ("", replication.metrics_router),
        ],
    )
    install_docs(app)
    # The web UI at `/` (sign-in, search, documents, upload, admin), outside the schema.
    web_pages.install(app)

    return app

"""The API documentation, offline: Swagger UI at `/docs`, ReDoc at `/redoc`, the schema
at `/openapi.json` (and at `/api/v1/openapi.json`, as before).

Government networks are often closed, so nothing is loaded from a CDN: the Swagger UI
and ReDoc bundles come from the `fastapi-offline` package (its `static/` folder: the
upstream swagger-ui-dist and redoc builds), served under `/docs/assets/`, beside our
own start script. The pages hold no inline script and get their own
Content-Security-Policy: scripts from this server only, as the web UI's; inline
styles and `blob:` workers allowed, which ReDoc needs (styled-components, its search).
"""

from __future__ import annotations

import html
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"
SCHEMA_URL = "/openapi.json"

#: The upstream bundles (swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js).
VENDOR_DIR = Path(str(files("fastapi_offline") / "static"))
#: Our start script for Swagger UI.
OWN_DIR = Path(__file__).parent / "static" / "docs"

DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_HEADERS = {
    "Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class _DocsAssets(StaticFiles):
    """Our start script first, then the upstream bundles; with the docs' headers."""

    def __init__(self) -> None:
        super().__init__(directory=OWN_DIR)
        self.all_directories = [OWN_DIR, VENDOR_DIR]

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        for name, value in DOCS_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def _page(title: str, head: str, body: str) -> HTMLResponse:
    document = (
        '<!DOCTYPE html>\n<html lang="ko">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<link rel="icon" href="{ASSETS_URL}/favicon.png">\n'
        f"<title>{html.escape(title)}</title>\n{head}</head>\n<body>\n{body}</body>\n</html>\n"
    )
    return HTMLResponse(document, headers={**DOCS_HEADERS, "Cache-Control": "no-cache"})


def install_docs(app: FastAPI) -> None:
    """Add `/docs`, `/redoc`, `/openapi.json` and their assets to `app` (not in its schema).

    `app` is built with `docs_url=None, redoc_url=None`; its schema stays at its own
    `openapi_url` too.
    """
    title = app.title

    def schema() -> JSONResponse:
        return JSONResponse(app.openapi())

    def swagger_ui() -> HTMLResponse:
        return _page(
            f"{title} API · Swagger UI",
            f'<link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css">\n',
            f'<div id="swagger-ui" data-openapi-url="{SCHEMA_URL}"></div>\n'
            f'<script src="{ASSETS_URL}/swagger-ui-bundle.js"></script>\n'
            f'<script src="{ASSETS_URL}/swagger-init.js"></script>\n',
        )

    def redoc() -> HTMLResponse:
        return _page(
            f"{title} API · ReDoc",
            "",
            f'<redoc spec-url="{SCHEMA_URL}"></redoc>\n'
            f'<script src="{ASSETS_URL}/redoc.standalone.js"></script>\n',
        )

    routes: list[tuple[str, Any]] = [
        (SCHEMA_URL, schema),
        (DOCS_URL, swagger_ui),
        (REDOC_URL, redoc),
    ]
    for path, endpoint in routes:
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS_URL, _DocsAssets(), name="docs-assets")

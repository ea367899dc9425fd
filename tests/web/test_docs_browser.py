"""The API docs render in a real browser (Debian's chromium) on a network where only
this server answers: Swagger UI at /docs and ReDoc at /redoc, under their
Content-Security-Policy, with no script error and no request elsewhere. About 10 s."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Server
from tests.web.browser import new_page, screenshot

pytestmark = pytest.mark.slow


def _offline_page(browser: Any, server: Server) -> tuple[Any, list[str]]:
    """A page whose requests to anything but the server fail, as on a closed network."""
    page = new_page(browser, server)
    elsewhere: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(server.base_url + "/"):
            r.continue_()
        else:
            elsewhere.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return page, elsewhere


def test_swagger_ui_renders_offline_under_its_policy(browser: Any, server: Server) -> None:
    page, elsewhere = _offline_page(browser, server)
    page.goto("/docs")
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock-summary-path", has_text="/api/v1/search").count() >= 1
    # The search operation opens with its parameters described.
    page.locator("#operations-search-search_api_v1_search_get").click()
    page.locator(".parameters-col_description", has_text="검색어").first.wait_for()
    screenshot(page, "docs-swagger")
    assert page.script_errors == [] and elsewhere == []


def test_redoc_renders_offline_under_its_policy(browser: Any, server: Server) -> None:
    page, elsewhere = _offline_page(browser, server)
    page.goto("/redoc")
    page.get_by_role("heading", name="Crossdoc", exact=False).first.wait_for()
    page.get_by_text("/api/v1/search").first.wait_for(state="attached")
    screenshot(page, "docs-redoc")
    # ReDoc always tries its "Redocly" logo from its CDN; the policy refuses it before
    # any request leaves (ReDoc then hides the image). Nothing else may be refused.
    logo = "https://cdn.redoc.ly/redoc/logo-mini.svg"
    assert [e for e in page.script_errors if logo not in e] == []
    assert elsewhere == []

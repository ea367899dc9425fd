"""Fixtures of the web UI tests: a browser-like HTTP client that signs in with the form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, PASSWORD, Server
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, require_browser

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def browser_client(server: Server) -> httpx.Client:
    """A client that keeps cookies and does not follow redirects (to see them)."""
    return httpx.Client(base_url=server.base_url, timeout=60, follow_redirects=False)


def csrf_of(client: httpx.Client) -> str:
    """The CSRF token of the client's session (the sign-in page sets one if missing)."""
    token = client.cookies.get("crossdoc_csrf")
    if token is None:
        page = client.get("/signin")
        match = CSRF.search(page.text)
        assert match, page.text
        token = match.group(1)
    return token


def sign_in(client: httpx.Client, username: str, password: str | None = None) -> httpx.Response:
    pw = password or (ADMIN_PASSWORD if username == "admin" else PASSWORD)
    response = client.post(
        "/session/signin",
        data={"username": username, "password": pw, "csrf_token": csrf_of(client), "next": "/"},
    )
    assert response.status_code == 303, response.text
    return response


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Debian chromium per test module (skips when it is absent)."""
    sync_api = require_browser()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()

"""The browser harness: Debian's chromium driven by playwright (never `playwright install`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_PASSWORD, PASSWORD, Server

CHROMIUM = Path("/usr/bin/chromium")
#: Screenshots for a person to look at (ignored by git: build/ is).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}


def require_browser() -> Any:
    """The playwright module, or a skip saying what is missing."""
    if not CHROMIUM.exists():
        pytest.skip(
            "browser tests need Debian's chromium at /usr/bin/chromium"
            " (apt-get install chromium fonts-nanum)"
        )
    try:
        from playwright import sync_api
    except ImportError:
        pytest.skip("browser tests need the `playwright` package (pip install -e '.[test]')")
    return sync_api


def new_page(browser: Any, server: Server, viewport: dict[str, int] = DESKTOP) -> Any:
    context = browser.new_context(
        base_url=server.base_url, viewport=viewport, locale="ko-KR", accept_downloads=True
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if msg.type == "error" else None,
    )
    page.script_errors = errors  # read by the tests: CSP refusals show up here
    return page


def sign_in(page: Any, username: str, password: str | None = None) -> None:
    pw = password or (ADMIN_PASSWORD if username == "admin" else PASSWORD)
    page.goto("/signin")
    page.get_by_label("아이디").fill(username)
    page.get_by_label("비밀번호").fill(pw)
    page.get_by_role("button", name="로그인").click()
    page.wait_for_url(lambda url: "/signin" not in url)


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def check_accessibility(page: Any, name: str) -> None:
    """axe-core (shipped inside axe-playwright-python) finds no serious or critical issue."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:5]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: " + "\n".join(bad)

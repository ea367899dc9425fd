"""The web UI's account pages over real HTTP: changing one's password, the forced
change after a reset, and the reset/unlock buttons of the users page."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import PASSWORD, Server, start_server
from tests.web.conftest import browser_client, csrf_of, sign_in

NEW = "web-new-password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory.mktemp("web-accounts"))


def change(
    client: httpx.Client, current: str, new: str, again: str | None = None
) -> httpx.Response:
    return client.post(
        "/session/password",
        data={
            "current_password": current,
            "new_password": new,
            "new_password_again": new if again is None else again,
            "csrf_token": csrf_of(client),
            "next": "/",
        },
    )


def test_a_user_changes_their_password_on_the_page(server: Server) -> None:
    server.user("web.kim", "WEBA-A", ministry="WEBA")
    with browser_client(server) as client:
        sign_in(client, "web.kim")
        home = client.get("/")
        assert home.status_code == 200 and 'href="/account/password"' in home.text
        page = client.get("/account/password")
        assert page.status_code == 200 and "지금 비밀번호" in page.text
        r = change(client, PASSWORD, NEW, "something-else")
        assert r.status_code == 422 and "서로 다릅니다" in r.text
        r = change(client, "wrong-password", NEW)
        assert r.status_code == 422 and "지금 비밀번호가 맞지 않습니다" in r.text
        r = change(client, PASSWORD, "short")
        assert r.status_code == 422 and "8자 이상" in r.text
        old_cookie = client.cookies.get("crossdoc_session")
        r = change(client, PASSWORD, NEW)
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert client.cookies.get("crossdoc_session") != old_cookie  # a new session
        assert client.get("/").status_code == 200
        # Without the CSRF token the form is refused.
        r = client.post(
            "/session/password",
            data={"current_password": NEW, "new_password": "x" * 9, "new_password_again": "x" * 9},
        )
        assert r.status_code == 403
    with browser_client(server) as client:
        sign_in(client, "web.kim", NEW)


def test_after_a_reset_every_page_leads_to_the_password_form(server: Server) -> None:
    server.user("web.lee", "WEBA-A", ministry="WEBA")
    with server.client("admin") as c:
        one_time = c.post("/admin/users/web.lee/password").json()["password"]
    with browser_client(server) as client:
        r = client.post(
            "/session/signin",
            data={
                "username": "web.lee",
                "password": one_time,
                "csrf_token": csrf_of(client),
                "next": "/upload",
            },
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/account/password?next=/upload"
        for path in ("/", "/upload", "/admin/users"):
            r = client.get(path)
            assert r.status_code == 303, (path, r.text)
            assert r.headers["location"].startswith("/account/password?next=")
        page = client.get("/account/password")
        assert page.status_code == 200 and "관리자가 비밀번호를 재설정했습니다" in page.text
        r = change(client, one_time, NEW)
        assert r.status_code == 303
        assert client.get("/").status_code == 200


def test_the_users_page_offers_reset_unlock_and_delete(server: Server) -> None:
    server.user("web.park", "WEBA-A", ministry="WEBA")
    with browser_client(server) as client:
        sign_in(client, "admin")
        page = client.get("/admin/users")
        assert page.status_code == 200
        assert 'data-api="/api/v1/admin/users/web.park/password"' in page.text
        assert 'data-api="/api/v1/admin/users/web.park/unlock"' in page.text
        assert 'data-method="DELETE" data-api="/api/v1/admin/users/web.park"' in page.text
        assert 'data-api="/api/v1/admin/users/admin/password"' not in page.text  # not oneself


def test_a_disabled_user_is_told_so_on_the_sign_in_page(server: Server) -> None:
    server.user("web.choi", "WEBA-A", ministry="WEBA")
    with server.client("admin") as c:
        assert c.patch("/admin/users/web.choi", json={"disabled": True}).status_code == 200
    with browser_client(server) as client:
        form = {"username": "web.choi", "csrf_token": csrf_of(client), "next": "/"}
        wrong = client.post("/session/signin", data={**form, "password": "wrong-password"})
        assert wrong.status_code == 401 and "사용이 중지된" not in wrong.text
        right = client.post("/session/signin", data={**form, "password": PASSWORD})
        assert right.status_code == 401 and "사용이 중지된 계정입니다" in right.text
        assert 'action="/session/signin"' in right.text  # the form again, not an error page


def test_the_organisation_page_offers_rename_and_retire(server: Server) -> None:
    server.ensure_org("WEBO", "WEBO-A")
    with browser_client(server) as client:
        sign_in(client, "admin")
        page = client.get("/admin")
        assert page.status_code == 200
        assert 'data-method="PATCH" data-api="/api/v1/admin/ministries/WEBO"' in page.text
        assert 'data-method="DELETE" data-api="/api/v1/admin/departments/WEBO-A"' in page.text

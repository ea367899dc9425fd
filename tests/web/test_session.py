"""The web UI's sessions over real HTTP: cookies, CSRF, sign-out, refresh, security headers."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from search_api.web.i18n import Translator, catalog
from search_api.web.pages import highlight_parts, safe_next
from search_api.web.session import is_secure, set_session_cookies
from tests.conftest import Server, start_server
from tests.web.conftest import browser_client, csrf_of, sign_in

WEB = Path(__file__).resolve().parents[2] / "search_api" / "web"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory.mktemp("web-session"))


@pytest.fixture(scope="module")
def users(server: Server) -> dict[str, str]:
    return {
        "member": server.user("web.member", "MOIS-WEB"),
        "other": server.user("web.other", "MOHW-WEB"),
    }


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    """Set-Cookie headers of a response, by cookie name."""
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def test_signed_out_pages_lead_to_the_sign_in_page(server: Server) -> None:
    with browser_client(server) as client:
        home = client.get("/?q=출생")
        assert home.status_code == 303
        location = httpx.URL(home.headers["location"])
        assert location.path == "/signin"
        assert location.params["next"] == "/?q=%EC%B6%9C%EC%83%9D"  # back to the same search
        page = client.get("/signin")
        assert page.status_code == 200
        assert '<html lang="ko">' in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert "crossdoc_csrf" in _set_cookies(page)


def test_sign_in_sets_http_only_same_site_cookies(server: Server, users: dict[str, str]) -> None:
    with browser_client(server) as client:
        response = sign_in(client, users["member"])
        cookies = _set_cookies(response)
        for name in ("crossdoc_session", "crossdoc_refresh"):
            flags = cookies[name].lower()
            assert "httponly" in flags and "samesite=lax" in flags
            assert "secure" not in flags  # plain http here; see the https test below
        assert "path=/session" in cookies["crossdoc_refresh"].lower()
        assert "httponly" not in cookies["crossdoc_csrf"].lower()  # our scripts read it
        home = client.get("/")
        assert home.status_code == 200
        assert "web.member" in home.text


@pytest.mark.parametrize(
    ("scheme", "production", "secure"),
    [
        ("https", False, True),
        ("http", True, True),
        ("http", False, False),
    ],
)
def test_cookies_are_secure_behind_tls(scheme: str, production: bool, secure: bool) -> None:
    request = Request(
        {
            "type": "http",
            "scheme": scheme,
            "server": ("x", 443),
            "path": "/",
            "headers": [],
            "query_string": b"",
        }
    )
    response = Response()
    set_session_cookies(
        response,
        access="a",
        refresh="r",
        lifetime=__import__("datetime").timedelta(hours=1),
        secure=is_secure(request, production),
    )
    headers = response.headers.getlist("set-cookie")
    assert len(headers) == 3
    assert all(("; secure" in h.lower()) is secure for h in headers)


def test_sign_in_without_the_csrf_token_is_refused(server: Server, users: dict[str, str]) -> None:
    with browser_client(server) as client:
        csrf_of(client)
        response = client.post(
            "/session/signin",
            data={"username": users["member"], "password": "password-for-tests"},
        )
        assert response.status_code == 403
        assert "crossdoc_session" not in _set_cookies(response)
        assert "content-security-policy" in response.headers


def test_wrong_password_shows_the_form_again(server: Server, users: dict[str, str]) -> None:
    with browser_client(server) as client:
        response = client.post(
            "/session/signin",
            data={"username": users["member"], "password": "wrong", "csrf_token": csrf_of(client)},
        )
        assert response.status_code == 401
        assert "아이디 또는 비밀번호가 맞지 않습니다" in response.text
        assert "crossdoc_session" not in _set_cookies(response)


def test_cookie_api_calls_need_the_csrf_header(server: Server, users: dict[str, str]) -> None:
    with browser_client(server) as client:
        sign_in(client, users["member"])
        # Reads work with the cookie alone: the cookie carries the same access token.
        assert client.get("/api/v1/me").json()["username"] == users["member"]
        upload = {"file": ("a.txt", b"csrf test")}
        refused = client.post("/api/v1/documents", files=upload)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "csrf_failed"
        wrong = client.post("/api/v1/documents", files=upload, headers={"X-CSRF-Token": "x"})
        assert wrong.status_code == 403
        ok = client.post(
            "/api/v1/documents", files=upload, headers={"X-CSRF-Token": csrf_of(client)}
        )
        assert ok.status_code == 202, ok.text


def test_bearer_calls_need_no_csrf_token(server: Server, users: dict[str, str]) -> None:
    with server.client(users["member"]) as api:
        assert api.post("/documents", files={"file": ("b.txt", b"bearer")}).status_code == 202


def test_sign_out_revokes_the_session_token(server: Server, users: dict[str, str]) -> None:
    with browser_client(server) as client:
        sign_in(client, users["member"])
        token = client.cookies["crossdoc_session"]
        refused = client.post("/session/signout", data={"csrf_token": "nope"})
        assert refused.status_code == 403
        response = client.post("/session/signout", data={"csrf_token": csrf_of(client)})
        assert response.status_code == 303
        assert response.headers["location"] == "/signin"
        assert "crossdoc_session" not in client.cookies
        # The token itself is revoked, not only forgotten by the browser.
        me = httpx.get(f"{server.base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401
        client.cookies.set("crossdoc_session", token, httpx.URL(server.base_url).host, "/")
        assert client.get("/").status_code == 303


def test_an_expired_session_is_refreshed_once(server: Server, users: dict[str, str]) -> None:
    with browser_client(server) as client:
        sign_in(client, users["member"])
        refresh = client.cookies.get("crossdoc_refresh", path="/session")
        session = next(c for c in client.cookies.jar if c.name == "crossdoc_session")
        client.cookies.set("crossdoc_session", "expired.or.garbage", session.domain, "/")
        home = client.get("/?q=x")
        assert home.status_code == 303
        assert home.headers["location"].startswith("/session/refresh?next=")
        back = client.get(home.headers["location"])
        assert back.status_code == 303 and back.headers["location"] == "/?q=x"
        assert client.get("/").status_code == 200
        # The old refresh token was spent: presented again, it ends the whole sign-in.
        with browser_client(server) as thief:
            thief.cookies.set("crossdoc_refresh", refresh, path="/session")
            stolen = thief.get("/session/refresh?next=/")
            assert stolen.headers["location"].startswith("/signin")
        assert client.get("/").status_code == 303


def test_disabling_a_user_ends_their_session(server: Server) -> None:
    username = server.user("web.leaver", "MOIS-WEB")
    with browser_client(server) as client:
        sign_in(client, username)
        assert client.get("/").status_code == 200
        with server.client("admin") as admin:
            assert admin.patch(f"/admin/users/{username}", json={"disabled": True}).is_success
        assert client.get("/").status_code == 303


def test_hostile_titles_are_escaped(server: Server, users: dict[str, str]) -> None:
    hostile = '<script>alert("t")</script><img src=x onerror=alert(1)>'
    server.upload(
        users["member"],
        "악성 제목 시험 문서 <b>본문</b>".encode(),
        "<svg onload=alert(2)>.txt",
        title=hostile,
    )
    with browser_client(server) as client:
        sign_in(client, users["member"])
        page = client.get("/", params={"q": "악성"})
        assert page.status_code == 200
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "<svg" not in page.text and "<b>본문" not in page.text
        assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;" in page.text
        assert "<mark>악성</mark>" in page.text


def test_highlights_are_rebuilt_from_text_not_inserted() -> None:
    assert highlight_parts("a &lt;b&gt; <mark>저장소</mark>에서") == [
        ("a <b> ", False),
        ("저장소", True),
        ("에서", False),
    ]
    assert highlight_parts("<mark><script></mark>") == [("<script>", True)]


def test_sign_in_returns_only_to_local_pages() -> None:
    assert safe_next("/?q=1") == "/?q=1"
    for target in ("https://evil.example/", "//evil.example", "/\\evil.example", "", None):
        assert safe_next(target) == "/"


def test_language_switch_and_catalogs(server: Server, users: dict[str, str]) -> None:
    assert set(catalog("ko")) == set(catalog("en"))
    with browser_client(server) as client:
        sign_in(client, users["member"])
        response = client.post(
            "/session/lang", data={"lang": "en", "csrf_token": csrf_of(client), "next": "/"}
        )
        assert response.status_code == 303
        page = client.get("/")
        assert '<html lang="en">' in page.text and "Sign out" in page.text


def test_templates_hold_no_text_of_their_own() -> None:
    """Every user-facing string is in the message catalogs: no Hangul in templates or scripts."""
    hangul = re.compile(r"[\uac00-\ud7a3]")
    for path in [*WEB.glob("templates/*.html"), *WEB.glob("static/*.js")]:
        offenders = [line for line in path.read_text().splitlines() if hangul.search(line)]
        # The language switch names each language in itself, by design.
        offenders = [line for line in offenders if 'lang="ko"' not in line]
        assert not offenders, (path.name, offenders)
    json.loads((WEB / "messages" / "ko.json").read_text())


def test_an_unreadable_document_page_answers_404_like_the_api(
    server: Server, users: dict[str, str]
) -> None:
    doc = server.upload(
        users["member"], "부서 안에서만".encode(), "dept.txt", visibility="department"
    )
    with browser_client(server) as client:
        sign_in(client, users["other"])
        page = client.get(f"/documents/{doc['id']}")
        missing = client.get("/documents/" + "0" * 32)
        api = client.get(f"/api/v1/documents/{doc['id']}")
        assert page.status_code == missing.status_code == api.status_code == 404
        assert page.text.replace(doc["id"], "") == missing.text.replace("0" * 32, "")
        assert "unsafe-inline" not in page.headers["content-security-policy"]
        assert "부서 안에서만" not in page.text
    with browser_client(server) as client:
        sign_in(client, users["member"])
        page = client.get(f"/documents/{doc['id']}")
        assert page.status_code == 200 and "부서 안에서만" in page.text
        assert "content-security-policy" in page.headers


def test_a_bad_search_shows_its_error_on_the_search_page(
    server: Server, users: dict[str, str]
) -> None:
    with browser_client(server) as client:
        sign_in(client, users["member"])
        page = client.get("/", params={"q": "출생", "from": "어제"})
        assert page.status_code == 400
        assert 'class="alert error" role="alert"' in page.text
        assert "검색어를 처리할 수 없습니다" in page.text
        assert 'value="출생"' in page.text  # the query is kept, to be corrected


def test_a_filter_naming_nothing_is_said_on_the_search_page(
    server: Server, users: dict[str, str]
) -> None:
    with browser_client(server) as client:
        sign_in(client, users["member"])
        page = client.get("/", params={"q": "출생", "department": "NO-SUCH", "content_type": "pfd"})
        assert page.status_code == 200
        notes = re.findall(r'<p class="alert info" role="status">(.*?)</p>', page.text)
        assert any("그런 부서 코드나 이름이 없습니다" in note for note in notes), notes
        assert any("알 수 없는 파일 형식입니다" in note for note in notes), notes


PAGES = ("/", "/upload", "/department", "/admin", "/admin/users", "/admin/policies",
         "/admin/explain", "/admin/audit", "/signin", "/documents/" + "0" * 32)  # fmt: skip


@pytest.mark.parametrize("who", ["admin", "member"])
def test_every_page_has_the_strict_csp(server: Server, users: dict[str, str], who: str) -> None:
    with browser_client(server) as client:
        sign_in(client, users.get(who, who))
        for path in PAGES:
            page = client.get(path)
            assert page.status_code in (200, 303, 403, 404), (path, page.status_code)
            if page.status_code == 303:
                continue
            csp = page.headers["content-security-policy"]
            assert "script-src 'self';" in csp and "unsafe" not in csp, path
            assert page.headers["x-frame-options"] == "DENY"
            assert '<html lang="ko">' in page.text, path
            assert "<script>" not in page.text and " on" + "click=" not in page.text, path


def test_members_cannot_open_the_admin_pages(server: Server, users: dict[str, str]) -> None:
    with browser_client(server) as client:
        sign_in(client, users["member"])
        for path in ("/admin", "/admin/users", "/admin/policies", "/admin/audit"):
            page = client.get(path)
            assert page.status_code == 403, path
            assert "권한이 없습니다" in page.text


def test_pages_are_not_in_the_api_schema(server: Server) -> None:
    paths = httpx.get(f"{server.base_url}/api/v1/openapi.json").json()["paths"]
    assert not [p for p in paths if not p.startswith("/api/") and p not in ("/healthz", "/readyz")]


def test_results_are_paged_and_the_url_keeps_the_filters(server: Server) -> None:
    member = server.user("web.pager", "MOLIT-PAGE")
    docs = [
        server.upload(member, f"쪽나누기 시험 문서 {i}번".encode(), f"page{i}.txt", wait=False)
        for i in range(23)
    ]
    server.wait_indexed(member, docs[-1]["id"])
    with browser_client(server) as client:
        sign_in(client, member)
        first = client.get("/", params={"q": "쪽나누기", "department": "MOLIT-PAGE"})
        assert first.text.count('class="hit"') == 20
        assert "‘쪽나누기’ 검색 결과 23건" in first.text
        page_2 = "/?q=%EC%AA%BD%EB%82%98%EB%88%84%EA%B8%B0&amp;department=MOLIT-PAGE&amp;page=2"
        assert f'href="{page_2}"' in first.text
        second = client.get("/", params={"q": "쪽나누기", "department": "MOLIT-PAGE", "page": 2})
        assert second.text.count('class="hit"') == 3
        assert '<ol class="hits" start="21">' in second.text


def test_hostile_text_in_the_audit_log_is_escaped(server: Server) -> None:
    hostile = "<script>alert('audit')</script>"
    member = server.user("web.hostile", "MOIS-WEB")
    server.search(member, q=hostile)
    with browser_client(server) as client:
        sign_in(client, "admin")
        # Searches are audited in batches, within a second or so: wait for this one.
        deadline = time.monotonic() + 10
        while True:
            page = client.get("/admin/audit", params={"actor": member, "action": "search"})
            assert page.status_code == 200
            if "alert" in page.text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert hostile not in page.text
        assert "&lt;script&gt;alert(&#39;audit&#39;)&lt;/script&gt;" in page.text


def test_the_home_page_lists_the_newest_readable_documents(server: Server) -> None:
    member = server.user("web.newest", "MOLIT-NEW")
    server.upload(member, "먼저 올린 문서".encode(), "first.txt", title="먼저 올린 문서")
    server.upload(member, "나중에 올린 문서".encode(), "second.txt", title="나중에 올린 문서")
    with browser_client(server) as client:
        sign_in(client, member)
        home = client.get("/")
        assert home.status_code == 200
        assert home.text.index("나중에 올린 문서") < home.text.index("먼저 올린 문서")
        assert '<option value="newest" selected>' in home.text


def _korean_org(server: Server) -> None:
    """A ministry and department with their Korean names (made before any user of them)."""
    with server.client("admin") as c:
        r = c.post("/admin/ministries", json={"code": "MOEF", "name": "기획재정부"})
        assert r.status_code in (201, 409), r.text
        r = c.post(
            "/admin/departments",
            json={"code": "MOEF-BUD", "name": "예산총괄과", "ministry": "MOEF"},
        )
        assert r.status_code in (201, 409), r.text


def test_ministries_and_departments_show_their_names_not_codes(server: Server) -> None:
    _korean_org(server)
    member = server.user("web.names", "MOEF-BUD", ministry="MOEF")
    doc = server.upload(member, "예산 편성 지침".encode(), "budget.txt", title="예산 편성 지침")
    server.wait_indexed(member, doc["id"])
    with browser_client(server) as client:
        sign_in(client, member)
        page = client.get("/", params={"q": "예산"})
        assert page.status_code == 200
        # The hit's line names the ministry and department together, codes as a tooltip.
        assert 'title="MOEF · MOEF-BUD">기획재정부 · 예산총괄과</span>' in page.text
        # A facet shows the name, the code beside it, and still filters by the code.
        assert 'href="/?q=%EC%98%88%EC%82%B0&amp;ministry=MOEF"' in page.text
        assert '<span>기획재정부 <span class="org-code">MOEF</span></span>' in page.text
        assert '<span>예산총괄과 <span class="org-code">MOEF-BUD</span></span>' in page.text
        document = client.get(f"/documents/{doc['id']}")
        assert '<dd>기획재정부 <span class="org-code">MOEF</span></dd>' in document.text
        assert '<dd>예산총괄과 <span class="org-code">MOEF-BUD</span></dd>' in document.text


def test_every_recorded_action_has_a_label_in_both_languages() -> None:
    """Every action the product records (`Auditor.event(actor, "action", …)`) is labelled."""
    root = WEB.parents[1]
    sources = [
        *root.glob("search_api/**/*.py"),
        *root.glob("services/**/*.py"),
        *root.glob("crossdoc/*.py"),
    ]
    recorded = set()
    for path in sources:
        text = path.read_text()
        recorded |= set(re.findall(r'Auditor\.event\(\s*[\w.\[\]"]+,\s*"(\w+)"', text))
        recorded |= set(re.findall(r'audit_event\(\s*[\w.\[\]"]+,\s*"(\w+)"', text))
        recorded |= set(re.findall(r'NewAuditEvent\(\s*\w+,\s*"(\w+)"', text))
        recorded |= set(re.findall(r'action="(\w+)"', text))
    expected = {"sign_in", "search", "upload", "denied", "throttled", "audit_export"}
    assert expected | {"org_change", "policy_create", "acl_change"} <= recorded
    for lang in ("ko", "en"):
        missing = {a for a in recorded if f"action.{a}" not in catalog(lang)}
        assert not missing, (lang, missing)


def test_the_audit_page_shows_action_labels_and_a_readable_detail(server: Server) -> None:
    member = server.user("web.readable", "MOIS-WEB")
    long_query = "가" * 100
    server.search(member, q=long_query)
    with browser_client(server) as client:
        sign_in(client, "admin")
        deadline = time.monotonic() + 10
        while True:  # searches are audited in batches
            page = client.get("/admin/audit", params={"actor": member})
            assert page.status_code == 200
            if long_query[:20] in page.text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        rows = page.text.split("<tbody>", 1)[1]
        assert '<td class="nowrap" title="search">검색</td>' in rows
        assert '<td class="nowrap" title="sign_in">로그인</td>' in rows  # over the API
        # The detail: one "key: value" a line, the long query cut, whole in the title.
        assert '<li><span class="k">hits</span>: 0</li>' in rows
        assert f'<span class="k">q</span>: <span title="{long_query}">{"가" * 59}…</span>' in rows
        assert "{&#34;" not in rows and '{"' not in rows  # no raw JSON
        # The filter offers the labels, by code.
        assert '<option value="upload" >올리기</option>' in page.text
        english = client.post(
            "/session/lang", data={"lang": "en", "csrf_token": csrf_of(client), "next": "/"}
        )
        assert english.status_code == 303
        page = client.get("/admin/audit", params={"actor": member, "action": "search"})
        assert '<td class="nowrap" title="search">Search</td>' in page.text
    # An action no catalog knows is shown as its code.
    assert Translator("ko").label("action.made_up", "made_up") == "made_up"
    assert Translator("en").label("action.search", "search") == "Search"


AUDIT_ROW_ID = re.compile(r'<tr class="outcome-\w+">\s*<td class="mono small">(\d+)</td>')


def test_the_audit_page_lists_the_newest_first_and_pages_back(server: Server) -> None:
    def newest_id() -> int:
        with server.client("admin") as c:
            return int(c.get("/admin/audit", params={"order": "desc", "limit": 1}).json()[0]["id"])

    for i in range(60):  # more events than one page (each new user is audited)
        if newest_id() > 60:
            break
        server.user(f"web.filler{i}", "MOIS-WEB")
    with browser_client(server) as client:
        sign_in(client, "admin")
        newest = newest_id()
        first = client.get("/admin/audit")
        ids = [int(i) for i in AUDIT_ROW_ID.findall(first.text)]
        assert len(ids) == 50 and ids == sorted(ids, reverse=True)
        assert ids[0] >= newest
        assert "최신 기록으로" not in first.text
        older = f'href="/admin/audit?before_id={ids[-1]}" rel="next">이전 기록</a>'
        assert older in first.text
        second = client.get("/admin/audit", params={"before_id": ids[-1]})
        more = [int(i) for i in AUDIT_ROW_ID.findall(second.text)]
        assert more and more == sorted(more, reverse=True) and more[0] == ids[-1] - 1
        assert 'href="/admin/audit">최신 기록으로</a>' in second.text


def test_static_files_carry_nosniff_and_a_restrictive_csp(server: Server) -> None:
    with browser_client(server) as client:
        for path in ("/static/app.css", "/static/search.js", "/static/favicon.svg"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.headers["x-content-type-options"] == "nosniff", path
            csp = response.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "script-src" not in csp, path
            assert "frame-ancestors 'none'" in csp and "unsafe" not in csp, path
            # A revalidation (304) carries them too.
            etag = response.headers["etag"]
            again = client.get(path, headers={"If-None-Match": etag})
            assert again.status_code == 304, path
            assert again.headers["x-content-type-options"] == "nosniff", path
        missing = client.get("/static/nothing-here.js")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        assert missing.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'none'" in missing.headers["content-security-policy"]

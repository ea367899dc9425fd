"""The web UI in a real browser (Debian's chromium): the scenario of issue 11, end to end.

Screenshots of each main page are saved under build/screenshots/ for a person to look at.
Runs in about a minute on a 2-core machine.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, start_server
from tests.web.browser import (
    PHONE,
    check_accessibility,
    new_page,
    screenshot,
    sign_in,
)

pytestmark = pytest.mark.slow

NOTICE = (
    "출생신고 절차 안내. 행정안전부는 출생신고를 온라인으로 접수합니다. "
    "부모는 출생신고서를 제출하고 주민등록이 자동으로 처리됩니다."
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory.mktemp("web-browser"))


@pytest.fixture(scope="module")
def org(server: Server) -> dict[str, str]:
    # Real names, as a ministry user sees them (made before the users, which reuse them).
    with server.client("admin") as c:
        for ministry, name in (("MOIS", "행정안전부"), ("MOHW", "보건복지부")):
            assert c.post("/admin/ministries", json={"code": ministry, "name": name}).is_success
        for code, name, ministry in (
            ("MOIS-DGOV", "디지털정부과", "MOIS"),
            ("MOHW-POP", "인구정책과", "MOHW"),
        ):
            body = {"code": code, "name": name, "ministry": ministry}
            assert c.post("/admin/departments", json=body).is_success
    users = {
        "kim": server.user("kim.web", "MOIS-DGOV", ministry="MOIS"),
        "park": server.user("park.web", "MOHW-POP", ministry="MOHW"),
    }
    server.upload(
        users["kim"],
        NOTICE.encode(),
        "출생신고_안내.txt",
        title="출생신고 온라인 접수 안내",
        visibility="government",
    )
    server.upload(
        users["kim"],
        "주택 청약 제도 개편 계획".encode(),
        "주택.txt",
        title="주택 청약 개편",
        visibility="government",
    )
    server.upload(
        users["park"],
        "인구정책 출생률 통계와 출생신고 현황".encode(),
        "인구.txt",
        title="출생 통계 보고",
        visibility="government",
    )
    return users


def test_sign_in_search_with_a_particle_and_filter_by_facet(
    browser: Any, server: Server, org: dict[str, str]
) -> None:
    page = new_page(browser, server)
    page.goto("/")
    assert "/signin" in page.url
    check_accessibility(page, "sign-in")
    screenshot(page, "01-sign-in")
    sign_in(page, org["kim"])
    # Korean typed with a particle: 출생신고를 finds what 출생신고 finds.
    page.get_by_label("검색어").fill("출생신고를")
    page.get_by_label("검색어").press("Enter")
    page.wait_for_url(re.compile(r"q=%EC%B6%9C"))
    hits = page.locator(".hit")
    assert hits.count() == 2
    assert page.locator(".hit mark").first.inner_text().startswith("출생")
    assert "출생신고 온라인 접수 안내" in page.locator(".hit-title").all_inner_texts()
    check_accessibility(page, "search")
    screenshot(page, "02-search-korean-highlights-facets")
    # A facet narrows the results, and the URL carries it (a result list can be shared).
    page.locator(".facet-value", has_text="MOHW").first.click()
    page.wait_for_url(re.compile(r"ministry=MOHW"))
    assert page.locator(".hit").count() == 1
    assert page.locator(".hit-title").inner_text() == "출생 통계 보고"
    shared = page.url
    other = new_page(browser, server)
    sign_in(other, org["park"])
    other.goto(shared)
    assert other.locator(".hit-title").inner_text() == "출생 통계 보고"
    # Sort by newest, then back to everything.
    page.goto("/?q=출생")
    page.get_by_label("정렬").select_option("newest")
    page.wait_for_url(re.compile(r"sort=newest"))
    titles = page.locator(".hit-title").all_inner_texts()
    assert titles[0] == "출생 통계 보고"
    # Nothing found: a clear empty state.
    page.goto("/?q=존재하지않는낱말")
    assert page.locator(".empty h2").inner_text() == "찾는 문서가 없습니다"
    assert not page.script_errors, page.script_errors


def test_english_switch_and_a_phone_screen(
    browser: Any, server: Server, org: dict[str, str]
) -> None:
    page = new_page(browser, server, PHONE)
    sign_in(page, org["kim"])
    page.goto("/?q=출생")
    screenshot(page, "03-search-phone")
    # Nothing sticks out sideways at 390 px, on the main pages.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator(".hit-title a").first.click()
    page.wait_for_url("**/documents/*")
    screenshot(page, "03b-document-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.goto("/upload")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.goto("/?q=출생")
    page.get_by_role("button", name="English").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("button", name="Sign out").is_visible()
    check_accessibility(page, "search-en-phone")


def test_a_hostile_title_does_not_run(browser: Any, server: Server, org: dict[str, str]) -> None:
    hostile = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
    filename = "<img src=x onerror=alert(1)>.txt"
    server.upload(org["kim"], "악성 스크립트 제목 시험".encode(), filename, title=hostile)
    page = new_page(browser, server)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, org["kim"])
    page.goto("/?q=악성")
    title = page.locator(".hit-title").inner_text()
    assert title.startswith("<script>window.pwned=1</script>")
    assert page.evaluate("window.pwned === undefined")
    assert not dialogs


def test_upload_several_files_and_watch_them_index(
    browser: Any, server: Server, org: dict[str, str]
) -> None:
    page = new_page(browser, server)
    sign_in(page, org["kim"])
    page.get_by_role("link", name="올리기").click()
    page.wait_for_url("**/upload")
    files = [
        {
            "name": "예산_편성_지침.txt",
            "mimeType": "text/plain",
            "buffer": ("2027년 예산 편성 지침. " * 40000).encode(),
        },
        {
            "name": "회의록.txt",
            "mimeType": "text/plain",
            "buffer": "디지털정부 회의록: 전자문서 유통 개선".encode(),
        },
        {
            "name": "깨진파일.pdf",
            "mimeType": "application/pdf",
            "buffer": b"%PDF-1.7\n\x00\x01 broken beyond repair",
        },
    ]
    page.locator("#files").set_input_files(files)
    # Drag and drop adds files too.
    transfer = page.evaluate_handle(
        """() => { const dt = new DataTransfer();
        dt.items.add(new File(['끌어다 놓은 보고서 본문'], '끌어놓기.txt', {type: 'text/plain'}));
        return dt; }"""
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})
    assert page.locator(".queue-item").count() == 4
    page.get_by_label("공개 범위").select_option("government")
    page.get_by_label("태그").fill("예산, 시험")
    # A slow network (1 MB/s up), so the progress bars are seen moving.
    cdp = page.context.new_cdp_session(page)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 1 << 20},
    )
    page.get_by_role("button", name="올리기 시작").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('progress')].some(p => p.value > 0 && p.value < 100)"
    )
    screenshot(page, "04a-upload-in-progress")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.queue-item')]"
        ".every(li => li.classList.contains('indexed') || li.classList.contains('failed'))",
        timeout=90_000,
    )
    rows = page.locator(".queue-item")
    statuses = {
        rows.nth(i).locator(".file-name").inner_text(): rows.nth(i)
        .locator(".file-status")
        .inner_text()
        for i in range(rows.count())
    }
    assert statuses["회의록.txt"].startswith("색인 완료")
    assert statuses["끌어놓기.txt"].startswith("색인 완료")
    assert statuses["깨진파일.pdf"].startswith("텍스트 추출 실패: 파일이 손상되었거나")
    assert all(
        v == "100"
        for v in page.locator("progress").evaluate_all("ps => ps.map(p => String(p.value))")
    )
    check_accessibility(page, "upload")
    screenshot(page, "04-upload-progress")
    page.goto("/?q=회의록을")
    assert page.locator(".hit-title").first.inner_text() == "회의록.txt"
    assert not page.script_errors, page.script_errors


def test_document_page_download_share_and_revoke(
    browser: Any, server: Server, org: dict[str, str]
) -> None:
    content = "국민디자인단 운영 계획 (비공개 초안). 부서 안에서만 봅니다.\n".encode() * 20
    doc = server.upload(
        org["kim"],
        content,
        "국민디자인단_계획.txt",
        title="국민디자인단 운영 계획",
        visibility="department",
    )
    park = new_page(browser, server)
    sign_in(park, org["park"])
    park.goto("/?q=국민디자인단")
    assert park.locator(".hit").count() == 0
    missing = park.goto(f"/documents/{doc['id']}")
    assert missing is not None and missing.status == 404  # unreadable looks like missing

    kim = new_page(browser, server)
    sign_in(kim, org["kim"])
    kim.goto(f"/documents/{doc['id']}")
    assert kim.locator("h1").inner_text() == "국민디자인단 운영 계획"
    assert "국민디자인단 운영 계획 (비공개 초안)" in kim.locator(".preview").inner_text()
    with kim.expect_download() as download_info:
        kim.locator("#download").click()
    downloaded = Path(download_info.value.path()).read_bytes()
    assert hashlib.sha256(downloaded).hexdigest() == hashlib.sha256(content).hexdigest()
    check_accessibility(kim, "document")
    screenshot(kim, "05-document")

    # Share with another department, for reading.
    kim.get_by_role("button", name="공유").click()
    kim.get_by_label("대상 종류").select_option("dept")
    kim.get_by_label("대상 (코드 또는 아이디)").fill("MOHW-POP")
    kim.get_by_label("권한", exact=True).select_option("read")
    check_accessibility(kim, "sharing dialog")
    screenshot(kim, "06-sharing-dialog", full_page=False)
    kim.get_by_role("button", name="저장").click()
    kim.wait_for_load_state()
    kim.locator("#grants li[data-principal='dept:MOHW-POP']").wait_for(state="attached")
    assert "dept:MOHW-POP" in kim.locator("#access").inner_text()

    park.goto("/?q=국민디자인단")
    assert park.locator(".hit-title").all_inner_texts() == ["국민디자인단 운영 계획"]

    # A new version; both versions stay downloadable.
    kim.get_by_label("새 판 파일").set_input_files(
        {"name": "계획_v2.txt", "mimeType": "text/plain", "buffer": "둘째 판".encode()}
    )
    kim.get_by_role("button", name="새 판 올리기").click()
    kim.get_by_role("link", name="2판 내려받기").wait_for()
    # The page follows the new version's indexing and reloads when it is done.
    kim.locator("#doc-status[data-status='indexed']").wait_for(timeout=60_000)
    assert "둘째 판" in kim.locator(".preview").inner_text()
    with kim.expect_download() as first_version:
        kim.get_by_role("link", name="1판 내려받기").click()
    assert Path(first_version.value.path()).read_bytes() == content

    # Revoke, with an expired access token in the page: the script refreshes the
    # session once and goes on. The document is gone from the very next search.
    kim.context.add_cookies(
        [{"name": "crossdoc_session", "value": "expired", "url": server.base_url}]
    )
    kim.get_by_role("button", name="공유").click()
    kim.get_by_role("button", name="dept:MOHW-POP의 권한 회수").click()
    kim.wait_for_load_state()
    kim.locator("#no-grants").wait_for(state="attached")
    park.goto("/?q=국민디자인단")
    assert park.locator(".hit").count() == 0
    # The refreshed session is the one in use (the 401 before the refresh is expected).
    assert [e for e in kim.script_errors if "401" not in e] == []
    # Sign out: the session ends, and pages lead to the sign-in page again.
    park.get_by_role("button", name="로그아웃").click()
    park.wait_for_url("**/signin")
    park.goto("/?q=출생")
    assert "/signin" in park.url


def test_admin_policy_lets_the_grantee_find_documents_and_the_audit_shows_it(
    browser: Any, server: Server, org: dict[str, str]
) -> None:
    server.upload(
        org["kim"],
        "2027년 정부혁신 예산 배분안".encode(),
        "혁신예산.txt",
        title="정부혁신 예산 배분안",
        visibility="department",
        tags="혁신예산",
    )
    park = new_page(browser, server)
    sign_in(park, org["park"])
    park.goto("/?q=정부혁신")
    assert park.locator(".hit").count() == 0

    admin = new_page(browser, server)
    admin.on("dialog", lambda dialog: dialog.accept())
    sign_in(admin, "admin")
    admin.get_by_role("link", name="관리").click()
    admin.wait_for_url("**/admin")
    check_accessibility(admin, "admin organisation")
    # A user is created, then disabled.
    admin.get_by_role("link", name="사용자").click()
    admin.get_by_label("아이디").fill("new.person")
    admin.get_by_label("표시 이름").fill("신규 직원")
    admin.get_by_label("처음 비밀번호 (8자 이상)").fill("a-long-password")
    admin.get_by_label("부서", exact=True).select_option("MOHW-POP")
    admin.get_by_role("button", name="만들기").click()
    admin.locator("td", has_text="신규 직원").wait_for()
    check_accessibility(admin, "admin users")
    admin.get_by_role("button", name="new.person 사용 중지").click()
    admin.get_by_role("button", name="new.person 다시 사용").wait_for()
    # The policy: MOHW-POP reads every MOIS-DGOV document tagged 혁신예산.
    admin.get_by_role("link", name="접근 정책").click()
    admin.get_by_label("이름", exact=True).fill("인구정책과 혁신예산 열람")
    admin.get_by_label("부서", exact=True).select_option("MOIS-DGOV")
    admin.get_by_label("태그").fill("혁신예산")
    admin.get_by_label("받는 대상").fill("dept:MOHW-POP")
    admin.get_by_role("button", name="정책 만들기").click()
    admin.locator("td", has_text="인구정책과 혁신예산 열람").wait_for()
    check_accessibility(admin, "admin policies")
    screenshot(admin, "07-admin-policies")

    park.goto("/?q=정부혁신을")
    assert park.locator(".hit-title").all_inner_texts() == ["정부혁신 예산 배분안"]

    # The audit log shows it, filtered by action; and by actor.
    admin.get_by_role("link", name="감사 기록").first.click()
    admin.get_by_label("행위", exact=True).select_option("policy_create")
    admin.get_by_role("button", name="조회").click()
    admin.wait_for_url(re.compile(r"action=policy_create"))
    assert "인구정책과 혁신예산 열람" in admin.locator("table.audit").inner_text()
    # Searches are audited in batches (within a quarter second): reload until it is there.
    deadline = time.monotonic() + 10
    while True:
        admin.goto(f"/admin/audit?actor={org['park']}&action=search")
        if "정부혁신을" in admin.content() or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert "정부혁신을" in admin.locator("table.audit").inner_text()
    admin.goto(f"/admin/audit?actor={org['park']}")
    actions = set(admin.locator("table.audit td:nth-child(4)").all_inner_texts())
    assert {"로그인", "검색"} <= actions, actions  # labels, not action codes
    check_accessibility(admin, "audit")
    screenshot(admin, "08-audit-log")
    with admin.expect_download() as export:
        admin.get_by_role("link", name="내보내기 (JSON Lines)").click()
    lines = Path(export.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines and {json.loads(line)["actor"] for line in lines} == {org["park"]}

    # Why can park read it? The explanation names the policy.
    doc_id = park.locator(".hit-title a").get_attribute("href").rsplit("/", 1)[1]
    admin.goto(f"/admin/explain?user={org['park']}&document={doc_id}")
    assert "열람할 수 있습니다" in admin.locator("#verdict").inner_text()
    assert "인구정책과 혁신예산 열람" in admin.locator(".sources").inner_text()
    check_accessibility(admin, "explain")
    screenshot(admin, "09-admin-explain")
    assert not admin.script_errors, admin.script_errors

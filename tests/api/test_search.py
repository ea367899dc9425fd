"""Search over HTTP: Korean queries, syntax, filters, facets, and permissions that never leak."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage.catalog.records import AuditFilter
from tests.conftest import Server, drop_search_index, start_server


@pytest.fixture(scope="module", params=["embedded", "elasticsearch"])
def server(
    stack: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The API on each search engine: embedded, and Elasticsearch/OpenSearch (a fresh
    index) when `CROSSDOC_TEST_ELASTICSEARCH_URL` is set."""
    overrides: dict[str, Any] = {}
    url = os.environ.get("CROSSDOC_TEST_ELASTICSEARCH_URL", "")
    if request.param == "elasticsearch":
        if stack == "full":
            pytest.skip("the full stack leg runs this module on OpenSearch already")
        if not url:
            pytest.skip(
                "set CROSSDOC_TEST_ELASTICSEARCH_URL to run against Elasticsearch/OpenSearch"
            )
        overrides = {"search_url": url, "search_index": f"crossdoc-test-{uuid.uuid4().hex}"}
    running = start_server(
        tmp_path_factory.mktemp("crossdoc"), max_upload_bytes=8 * 1024 * 1024, **overrides
    )
    try:
        yield next(running)
    finally:
        running.close()
        if overrides:
            drop_search_index(url, overrides["search_index"])


@pytest.fixture(scope="module")
def org(server: Server) -> dict[str, str]:
    return {
        "kim": server.user("kim", "MOIS-DX"),
        "lee": server.user("lee", "MOIS-DX"),
        "park": server.user("park", "MOIS-REC"),
        "choi": server.user("choi", "MOHW-POP", ministry="MOHW"),
        "moon": server.user("moon", "MOHW-POP", ministry="MOHW"),
        "boss": server.user("boss", "MOIS-DX", roles=["member", "dept_admin"]),
        "root": "admin",
    }


def ids(result: dict[str, Any]) -> set[str]:
    return {h["id"] for h in result["hits"]}


def facet_values(result: dict[str, Any]) -> dict[str, set[str]]:
    return {name: {b["value"] for b in buckets} for name, buckets in result["facets"].items()}


def test_korean_particles_and_spacing(server: Server, org: dict[str, str]) -> None:
    doc = server.upload(
        "kim",
        "공공 저장소에서 출생 신고를 처리하는 출생신고체계 개편안".encode(),
        "plan.txt",
        title="개편안",
        visibility="government",
    )
    for q in ("저장소", "출생신고", "출생 신고", "신고를", "개편안을"):
        assert doc["id"] in ids(server.search("choi", q=q)), q
    hit = next(h for h in server.search("choi", q="저장소")["hits"] if h["id"] == doc["id"])
    assert any("<mark>저장소</mark>" in h for h in hit["highlights"]), hit


def test_phrase_and_exclusion(server: Server, org: dict[str, str]) -> None:
    a = server.upload(
        "kim", b"budget review for the digital archive", "a.txt", visibility="government"
    )
    b = server.upload("kim", b"archive digital budget, approved", "b.txt", visibility="government")
    r = server.search("kim", q='"digital archive"')
    assert a["id"] in ids(r) and b["id"] not in ids(r)
    r = server.search("kim", q="budget -approval")  # excluded words are stemmed too
    assert a["id"] in ids(r) and b["id"] not in ids(r)
    r = server.search("kim", q="budgets archives")  # English stemming
    assert {a["id"], b["id"]} <= ids(r)


def test_visibility_levels(server: Server, org: dict[str, str]) -> None:
    word = "가시성검사용어"
    docs = {
        v: server.upload("kim", f"{word} {v}".encode(), f"{v}.txt", visibility=v)
        for v in ("private", "department", "ministry", "government")
    }
    expect = {
        "kim": {"private", "department", "ministry", "government"},
        "boss": {"private", "department", "ministry", "government"},  # dept_admin manages
        "lee": {"department", "ministry", "government"},
        "park": {"ministry", "government"},
        "choi": {"government"},
        "root": set(),  # admin reads nothing without a grant
    }
    for user, visible in expect.items():
        r = server.search(org[user], q=word)
        assert ids(r) == {docs[v]["id"] for v in visible}, user
        assert r["total"] == len(visible), user
        depts = facet_values(r)["department"]
        assert depts == ({"MOIS-DX"} if visible else set()), user


def test_term_only_in_unreadable_document_leaks_nothing(
    server: Server, org: dict[str, str]
) -> None:
    secret = server.upload(
        "choi", "극비단어 보건복지부 내부 메모".encode(), "memo.txt", visibility="private"
    )
    r = server.search("kim", q="극비단어")
    assert r["total"] == 0 and r["hits"] == []
    assert all(not buckets for buckets in r["facets"].values())
    assert server.search("choi", q="극비단어")["total"] == 1
    # Syntax aimed at the access fields is just text.
    for q in (
        "*:*",
        "readers:gov",
        "readers:user:choi",
        '{"match_all": {}}',
        "id:" + secret["id"],
        "극비단어 OR *",
        "title:memo",
    ):
        r = server.search("kim", q=q)
        assert secret["id"] not in ids(r), q


def test_grant_then_revoke_is_reflected_in_the_next_search(
    server: Server, org: dict[str, str]
) -> None:
    doc = server.upload("kim", "공유대상문서 협업".encode(), "share.txt", visibility="private")
    assert server.search("choi", q="공유대상문서")["total"] == 0
    with server.client("kim") as c:
        r = c.put(
            f"/documents/{doc['id']}/acl",
            json={
                "visibility": "private",
                "grants": [{"principal": "user:choi", "permission": "read"}],
            },
        )
        assert r.status_code == 200
    # No waiting for the indexer: the very next search reflects it.
    r = server.search("choi", q="공유대상문서")
    assert ids(r) == {doc["id"]} and r["total"] == 1
    with server.client("choi") as c:
        assert c.get(f"/documents/{doc['id']}/content").status_code == 200
    with server.client("kim") as c:
        c.put(f"/documents/{doc['id']}/acl", json={"visibility": "private", "grants": []})
    r = server.search("choi", q="공유대상문서")
    assert r["total"] == 0 and not facet_values(r)["department"]
    with server.client("choi") as c:
        assert c.get(f"/documents/{doc['id']}/content").status_code == 404
    # And after the indexer caught up, still nothing.
    server.wait_indexed("kim", doc["id"])
    assert server.search("choi", q="공유대상문서")["total"] == 0


def test_department_and_ministry_grants(server: Server, org: dict[str, str]) -> None:
    doc = server.upload(
        "kim",
        "부처간협업문서".encode(),
        "x.txt",
        visibility="private",
        grants=[{"principal": "ministry:MOHW", "permission": "read"}],
    )
    server.wait_indexed("kim", doc["id"])
    assert doc["id"] in ids(server.search("moon", q="부처간협업문서"))
    assert doc["id"] not in ids(server.search("park", q="부처간협업문서"))


def test_expired_grant_stops_counting(server: Server, org: dict[str, str]) -> None:
    # Long enough for the upload to be indexed first (on the full stack: S3, a task,
    # another process), then waited out.
    lifetime = 2.0 if server.worker is None else 10.0
    expiry = datetime.now(UTC) + timedelta(seconds=lifetime)
    soon = expiry.isoformat()
    doc = server.upload(
        "kim",
        "기한부공유문서".encode(),
        "t.txt",
        visibility="private",
        grants=[{"principal": "user:park", "permission": "read", "expires_at": soon}],
    )
    server.wait_indexed("kim", doc["id"])
    assert server.search("park", q="기한부공유문서")["total"] == 1
    import time

    time.sleep(max(0.0, (expiry - datetime.now(UTC)).total_seconds()) + 0.5)
    r = server.search("park", q="기한부공유문서")
    assert r["total"] == 0 and r["hits"] == []


def test_moved_and_disabled_users(server: Server, org: dict[str, str]) -> None:
    server.user("mover", "MOIS-DX")
    doc = server.upload("kim", "이동검사문서".encode(), "m.txt", visibility="department")
    assert server.search("mover", q="이동검사문서")["total"] == 1
    with server.client("admin") as c:
        assert c.patch("/admin/users/mover", json={"department": "MOIS-REC"}).status_code == 200
    assert server.search("mover", q="이동검사문서")["total"] == 0
    with server.client("mover") as c:
        assert c.get(f"/documents/{doc['id']}").status_code == 404


def test_delete_is_gone_from_search_at_once(server: Server, org: dict[str, str]) -> None:
    doc = server.upload("kim", "삭제예정문서".encode(), "d.txt", visibility="government")
    assert server.search("lee", q="삭제예정문서")["total"] == 1
    with server.client("kim") as c:
        assert c.delete(f"/documents/{doc['id']}").status_code == 204
    assert server.search("lee", q="삭제예정문서")["total"] == 0
    assert server.search("kim", q="삭제예정문서")["total"] == 0


def test_filters_facets_sort_and_paging(server: Server, org: dict[str, str]) -> None:
    word = "필터검사"
    made = [
        server.upload(
            "kim",
            f"{word} 문서 {i}".encode(),
            f"f{i}.txt",
            visibility="government",
            tags="예산" if i % 2 else "인사",
        )
        for i in range(5)
    ]
    made.append(server.upload("choi", f"{word} 복지".encode(), "c.txt", visibility="government"))
    r = server.search("lee", q=word)
    assert r["total"] == 6
    facets = {b["value"]: b["count"] for b in r["facets"]["ministry"]}
    assert facets == {"MOIS": 5, "MOHW": 1}
    assert server.search("lee", q=word, ministry="MOHW")["total"] == 1
    assert server.search("lee", q=word, department="MOIS-DX")["total"] == 5
    assert server.search("lee", q=word, tag="예산")["total"] == 2
    newest = server.search("lee", q=word, sort="newest")["hits"]
    assert newest[0]["id"] == made[-1]["id"]
    oldest = server.search("lee", q=word, sort="oldest")["hits"]
    assert oldest[0]["id"] == made[0]["id"]
    page1 = server.search("lee", q=word, sort="oldest", size=4, page=1)
    page2 = server.search("lee", q=word, sort="oldest", size=4, page=2)
    assert len(page1["hits"]) == 4 and len(page2["hits"]) == 2
    assert not ids(page1) & ids(page2)
    today = datetime.now(UTC).date()
    assert server.search("lee", q=word, **{"from": str(today - timedelta(days=1))})["total"] == 6
    assert server.search("lee", q=word, to=str(today - timedelta(days=2)))["total"] == 0


def test_out_of_range_paging_is_422(server: Server, org: dict[str, str]) -> None:
    with server.client("kim") as c:
        for paging in (
            {"size": 5000},
            {"size": 1000},
            {"size": 0},
            {"page": 0},
            {"page": -1},
            {"page": 10_001},
            {"page": 9999, "size": 100},
        ):
            r = c.get("/search", params={"q": "x", **paging})
            # Every invalid parameter is 422, out of range or not a number at all.
            assert r.status_code == 422, (paging, r.text)
            assert r.json()["error"]["code"] == "validation_error"
            korean, _, english = r.json()["error"]["message"].partition(" · ")
            assert re.search("[가-힣]", korean) and english.startswith(("page", "size"))
        assert c.get("/search", params={"q": "x", "page": "one"}).status_code == 422
        assert c.get("/search", params={"q": "x" * 2000}).status_code in (400, 422)
        assert c.get("/search", params={"q": "x", "from": "yesterday"}).status_code == 422


def test_blank_query_lists_readable_documents(server: Server, org: dict[str, str]) -> None:
    r = server.search(org["root"])
    assert r["total"] == 0
    r = server.search("kim", sort="newest")
    assert r["total"] > 0


def test_search_is_audited(server: Server, org: dict[str, str]) -> None:
    server.search("lee", q="감사추적검색어")
    import time

    deadline = time.monotonic() + 5  # the read-event queue flushes within a second
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        events = server.services.catalog.audit.page(
            AuditFilter(actor="lee", action="search"), limit=1000
        )
        if any(e.detail.get("q") == "감사추적검색어" for e in events):
            return
        time.sleep(0.1)
    raise AssertionError("search not audited")


def test_deep_pages_have_highlights(server: Server, org: dict[str, str]) -> None:
    word = "심층페이지"
    for i in range(6):
        server.upload("kim", f"{word} 보고서 {i}".encode(), f"p{i}.txt", visibility="government")
    page = server.search("lee", q=word, size=2, page=3, sort="oldest")
    assert len(page["hits"]) == 2
    assert all(any(f"<mark>{word}</mark>" in h for h in hit["highlights"]) for hit in page["hits"])


# -- suggestions as you type, and "did you mean" ----------------------------------------


def suggest(server: Server, username: str, q: str, **params: Any) -> list[str]:
    with server.client(username) as c:
        r = c.get("/suggest", params={"q": q, **params})
        assert r.status_code == 200, r.text
        return [s["text"] for s in r.json()["suggestions"]]


def test_suggestions_complete_korean_mid_syllable_and_by_initials(
    server: Server, org: dict[str, str]
) -> None:
    server.upload(
        "kim",
        "행정안전부는 지역사랑상품권 발행 지침을 시행한다.".encode(),
        "guide.txt",
        title="행정안전부 상품권 발행 지침",
        visibility="government",
    )
    for typed in ("행정안", "행정아", "ㅎㅈㅇㅈㅂ", "행정안전부"):
        found = suggest(server, org["choi"], typed)
        assert "행정안전부 상품권 발행 지침" in found, typed
        assert "행정안전부" in found, typed
    assert "지역사랑상품권" in suggest(server, org["choi"], "지역사")
    with server.client(org["choi"]) as c:
        assert c.get("/suggest", params={"q": "행", "limit": 0}).status_code == 422
        assert c.get("/suggest", params={"q": "가" * 101}).status_code == 422
        assert c.get("/suggest", params={"q": ""}).json()["suggestions"] == []
    with server.client() as anonymous:
        assert anonymous.get("/suggest", params={"q": "행정"}).status_code == 401


def test_suggestions_never_show_text_the_caller_may_not_read(
    server: Server, org: dict[str, str]
) -> None:
    doc = server.upload(
        "kim",
        "극비사항인 잠수함도입계획 검토".encode(),
        "secret.txt",
        title="잠수함도입계획 극비",
        visibility="private",
    )
    assert suggest(server, "kim", "잠수함")  # the owner completes it
    for typed in ("잠수함", "잠수", "ㅈㅅㅎ", "잠수함도"):
        assert suggest(server, org["choi"], typed) == [], typed
    # A grant shows it at once, a revocation hides it at once (no reindex wait).
    with server.client("kim") as c:
        grant = {"principal": "user:choi", "permission": "read"}
        r = c.put(f"/documents/{doc['id']}/acl", json={"visibility": "private", "grants": [grant]})
        assert r.status_code == 200
    assert "잠수함도입계획 극비" in suggest(server, org["choi"], "잠수함")
    with server.client("kim") as c:
        c.put(f"/documents/{doc['id']}/acl", json={"visibility": "private", "grants": []})
    assert suggest(server, org["choi"], "잠수함") == []
    server.wait_indexed("kim", doc["id"])
    assert suggest(server, org["choi"], "잠수함") == []


def test_did_you_mean_proposes_a_readable_term(server: Server, org: dict[str, str]) -> None:
    server.upload(
        "kim", "주민등록등본 발급 절차 안내".encode(), "cert.txt", visibility="government"
    )
    secret = server.upload(
        "kim", "주민등록초본 비공개 검토".encode(), "s.txt", visibility="private"
    )
    r = server.search(org["choi"], q="쥬민등록등본 발급")
    assert r["did_you_mean"] == "주민등록등본 발급"
    r = server.search(org["choi"], q="budgit")
    assert r["did_you_mean"] is None or "budget" in r["did_you_mean"]
    # Never a term only an unreadable document holds.
    assert server.search(org["choi"], q="주민등록쵸본")["did_you_mean"] != "주민등록초본"
    assert server.search("kim", q="주민등록쵸본")["did_you_mean"] == "주민등록초본"
    assert secret["id"]
    # Enough hits: no proposal.
    assert server.search(org["choi"], q="주민등록등본")["did_you_mean"] is None


def test_a_search_engine_gone_answers_503_and_readyz_says_so(
    server: Server, org: dict[str, str]
) -> None:
    index = server.services.index
    if not hasattr(index, "_client"):
        pytest.skip(
            "Elasticsearch/OpenSearch only: tests/api/test_faults.py covers the embedded index"
        )
    from tests.conftest import free_port

    live = index._client
    dead = f"http://127.0.0.1:{free_port()}"
    # Built as the adapter builds it, for an address where nothing listens.
    index._client = type(live)(dead, 2)  # type: ignore[call-arg]
    try:
        with server.client(org["kim"]) as c:
            r = c.get("/search", params={"q": "예산"})
            assert r.status_code == 503
            assert r.json()["error"]["code"] == "search_unavailable"
            assert c.get("/suggest", params={"q": "예산"}).status_code == 503
        with server.client() as anonymous:
            ready = anonymous.get("/readyz")
            assert ready.status_code == 503
            assert "search_index" in ready.json()["error"]["message"]
    finally:
        index._client = live
    with server.client() as anonymous:
        assert anonymous.get("/readyz").status_code == 200

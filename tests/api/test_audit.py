"""The audit log over HTTP: what is recorded, filters, paging, JSON Lines export, log injection."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD, Server

Event = dict[str, Any]


@pytest.fixture(scope="module")
def org(server: Server) -> dict[str, str]:
    return {
        "writer": server.user("writer", "MOIS-A"),
        "stranger": server.user("stranger", "MOHW-B", ministry="MOHW"),
        "inspector": server.user("inspector", None, roles=["member", "auditor"]),
    }


def events(server: Server, **params: Any) -> list[Event]:
    with server.client("inspector") as c:
        r = c.get("/admin/audit", params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    found: list[Event] = r.json()
    return found


def wait_for(
    server: Server, match: Callable[[Event], bool], timeout: float = 10, **params: Any
) -> Event:
    """The first event matching, waiting for batched (read) events to be flushed."""
    deadline = time.monotonic() + timeout
    while True:
        for event in events(server, **params):
            if match(event):
                return event
        if time.monotonic() > deadline:
            raise AssertionError(f"no matching audit event for {params}")
        time.sleep(0.1)


def test_sign_ins_are_recorded_with_the_reason_of_failure(
    server: Server, org: dict[str, str]
) -> None:
    url = f"{server.base_url}/api/v1/auth/token"
    assert httpx.post(url, data={"username": "writer", "password": PASSWORD}).status_code == 200
    assert httpx.post(url, data={"username": "writer", "password": "wrong-pass"}).status_code == 401
    assert httpx.post(url, data={"username": "nobody", "password": "wrong-pass"}).status_code == 401
    signs = events(server, action="sign_in", actor="writer")
    assert any(e["outcome"] == "ok" and e["address"] == "127.0.0.1" for e in signs)
    assert any(
        e["outcome"] == "denied" and e["detail"]["reason"] == "wrong_password" for e in signs
    )
    unknown = events(server, action="sign_in", actor="nobody", outcome="denied")
    assert unknown and unknown[-1]["detail"]["reason"] == "unknown_user"


def test_document_life_is_recorded(server: Server, org: dict[str, str]) -> None:
    doc = server.upload("writer", "감사 대상 문서 내용".encode(), "감사.txt")
    doc_id = doc["id"]
    with server.client("writer") as c:
        assert c.get(f"/documents/{doc_id}/content").status_code == 200
        r = c.put(f"/documents/{doc_id}/content", files={"file": ("감사2.txt", b"v2")})
        assert r.status_code == 202
        r = c.put(
            f"/documents/{doc_id}/acl",
            json={"visibility": "ministry", "grants": [{"principal": "user:stranger"}]},
        )
        assert r.status_code == 200
        assert c.get(f"/documents/{doc_id}/acl").status_code == 200
        assert c.delete(f"/documents/{doc_id}").status_code == 204
    wait_for(server, lambda e: e["action"] == "download", document=doc_id)
    wait_for(server, lambda e: e["action"] == "read" and not e["detail"], document=doc_id)
    trail = events(server, document=doc_id)
    actions = [e["action"] for e in trail]
    for action in ("upload", "new_version", "acl_change", "delete"):
        assert action in actions, (action, actions)
    upload = trail[actions.index("upload")]
    assert upload["actor"] == "writer" and upload["detail"]["filename"] == "감사.txt"
    acl = trail[actions.index("acl_change")]
    assert acl["detail"]["before"]["visibility"] == "department"
    assert acl["detail"]["after"]["grants"][0]["principal"] == "user:stranger"
    assert trail[actions.index("new_version")]["detail"]["version"] == 2


def test_searches_record_the_query_and_the_number_of_hits(
    server: Server, org: dict[str, str]
) -> None:
    server.upload("writer", "분기별 예산 편성 초안".encode(), "분기.txt", visibility="government")
    result = server.search("writer", q="예산")
    event = wait_for(
        server, lambda e: e["detail"].get("q") == "예산", action="search", actor="writer"
    )
    assert event["detail"]["total"] == result["total"] >= 1
    assert event["detail"]["hits"] == len(result["hits"])


def test_unreadable_documents_are_404_and_recorded_as_denied(
    server: Server, org: dict[str, str]
) -> None:
    doc = server.upload("writer", b"private note", "note.txt", visibility="private")
    missing = "0" * 32
    with server.client("stranger") as c:
        assert c.get(f"/documents/{doc['id']}").status_code == 404
        assert c.get(f"/documents/{doc['id']}/content").status_code == 404
        assert c.get(f"/documents/{missing}").status_code == 404
    denied = wait_for(
        server, lambda e: e["detail"].get("path", "").endswith("/content"), document=doc["id"]
    )
    assert denied["action"] == "denied" and denied["outcome"] == "denied"
    assert denied["actor"] == "stranger" and denied["detail"]["status"] == 404
    gone = wait_for(server, lambda e: e["actor"] == "stranger", document=missing)
    assert gone["outcome"] == "not_found"


def test_admin_endpoints_refuse_members_and_record_it(server: Server, org: dict[str, str]) -> None:
    with server.client("writer") as c:
        assert c.get("/admin/users").status_code == 403
        assert c.get("/admin/audit").status_code == 403
        r = c.post("/admin/ministries", json={"code": "EVIL", "name": "evil"})
        assert r.status_code == 403
    denied = events(server, actor="writer", action="denied")
    paths = {(e["target"], e["detail"]["method"]) for e in denied}
    assert ("/api/v1/admin/users", "GET") in paths
    assert ("/api/v1/admin/audit", "GET") in paths
    assert ("/api/v1/admin/ministries", "POST") in paths
    assert all(e["outcome"] == "denied" for e in denied)


def test_filters_by_outcome_and_time(server: Server, org: dict[str, str]) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    httpx.post(
        f"{server.base_url}/api/v1/auth/token",
        data={"username": "writer", "password": "again-wrong"},
    )
    recent = events(server, actor="writer", since=before.isoformat(), outcome="denied")
    assert recent and all(e["outcome"] == "denied" for e in recent)
    assert all(datetime.fromisoformat(e["at"]) >= before for e in recent)
    earlier = events(server, actor="writer", until=before.isoformat())
    assert earlier and all(datetime.fromisoformat(e["at"]) < before for e in earlier)
    assert not {e["id"] for e in earlier} & {e["id"] for e in recent}
    with server.client("inspector") as c:
        r = c.get("/admin/audit", params={"since": "2026-01-02", "until": "2026-01-01"})
        assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error")
        # A time without a zone is a Korean time.
        kst = (datetime.now(UTC) + timedelta(hours=9, minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
        assert c.get("/admin/audit", params={"since": kst}).json() == []


def test_paging_with_the_cursor(server: Server, org: dict[str, str]) -> None:
    everything = events(server)
    assert len(everything) > 10
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 4}
    with server.client("inspector") as c:
        while True:
            r = c.get("/admin/audit", params=params)
            assert r.status_code == 200
            page = r.json()
            seen += [e["id"] for e in page]
            cursor = r.headers.get("x-next-cursor")
            if cursor is None:
                assert len(page) < 4
                break
            assert int(cursor) == page[-1]["id"]
            assert 'rel="next"' in r.headers["link"]
            params = {"limit": 4, "after_id": cursor}
    assert seen[: len(everything)] == [e["id"] for e in everything]
    assert seen == sorted(set(seen))


def test_newest_first_paging_with_before_id(server: Server, org: dict[str, str]) -> None:
    oldest_first = [e["id"] for e in events(server)]
    assert len(oldest_first) > 10
    newest = oldest_first[-1]
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 4, "order": "desc"}
    with server.client("inspector") as c:
        while True:
            r = c.get("/admin/audit", params=params)
            assert r.status_code == 200, r.text
            page = r.json()
            seen += [e["id"] for e in page]
            cursor = r.headers.get("x-next-cursor")
            if cursor is None:
                assert len(page) < 4
                break
            assert int(cursor) == page[-1]["id"]
            assert "before_id=" + cursor in r.headers["link"] and 'rel="next"' in r.headers["link"]
            params = {"limit": 4, "order": "desc", "before_id": cursor}
        # Events recorded while paging are newer than the first page: not in `seen`.
        assert seen == sorted(set(seen), reverse=True)
        assert [i for i in seen if i <= newest] == oldest_first[::-1]
        # Both cursors bound the ids, in either order; the default order is unchanged.
        window = {"after_id": oldest_first[2], "before_id": oldest_first[6]}
        both = c.get("/admin/audit", params={**window, "order": "desc"}).json()
        assert [e["id"] for e in both] == oldest_first[3:6][::-1]
        default = c.get("/admin/audit", params=window).json()
        assert [e["id"] for e in default] == oldest_first[3:6]
        bad = c.get("/admin/audit", params={"order": "newest"})
        assert bad.status_code == 422 and "error" in bad.json()
        assert c.get("/admin/audit", params={"before_id": 0}).status_code == 422


def test_the_new_audit_parameters_are_documented(server: Server) -> None:
    schema = httpx.get(f"{server.base_url}/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/admin/audit"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert params["order"]["schema"]["enum"] == ["asc", "desc"]
    assert params["order"]["schema"]["default"] == "asc"
    assert "newest first" in params["order"]["description"]
    assert "before this id" in params["before_id"]["description"]
    assert {"400", "422"} <= set(operation["responses"])


def test_log_injection_is_stored_as_data_and_export_stays_one_record_a_line(
    server: Server, org: dict[str, str]
) -> None:
    evil_query = 'budget\n{"actor":"admin","action":"forged"}\x1b[2J\u2028x\r\n'
    evil_name = "report\r\n\x1b[31mFAKE\x1b[0m\u2029.txt"
    doc = server.upload("writer", b"injection test", evil_name)
    with server.client("writer") as c:
        assert c.get("/search", params={"q": evil_query}).status_code == 200
    wait_for(server, lambda e: "forged" in str(e["detail"].get("q")), action="search")

    with server.client("inspector") as c:
        r = c.get("/admin/audit/export", params={"actor": "writer"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/jsonl")
    assert r.headers["content-disposition"].startswith("attachment;")
    raw = r.content.decode("utf-8")
    assert "\x1b" not in raw and "\u2028" not in raw and "\u2029" not in raw and "\r" not in raw
    lines = raw.splitlines()  # splits on \r, \x1c-\x1e, \x85, \u2028, \u2029 too
    records = [json.loads(line) for line in lines]
    assert len(records) == raw.count("\n")
    assert all(r["actor"] == "writer" for r in records)
    assert not any(r["action"] == "forged" for r in records)
    searched = [r for r in records if r["action"] == "search" and "forged" in r["detail"]["q"]]
    assert searched[0]["detail"]["q"] == evil_query  # data kept exactly, only escaped
    uploads = [r for r in records if r["action"] == "upload" and r["target"] == doc["id"]]
    assert uploads and "\x1b" not in uploads[0]["detail"]["filename"]  # sanitised name
    ids = [r["id"] for r in records]
    assert ids == sorted(ids)
    assert all(len(r["hash"]) == 64 and len(r["prev_hash"]) == 64 for r in records)


def test_export_is_itself_audited_and_filtered(server: Server, org: dict[str, str]) -> None:
    with server.client("inspector") as c:
        r = c.get("/admin/audit/export", params={"action": "upload"})
    assert r.status_code == 200
    records = [json.loads(line) for line in r.text.splitlines()]
    assert records and {rec["action"] for rec in records} == {"upload"}
    exports = events(server, action="audit_export", actor="inspector")
    assert exports[-1]["detail"] == {"action": "upload"}
    with server.client("writer") as c:
        assert c.get("/admin/audit/export").status_code == 403


def test_the_chain_verifies_after_all_this(server: Server, org: dict[str, str]) -> None:
    ok, checked, problem = server.services.catalog.audit.verify_chain()
    assert ok, problem
    assert checked >= len(events(server))

"""Sharing that checks (a grantee must exist, an expiry must lie ahead) and the
directory members look grantees up in, over HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Server


@pytest.fixture(scope="module")
def org(server: Server) -> dict[str, str]:
    server.ensure_org("SHR", "SHR-REC")
    server.ensure_org("SHR", "SHR-POL")
    server.ensure_org("SHX", "SHX-HOUSE")
    with server.client("admin") as c:
        r = c.patch("/admin/ministries/SHX", json={"name": "주택공급부"})
        assert r.status_code == 200, r.text
        r = c.patch("/admin/departments/SHR-REC", json={"name": "기록관리과"})
        assert r.status_code == 200, r.text
    server.user("shr.kim", "SHR-REC", ministry="SHR")
    server.user("shr.lee", "SHR-POL", ministry="SHR")
    server.user("shr.park", "SHX-HOUSE", ministry="SHX")
    server.user("shr.gone", "SHX-HOUSE", ministry="SHX")
    with server.client("admin") as c:
        assert c.patch("/admin/users/shr.lee", json={"display_name": "이지영"}).status_code == 200
        assert c.delete("/admin/users/shr.gone").status_code == 204
    doc = server.upload("shr.kim", "기록 보존 계획".encode(), visibility="private", wait=False)
    return {"doc": doc["id"]}


def put_acl(server: Server, doc: str, grants: list[dict[str, Any]]) -> Any:
    with server.client("shr.kim") as c:
        return c.put(f"/documents/{doc}/acl", json={"visibility": "private", "grants": grants})


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


@pytest.mark.parametrize(
    ("principal", "words"),
    [
        ("user:nobody.here", "no such user nobody.here"),
        ("user:shr.gone", "no such user shr.gone"),  # deleted: no longer a grantee
        ("dept:XYZ", "no such department XYZ"),
        ("ministry:NOPE", "no such ministry NOPE"),
    ],
)
def test_a_grant_to_no_one_is_refused(
    server: Server, org: dict[str, str], principal: str, words: str
) -> None:
    r = put_acl(
        server,
        org["doc"],
        [{"principal": "user:shr.lee", "permission": "read"}, {"principal": principal}],
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "unknown_grantee"
    assert error["message"].startswith("grants[1].principal: ")
    assert words in error["message"] and "없습니다" in error["message"]
    with server.client("shr.kim") as c:  # nothing changed
        assert c.get(f"/documents/{org['doc']}/acl").json()["grants"] == []


def test_a_grant_ending_in_the_past_is_refused(server: Server, org: dict[str, str]) -> None:
    r = put_acl(
        server,
        org["doc"],
        [{"principal": "dept:SHR-POL", "permission": "read", "expires_at": later(hours=-1)}],
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "expired_grant"
    assert "이미 지난 시각" in r.json()["error"]["message"]
    assert "the expiry is in the past" in r.json()["error"]["message"]


def test_a_valid_acl_is_kept_and_an_expired_grant_it_still_holds_may_stay(
    server: Server, org: dict[str, str]
) -> None:
    soon = later(seconds=1.5)
    grants = [
        {"principal": "user:shr.lee", "permission": "write", "expires_at": later(days=7)},
        {"principal": "dept:SHR-POL", "permission": "read", "expires_at": soon},
        {"principal": "ministry:SHX", "permission": "read"},
    ]
    r = put_acl(server, org["doc"], grants)
    assert r.status_code == 200, r.text
    with server.client("shr.kim") as c:
        held = c.get(f"/documents/{org['doc']}/acl").json()["grants"]
    # Once the short grant has ended, the ACL as read back is accepted unchanged
    # (the ended grant counts for no one; the worker prunes it), but not as new.
    time.sleep(max(0.0, (datetime.fromisoformat(soon) - datetime.now(UTC)).total_seconds()) + 0.1)
    r = put_acl(server, org["doc"], held)
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:  # the worker pruned it in between: then it is new
        assert r.json()["error"]["code"] == "expired_grant"
    moved = [dict(g) for g in held]
    for g in moved:
        if g["principal"] == "dept:SHR-POL":
            g["permission"] = "write"  # changed: checked again
    r = put_acl(server, org["doc"], moved)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "expired_grant")


def test_members_look_up_names_and_codes_and_nothing_more(
    server: Server, org: dict[str, str]
) -> None:
    with server.client("shr.park") as c:
        r = c.get("/directory", params={"q": "shr."})
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["total"] == 3 and page["page"] == 1 and page["size"] == 20
        assert page["items"] == [
            {
                "kind": "user",
                "code": "shr.kim",
                "name": "shr.kim",
                "principal": "user:shr.kim",
                "department": "SHR-REC",
            },
            {
                "kind": "user",
                "code": "shr.lee",
                "name": "이지영",
                "principal": "user:shr.lee",
                "department": "SHR-POL",
            },
            {
                "kind": "user",
                "code": "shr.park",
                "name": "shr.park",
                "principal": "user:shr.park",
                "department": "SHX-HOUSE",
            },
        ]  # no roles, no state, and not the deleted user
        by_name = c.get("/directory", params={"q": "기록"}).json()["items"]
        assert [(e["principal"], e["name"]) for e in by_name] == [("dept:SHR-REC", "기록관리과")]
        by_code = c.get("/directory", params={"q": "shx", "kind": ["ministry", "dept"]}).json()
        assert [e["principal"] for e in by_code["items"]] == ["ministry:SHX", "dept:SHX-HOUSE"]
        assert by_code["items"][0]["name"] == "주택공급부"
        paged = c.get("/directory", params={"q": "SHR", "size": 1, "page": 2}).json()
        # Ministries, then departments, then users (whose names hold "shr" too).
        assert paged["total"] == 6 and [e["code"] for e in paged["items"]] == ["SHR-POL"]
        # The document's words are not in the directory.
        assert c.get("/directory", params={"q": "보존"}).json() == {
            "total": 0,
            "page": 1,
            "size": 20,
            "items": [],
        }
        for params in (
            {"size": 51},
            {"page": 0},
            {"page": 51, "size": 20},
            {"kind": "role"},
            {"q": "x" * 101},
        ):
            r = c.get("/directory", params=params)
            assert r.status_code == 422, (params, r.text)
            assert r.json()["error"]["code"] == "validation_error"
    with server.client() as c:
        assert c.get("/directory").status_code == 401


def test_the_directory_is_rate_limited_like_search(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from tests.conftest import start_server

    for limited in start_server(tmp_path_factory.mktemp("dir"), rate_search_per_user=2):
        limited.user("dir.kim", None)
        with limited.client("dir.kim") as c:
            assert c.get("/directory").status_code == 200
            assert c.get("/directory").status_code == 200
            r = c.get("/directory")
            assert r.status_code == 429 and "Retry-After" in r.headers

"""/admin/explain: the explanation's verdict equals enforcement, for every user and document."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Server


@pytest.fixture(scope="module")
def world(server: Server) -> dict[str, Any]:
    users = {
        "kim": server.user("kim", "MOIS-DX"),
        "lee": server.user("lee", "MOIS-DX"),
        "park": server.user("park", "MOIS-REC"),
        "choi": server.user("choi", "MOHW-POP", ministry="MOHW"),
        "moon": server.user("moon", "MOHW-POP", ministry="MOHW"),
        "boss": server.user("boss", "MOIS-DX", roles=["member", "dept_admin"]),
        "audit": server.user("audit", "MOHW-POP", roles=["member", "auditor"], ministry="MOHW"),
        "gone": server.user("gone", "MOIS-DX"),
        "admin": "admin",
    }
    tag = "t" + uuid.uuid4().hex[:8]
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    docs = {
        "private": server.upload("kim", b"a", visibility="private"),
        "department": server.upload("kim", b"b", visibility="department"),
        "ministry": server.upload("park", b"c", visibility="ministry"),
        "government": server.upload("choi", b"d", visibility="government"),
        "granted": server.upload(
            "kim",
            b"e",
            visibility="private",
            grants=[
                {"principal": "user:choi", "permission": "read"},
                {"principal": "user:admin", "permission": "read"},
                {"principal": "dept:MOIS-REC", "permission": "read", "expires_at": past},
            ],
        ),
        "policy": server.upload("moon", b"f", visibility="private", tags=tag),
        "lapsed": server.upload("moon", b"g", visibility="private", tags=tag + "x"),
    }
    with server.client("admin") as c:
        r = c.post(
            "/admin/policies",
            json={
                "name": "행안부 열람",
                "match": {"tag": tag},
                "grant": {"principal": "ministry:MOIS"},
            },
        )
        assert r.status_code == 201, r.text
        lapsed = c.post(
            "/admin/policies",
            json={
                "name": "지난 정책",
                "match": {"tag": tag + "x"},
                "grant": {"principal": "user:park"},
                "expires_at": past,
            },
        )
        assert lapsed.status_code == 201 and not lapsed.json()["active"]
        assert c.patch("/admin/users/gone", json={"disabled": True}).status_code == 200
    return {"users": users, "docs": docs, "policy": r.json()}


def explain_access(server: Server, caller: str, user: str, doc_id: str) -> dict[str, Any]:
    with server.client(caller) as c:
        r = c.get("/admin/explain/access", params={"user": user, "document": doc_id})
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result


def can_download(server: Server, user: str, doc_id: str) -> bool | None:
    """What enforcement says (None for a disabled user: refused before any document)."""
    if user == "gone":
        return False
    with server.client(user) as c:
        status = c.get(f"/documents/{doc_id}/content").status_code
    assert status in (200, 404)
    return status == 200


def test_for_every_user_the_explanation_is_what_is_enforced(
    server: Server, world: dict[str, Any]
) -> None:
    for name, doc in world["docs"].items():
        with server.client("audit") as c:
            r = c.get("/admin/explain/readers", params={"document": doc["id"]})
            assert r.status_code == 200, r.text
        readers = {u["username"] for u in r.json()["readers"]}
        assert r.json()["count"] == len(readers)
        for user in world["users"]:
            explained = explain_access(server, "admin", user, doc["id"])
            enforced = can_download(server, user, doc["id"])
            assert explained["allowed"] == enforced, (name, user, explained)
            assert (user in readers) == enforced, (name, user)
            if user == "gone":
                continue
            searched = server.search(user, q="", size=100)
            assert (doc["id"] in {h["id"] for h in searched["hits"]}) == enforced, (name, user)


def test_reasons_and_denials(server: Server, world: dict[str, Any]) -> None:
    docs = world["docs"]
    mine = explain_access(server, "audit", "kim", docs["private"]["id"])
    assert [s["kind"] for s in mine["because"]] == ["owner"]
    boss = explain_access(server, "audit", "boss", docs["private"]["id"])
    assert [s["kind"] for s in boss["because"]] == ["dept_admin"]
    assert "deptadmin:MOIS-DX" in boss["user_tokens"]
    lee = explain_access(server, "audit", "lee", docs["department"]["id"])
    assert lee["because"] == [
        {
            "kind": "visibility",
            "token": "dept:MOIS-DX",
            "permission": "read",
            "expires_at": None,
            "policy": None,
            "message": lee["because"][0]["message"],
        }
    ]
    via_policy = explain_access(server, "audit", "park", docs["policy"]["id"])
    assert via_policy["allowed"]
    (source,) = via_policy["because"]
    assert source["kind"] == "policy" and source["token"] == "ministry:MOIS"
    assert source["policy"] == {"id": world["policy"]["id"], "name": "행안부 열람"}
    expired = explain_access(server, "audit", "park", docs["lapsed"]["id"])
    assert not expired["allowed"]
    assert expired["denial"]["code"] == "no_matching_source"
    assert [(s["token"], s["kind"]) for s in expired["expired"]] == [("user:park", "policy")]
    root = explain_access(server, "audit", "admin", docs["government"]["id"])
    assert root["denial"]["code"] == "admin_without_grant"
    assert explain_access(server, "audit", "admin", docs["granted"]["id"])["allowed"]
    gone = explain_access(server, "audit", "gone", docs["government"]["id"])
    assert gone["denial"]["code"] == "user_disabled" and gone["user_tokens"] == []
    assert "title" not in mine["document"]  # explaining is not reading


def test_explain_answers_404_for_unknown_things_and_403_for_members(
    server: Server, world: dict[str, Any]
) -> None:
    doc_id = world["docs"]["private"]["id"]
    with server.client("admin") as c:
        assert (
            c.get(
                "/admin/explain/access", params={"user": "nobody", "document": doc_id}
            ).status_code
            == 404
        )
        assert c.get("/admin/explain/readers", params={"document": "f" * 32}).status_code == 404
    with server.client("kim") as c:
        assert (
            c.get("/admin/explain/access", params={"user": "kim", "document": doc_id}).status_code
            == 403
        )
    with server.client("admin") as c:
        events = c.get("/admin/audit", params={"action": "explain_readers"}).json()
        asked = c.get("/admin/audit", params={"action": "explain_access"}).json()
    assert events and events[-1]["actor"] in ("admin", "audit")
    assert "readers" in events[-1]["detail"]
    assert asked and {"user", "permission", "allowed"} <= set(asked[-1]["detail"])
    assert asked[-1]["detail"]["permission"] in ("read", "write", "manage")


def test_openapi_documents_the_explanations(server: Server) -> None:
    with server.client() as c:
        spec = c.get("/openapi.json").json()
    for path, model in (
        ("/api/v1/admin/explain/access", "AccessExplanationOut"),
        ("/api/v1/admin/explain/readers", "ReadersExplanationOut"),
        ("/api/v1/admin/policies", "PolicyOut"),
    ):
        ok = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert model in str(ok["schema"]), path
    assert "AccessSourceOut" in spec["components"]["schemas"]

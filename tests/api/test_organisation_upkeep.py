"""Organisation upkeep over HTTP: renaming ministries and departments, retiring them
(refused while anything refers to them, saying what to move first), moving users;
each change audited."""

from __future__ import annotations

from typing import Any

from tests.conftest import Server


def org_events(server: Server, target: str) -> list[dict[str, Any]]:
    with server.client("admin") as c:
        r = c.get("/admin/audit", params={"action": "org_change", "document": target})
        assert r.status_code == 200, r.text
        found: list[dict[str, Any]] = r.json()
    return found


def test_ministries_and_departments_are_renamed_and_audited(server: Server) -> None:
    server.ensure_org("upk", "upk-a")  # a typo: lowercase codes
    with server.client("admin") as c:
        r = c.patch("/admin/ministries/upk", json={"name": "업무부"})
        assert (r.status_code, r.json()) == (200, {"code": "upk", "name": "업무부"})
        r = c.patch("/admin/departments/upk-a", json={"name": "가과"})
        assert r.status_code == 200
        assert r.json() == {"code": "upk-a", "name": "가과", "ministry": "upk"}
        assert c.patch("/admin/ministries/NOPE", json={"name": "x"}).status_code == 404
        assert c.patch("/admin/departments/NOPE", json={"name": "x"}).status_code == 404
        r = c.patch("/admin/departments/upk-a", json={"name": ""})
        assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error")
        r = c.patch("/admin/departments/upk-a", json={"code": "UPK-A"})  # codes stay
        assert r.status_code == 422
        names = {d["code"]: d["name"] for d in c.get("/admin/departments").json()}
        assert names["upk-a"] == "가과"
    [renamed] = [e for e in org_events(server, "ministry:upk") if e["detail"]["op"] == "rename"]
    assert renamed["detail"] == {"op": "rename", "name": "업무부", "before": {"name": "upk"}}
    assert renamed["actor"] == "admin"


def test_a_department_retires_only_once_nothing_refers_to_it(server: Server) -> None:
    server.ensure_org("RET", "RET-OLD")
    server.ensure_org("RET", "RET-NEW")
    server.user("ret.kim", "RET-OLD")
    doc = server.upload("ret.kim", b"old department's record", wait=False)
    with server.client("admin") as c:
        r = c.delete("/admin/departments/RET-OLD")
        assert r.status_code == 409, r.text
        error = r.json()["error"]
        assert error["code"] == "in_use"
        assert "1 document(s), 1 user(s)" in error["message"]
        assert "문서 1건, 사용자 1명" in error["message"]
        assert "move or remove them first" in error["message"]
        r = c.delete("/admin/ministries/RET")
        assert r.status_code == 409
        assert "2 department(s)" in r.json()["error"]["message"]
        # Move the user; the document still names the department.
        r = c.patch("/admin/users/ret.kim", json={"department": "RET-NEW"})
        assert r.status_code == 200 and r.json()["department"] == "RET-NEW"
        r = c.delete("/admin/departments/RET-OLD")
        assert r.status_code == 409
        assert r.json()["error"]["message"].endswith(
            "department RET-OLD still has 1 document(s): move or remove them first"
        )
    # A department still named by a grant or a policy is refused too.
    server.ensure_org("RET", "RET-GRANTEE")
    acl = f"/documents/{doc['id']}/acl"
    with server.client("ret.kim") as c:  # the owner still manages it
        grants = [{"principal": "dept:RET-GRANTEE"}]
        r = c.put(acl, json={"visibility": "department", "grants": grants})
        assert r.status_code == 200, r.text
    with server.client("admin") as c:
        r = c.delete("/admin/departments/RET-GRANTEE")
        assert (r.status_code, r.json()["error"]["code"]) == (409, "in_use")
        assert "1 document grant(s)" in r.json()["error"]["message"]
    with server.client("ret.kim") as c:
        assert c.put(acl, json={"visibility": "department", "grants": []}).status_code == 200
    with server.client("admin") as c:
        r = c.post(
            "/admin/policies",
            json={"name": "p", "match": {"tag": "x"}, "grant": {"principal": "dept:RET-GRANTEE"}},
        )
        assert r.status_code == 201, r.text
        policy = r.json()["id"]
        r = c.delete("/admin/departments/RET-GRANTEE")
        assert (r.status_code, r.json()["error"]["code"]) == (409, "in_use")
        assert "1 access polic(ies)" in r.json()["error"]["message"]
        assert c.delete(f"/admin/policies/{policy}").status_code == 204
        assert c.delete("/admin/departments/RET-GRANTEE").status_code == 204
        assert c.delete("/admin/departments/RET-GRANTEE").status_code == 404
        codes = [d["code"] for d in c.get("/admin/departments").json()]
        assert "RET-GRANTEE" not in codes and "RET-OLD" in codes
    [retired] = [e for e in org_events(server, "dept:RET-GRANTEE") if e["detail"]["op"] == "retire"]
    assert retired["detail"] == {"op": "retire", "name": "RET-GRANTEE", "ministry": "RET"}


def test_a_department_with_folders_retires_once_they_are_deleted(server: Server) -> None:
    server.ensure_org("RETF", "RETF-A")
    server.user("retf.lee", "RETF-A")
    with server.client("retf.lee") as c:
        r = c.post("/folders", json={"name": "2026 예산"})
        assert r.status_code == 201, r.text
        folder = r.json()["id"]
    with server.client("admin") as c:
        for path in ("/admin/departments/RETF-A", "/admin/ministries/RETF"):
            r = c.delete(path)
            assert (r.status_code, r.json()["error"]["code"]) == (409, "in_use"), r.text
            assert "1 folder(s)" in r.json()["error"]["message"]
            assert "폴더 1개" in r.json()["error"]["message"]
    with server.client("retf.lee") as c:
        assert c.delete(f"/folders/{folder}").status_code == 204


def test_an_empty_ministry_retires_and_its_code_is_free_again(server: Server) -> None:
    server.ensure_org("typo", "typo-x")
    with server.client("admin") as c:
        assert c.delete("/admin/departments/typo-x").status_code == 204
        assert c.delete("/admin/ministries/typo").status_code == 204
        assert c.delete("/admin/ministries/typo").status_code == 404
        assert "typo" not in [m["code"] for m in c.get("/admin/ministries").json()]
        r = c.post("/admin/ministries", json={"code": "typo", "name": "다시"})
        assert r.status_code == 201
    assert [e["detail"]["op"] for e in org_events(server, "ministry:typo")] == [
        "create",
        "retire",
        "create",
    ]


def test_only_admins_rename_and_retire(server: Server) -> None:
    server.ensure_org("ONLY", "ONLY-A")
    server.user("only.boss", "ONLY-A", ["member", "dept_admin"])
    with server.client("only.boss") as c:
        for r in (
            c.patch("/admin/ministries/ONLY", json={"name": "x"}),
            c.patch("/admin/departments/ONLY-A", json={"name": "x"}),
            c.delete("/admin/departments/ONLY-A"),
            c.delete("/admin/ministries/ONLY"),
        ):
            assert r.status_code == 403, r.text

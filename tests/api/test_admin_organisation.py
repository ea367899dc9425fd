"""/admin organisation changes: their answers, errors and audit records (pinned
across the move of the logic into `services.organisation`)."""

from __future__ import annotations

from typing import Any

from tests.conftest import PASSWORD, Server


def _events(server: Server, target: str) -> list[dict[str, Any]]:
    with server.client("admin") as c:
        r = c.get("/admin/audit", params={"action": "org_change", "document": target})
        assert r.status_code == 200, r.text
        events: list[dict[str, Any]] = r.json()
    return events


def test_creating_the_organisation_answers_and_audits_each_change(server: Server) -> None:
    with server.client("admin") as c:
        r = c.post("/admin/ministries", json={"code": "ORGM", "name": "조직부"})
        assert (r.status_code, r.json()) == (201, {"code": "ORGM", "name": "조직부"})
        r = c.post("/admin/ministries", json={"code": "ORGM", "name": "다시"})
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "conflict"
        dept = {"code": "ORGM-A", "name": "가과", "ministry": "ORGM"}
        r = c.post("/admin/departments", json=dept)
        assert (r.status_code, r.json()) == (201, dept)
        r = c.post("/admin/departments", json={**dept, "code": "ORGM-B", "ministry": "NOPE"})
        assert r.status_code == 422
        assert r.json() == {
            "error": {
                "code": "validation_error",
                "message": "입력값이 올바르지 않습니다 · ministry: no ministry NOPE",
            }
        }
        user = {
            "username": "org.kim",
            "password": PASSWORD,
            "display_name": "김",
            "department": "ORGM-A",
            "roles": ["auditor"],
        }
        r = c.post("/admin/users", json=user)
        assert r.status_code == 201, r.text
        assert r.json() == {
            "username": "org.kim",
            "display_name": "김",
            "department": "ORGM-A",
            "ministry": "ORGM",
            "roles": ["auditor", "member"],
            "disabled": False,
        }
        r = c.post("/admin/users", json={**user, "username": "org.lee", "department": "ORGM-Z"})
        assert r.status_code == 422
        assert r.json()["error"] == {
            "code": "validation_error",
            "message": "입력값이 올바르지 않습니다 · department: no department ORGM-Z",
        }
    [ministry] = _events(server, "ministry:ORGM")
    assert ministry["detail"] == {"op": "create", "code": "ORGM", "name": "조직부"}
    [department] = _events(server, "dept:ORGM-A")
    assert department["detail"] == {"op": "create", **dept}
    assert _events(server, "dept:ORGM-B") == []
    [created] = _events(server, "user:org.kim")
    assert created["detail"] == {
        "op": "create",
        "department": "ORGM-A",
        "roles": ["auditor", "member"],
    }
    assert created["actor"] == "admin"
    assert _events(server, "user:org.lee") == []


def test_updating_a_user_answers_and_audits_the_change_with_what_was_before(
    server: Server,
) -> None:
    server.ensure_org("ORGU", "ORGU-A")
    server.ensure_org("ORGU", "ORGU-B")
    server.user("org.park", "ORGU-A")
    with server.client("admin") as c:
        r = c.patch(
            "/admin/users/org.park",
            json={"department": "ORGU-B", "roles": ["dept_admin"], "disabled": True},
        )
        assert r.status_code == 200, r.text
        assert r.json() == {
            "username": "org.park",
            "display_name": "org.park",
            "department": "ORGU-B",
            "ministry": "ORGU",
            "roles": ["dept_admin", "member"],
            "disabled": True,
        }
        r = c.patch("/admin/users/org.park", json={"department": "ORGU-Z"})
        assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error")
        r = c.patch("/admin/users/org.nobody", json={"disabled": False})
        assert r.status_code == 404
        assert r.json() == {
            "error": {"code": "not_found", "message": "찾을 수 없습니다 · user not found"}
        }
        r = c.patch("/admin/users/admin", json={"disabled": True})
        assert r.status_code == 409
        assert r.json()["error"] == {
            "code": "conflict",
            "message": "현재 상태와 맞지 않아 처리할 수 없습니다 · you cannot disable yourself",
        }
        r = c.patch("/admin/users/admin", json={"roles": ["auditor"]})
        assert r.status_code == 409
        assert r.json()["error"]["message"].endswith(" · you cannot remove your own admin role")
    [update] = [e for e in _events(server, "user:org.park") if e["detail"]["op"] == "update"]
    assert update["detail"] == {
        "op": "update",
        "department": "ORGU-B",
        "roles": ["dept_admin"],
        "disabled": True,
        "before": {"department": "ORGU-A", "roles": ["member"], "disabled": False},
    }
    assert [e for e in _events(server, "user:admin") if e["detail"]["op"] == "update"] == []

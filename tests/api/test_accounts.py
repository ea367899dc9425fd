"""Accounts over HTTP: one's own password change, an administrator's reset (a forced
change at next sign-in), unlocking a sign-in lockout, disabled users told so only
after the right password, and `dept_admin`s managing their own department's members."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD, Server, start_server

NEW_PASSWORD = "a-brand-new-password"


@pytest.fixture(scope="module")
def server(stack: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Rate limits on, with a small lockout (3 failures) to reach it quickly."""
    del stack  # a dependency only: started again for each stack (tests/api/conftest.py)
    yield from start_server(
        tmp_path_factory.mktemp("accounts"),
        rate_limits=True,
        rate_sign_in_failures_per_user=3,
    )


def sign_in(server: Server, username: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/v1/auth/token",
        data={"username": username, "password": password},
        timeout=30,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def events(server: Server, action: str, target: str) -> list[dict[str, Any]]:
    with server.client("admin") as c:
        r = c.get("/admin/audit", params={"action": action, "document": target})
        assert r.status_code == 200, r.text
        found: list[dict[str, Any]] = r.json()
    return found


def test_a_user_changes_their_own_password_and_every_old_session_ends(server: Server) -> None:
    server.user("acc.kim", "ACC-A", ministry="ACC")
    first = sign_in(server, "acc.kim", PASSWORD).json()
    other = sign_in(server, "acc.kim", PASSWORD).json()
    with server.client() as c:
        r = c.post(
            "/auth/password",
            json={"current_password": "wrong-password", "new_password": NEW_PASSWORD},
            headers=bearer(first["access_token"]),
        )
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "wrong_current_password"
        r = c.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": "short"},
            headers=bearer(first["access_token"]),
        )
        assert (r.status_code, r.json()["error"]["code"]) == (422, "weak_password")
        r = c.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": PASSWORD},
            headers=bearer(first["access_token"]),
        )
        assert (r.status_code, r.json()["error"]["code"]) == (422, "same_password")
        r = c.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(first["access_token"]),
        )
        assert r.status_code == 200, r.text
        fresh = r.json()
        assert fresh["password_change_required"] is False
        # Every token issued before (this session's and the other one's) is revoked.
        for token in (first["access_token"], other["access_token"]):
            assert c.get("/me", headers=bearer(token)).status_code == 401
        r = c.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
        assert r.status_code == 401
        assert c.get("/me", headers=bearer(fresh["access_token"])).status_code == 200
    assert sign_in(server, "acc.kim", PASSWORD).status_code == 401
    assert sign_in(server, "acc.kim", NEW_PASSWORD).status_code == 200
    outcomes = [e["outcome"] for e in events(server, "password_change", "user:acc.kim")]
    assert outcomes == ["denied", "ok"]


def test_an_admin_reset_forces_a_change_before_anything_else(server: Server) -> None:
    server.user("acc.lee", "ACC-A", ministry="ACC")
    before = sign_in(server, "acc.lee", PASSWORD).json()["access_token"]
    with server.client("admin") as c:
        r = c.post("/admin/users/acc.lee/password")
        assert r.status_code == 200, r.text
        reset = r.json()
        assert reset["username"] == "acc.lee" and reset["password_change_required"] is True
        one_time = reset["password"]
        assert isinstance(one_time, str) and len(one_time) >= 12
        [listed] = [u for u in c.get("/admin/users").json() if u["username"] == "acc.lee"]
        assert listed["password_change_required"] is True
    with server.client() as c:
        assert c.get("/me", headers=bearer(before)).status_code == 401  # signed out
    assert sign_in(server, "acc.lee", PASSWORD).status_code == 401
    r = sign_in(server, "acc.lee", one_time)
    assert r.status_code == 200, r.text
    limited = r.json()
    assert limited["password_change_required"] is True
    with server.client() as c:
        me = c.get("/me", headers=bearer(limited["access_token"]))
        assert me.status_code == 200 and me.json()["password_change_required"] is True
        for path in ("/search?q=x", "/suggest?q=x", "/admin/users", "/directory"):
            r = c.get(path, headers=bearer(limited["access_token"]))
            assert r.status_code == 403, (path, r.text)
            assert r.json()["error"]["code"] == "password_change_required"
        r = c.post(
            "/documents",
            files={"file": ("a.txt", b"x")},
            headers=bearer(limited["access_token"]),
        )
        assert (r.status_code, r.json()["error"]["code"]) == (403, "password_change_required")
        # Refreshing keeps the limit.
        r = c.post("/auth/refresh", json={"refresh_token": limited["refresh_token"]})
        assert r.status_code == 200 and r.json()["password_change_required"] is True
        token = r.json()["access_token"]
        r = c.post(
            "/auth/password",
            json={"current_password": one_time, "new_password": NEW_PASSWORD},
            headers=bearer(token),
        )
        assert r.status_code == 200, r.text
        assert r.json()["password_change_required"] is False
        assert c.get("/search?q=x", headers=bearer(r.json()["access_token"])).status_code == 200
    [event] = events(server, "password_reset", "user:acc.lee")
    assert event["actor"] == "admin"
    assert event["detail"] == {"generated": True, "must_change_password": True}
    assert one_time not in str(event)
    [change] = events(server, "password_change", "user:acc.lee")
    assert change["detail"] == {"forced": True}


def test_an_admin_reset_with_a_chosen_password_follows_the_policy(server: Server) -> None:
    server.user("acc.han", "ACC-A", ministry="ACC")
    with server.client("admin") as c:
        r = c.post("/admin/users/acc.han/password", json={"password": "short"})
        assert (r.status_code, r.json()["error"]["code"]) == (422, "weak_password")
        r = c.post("/admin/users/acc.han/password", json={"password": "chosen-by-admin"})
        assert r.status_code == 200, r.text
        assert r.json() == {
            "username": "acc.han",
            "password": None,
            "password_change_required": True,
        }
        assert c.post("/admin/users/acc.nobody/password").status_code == 404
    assert sign_in(server, "acc.han", "chosen-by-admin").json()["password_change_required"]


def test_a_locked_out_user_is_unlocked_by_an_admin_or_by_a_reset(server: Server) -> None:
    server.user("acc.park", "ACC-A", ministry="ACC")
    for _ in range(3):
        assert sign_in(server, "acc.park", "wrong-password").status_code == 401
    r = sign_in(server, "acc.park", PASSWORD)
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_requests"
    with server.client("admin") as c:
        r = c.post("/admin/users/acc.park/unlock")
        assert r.status_code == 200, r.text
        assert r.json() == {"username": "acc.park", "was_locked": True}
        assert c.post("/admin/users/acc.park/unlock").json()["was_locked"] is False
    assert sign_in(server, "acc.park", PASSWORD).status_code == 200
    # Locked again; a password reset lifts it too (the bucket is keyed by the password).
    for _ in range(3):
        sign_in(server, "acc.park", "wrong-password")
    assert sign_in(server, "acc.park", PASSWORD).status_code == 429
    with server.client("admin") as c:
        one_time = c.post("/admin/users/acc.park/password").json()["password"]
    assert sign_in(server, "acc.park", one_time).status_code == 200
    unlocks = events(server, "unlock", "user:acc.park")
    assert [e["detail"] for e in unlocks] == [{"was_locked": True}, {"was_locked": False}]


def test_a_disabled_user_is_told_so_only_after_the_right_password(server: Server) -> None:
    server.user("acc.choi", "ACC-A", ministry="ACC")
    with server.client("admin") as c:
        assert c.patch("/admin/users/acc.choi", json={"disabled": True}).status_code == 200
    wrong = sign_in(server, "acc.choi", "wrong-password")
    nobody = sign_in(server, "acc.nobody.here", "wrong-password")
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() == nobody.json()  # a wrong guess says nothing about the name
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    right = sign_in(server, "acc.choi", PASSWORD)
    assert right.status_code == 401
    assert right.json()["error"]["code"] == "account_disabled"
    assert "사용이 중지된 계정" in right.json()["error"]["message"]
    assert "disabled" in right.json()["error"]["message"]
    reasons = [e["detail"]["reason"] for e in events(server, "sign_in", "acc.choi")]
    assert reasons == ["wrong_password", "disabled"]


def test_a_user_deleted_keeps_their_documents_and_their_name(server: Server) -> None:
    server.user("acc.yoon", "ACC-A", ministry="ACC")
    server.user("acc.boss", "ACC-A", ["member", "dept_admin"], ministry="ACC")
    doc = server.upload("acc.yoon", b"yoon's report", visibility="department", wait=False)
    with server.client("admin") as c:
        assert c.delete("/admin/users/admin").status_code == 409  # not oneself
        r = c.delete("/admin/users/acc.yoon")
        assert r.status_code == 204, r.text
        assert c.delete("/admin/users/acc.yoon").status_code == 404
        assert c.patch("/admin/users/acc.yoon", json={"disabled": False}).status_code == 404
        names = [u["username"] for u in c.get("/admin/users").json()]
        assert "acc.yoon" not in names
        everyone = c.get("/admin/users", params={"include_deleted": True}).json()
        [gone] = [u for u in everyone if u["username"] == "acc.yoon"]
        assert gone["deleted"] is True and gone["disabled"] is True
        # The name stays taken: grants and the audit log name it.
        r = c.post(
            "/admin/users",
            json={"username": "acc.yoon", "password": PASSWORD, "display_name": "x"},
        )
        assert r.status_code == 409
    assert sign_in(server, "acc.yoon", PASSWORD).json()["error"]["code"] == "account_disabled"
    with server.client("acc.boss") as c:  # the department keeps the document
        assert c.get(f"/documents/{doc['id']}").status_code == 200
    [deleted] = [
        e for e in events(server, "org_change", "user:acc.yoon") if e["detail"]["op"] == "delete"
    ]
    assert deleted["actor"] == "admin"


def test_a_dept_admin_manages_their_own_departments_members_only(server: Server) -> None:
    server.user("dx.boss", "ACCX-A", ["member", "dept_admin"], ministry="ACCX")
    server.user("dx.kim", "ACCX-A", ministry="ACCX")
    server.user("dx.audit", "ACCX-A", ["member", "auditor"], ministry="ACCX")
    server.user("dx.other", "ACCX-B", ministry="ACCX")
    with server.client("dx.boss") as c:
        listed = {u["username"] for u in c.get("/admin/users").json()}
        assert listed == {"dx.boss", "dx.kim", "dx.audit"}
        r = c.post(
            "/admin/users",
            json={
                "username": "dx.new",
                "password": PASSWORD,
                "display_name": "신입",
                "department": "ACCX-A",
            },
        )
        assert r.status_code == 201, r.text
        r = c.patch(
            "/admin/users/dx.kim", json={"display_name": "김 주무관", "roles": ["dept_admin"]}
        )
        assert r.status_code == 200, r.text
        assert r.json()["display_name"] == "김 주무관"
        assert c.post("/admin/users/dx.new/password").status_code == 200
        assert c.post("/admin/users/dx.new/unlock").status_code == 200
        assert c.patch("/admin/users/dx.kim", json={"disabled": True}).status_code == 200
        assert c.delete("/admin/users/dx.new").status_code == 204
        refused = [
            c.patch("/admin/users/dx.other", json={"disabled": True}),  # another department
            c.post("/admin/users/dx.other/password"),
            c.post("/admin/users/dx.other/unlock"),
            c.delete("/admin/users/dx.other"),
            c.patch("/admin/users/dx.audit", json={"disabled": True}),  # an auditor
            c.post("/admin/users/dx.audit/password"),
            c.patch("/admin/users/dx.kim", json={"roles": ["admin"]}),  # escalation
            c.patch("/admin/users/dx.kim", json={"department": "ACCX-B"}),  # moved out
            c.post(
                "/admin/users",
                json={
                    "username": "dx.elsewhere",
                    "password": PASSWORD,
                    "display_name": "x",
                    "department": "ACCX-B",
                },
            ),
            c.post(
                "/admin/users",
                json={
                    "username": "dx.root",
                    "password": PASSWORD,
                    "display_name": "x",
                    "department": "ACCX-A",
                    "roles": ["admin"],
                },
            ),
            c.post("/admin/ministries", json={"code": "NOPE", "name": "x"}),
            c.patch("/admin/departments/ACCX-A", json={"name": "x"}),
        ]
        for r in refused:
            assert r.status_code == 403, (r.request.method, r.request.url, r.text)
            assert r.json()["error"]["code"] == "forbidden"
    with server.client("admin") as c:
        users = {u["username"]: u for u in c.get("/admin/users").json()}
    assert users["dx.other"]["disabled"] is False
    assert users["dx.audit"]["disabled"] is False
    assert users["dx.kim"]["roles"] == ["dept_admin", "member"]
    assert users["dx.kim"]["department"] == "ACCX-A"
    assert "dx.elsewhere" not in users and "dx.root" not in users
    denied = events(server, "denied", "user:dx.other")
    assert {e["detail"]["op"] for e in denied} == {"update", "password_reset", "unlock", "delete"}
    assert all(e["actor"] == "dx.boss" for e in denied)
    # A member who is no dept_admin reaches none of it.
    with server.client("dx.other") as c:
        assert c.get("/admin/users").status_code == 403


def test_the_admin_password_on_restart_is_not_applied_and_says_how_to_reset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "restart"
    for _ in start_server(data):
        pass  # first start: `admin` made with the tests' password
    with caplog.at_level("WARNING"):
        for restarted in start_server(data, admin_password="another-admin-password"):
            assert sign_in(restarted, "admin", "another-admin-password").status_code == 401
    warned = [r.getMessage() for r in caplog.records if "CROSSDOC_ADMIN_PASSWORD" in r.getMessage()]
    assert warned and "crossdoc users reset-password admin" in warned[0]


def crossdoc(
    data_dir: Path, *args: str, stdin: str = "", engines: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A command on the server's data dir and `engines` (its `engine_env` on the full stack)."""
    env = dict(os.environ, CROSSDOC_DATA_DIR=str(data_dir), **(engines or {}))
    return subprocess.run(
        [sys.executable, "-m", "crossdoc", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_lost_admin_password_is_recovered_at_the_command_line(tmp_path: Path) -> None:
    """Beside the running server: a locked-out admin gets a one-time password."""
    for running in start_server(tmp_path, rate_limits=True, rate_sign_in_failures_per_user=3):
        data = tmp_path / "data"
        for _ in range(3):
            assert sign_in(running, "admin", "forgotten-password").status_code == 401
        assert sign_in(running, "admin", "forgotten-password").status_code == 429
        r = crossdoc(data, "users", "reset-password", "admin", engines=running.engine_env)
        assert r.returncode == 0, r.stderr
        one_time = r.stdout.strip()
        assert len(one_time) >= 12 and "\n" not in one_time
        assert "one-time password" in r.stderr
        # The lockout ends with the reset (the failure bucket is keyed by the password).
        r = sign_in(running, "admin", one_time)
        assert r.status_code == 200, r.text
        assert r.json()["password_change_required"] is True
        # An operator may choose the password instead (no change forced then).
        r = crossdoc(
            data,
            "users",
            "reset-password",
            "admin",
            "--password-stdin",
            stdin="x\n",
            engines=running.engine_env,
        )
        assert r.returncode == 2 and "password" in r.stderr
        chosen = "chosen-at-the-console"
        r = crossdoc(
            data,
            "users",
            "reset-password",
            "admin",
            "--password-stdin",
            stdin=chosen,
            engines=running.engine_env,
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout == ""
        r = sign_in(running, "admin", chosen)
        assert r.status_code == 200 and r.json()["password_change_required"] is False
        r = crossdoc(data, "users", "reset-password", "nobody.here", engines=running.engine_env)
        assert r.returncode == 1 and "no such user" in r.stderr
        running.tokens["admin"] = sign_in(running, "admin", chosen).json()["access_token"]
        resets = events(running, "password_reset", "user:admin")
        assert [(e["actor"], e["detail"]) for e in resets] == [
            ("system", {"generated": True, "must_change_password": True, "via": "cli"}),
            ("system", {"generated": False, "must_change_password": False, "via": "cli"}),
        ]

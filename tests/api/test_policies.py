"""Organisation changes, grants and access policies take effect in the very next request.

Each case is checked in search (hits and total) and in download, with the same,
unexpired token. Where it matters, the indexing worker is held back, so the
index still says the old thing and the answer must come from the catalog.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from indexer.worker import InProcessWorker
from tests.conftest import Server


@pytest.fixture(scope="module")
def org(server: Server) -> dict[str, str]:
    return {
        "kim": server.user("kim", "MOIS-DX"),
        "lee": server.user("lee", "MOIS-DX"),
        "park": server.user("park", "MOIS-REC"),
        "choi": server.user("choi", "MOHW-POP", ministry="MOHW"),
        "moon": server.user("moon", "MOHW-POP", ministry="MOHW"),
        "boss": server.user("boss", "MOIS-DX", roles=["member", "dept_admin"]),
        "audit": server.user("audit", "MOIS-REC", roles=["member", "auditor"]),
        "root": "admin",
    }


def word() -> str:
    """A query word no other test's document contains."""
    return "w" + uuid.uuid4().hex[:12]


def found(server: Server, user: str, q: str) -> set[str]:
    result = server.search(user, q=q)
    assert result["total"] == len(result["hits"])
    return {h["id"] for h in result["hits"]}


def download(server: Server, user: str, doc_id: str) -> int:
    with server.client(user) as c:
        return c.get(f"/documents/{doc_id}/content").status_code


def admin(server: Server) -> Any:
    return server.client("admin")


def caught_up(server: Server, timeout: float = 60) -> None:
    """Wait until the index reflects every access change and policy."""
    catalog = server.services.catalog
    deadline = time.monotonic() + timeout
    while (
        catalog.documents.stale_access_ids()
        or catalog.outbox.due_ids()
        or catalog.policies.fanout_backlog()
        or catalog.policies.pending_ids()
    ):
        assert time.monotonic() < deadline, "the index did not catch up"
        time.sleep(0.05)


@contextmanager
def worker_held(server: Server) -> Iterator[None]:
    """Stop the indexing worker: the index keeps its old readers meanwhile."""
    if server.worker is not None:  # the full stack's `crossdoc worker` process: frozen
        server.worker.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            server.worker.process.send_signal(signal.SIGCONT)
        return
    worker = server.services.dispatcher
    assert isinstance(worker, InProcessWorker)
    worker.stop()
    try:
        yield
    finally:
        worker.start()


def test_a_revoked_grant_counts_in_the_next_search_and_download(
    server: Server, org: dict[str, str]
) -> None:
    w = word()
    doc = server.upload(
        "kim",
        w.encode(),
        visibility="private",
        grants=[{"principal": "user:choi", "permission": "read"}],
    )
    caught_up(server)
    assert found(server, "choi", w) == {doc["id"]}
    assert download(server, "choi", doc["id"]) == 200
    with worker_held(server), server.client("kim") as c:
        r = c.put(f"/documents/{doc['id']}/acl", json={"visibility": "private", "grants": []})
        assert r.status_code == 200, r.text
        assert found(server, "choi", w) == set()
        assert download(server, "choi", doc["id"]) == 404
    caught_up(server)
    assert found(server, "choi", w) == set()


def test_a_moved_user_loses_the_old_department_at_once(server: Server, org: dict[str, str]) -> None:
    mover = server.user("mover", "MOIS-DX")
    w = word()
    old_dept = server.upload("kim", w.encode(), "old.txt", visibility="department")
    new_dept = server.upload("choi", w.encode(), "new.txt", visibility="department")
    assert found(server, mover, w) == {old_dept["id"]}
    assert download(server, mover, old_dept["id"]) == 200
    with admin(server) as c:
        r = c.patch(f"/admin/users/{mover}", json={"department": "MOHW-POP"})
        assert r.status_code == 200, r.text
        assert (r.json()["department"], r.json()["ministry"]) == ("MOHW-POP", "MOHW")
    # The same token as before the move:
    assert found(server, mover, w) == {new_dept["id"]}
    assert download(server, mover, old_dept["id"]) == 404
    assert download(server, mover, new_dept["id"]) == 200
    with server.client(mover) as c:
        assert c.get("/me").json()["department"] == "MOHW-POP"
    with admin(server) as c:
        events = c.get("/admin/audit", params={"action": "org_change"}).json()
    change = [e for e in events if e["target"] == f"user:{mover}" and e["detail"]["op"] == "update"]
    assert change[-1]["detail"]["before"]["department"] == "MOIS-DX"
    assert change[-1]["detail"]["department"] == "MOHW-POP"


def test_a_disabled_user_is_refused_at_once(server: Server, org: dict[str, str]) -> None:
    leaver = server.user("leaver", "MOIS-DX")
    w = word()
    doc = server.upload("kim", w.encode(), visibility="government")
    assert found(server, leaver, w) == {doc["id"]}
    with admin(server) as c:
        assert c.patch(f"/admin/users/{leaver}", json={"disabled": True}).status_code == 200
    with server.client(leaver) as c:
        assert c.get("/search", params={"q": w}).status_code == 401
        assert c.get(f"/documents/{doc['id']}/content").status_code == 401
        assert c.get(f"/documents/{doc['id']}").status_code == 401
    with admin(server) as c:
        assert c.patch(f"/admin/users/{leaver}", json={"disabled": False}).status_code == 200
    # Disabling revoked the old token for good; signed in again, the user reads again.
    with server.client(leaver) as c:
        assert c.get("/search", params={"q": w}).status_code == 401
    del server.tokens[leaver]
    assert found(server, leaver, w) == {doc["id"]}


def test_admins_cannot_lock_themselves_out(server: Server, org: dict[str, str]) -> None:
    with admin(server) as c:
        assert c.patch("/admin/users/admin", json={"disabled": True}).status_code == 409
        assert c.patch("/admin/users/admin", json={"roles": ["member"]}).status_code == 409
        assert c.patch("/admin/users/nobody", json={"disabled": True}).status_code == 404
        r = c.patch("/admin/users/lee", json={"department": "NO-SUCH"})
        assert r.status_code == 422


def policy(
    server: Server, name: str, match: dict[str, str], principal: str, **extra: Any
) -> dict[str, Any]:
    with admin(server) as c:
        r = c.post(
            "/admin/policies",
            json={"name": name, "match": match, "grant": {"principal": principal}, **extra},
        )
        assert r.status_code == 201, r.text
        created: dict[str, Any] = r.json()
        return created


def test_a_new_policy_is_found_by_the_grantee_in_the_next_search(
    server: Server, org: dict[str, str]
) -> None:
    w, tag = word(), word()
    tagged = server.upload("kim", w.encode(), "t.txt", visibility="private", tags=tag)
    other = server.upload("kim", w.encode(), "o.txt", visibility="private")
    assert found(server, "choi", w) == set()
    with worker_held(server):
        created = policy(server, "보건부 협조", {"tag": tag}, "dept:MOHW-POP")
        assert created["affected_documents"] == 1 and created["active"]
        # The index does not list dept:MOHW-POP yet; the catalog decides.
        assert found(server, "choi", w) == {tagged["id"]}
        assert download(server, "moon", tagged["id"]) == 200
        assert download(server, "choi", other["id"]) == 404
        assert found(server, "park", w) == set()
    caught_up(server)
    assert found(server, "choi", w) == {tagged["id"]}
    # Future documents are covered too.
    later = server.upload("lee", w.encode(), "later.txt", visibility="private", tags=tag)
    assert found(server, "choi", w) == {tagged["id"], later["id"]}


def test_a_deleted_policy_counts_in_the_next_search_and_download(
    server: Server, org: dict[str, str]
) -> None:
    w = word()
    doc = server.upload("park", w.encode(), visibility="department")
    created = policy(server, "기록관리 공유", {"department": "MOIS-REC"}, "user:choi")
    caught_up(server)  # the index now lists user:choi as a reader
    assert doc["id"] in found(server, "choi", w)
    with worker_held(server), admin(server) as c:
        assert c.delete(f"/admin/policies/{created['id']}").status_code == 204
        assert found(server, "choi", w) == set()
        assert download(server, "choi", doc["id"]) == 404
        assert found(server, "park", w) == {doc["id"]}  # not the owner's access
    caught_up(server)
    assert found(server, "choi", w) == set()
    with admin(server) as c:
        assert c.get(f"/admin/policies/{created['id']}").status_code == 404
        events = c.get("/admin/audit", params={"document": f"policy:{created['id']}"}).json()
    assert [e["action"] for e in events] == ["policy_create", "policy_delete"]
    assert events[0]["detail"]["principal"] == "user:choi"


def test_a_new_policy_inherits_nothing_from_a_deleted_one(
    server: Server, org: dict[str, str]
) -> None:
    """The outside probe's leak: the deleted policy's tokens, still in the index, must not
    count for a policy created after it (SQLite used to hand out the same id again, and
    generations restart at 1), not even in totals and facets."""
    w = word()
    docs = [server.upload("kim", w.encode(), f"c{i}.txt", visibility="private") for i in range(3)]
    p1 = policy(server, "보건부 열람", {"department": "MOIS-DX"}, "dept:MOHW-POP")
    caught_up(server)  # the index now carries p1's token on kim's three documents
    assert found(server, "choi", w) == {d["id"] for d in docs}
    with admin(server) as c:
        assert c.delete(f"/admin/policies/{p1['id']}").status_code == 204
    # Unrelated: MOHW-POP's documents, to kim's ministry (park is in it, not in MOIS-DX).
    p2 = policy(server, "행안부 열람", {"department": "MOHW-POP"}, "ministry:MOIS")
    reused = p2["id"] == p1["id"]  # checked last: the leak it caused is the point

    def nothing_for(user: str) -> None:
        result = server.search(user, q=w)
        departments = {b["value"]: b["count"] for b in result["facets"]["department"]}
        assert (result["total"], result["hits"], departments) == (0, [], {}), result

    nothing_for("park")  # p2's fan-out still pending: its match decides too
    nothing_for("choi")
    caught_up(server)
    nothing_for("park")
    nothing_for("choi")
    assert {download(server, u, d["id"]) for u in ("park", "choi") for d in docs} == {404}
    assert found(server, "lee", w) == set()
    assert found(server, "kim", w) == {d["id"] for d in docs}
    with admin(server) as c:  # p2 would reach other tests' MOHW-POP documents
        assert c.delete(f"/admin/policies/{p2['id']}").status_code == 204
    assert not reused, f"policy id {p1['id']} was handed out again"


def test_changing_a_policy_moves_its_grant_at_once(server: Server, org: dict[str, str]) -> None:
    w, tag_a, tag_b = word(), word(), word()
    a = server.upload("kim", w.encode(), "a.txt", visibility="private", tags=tag_a)
    b = server.upload("kim", w.encode(), "b.txt", visibility="private", tags=tag_b)
    created = policy(server, "변경 전", {"tag": tag_a}, "user:park")
    caught_up(server)
    assert found(server, "park", w) == {a["id"]}
    with worker_held(server), admin(server) as c:
        r = c.patch(f"/admin/policies/{created['id']}", json={"match": {"tag": tag_b}})
        assert r.status_code == 200, r.text
        assert r.json()["affected_documents"] == 1
        assert found(server, "park", w) == {b["id"]}
        assert download(server, "park", a["id"]) == 404
        r = c.patch(f"/admin/policies/{created['id']}", json={"grant": {"principal": "user:moon"}})
        assert r.status_code == 200, r.text
        assert found(server, "park", w) == set()
        assert found(server, "moon", w) == {b["id"]}
    caught_up(server)
    assert found(server, "moon", w) == {b["id"]}
    # A tag taken off the document takes the policy's grant with it.
    with server.client("kim") as c:
        assert c.patch(f"/documents/{b['id']}", json={"tags": []}).status_code == 200
    assert found(server, "moon", w) == set()
    assert download(server, "moon", b["id"]) == 404


def test_a_policy_ends_at_its_expiry(server: Server, org: dict[str, str]) -> None:
    w = word()
    doc = server.upload("choi", w.encode(), visibility="private", tags="임시")
    expires = datetime.now(UTC) + timedelta(seconds=3)
    created = policy(
        server,
        "기한부",
        {"ministry": "MOHW", "tag": "임시"},
        "user:lee",
        expires_at=expires.isoformat(),
    )
    caught_up(server)
    assert found(server, "lee", w) == {doc["id"]}
    while datetime.now(UTC) < expires:
        time.sleep(0.1)
    assert found(server, "lee", w) == set()
    assert download(server, "lee", doc["id"]) == 404
    with admin(server) as c:
        listed = {p["id"]: p for p in c.get("/admin/policies").json()}
        assert listed[created["id"]]["active"] is False
        # Extending it brings the grant back, without re-indexing anything.
        later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        r = c.patch(f"/admin/policies/{created['id']}", json={"expires_at": later})
        assert r.status_code == 200, r.text
        assert r.json()["active"] and r.json()["affected_documents"] == 1
    assert found(server, "lee", w) == {doc["id"]}
    assert download(server, "lee", doc["id"]) == 200


def test_policy_input_is_checked(server: Server, org: dict[str, str]) -> None:
    with admin(server) as c:
        for body in (
            {"name": "x", "match": {}, "grant": {"principal": "user:kim"}},
            {"name": "x", "match": {"owner": "kim"}, "grant": {"principal": "user:kim"}},
            {"name": "x", "match": {"tag": "a"}, "grant": {"principal": "group:all"}},
            {"name": "x", "match": {"tag": "a"}, "grant": {"principal": "user:nobody"}},
            {"name": "x", "match": {"ministry": "NOPE"}, "grant": {"principal": "user:kim"}},
            {
                "name": "x",
                "match": {"tag": "a"},
                "grant": {"principal": "user:kim", "permission": "own"},
            },
            {
                "name": "x",
                "match": {"tag": "a"},
                "grant": {"principal": "user:kim"},
                "expires_at": "2030-01-01T00:00:00",
            },
        ):
            r = c.post("/admin/policies", json=body)
            assert r.status_code == 422, (body, r.text)
            assert r.json()["error"]["code"] == "validation_error"
        assert c.delete("/admin/policies/999999").status_code == 404


def test_non_admins_get_403_on_admin_endpoints_and_it_is_audited(
    server: Server, org: dict[str, str]
) -> None:
    attempts = [
        (
            "post",
            "/admin/policies",
            {"name": "x", "match": {"tag": "a"}, "grant": {"principal": "user:kim"}},
        ),
        ("get", "/admin/policies", None),
        ("delete", "/admin/policies/1", None),
        ("patch", "/admin/users/kim", {"roles": ["admin"]}),
        (
            "post",
            "/admin/users",
            {
                "username": "sneaky",
                "password": "password-123",
                "display_name": "s",
                "roles": ["admin"],
            },
        ),
        ("get", "/admin/explain/readers?document=" + "0" * 32, None),
    ]
    for user in ("kim", "boss"):
        with server.client(user) as c:
            for method, path, body in attempts:
                r = c.request(method, path, json=body)
                assert r.status_code == 403, (user, path, r.text)
    with server.client("audit") as c:  # auditors explain, but change nothing
        assert c.post("/admin/policies", json=attempts[0][2]).status_code == 403
        assert c.patch("/admin/users/audit", json={"roles": ["admin"]}).status_code == 403
    with server.client("kim") as c:
        me = c.get("/me").json()
    assert me["roles"] == ["member"]  # nothing was escalated
    with admin(server) as c:
        denied = c.get("/admin/audit", params={"action": "denied", "limit": 1000}).json()
    seen = {(e["actor"], e["target"], e["detail"].get("method")) for e in denied}
    assert ("kim", "/api/v1/admin/users/kim", "PATCH") in seen
    assert ("boss", "/api/v1/admin/policies", "POST") in seen
    assert ("audit", "/api/v1/admin/users/audit", "PATCH") in seen
    # A dept_admin may reach the user routes, but not beyond their department's
    # members: the user service refuses, and records it.
    scoped = {(e["actor"], e["target"], e["detail"].get("op")) for e in denied}
    assert ("boss", "user:kim", "update") in scoped
    assert ("boss", "user:sneaky", "create") in scoped


def test_an_access_only_reindex_never_drops_a_pending_text_change(
    server: Server, org: dict[str, str]
) -> None:
    old, new, title = word(), word(), word()
    doc = server.upload("kim", f"{old} 본문".encode(), visibility="department")
    with worker_held(server), server.client("kim") as c:
        r = c.put(f"/documents/{doc['id']}/content", files={"file": ("v2.txt", f"{new} 본문")})
        assert r.status_code in (200, 202), r.text
        assert c.patch(f"/documents/{doc['id']}", json={"title": title}).status_code == 200
        r = c.put(f"/documents/{doc['id']}/acl", json={"visibility": "ministry", "grants": []})
        assert r.status_code == 200, r.text
    caught_up(server)
    # The new text, the new title and the new ACL all arrived.
    assert found(server, "park", new) == {doc["id"]}
    assert found(server, "park", title) == {doc["id"]}
    assert found(server, "park", old) == set()


def test_an_access_change_reindexes_in_full_a_document_missing_from_the_index(
    server: Server, org: dict[str, str]
) -> None:
    w = word()
    doc = server.upload("kim", f"{w} 본문".encode(), visibility="department")
    with worker_held(server):
        server.services.index.delete([doc["id"]])
        with server.client("kim") as c:
            r = c.put(
                f"/documents/{doc['id']}/acl", json={"visibility": "government", "grants": []}
            )
            assert r.status_code == 200, r.text
    caught_up(server)
    assert found(server, "choi", w) == {doc["id"]}

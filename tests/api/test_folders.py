"""Folders over HTTP: each department's tree (create, list, rename, move, delete),
documents filed on upload and afterwards, the search filter and the paths shown.
Folders are for finding: they never grant access, and their names are shown only
to the department (and administrators), or as the path of a document one may read."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Server


@pytest.fixture(scope="module")
def org(server: Server) -> None:
    server.ensure_org("FLD", "FLD-REC")
    server.ensure_org("FLD", "FLD-POL")
    server.user("fld.kim", "FLD-REC", ministry="FLD")
    server.user("fld.han", "FLD-REC", ministry="FLD")
    server.user("fld.boss", "FLD-REC", ["dept_admin"], ministry="FLD")
    server.user("fld.lee", "FLD-POL", ministry="FLD")
    server.user("fld.lee2", "FLD-POL", ministry="FLD")


def mkdir(c: httpx.Client, name: str, parent: str | None = None, **kw: Any) -> dict[str, Any]:
    r = c.post("/folders", json={"name": name, "parent": parent, **kw})
    assert r.status_code == 201, r.text
    folder: dict[str, Any] = r.json()
    return folder


def error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def test_members_build_their_department_tree(server: Server, org: None) -> None:
    with server.client("fld.kim") as c:
        top = mkdir(c, "  민원   2026 ")
        assert top["name"] == "민원 2026" and top["path"] == "/민원 2026"
        assert top["department"] == "FLD-REC" and top["parent"] is None
        sub = mkdir(c, "회신", top["id"])
        assert sub["path"] == "/민원 2026/회신" and sub["parent"] == top["id"]
        assert error(c.post("/folders", json={"name": "회신", "parent": top["id"]})) == (
            409,
            "conflict",
        )
        for bad in ("a/b", "..", "\u0000x", "x" * 201):
            r = c.post("/folders", json={"name": bad})
            assert r.status_code == 422, (bad, r.text)
        tree = c.get("/folders").json()
        names = [f["path"] for f in tree["folders"]]
        assert names.index("/민원 2026") < names.index("/민원 2026/회신")
        children = c.get("/folders", params={"parent": top["id"]}).json()["folders"]
        assert [f["name"] for f in children] == ["회신"]
    # Another member of the department sees and changes the same tree (as uploads go).
    with server.client("fld.han") as c:
        r = c.patch(f"/folders/{sub['id']}", json={"name": "회신 완료"})
        assert r.status_code == 200, r.text
        assert r.json()["path"] == "/민원 2026/회신 완료"


def test_another_department_sees_no_folder_name(server: Server, org: None) -> None:
    with server.client("fld.kim") as c:
        secret = mkdir(c, "감사 대상 명단")
    with server.client("fld.lee") as c:
        r = c.get("/folders", params={"department": "FLD-REC"})
        assert error(r) == (403, "forbidden")
        assert "감사" not in r.text
        for r in (
            c.get(f"/folders/{secret['id']}"),
            c.get(f"/folders/{secret['id']}/documents"),
            c.patch(f"/folders/{secret['id']}", json={"name": "x"}),
            c.delete(f"/folders/{secret['id']}"),
            c.post("/folders", json={"name": "x", "parent": secret["id"]}),
        ):
            assert error(r) == (404, "not_found"), r.text
            assert "감사" not in r.text
        # Missing folders answer the same.
        assert error(c.get("/folders/" + "0" * 32)) == (404, "not_found")
        assert error(c.get("/folders/not-an-id")) == (404, "not_found")
        # Nor may they create folders in it.
        r = c.post("/folders", json={"name": "x", "department": "FLD-REC"})
        assert error(r) == (403, "forbidden")


def test_admins_manage_any_tree(server: Server, org: None) -> None:
    with server.client("admin") as c:
        r = c.get("/folders")
        assert error(r) == (422, "validation_error")  # an admin without a department
        folder = mkdir(c, "관리자가 만든 폴더", department="FLD-POL")
        assert folder["department"] == "FLD-POL"
        assert c.delete(f"/folders/{folder['id']}").status_code == 204


def test_move_refuses_cycles_and_other_departments(server: Server, org: None) -> None:
    with server.client("fld.kim") as c:
        a = mkdir(c, "A")
        b = mkdir(c, "B", a["id"])
        d = mkdir(c, "C", b["id"])
        r = c.patch(f"/folders/{a['id']}", json={"parent": d["id"]})
        assert error(r) == (409, "conflict")
        assert "하위 폴더" in r.json()["error"]["message"]
        assert error(c.patch(f"/folders/{a['id']}", json={"parent": a["id"]})) == (409, "conflict")
        # Move C to the top, then B under C: paths follow, the whole subtree.
        r = c.patch(f"/folders/{d['id']}", json={"parent": None})
        assert r.status_code == 200 and r.json()["path"] == "/C"
        r = c.patch(f"/folders/{b['id']}", json={"parent": d["id"]})
        assert r.status_code == 200 and r.json()["path"] == "/C/B"
        e = mkdir(c, "E", b["id"])
        r = c.patch(f"/folders/{b['id']}", json={"parent": a["id"]})
        assert r.json()["path"] == "/A/B"
        assert c.get(f"/folders/{e['id']}").json()["path"] == "/A/B/E"
    with server.client("fld.lee") as c:
        pol = mkdir(c, "정책")
    with server.client("fld.kim") as c:
        r = c.patch(f"/folders/{a['id']}", json={"parent": pol["id"]})
        assert error(r) == (404, "not_found")


def test_delete_only_when_empty_says_what_it_holds(server: Server, org: None) -> None:
    with server.client("fld.kim") as c:
        box = mkdir(c, "보관함")
        inner = mkdir(c, "안쪽", box["id"])
    doc = server.upload("fld.kim", b"filed", "f.txt", wait=False)
    with server.client("fld.kim") as c:
        r = c.patch(f"/documents/{doc['id']}/folder", json={"folder": box["id"]})
        assert r.status_code == 200, r.text
        r = c.delete(f"/folders/{box['id']}")
        assert error(r) == (409, "in_use")
        message = r.json()["error"]["message"]
        assert "하위 폴더 1개" in message and "문서 1건" in message and "1 document(s)" in message
        assert c.delete(f"/folders/{inner['id']}").status_code == 204
        assert c.delete(f"/documents/{doc['id']}").status_code == 204
        r = c.delete(f"/folders/{box['id']}")  # a deleted document may be restored into it
        assert error(r) == (409, "in_use") and "삭제된 문서 1건" in r.json()["error"]["message"]


def test_upload_into_a_folder_and_file_afterwards(server: Server, org: None) -> None:
    with server.client("fld.kim") as c:
        folder = mkdir(c, "업로드함")
        r = c.post(
            "/documents",
            files={"file": ("n.txt", "폴더 업로드 본문".encode())},
            data={"folder": folder["id"]},
        )
        assert r.status_code == 202, r.text
        doc = r.json()
        got = c.get(f"/documents/{doc['id']}").json()
        assert got["folder"] == {"id": folder["id"], "path": "/업로드함"}
        # Not a folder of the uploader's department, or no folder at all: 422, nothing stored.
        with server.client("fld.lee") as other:
            elsewhere = mkdir(other, "정책 업로드")
        for bad in (elsewhere["id"], "0" * 32, "../x"):
            r = c.post("/documents", files={"file": ("x.txt", b"x")}, data={"folder": bad})
            assert error(r) == (422, "validation_error"), r.text
            assert "정책" not in r.text
        # Filing afterwards, and back to the top level.
        plain = server.upload("fld.kim", b"later", "later.txt", wait=False)
        assert plain["folder"] is None
        r = c.patch(f"/documents/{plain['id']}/folder", json={"folder": folder["id"]})
        assert r.status_code == 200 and r.json()["folder"]["path"] == "/업로드함"
        r = c.patch(f"/documents/{plain['id']}/folder", json={"folder": elsewhere["id"]})
        assert error(r) == (404, "not_found")
        r = c.patch(f"/documents/{plain['id']}/folder", json={"folder": None})
        assert r.status_code == 200 and r.json()["folder"] is None
        r = c.patch(f"/documents/{plain['id']}/folder", json={})
        assert error(r) == (422, "validation_error")


def test_filing_needs_write_on_the_document(server: Server, org: None) -> None:
    with server.client("fld.kim") as c:
        folder = mkdir(c, "쓰기 권한")
    private = server.upload("fld.kim", b"mine", "mine.txt", visibility="private", wait=False)
    readable = server.upload("fld.kim", b"dept", "dept.txt", wait=False)
    with server.client("fld.han") as c:
        r = c.patch(f"/documents/{private['id']}/folder", json={"folder": folder["id"]})
        assert error(r) == (404, "not_found")  # unreadable: as if missing
        r = c.patch(f"/documents/{readable['id']}/folder", json={"folder": folder["id"]})
        assert error(r) == (403, "forbidden")  # readable, not writable


def test_folder_listing_shows_only_readable_documents_and_paths_to_readers(
    server: Server, org: None
) -> None:
    with server.client("fld.kim") as c:
        folder = mkdir(c, "혼합 보안")
        sub = mkdir(c, "비공개 하위", folder["id"])
    shared = server.upload(
        "fld.kim",
        "혼합폴더 공유문서".encode(),
        "shared.txt",
        visibility="private",
        grants=[{"principal": "user:fld.lee", "permission": "read"}],
        wait=False,
    )
    hidden = server.upload(
        "fld.kim", "혼합폴더 비밀문서".encode(), "hidden.txt", visibility="private", wait=False
    )
    with server.client("fld.kim") as c:
        for doc, where in ((shared, sub), (hidden, folder)):
            r = c.patch(f"/documents/{doc['id']}/folder", json={"folder": where["id"]})
            assert r.status_code == 200, r.text
        page = c.get(f"/folders/{folder['id']}/documents", params={"subtree": True}).json()
        assert page["total"] == 2
    with server.client("fld.han") as c:  # same department, reads neither private document
        page = c.get(f"/folders/{folder['id']}/documents", params={"subtree": True}).json()
        assert page["total"] == 0 and page["documents"] == []
        page = c.get(f"/folders/{folder['id']}/documents").json()
        assert page["total"] == 0
    server.wait_indexed("fld.kim", shared["id"])
    server.wait_indexed("fld.kim", hidden["id"])
    # A reader in another department sees the path of the document they may read...
    with server.client("fld.lee") as c:
        got = c.get(f"/documents/{shared['id']}").json()
        assert got["folder"] == {"id": sub["id"], "path": "/혼합 보안/비공개 하위"}
        found = server.search("fld.lee", q="혼합폴더")
        assert [h["id"] for h in found["hits"]] == [shared["id"]]
        assert found["hits"][0]["folder"]["path"] == "/혼합 보안/비공개 하위"
        # ... may filter by it, and finds only what they may read ...
        found = server.search("fld.lee", q="혼합폴더", folder=folder["id"])
        assert [h["id"] for h in found["hits"]] == [shared["id"]]
        # ... but not the folder itself, nor its listing.
        assert error(c.get(f"/folders/{folder['id']}")) == (404, "not_found")
    found = server.search("fld.kim", q="혼합폴더", folder=sub["id"])
    assert [h["id"] for h in found["hits"]] == [shared["id"]]
    found = server.search("fld.kim", q="혼합폴더", folder=folder["id"])
    assert {h["id"] for h in found["hits"]} == {shared["id"], hidden["id"]}
    found = server.search("fld.kim", q="혼합폴더", folder="f" * 32)
    assert found["total"] == 0 and found["warnings"][0]["code"] == "unknown_folder"


def test_every_change_is_audited(server: Server, org: None) -> None:
    with server.client("fld.kim") as c:
        folder = mkdir(c, "감사 기록")
        c.patch(f"/folders/{folder['id']}", json={"name": "감사 기록 2"})
        c.delete(f"/folders/{folder['id']}")
    with server.client("admin") as c:
        events = c.get("/admin/audit", params={"actor": "fld.kim"}).json()
    items = events["events"] if isinstance(events, dict) else events
    actions = [(e["action"], e["target"]) for e in items if e["target"] == f"folder:{folder['id']}"]
    assert ("folder_create", f"folder:{folder['id']}") in actions
    assert ("folder_rename", f"folder:{folder['id']}") in actions
    assert ("folder_delete", f"folder:{folder['id']}") in actions


def test_a_policy_matches_a_folder_subtree_and_follows_moves(server: Server, org: None) -> None:
    with server.client("fld.kim") as c:
        shared = mkdir(c, "정책 공유")
        inner = mkdir(c, "정책 하위")  # not under it yet
        r = c.post(
            "/documents",
            files={"file": ("p.txt", "정책폴더 협조문".encode())},
            data={"folder": inner["id"]},
        )
        assert r.status_code == 202, r.text
        doc = r.json()
    server.wait_indexed("fld.kim", doc["id"])
    with server.client("admin") as c:
        grant = {"principal": "dept:FLD-POL"}
        r = c.post(
            "/admin/policies",
            json={"name": "폴더 열람", "match": {"folder": "9" * 32}, "grant": grant},
        )
        assert error(r) == (422, "validation_error") and "no folder" in r.text
        r = c.post(
            "/admin/policies",
            json={"name": "폴더 열람", "match": {"folder": shared["id"]}, "grant": grant},
        )
        assert r.status_code == 201, r.text
        assert r.json()["match"] == {"folder": shared["id"]} and r.json()["affected_documents"] == 0
        policy = r.json()["id"]

    def lee_reads() -> tuple[int, list[str], int]:
        with server.client("fld.lee") as c:
            status = c.get(f"/documents/{doc['id']}").status_code
        found = server.search("fld.lee", q="정책폴더")
        return status, [h["id"] for h in found["hits"]], found["total"]

    assert lee_reads() == (404, [], 0)
    # Moved under the policy's folder: read at once (the catalog decides until the
    # index has caught up), and once re-indexed (the index then carries the grant).
    with server.client("fld.kim") as c:
        assert c.patch(f"/folders/{inner['id']}", json={"parent": shared["id"]}).status_code == 200
    assert lee_reads() == (200, [doc["id"]], 1)
    server.wait_indexed("fld.kim", doc["id"])
    assert lee_reads() == (200, [doc["id"]], 1)
    # Moved out again: the grant ends at once, and stays ended once re-indexed.
    with server.client("fld.kim") as c:
        assert c.patch(f"/folders/{inner['id']}", json={"parent": None}).status_code == 200
    assert lee_reads() == (404, [], 0)
    server.wait_indexed("fld.kim", doc["id"])
    assert lee_reads() == (404, [], 0)
    # Filed in the folder itself, then at the top level: the same.
    with server.client("fld.kim") as c:
        r = c.patch(f"/documents/{doc['id']}/folder", json={"folder": shared["id"]})
        assert r.status_code == 200
    assert lee_reads() == (200, [doc["id"]], 1)
    server.wait_indexed("fld.kim", doc["id"])
    assert lee_reads() == (200, [doc["id"]], 1)
    with server.client("fld.kim") as c:
        r = c.patch(f"/documents/{doc['id']}/folder", json={"folder": None})
        assert r.status_code == 200
    assert lee_reads() == (404, [], 0)
    with server.client("admin") as c:
        assert c.delete(f"/admin/policies/{policy}").status_code == 204

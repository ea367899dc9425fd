"""The personal views (/me/documents, /me/shared, /me/recent) and the trash (/trash,
restore, purge) over HTTP: paged and filtered as /search, only what the caller may
read (or manage) now, restorable within the retention period, purged after it with
the original bytes kept."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from services.trash import TrashService
from storage.catalog import models as m
from storage.catalog.records import DocumentFilter
from storage.catalog.sql import SqlCatalog
from tests.conftest import Server, start_server


@pytest.fixture(scope="module")
def server(stack: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # `stack`: started again for each stack (see tests/api/conftest.py).
    """A server of its own, whose in-process worker runs its periodic chores often."""
    yield from start_server(tmp_path_factory.mktemp("views"))


@pytest.fixture(scope="module")
def org(server: Server) -> dict[str, str]:
    server.user("vw.kim", "VW-REC", ministry="VW")
    server.user("vw.boss", "VW-REC", roles=["member", "dept_admin"], ministry="VW")
    server.user("vw.lee", "VW-POL", ministry="VW")
    server.user("vw.park", "VX-HOUSE", ministry="VX")
    return {}


def get(server: Server, user: str, path: str, **params: Any) -> dict[str, Any]:
    with server.client(user) as c:
        r = c.get(path, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [item["document"]["id"] if "document" in item else item["id"] for item in body["items"]]


def backdate_deletion(server: Server | SqlCatalog, doc_id: str, days: float) -> None:
    """As if the document had been deleted `days` ago."""
    catalog = server if isinstance(server, SqlCatalog) else server.services.catalog
    assert isinstance(catalog, SqlCatalog)
    table = m.Document.__table__
    with catalog.engine.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.id == doc_id)
            .values(deleted_at=datetime.now(UTC) - timedelta(days=days))
        )


def test_my_documents_paged_filtered_newest_first(server: Server, org: dict[str, str]) -> None:
    first = server.upload("vw.kim", "첫 번째 예산 보고".encode(), "first.txt", wait=False)
    second = server.upload("vw.kim", b"<html><body>second</body></html>", "second.html", wait=False)
    other = server.upload("vw.lee", "다른 사람 문서".encode(), "other.txt", wait=False)
    server.wait_indexed("vw.kim", second["id"])
    mine = get(server, "vw.kim", "/me/documents", size=100)
    assert other["id"] not in ids(mine)
    assert ids(mine)[:2] == [second["id"], first["id"]]
    assert mine["total"] == len(mine["items"]) >= 2
    page2 = get(server, "vw.kim", "/me/documents", size=1, page=2)
    assert (page2["total"], ids(page2), page2["page"], page2["size"]) == (
        mine["total"],
        [first["id"]],
        2,
        1,
    )
    html = get(server, "vw.kim", "/me/documents", content_type="html")
    assert ids(html) == [second["id"]]
    today = datetime.now(UTC).date()
    assert (
        get(server, "vw.kim", "/me/documents", **{"from": str(today + timedelta(days=2))})["total"]
        == 0
    )
    span = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}
    assert get(server, "vw.kim", "/me/documents", **span)["total"] == mine["total"]
    assert get(server, "vw.kim", "/me/documents", department="vw-rec")["total"] == mine["total"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"department": "NO-SUCH"}, "unknown_department"),
        ({"content_type": "pdff"}, "unknown_content_type"),
    ],
)
@pytest.mark.parametrize("path", ["/me/documents", "/me/shared", "/me/recent", "/trash"])
def test_unknown_filter_values_are_reported_as_search_does(
    server: Server, org: dict[str, str], path: str, params: dict[str, str], code: str
) -> None:
    body = get(server, "vw.kim", path, **params)
    assert body["total"] == 0 and body["items"] == []
    assert [w["code"] for w in body["warnings"]] == [code]


@pytest.mark.parametrize("path", ["/me/documents", "/me/shared", "/me/recent", "/trash"])
@pytest.mark.parametrize(
    "params", [{"page": 0}, {"size": 0}, {"size": 1001}, {"from": "어제"}, {"to": "2026-13-01"}]
)
def test_bad_paging_or_dates_are_422_in_the_error_shape(
    server: Server, org: dict[str, str], path: str, params: dict[str, Any]
) -> None:
    with server.client("vw.kim") as c:
        r = c.get(path, params=params)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error" and " · " in error["message"]


def test_views_need_a_sign_in(server: Server) -> None:
    for path in ("/me/documents", "/me/shared", "/me/recent", "/trash"):
        with server.client() as c:
            assert c.get(path).status_code == 401


def test_shared_with_me_says_who_and_when_and_forgets_revoked_and_expired(
    server: Server, org: dict[str, str]
) -> None:
    doc = server.upload("vw.kim", "공유 문서".encode(), "shared.txt", visibility="private")
    to_dept = server.upload("vw.kim", "부서 공유".encode(), "dept.txt", visibility="private")
    acl = {"visibility": "private", "grants": [{"principal": "user:vw.lee"}]}
    with server.client("vw.kim") as c:
        assert c.put(f"/documents/{doc['id']}/acl", json=acl).status_code == 200
        r = c.put(
            f"/documents/{to_dept['id']}/acl",
            json={"visibility": "private", "grants": [{"principal": "dept:VW-POL"}]},
        )
        assert r.status_code == 200
    shared = get(server, "vw.lee", "/me/shared")
    assert ids(shared) == [to_dept["id"], doc["id"]]
    item = shared["items"][1]
    assert (item["shared_by"], item["principal"], item["permission"]) == (
        "vw.kim",
        "user:vw.lee",
        "read",
    )
    shared_at = item["shared_at"]
    assert abs(datetime.fromisoformat(shared_at) - datetime.now(UTC)) < timedelta(minutes=5)
    # The owner's own documents are not "shared with me"; nor for others in no grant.
    assert doc["id"] not in ids(get(server, "vw.kim", "/me/shared"))
    assert get(server, "vw.park", "/me/shared")["total"] == 0
    # Another grant added: the one kept keeps who made it and when.
    time.sleep(0.01)
    acl["grants"].append({"principal": "user:vw.park"})
    with server.client("vw.kim") as c:
        assert c.put(f"/documents/{doc['id']}/acl", json=acl).status_code == 200
    again = next(
        i for i in get(server, "vw.lee", "/me/shared")["items"] if i["document"]["id"] == doc["id"]
    )
    assert again["shared_at"] == shared_at
    assert ids(get(server, "vw.park", "/me/shared")) == [doc["id"]]
    # Revoked: gone at once (before any re-index).
    with server.client("vw.kim") as c:
        r = c.put(
            f"/documents/{doc['id']}/acl",
            json={"visibility": "private", "grants": [{"principal": "user:vw.park"}]},
        )
        assert r.status_code == 200
    assert ids(get(server, "vw.lee", "/me/shared")) == [to_dept["id"]]
    # Expired: gone once its time has passed, expired grants not yet deleted.
    soon = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    with server.client("vw.kim") as c:
        r = c.put(
            f"/documents/{doc['id']}/acl",
            json={
                "visibility": "private",
                "grants": [{"principal": "user:vw.lee", "expires_at": soon}],
            },
        )
        assert r.status_code == 200, r.text
    assert doc["id"] in ids(get(server, "vw.lee", "/me/shared"))
    time.sleep(2)
    assert doc["id"] not in ids(get(server, "vw.lee", "/me/shared"))


def test_recent_is_newest_first_once_each_and_only_still_readable(
    server: Server, org: dict[str, str]
) -> None:
    a = server.upload("vw.kim", "최근 가".encode(), "a.txt", visibility="ministry")
    b = server.upload("vw.kim", "최근 나".encode(), "b.txt", visibility="ministry")
    with server.client("vw.lee") as c:
        assert c.get(f"/documents/{a['id']}").status_code == 200
        assert c.get(f"/documents/{b['id']}/content").status_code == 200
        assert c.get(f"/documents/{a['id']}/versions").status_code == 200
        # Refused reads are no opens.
        assert c.get("/documents/" + "0" * 32).status_code == 404
    recent = get(server, "vw.lee", "/me/recent")
    assert ids(recent)[:2] == [a["id"], b["id"]]
    assert len(ids(recent)) == len(set(ids(recent)))
    assert [i["kind"] for i in recent["items"][:2]] == ["opened", "opened"]
    assert recent["items"][1]["action"] == "download"
    # Changes count too: the uploader's edit.
    with server.client("vw.kim") as c:
        assert c.patch(f"/documents/{b['id']}", json={"title": "고친 제목"}).status_code == 200
    kim = get(server, "vw.kim", "/me/recent")
    assert ids(kim)[0] == b["id"] and kim["items"][0]["kind"] == "changed"
    # No longer readable: gone from the list at once.
    with server.client("vw.kim") as c:
        r = c.put(f"/documents/{a['id']}/acl", json={"visibility": "private", "grants": []})
        assert r.status_code == 200
    assert a["id"] not in ids(get(server, "vw.lee", "/me/recent", size=100))
    assert b["id"] in ids(get(server, "vw.lee", "/me/recent", size=100))
    assert ids(get(server, "vw.lee", "/me/recent", size=1, page=1)) == [b["id"]]


def test_trash_lists_to_managers_restores_and_refuses_after_retention(
    server: Server, org: dict[str, str]
) -> None:
    doc = server.upload("vw.kim", "휴지통 문서 복원".encode(), "trash.txt", visibility="ministry")
    with server.client("vw.kim") as c:
        assert c.delete(f"/documents/{doc['id']}").status_code == 204
    trash = get(server, "vw.kim", "/trash")
    assert ids(trash)[0] == doc["id"] and trash["retention_days"] == 30
    item = trash["items"][0]
    assert item["deleted_by"] == "vw.kim"
    deleted_at = datetime.fromisoformat(item["deleted_at"])
    assert datetime.fromisoformat(item["purge_at"]) - deleted_at == timedelta(days=30)
    # The department's admin manages it; a reader of the ministry does not.
    assert doc["id"] in ids(get(server, "vw.boss", "/trash"))
    assert doc["id"] not in ids(get(server, "vw.lee", "/trash"))
    with server.client("vw.lee") as c:
        r = c.post(f"/documents/{doc['id']}/restore")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert doc["id"] not in ids(get(server, "vw.kim", "/me/documents", size=100))
    # Restored: back in lists and searches (re-indexed through the outbox).
    with server.client("vw.boss") as c:
        r = c.post(f"/documents/{doc['id']}/restore")
        assert r.status_code == 200, r.text
        assert r.json()["id"] == doc["id"]
        again = c.post(f"/documents/{doc['id']}/restore")
        assert again.status_code == 409 and again.json()["error"]["code"] == "not_in_trash"
    assert doc["id"] not in ids(get(server, "vw.kim", "/trash"))
    assert doc["id"] in ids(get(server, "vw.kim", "/me/documents", size=100))
    server.wait_indexed("vw.kim", doc["id"])
    assert doc["id"] in [h["id"] for h in server.search("vw.lee", q="복원")["hits"]]
    actions = [
        (e.action, e.actor)
        for e in server.services.catalog.audit.page(newest_first=True, limit=200)
        if e.target == doc["id"]
    ]
    assert ("restore", "vw.boss") in actions
    # Past the retention period: not listed, not restorable (410), even before the purge.
    with server.client("vw.kim") as c:
        assert c.delete(f"/documents/{doc['id']}").status_code == 204
    backdate_deletion(server, doc["id"], 31)
    assert doc["id"] not in ids(get(server, "vw.kim", "/trash", size=100))
    with server.client("vw.kim") as c:
        r = c.post(f"/documents/{doc['id']}/restore")
    assert r.status_code == 410, r.text
    error = r.json()["error"]
    assert error["code"] == "retention_expired"
    assert "30일" in error["message"] and "30 days" in error["message"]


def test_purge_leaves_the_index_and_trash_for_good_keeps_the_bytes_and_is_idempotent(
    server: Server, org: dict[str, str]
) -> None:
    doc = server.upload("vw.kim", "비울 문서 영구".encode(), "purge.txt", visibility="ministry")
    blob_key = server.services.catalog.documents.get(doc["id"]).blob_key
    with server.client("vw.kim") as c:
        assert c.delete(f"/documents/{doc['id']}").status_code == 204
    backdate_deletion(server, doc["id"], 30.01)
    catalog = server.services.catalog
    trash = TrashService(catalog, timedelta(days=30))
    assert doc["id"] in [d.id for d in trash.due()]
    # The in-process worker's periodic chore purges it (every few seconds).
    deadline = time.monotonic() + 30
    while catalog.documents.get(doc["id"], include_deleted=True).purged_at is None:
        assert time.monotonic() < deadline, "the worker did not purge in 30 s"
        time.sleep(0.2)
    assert trash.purge_due() == []  # idempotent: nothing is purged twice
    assert doc["id"] not in [d.id for d in catalog.documents.trashed(DocumentFilter())]
    purges = [
        e
        for e in catalog.audit.page(newest_first=True, limit=500)
        if e.target == doc["id"] and e.action == "purge"
    ]
    assert len(purges) == 1 and purges[0].actor == "system"
    assert purges[0].detail["deleted_by"] == "vw.kim"
    # The original bytes stay in the object store.
    assert server.services.store.exists(blob_key)
    with server.client("vw.kim") as c:
        r = c.post(f"/documents/{doc['id']}/restore")
        assert r.status_code == 410
        assert c.get(f"/documents/{doc['id']}").status_code == 404
    server.wait_indexed("vw.kim", server.upload("vw.kim", b"x", "x.txt", wait=False)["id"])
    assert doc["id"] not in [h["id"] for h in server.search("vw.lee", q="영구")["hits"]]


def crossdoc(
    data_dir: Path, *args: str, engines: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A command on `data_dir`, and on `engines` (a full-stack server's `engine_env`)."""
    env = dict(
        os.environ,
        CROSSDOC_DATA_DIR=str(data_dir),
        CROSSDOC_DEMO="false",
        CROSSDOC_ADMIN_PASSWORD="admin-password-for-tests",
        **(engines or {}),
    )
    return subprocess.run(
        [sys.executable, "-m", "crossdoc", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_trash_purge_dry_run_then_purge(tmp_path: Path) -> None:
    servers = start_server(tmp_path)
    server = next(servers)
    try:
        server.user("cli.kim", "CLI-REC")
        doc = server.upload("cli.kim", "명령줄 비우기".encode(), "cli.txt", wait=False)
        with server.client("cli.kim") as c:
            assert c.delete(f"/documents/{doc['id']}").status_code == 204
        url = server.services.settings.resolved_database_url
        engines = server.engine_env
    finally:
        next(servers, None)  # stopped: its worker's chore cannot purge it first
    catalog = SqlCatalog(url)
    try:
        backdate_deletion(catalog, doc["id"], 45)
    finally:
        catalog.close()
    dry = crossdoc(tmp_path / "data", "trash", "purge", "--dry-run", engines=engines)
    assert dry.returncode == 0, dry.stderr
    assert doc["id"] in dry.stdout and "cli.kim" in dry.stdout
    done = crossdoc(tmp_path / "data", "trash", "purge", engines=engines)
    assert done.returncode == 0, done.stderr
    assert "purged 1 " in done.stderr
    again = crossdoc(tmp_path / "data", "trash", "purge", engines=engines)
    assert again.returncode == 0 and "purged 0 " in again.stderr
    catalog = SqlCatalog(url)
    try:
        record = catalog.documents.get(doc["id"], include_deleted=True)
        assert record.purged_at is not None
        purges = [e for e in catalog.audit.page(limit=1000) if e.action == "purge"]
        assert [(e.target, e.actor) for e in purges] == [(doc["id"], "@cli")]
    finally:
        catalog.close()

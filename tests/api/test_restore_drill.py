"""Restore from the second site alone, and the drill (issue 13), on the embedded default.

A deployment with documents (every visibility, a grant, a second version, a
deleted one), users in two ministries and their audit records; its replica
filled as the replicator does (every blob under its own key) and its catalog
snapshot taken by `crossdoc backup catalog`. Then:

- the fire: the primary data directory is deleted; `crossdoc restore` rebuilds
  it from the replica; served again, every user reads exactly the documents they
  read before, byte for byte, finds them by search, and reads no other;
- `crossdoc drill` while the service runs: a report, exit 0; a flipped bit or a
  missing blob on the replica: listed, exit 1;
- a corrupt snapshot: refused with a clear error, nothing restored.
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from crossdoc.settings import Settings
from crossdoc.wiring.core import build_catalog
from services.bootstrap import bootstrap
from storage.backup import LocalBackupSite, fetch_snapshot, latest_manifest, snapshot_age_seconds
from tests.conftest import ADMIN_PASSWORD, Server, fast_passwords, start_server
from tests.pg_databases import drop_database

pytestmark = [
    pytest.mark.slow,
    pytest.mark.embedded_only(
        "restore and drill rebuild an embedded deployment from a replica; its PostgreSQL catalog "
        "and S3 replica legs are tests of its own"
    ),
]

USERS = {
    # username: (ministry, department)
    "kim.a": ("MOIS", "MOIS-A"),
    "lee.a": ("MOIS", "MOIS-A"),
    "park.b": ("MOIS", "MOIS-B"),
    "choi.c": ("MOF", "MOF-C"),
}


def crossdoc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crossdoc", *args],
        env=dict(os.environ, CROSSDOC_ADMIN_PASSWORD=ADMIN_PASSWORD, CROSSDOC_DEMO="false", **env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def fill_replica(data_dir: Path, replica: Path) -> None:
    """What the replicator does: every blob under the same key, byte-identical."""
    for path in (data_dir / "objects" / "blobs").rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            dest = replica / path.relative_to(data_dir / "objects")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)


def make_deployment(server: Server) -> dict[str, bytes]:
    """Documents of every kind; returns their current bytes by id."""
    for username, (ministry, department) in USERS.items():
        server.user(username, department, ministry=ministry)
    docs: dict[str, bytes] = {}

    def up(user: str, word: str, visibility: str, **kw: Any) -> str:
        content = f"복원 훈련 문서 {word} 내용입니다".encode()
        doc = server.upload(user, content, f"{word}.txt", visibility=visibility, **kw)
        docs[doc["id"]] = content
        return str(doc["id"])

    up("kim.a", "비공개", "private")
    up("kim.a", "부서", "department")
    up("park.b", "부처", "ministry")
    up("choi.c", "정부", "government")
    up("choi.c", "공유", "private", grants=[{"principal": "user:lee.a", "permission": "read"}])
    versioned = up("lee.a", "개정", "department")
    with server.client("lee.a") as c:
        second = "복원 훈련 문서 개정 둘째 판".encode()
        r = c.put(f"/documents/{versioned}/content", files={"file": ("개정.txt", second)})
        assert r.status_code in (200, 202), r.text
        docs[versioned] = second
    server.wait_indexed("lee.a", versioned)
    deleted = up("park.b", "삭제", "government")
    with server.client("park.b") as c:
        assert c.delete(f"/documents/{deleted}").status_code == 204
    del docs[deleted]
    return docs


def readable(server: Server, ids: list[str]) -> dict[str, dict[str, bytes]]:
    """What each user can download (id → bytes); every other id answers 404."""
    seen: dict[str, dict[str, bytes]] = {}
    for username in [*USERS, "admin"]:
        seen[username] = {}
        with server.client(username) as c:
            for doc_id in ids:
                r = c.get(f"/documents/{doc_id}/content")
                assert r.status_code in (200, 404), r.text
                if r.status_code == 200:
                    seen[username][doc_id] = r.content
    return seen


def found(server: Server) -> dict[str, set[str]]:
    out = {}
    for username in [*USERS, "admin"]:
        result = server.search(username, q="복원 훈련", limit=100)
        out[username] = {hit["id"] for hit in result["hits"]}
    return out


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[Server, Path, Path, dict[str, bytes]]]:
    replica = tmp_path / "replica"
    replica.mkdir()
    gen = start_server(tmp_path / "primary")
    server = next(gen)
    try:
        docs = make_deployment(server)
        yield server, tmp_path / "primary" / "data", replica, docs
    finally:
        gen.close()


def test_the_fire_restore_from_the_replica_loses_nothing(
    deployment: tuple[Server, Path, Path, dict[str, bytes]], tmp_path: Path
) -> None:
    server, data_dir, replica, docs = deployment
    ids = sorted(docs)
    deleted_too = _all_ids(data_dir)
    assert len(deleted_too) == len(ids) + 1
    before = readable(server, deleted_too)
    before_found = found(server)
    assert before["kim.a"] and before["choi.c"] and before["admin"] == {}
    fill_replica(data_dir, replica)
    r = crossdoc(
        {"CROSSDOC_DATA_DIR": str(data_dir), "CROSSDOC_REPLICA_URL": str(replica)},
        "backup",
        "catalog",
    )
    assert r.returncode == 0, r.stderr
    assert "catalog snapshot catalog/snapshots/" in r.stdout

    blobs = _blobs(data_dir / "objects")
    assert len(blobs) == len(ids) + 2  # the older version's and the deleted document's too

    shutil.rmtree(data_dir)  # the fire

    restored = tmp_path / "restored" / "data"
    r = crossdoc({}, "restore", "--from", f"file://{replica}", "--to", str(restored))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mismatched: 0" in r.stdout and "missing: 0" in r.stdout
    assert f"indexed: {len(ids)}/{len(ids)}" in r.stdout
    assert "audit chain: intact" in r.stdout

    assert _blobs(restored / "objects") == blobs

    gen = start_server(tmp_path / "restored")
    again = next(gen)
    try:
        assert readable(again, deleted_too) == before
        assert found(again) == before_found
        for username, mine in before.items():
            for doc_id, content in mine.items():
                assert content == docs[doc_id], (username, doc_id)
        # The audit log came along, and the restored deployment goes on appending to it.
        with again.client("admin") as c:
            assert c.get("/admin/audit", params={"limit": 1}).status_code in (200, 403)
    finally:
        gen.close()
    r = crossdoc({"CROSSDOC_DATA_DIR": str(restored)}, "audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr


def _all_ids(data_dir: Path) -> list[str]:
    """Every document id, deleted ones too (from the live catalog)."""
    conn = sqlite3.connect(data_dir / "catalog.sqlite3")
    try:
        return sorted(str(row[0]) for row in conn.execute("SELECT id FROM documents"))
    finally:
        conn.close()


def _blobs(objects: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(objects)): p.read_bytes()
        for p in objects.joinpath("blobs").rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def _text(stream: str) -> str:
    """Rich wraps long lines on stderr: compare words, not line breaks."""
    return " ".join(stream.split())


def test_the_drill_runs_beside_the_service_and_finds_any_loss(
    deployment: tuple[Server, Path, Path, dict[str, bytes]],
) -> None:
    server, data_dir, replica, docs = deployment
    fill_replica(data_dir, replica)
    env = {"CROSSDOC_DATA_DIR": str(data_dir), "CROSSDOC_REPLICA_URL": str(replica)}
    assert crossdoc(env, "backup", "catalog").returncode == 0

    r = crossdoc(env, "drill")  # the service is still running
    assert r.returncode == 0, r.stdout + r.stderr
    assert "drill passed" in r.stdout
    assert f"documents restored: {len(docs) + 1} " in r.stdout  # the deleted one too
    assert "RTO:" in r.stdout and "s old" in r.stdout

    # A bit flipped in one original on the replica, another one gone.
    blobs = sorted(p for p in replica.joinpath("blobs").rglob("*") if p.is_file())
    flipped, gone = blobs[0], blobs[1]
    flipped.chmod(0o640)
    data = bytearray(flipped.read_bytes())
    data[0] ^= 0x01
    flipped.write_bytes(bytes(data))
    gone.unlink()
    r = crossdoc(env, "drill")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "mismatched: 1" in r.stdout and f"mismatched {flipped.relative_to(replica)}" in r.stdout
    assert "missing: 1" in r.stdout and f"missing {gone.relative_to(replica)}" in r.stdout
    assert "DRILL FAILED" in _text(r.stderr)
    # The service never noticed.
    assert server.search("kim.a", q="복원 훈련")["total"] >= 1
    print(r.stdout)


def test_restore_refuses_a_corrupt_snapshot(tmp_path: Path) -> None:
    data_dir, replica = tmp_path / "data", tmp_path / "replica"
    replica.mkdir()
    env = {"CROSSDOC_DATA_DIR": str(data_dir), "CROSSDOC_REPLICA_URL": str(replica)}
    # A deployment with its first users and their audit records is enough here.
    catalog = build_catalog(Settings(data_dir=data_dir))
    try:
        bootstrap(catalog, fast_passwords().hash, admin_password=ADMIN_PASSWORD, demo=True)
    finally:
        catalog.close()
    assert crossdoc(env, "backup", "catalog").returncode == 0
    (snapshot,) = replica.joinpath("catalog", "snapshots").iterdir()
    data = bytearray(snapshot.read_bytes())
    data[4096 + 100] ^= 0xFF
    snapshot.write_bytes(bytes(data))

    target = tmp_path / "restored"
    r = crossdoc({}, "restore", "--from", str(replica), "--to", str(target))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "restore failed" in _text(r.stderr) and "is corrupt" in _text(r.stderr)
    assert not (target / "catalog.sqlite3").exists()

    # A target in use is never written over.
    r = crossdoc({}, "restore", "--from", str(replica), "--to", str(data_dir))
    assert r.returncode == 1 and "not an empty directory" in _text(r.stderr)

    # A snapshot of an audit log edited behind the chain's back: restored, and refused.
    conn = sqlite3.connect(data_dir / "catalog.sqlite3")
    with conn:
        conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE id = 2")
    conn.close()
    assert crossdoc(env, "backup", "catalog").returncode == 0
    r = crossdoc({}, "restore", "--from", str(replica), "--to", str(tmp_path / "again"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "audit chain: BROKEN" in r.stdout and "incomplete" in _text(r.stderr)


PG_ENV = "CROSSDOC_TEST_DATABASE_URL"


@pytest.fixture
def postgres_databases() -> Iterator[Callable[[], str]]:
    """Fresh PostgreSQL databases of this test's own (dropped afterwards)."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL leg: set {PG_ENV} (`infra/dev/engines up postgres` starts one "
            "and prints it)"
        )
    base = make_url(url)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def new() -> str:
        name = f"crossdoc_restore_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return base.set(database=name).render_as_string(hide_password=False)

    try:
        yield new
        for name in made:
            drop_database(admin, name)
    finally:
        admin.dispose()


def test_the_fire_on_postgresql_restore_and_drill(
    postgres_databases: Callable[[], str], tmp_path: Path
) -> None:
    """The scale-out catalog: pg_dump snapshots; the drill into a scratch database
    while the service runs; after the fire, pg_restore into a new database."""
    primary_url, scratch_url, restored_url = (postgres_databases() for _ in range(3))
    replica = tmp_path / "replica"
    replica.mkdir()
    gen = start_server(tmp_path / "primary", database_url=primary_url)
    server = next(gen)
    try:
        docs = make_deployment(server)
        data_dir = tmp_path / "primary" / "data"
        ids = sorted(docs)
        before = readable(server, ids)
        fill_replica(data_dir, replica)
        env = {
            "CROSSDOC_DATA_DIR": str(data_dir),
            "CROSSDOC_DATABASE_URL": primary_url,
            "CROSSDOC_REPLICA_URL": str(replica),
        }
        r = crossdoc(env, "backup", "catalog")
        assert r.returncode == 0, r.stdout + r.stderr
        assert ".pgdump" in r.stdout
        r = crossdoc(env, "drill", "--database-url", scratch_url)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "drill passed" in r.stdout
        scratch = create_engine(scratch_url)
        try:
            with scratch.connect() as conn:
                assert inspect(conn).get_table_names() == []  # emptied for the next drill
        finally:
            scratch.dispose()
    finally:
        gen.close()

    shutil.rmtree(data_dir)  # the fire: the primary's disk and its database
    admin = create_engine(
        make_url(primary_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    try:
        drop_database(admin, str(make_url(primary_url).database))
    finally:
        admin.dispose()

    restored = tmp_path / "restored" / "data"
    args = ("restore", "--from", str(replica), "--to", str(restored))
    r = crossdoc({}, *args)
    assert r.returncode == 1 and "name an empty database" in _text(r.stderr)
    r = crossdoc({}, *args, "--database-url", restored_url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"indexed: {len(ids)}/{len(ids)}" in r.stdout
    gen = start_server(tmp_path / "restored", database_url=restored_url)
    again = next(gen)
    try:
        assert readable(again, ids) == before
    finally:
        gen.close()


def test_serve_snapshots_the_catalog_on_its_schedule(tmp_path: Path) -> None:
    """With a replica set, the API process snapshots the catalog at start and then
    every CROSSDOC_CATALOG_BACKUP_SECONDS: an upload reaches the replica's catalog
    within that interval, and the snapshot's age says how old the copy is."""
    replica = tmp_path / "replica"
    replica.mkdir()
    site = LocalBackupSite(replica)
    gen = start_server(tmp_path, replica_url=f"file://{replica}", catalog_backup_seconds=0.5)
    server = next(gen)
    try:
        server.user("kim.a", "MOIS-A", ministry="MOIS")
        doc = server.upload("kim.a", "일정에 따른 카탈로그 사본".encode(), "사본.txt", wait=False)
        deadline = time.monotonic() + 60
        while True:
            manifest = latest_manifest(site)
            if manifest is not None and manifest.counts["documents"] == 1:
                break
            assert time.monotonic() < deadline, "no snapshot holds the upload"
            time.sleep(0.2)
        age = snapshot_age_seconds(site)
        assert age is not None and age < 30
        copy = tmp_path / "copy.sqlite3"
        fetch_snapshot(site, manifest, copy)
        conn = sqlite3.connect(copy)
        try:
            assert conn.execute("SELECT id FROM documents").fetchall() == [(doc["id"],)]
        finally:
            conn.close()
        assert len(site.list_keys("catalog/snapshots/")) <= 48
    finally:
        gen.close()


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    """`host:port` of an in-process S3 protocol server (moto) on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


def test_restore_from_an_s3_replica(moto_endpoint: str, tmp_path: Path) -> None:
    """The second site as an S3 bucket at another endpoint: the snapshot and the
    originals come back from it; a blob altered there is listed, exit 1."""
    from minio import Minio

    from storage.objectstore.s3 import S3ObjectStore

    bucket = "crossdoc-replica"
    keys = {"CROSSDOC_REPLICA_S3_ACCESS_KEY": "replica", "CROSSDOC_REPLICA_S3_SECRET_KEY": "secret"}
    env = {
        "CROSSDOC_REPLICA_URL": f"s3://{bucket}",
        "CROSSDOC_REPLICA_S3_ENDPOINT": moto_endpoint,
        "CROSSDOC_S3_SECURE": "false",
        **keys,
    }
    replica = S3ObjectStore(moto_endpoint, "replica", "secret", bucket, secure=False)
    gen = start_server(tmp_path / "primary")
    server = next(gen)
    try:
        server.user("kim.a", "MOIS-A", ministry="MOIS")
        docs = {
            server.upload("kim.a", f"S3 복제본 문서 {i}".encode(), f"s3-{i}.txt")["id"]: i
            for i in range(3)
        }
    finally:
        gen.close()
    data_dir = tmp_path / "primary" / "data"
    blobs = _blobs(data_dir / "objects")
    for key, content in blobs.items():
        source = tmp_path / "blob"
        source.write_bytes(content)
        replica.put_file(source, sha256=key.rsplit("/", 1)[1], size=len(content))
    r = crossdoc({"CROSSDOC_DATA_DIR": str(data_dir), **env}, "backup", "catalog")
    assert r.returncode == 0, r.stdout + r.stderr
    shutil.rmtree(data_dir)

    r = crossdoc(env, "restore", "--from", f"s3://{bucket}", "--to", str(tmp_path / "restored"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"documents restored: {len(docs)} " in r.stdout
    assert _blobs(tmp_path / "restored" / "objects") == blobs

    # A blob altered on the replica (behind the store's back) is found.
    altered = sorted(blobs)[0]
    client = Minio(moto_endpoint, access_key="replica", secret_key="secret", secure=False)
    client.put_object(bucket, altered, io.BytesIO(b"bit rot"), 7)
    r = crossdoc(env, "restore", "--from", f"s3://{bucket}", "--to", str(tmp_path / "again"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"mismatched {altered}" in r.stdout

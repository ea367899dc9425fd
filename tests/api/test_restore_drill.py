"""Restore from the second site alone, and the drill (issue 13), on both stacks.

A deployment with documents (every visibility, a grant, a second version, a
deleted one), users in two ministries and their audit records; its replica (a
directory) filled by the real replicator (`crossdoc replication drain`) and its
catalog snapshot taken by `crossdoc backup catalog`. On the embedded stack the
deployment is a data directory (SQLite, local originals, Tantivy); on the full
stack its originals are in an S3 bucket (moto), its catalog in PostgreSQL and its
index on OpenSearch, and it is restored onto those engines. Then:

- the fire: the primary's originals and catalog are deleted (the data directory;
  on the full stack also every object of its bucket and its database);
  `crossdoc restore` rebuilds the deployment from the replica (on the full stack
  into a new database, a new bucket and a new index alias); served again, every
  user reads exactly the documents they read before, byte for byte, finds them by
  search, and reads no other;
- `crossdoc drill` while the service runs: a report, exit 0, its scratch copies
  removed and the live deployment (index alias, bucket, database) untouched; a
  flipped bit or a missing blob on the replica: listed, exit 1;
- a corrupt snapshot: refused with a clear error, nothing restored (embedded).

Time (measured on 2 shared, heavily loaded cores, set-up included): the embedded
leg's fire test 18 s and drill test 12 s; the full leg's 49 s and 51 s (a `crossdoc
worker` per server, pg_dump/pg_restore, OpenSearch, and a dozen `crossdoc`
processes each); the module's embedded-only tests about 50 s together.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from crossdoc.settings import Settings
from crossdoc.wiring.core import build_catalog
from services.bootstrap import bootstrap
from storage.backup import (
    LocalBackupSite,
    catalog_counts,
    fetch_snapshot,
    latest_manifest,
    snapshot_age_seconds,
)
from tests import conftest as shared
from tests.conftest import ADMIN_PASSWORD, Server, fast_passwords, start_server
from tests.moto_server import moto_s3_server
from tests.pg_databases import ThrowawayDatabases, drop_database

pytestmark = [pytest.mark.slow]

#: The tests that choose their own engines (a SQLite catalog, a PostgreSQL one, an
#: S3 replica): the full leg's own restore is the fire test below.
own_engines = pytest.mark.embedded_only(
    "it chooses its engines itself; the full stack's restore and drill are the fire and "
    "drill tests of this module"
)

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
    server.wait_indexed("park.b", versioned)  # the delete has left the index too
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


def full_stack() -> Any:
    """The full stack this module runs on (None on the embedded leg)."""
    return shared.FULL_STACK[-1] if shared.FULL_STACK else None


@dataclass
class Deployment:
    """A running deployment with a directory replica, and the settings of its commands."""

    server: Server
    data_dir: Path
    replica: Path
    docs: dict[str, bytes]
    #: The deployment's own settings (engines, data dir, replica) for a `crossdoc` command.
    env: dict[str, str]
    running: Iterator[Server] = field(repr=False)

    @property
    def database_url(self) -> str | None:
        return self.env.get("CROSSDOC_DATABASE_URL")

    @property
    def bucket(self) -> str | None:
        url = self.env.get("CROSSDOC_STORAGE_URL")
        return url.removeprefix("s3://") if url else None

    @property
    def search_index(self) -> str | None:
        return self.env.get("CROSSDOC_SEARCH_INDEX") if "CROSSDOC_SEARCH_URL" in self.env else None

    def stop(self) -> None:
        close = getattr(self.running, "close", None)
        if close is not None:
            close()

    def back_up(self) -> None:
        """Copy every original to the replica (the replicator's drain) and snapshot the
        catalog there, as the running deployment does on its schedule."""
        r = crossdoc(self.env, "replication", "drain")
        assert r.returncode == 0, r.stdout + r.stderr
        r = crossdoc(self.env, "backup", "catalog")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "catalog snapshot catalog/snapshots/" in r.stdout


@pytest.fixture
def deployment(stack: str, tmp_path: Path) -> Iterator[Deployment]:
    del stack  # a dependency: the deployment runs on this module's stack
    replica = tmp_path / "replica"
    replica.mkdir()
    running = start_server(
        tmp_path / "primary",
        replica_url=str(replica),
        # The test takes its snapshots itself; no scrub while it runs.
        catalog_backup_seconds=0,
        scrub_interval_hours=0,
    )
    server = next(running)
    data_dir = tmp_path / "primary" / "data"
    env = {
        **server.engine_env,
        "CROSSDOC_DATA_DIR": str(data_dir),
        "CROSSDOC_REPLICA_URL": str(replica),
    }
    try:
        docs = make_deployment(server)
        yield Deployment(server, data_dir, replica, docs, env, running)
    finally:
        running.close()


@pytest.fixture
def postgres_databases() -> Iterator[Callable[[], str]]:
    """Fresh PostgreSQL databases of this test's own (dropped afterwards)."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL leg: set {PG_ENV} (`infra/dev/engines up postgres` starts one "
            "and prints it)"
        )
    with ThrowawayDatabases(url, "crossdoc_restore") as dbs:
        yield dbs.new


PG_ENV = "CROSSDOC_TEST_DATABASE_URL"


# -- the full stack's engines, seen from the test -----------------------------------------


def bucket_blobs(bucket: str) -> dict[str, bytes]:
    """Every object of `bucket` on the full stack's S3 (missing bucket: none)."""
    client = full_stack().minio()
    if not client.bucket_exists(bucket):
        return {}
    out = {}
    for obj in client.list_objects(bucket, recursive=True):
        response = client.get_object(bucket, obj.object_name)
        try:
            out[str(obj.object_name)] = bytes(response.read())
        finally:
            response.close()
            response.release_conn()
    return out


def bucket_state(bucket: str) -> list[tuple[str, str, str]]:
    """Each object version of `bucket`: key, ETag, time (any write changes it)."""
    client = full_stack().minio()
    return sorted(
        (str(o.object_name), str(o.etag), str(o.last_modified))
        for o in client.list_objects(bucket, recursive=True, include_version=True)
    )


def search_engine(method: str, path: str, body: Any = None) -> Any:
    from indexer.index.elasticsearch import _connect

    client = _connect(full_stack().search_url, 10)
    try:
        return client.request(method, path, body=body)
    finally:
        client.close()


def index_state(alias: str) -> tuple[list[str], dict[str, tuple[int, int, int]]]:
    """The indices behind `alias`, and each entry's sequence number, primary term and
    version (any write to an entry changes them)."""
    search_engine("POST", f"/{alias}/_refresh")
    hits = search_engine(
        "POST",
        f"/{alias}/_search",
        {"size": 1000, "_source": False, "version": True, "seq_no_primary_term": True},
    )["hits"]["hits"]
    entries = {h["_id"]: (h["_seq_no"], h["_primary_term"], h["_version"]) for h in hits}
    return sorted(search_engine("GET", f"/_alias/{alias}")), entries


def indices_named(prefix: str) -> list[str]:
    return sorted(
        row["index"]
        for row in search_engine("GET", "/_cat/indices?format=json")
        if str(row["index"]).startswith(prefix)
    )


def database_state(url: str) -> tuple[dict[str, int], list[tuple[Any, ...]]]:
    """Row counts of the catalog's main tables, and every document's id, revision and
    SHA-256 (a restore into it would change them)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            docs = [
                tuple(row)
                for row in conn.execute(
                    text("SELECT id, revision, sha256 FROM documents ORDER BY id")
                )
            ]
    finally:
        engine.dispose()
    return catalog_counts(url), docs


def new_database(name: str) -> str:
    """An empty PostgreSQL database on the full stack (dropped with it: see `adopt`)."""
    stack = full_stack()
    admin = create_engine(stack.postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return str(stack.postgres_url.set(database=name).render_as_string(hide_password=False))


def drop_db(url: str) -> None:
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        drop_database(admin, str(make_url(url).database))
    finally:
        admin.dispose()


# -- the fire ---------------------------------------------------------------------------


def stored_blobs(d: Deployment) -> dict[str, bytes]:
    """The deployment's originals by key (its directory, or its bucket)."""
    return bucket_blobs(d.bucket) if d.bucket else _blobs(d.data_dir / "objects")


def test_the_fire_restore_from_the_replica_loses_nothing(
    deployment: Deployment, tmp_path: Path
) -> None:
    d = deployment
    server, data_dir, docs = d.server, d.data_dir, d.docs
    ids = sorted(docs)
    deleted_too = _all_ids(d)
    assert len(deleted_too) == len(ids) + 1
    before = readable(server, deleted_too)
    before_found = found(server)
    assert before["kim.a"] and before["choi.c"] and before["admin"] == {}
    d.back_up()
    blobs = stored_blobs(d)
    assert len(blobs) == len(ids) + 2  # the older version's and the deleted document's too
    assert _blobs(d.replica) == blobs

    # The fire: the primary's originals and its catalog.
    d.stop()
    shutil.rmtree(data_dir)
    if d.bucket:
        for key in bucket_blobs(d.bucket):
            full_stack().minio().remove_object(d.bucket, key)
        assert d.database_url
        drop_db(d.database_url)
        assert bucket_blobs(d.bucket) == {}

    restored = tmp_path / "restored" / "data"
    args = ["restore", "--from", f"file://{d.replica}", "--to", str(restored)]
    env: dict[str, str] = {}
    tag = uuid.uuid4().hex[:12]
    if full_stack() is not None:
        env = {k: v for k, v in d.env.items() if k not in {"CROSSDOC_DATA_DIR"}}
        database = f"crossdoc_restored_{tag}"
        bucket = index = f"crossdoc-restored-{tag}"
        full_stack().adopt(restored, database=database, index=index, bucket=bucket)
        restored_url = new_database(database)
        # The live deployment's alias (CROSSDOC_SEARCH_INDEX) outlived the fire: refused.
        r = crossdoc(env, *args, "--database-url", restored_url, "--storage-url", f"s3://{bucket}")
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"the search index {d.search_index} exists already" in _text(r.stderr)
        assert not restored.exists() or not any(restored.iterdir())
        args += ["--database-url", restored_url, "--storage-url", f"s3://{bucket}"]
        args += ["--search-index", index]
    started = time.monotonic()
    r = crossdoc(env, *args)
    took = time.monotonic() - started
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mismatched: 0" in r.stdout and "missing: 0" in r.stdout
    assert f"indexed: {len(ids)}/{len(ids)}" in r.stdout
    assert "audit chain: intact" in r.stdout
    print(f"restore: {took:.1f} s\n{r.stdout}")

    if full_stack() is not None:
        assert bucket_blobs(bucket) == blobs
        assert f"CROSSDOC_STORAGE_URL=s3://{bucket}" in r.stdout
        assert f"CROSSDOC_SEARCH_INDEX={index}" in r.stdout
        # A restore never writes over a deployment: this bucket is in use now.
        r = crossdoc(env, *args[:4], str(tmp_path / "other"), "--storage-url", f"s3://{bucket}")
        assert r.returncode == 1 and f"the bucket s3://{bucket} is not empty" in _text(r.stderr)
    else:
        assert _blobs(restored / "objects") == blobs

    running = start_server(tmp_path / "restored")
    again = next(running)
    try:
        assert readable(again, deleted_too) == before
        assert found(again) == before_found
        for username, mine in before.items():
            for doc_id, content in mine.items():
                assert content == docs[doc_id], (username, doc_id)
        # The audit log came along, and the restored deployment goes on appending to it.
        with again.client("admin") as c:
            assert c.get("/admin/audit", params={"limit": 1}).status_code in (200, 403)
        restored_env = {**again.engine_env, "CROSSDOC_DATA_DIR": str(restored)}
    finally:
        running.close()
    r = crossdoc(restored_env, "audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr


def _all_ids(d: Deployment) -> list[str]:
    """Every document id, deleted ones too (from the live catalog)."""
    url = d.database_url or f"sqlite:///{d.data_dir / 'catalog.sqlite3'}"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(str(row[0]) for row in conn.execute(text("SELECT id FROM documents")))
    finally:
        engine.dispose()


def _blobs(objects: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(objects)): p.read_bytes()
        for p in objects.joinpath("blobs").rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def _text(stream: str) -> str:
    """Rich wraps long lines on stderr: compare words, not line breaks."""
    return " ".join(stream.split())


def live_state(d: Deployment) -> dict[str, Any]:
    """What a drill must not change in the live deployment: on the full stack its
    index alias (indices and every entry's version), bucket and database; on the
    embedded one its catalog's rows and its originals."""
    if d.bucket is None:
        assert d.database_url is None
        return {
            "catalog": database_state(f"sqlite:///{d.data_dir / 'catalog.sqlite3'}"),
            "originals": _blobs(d.data_dir / "objects"),
        }
    assert d.search_index and d.database_url
    return {
        "index": index_state(d.search_index),
        "bucket": bucket_state(d.bucket),
        "catalog": database_state(d.database_url),
    }


def test_the_drill_runs_beside_the_service_and_finds_any_loss(
    deployment: Deployment, tmp_path: Path
) -> None:
    d = deployment
    d.back_up()
    drill: list[str] = ["drill"]
    scratch_url = scratch_bucket = None
    if full_stack() is not None:
        assert d.bucket and d.search_index and d.database_url
        tag = uuid.uuid4().hex[:12]
        # Dropped with the stack whatever the drill leaves (it should leave nothing).
        full_stack().adopt(
            tmp_path / "scratch",
            database=f"crossdoc_drill_{tag}",
            index=f"crossdoc-drill-{tag}",
            bucket=f"crossdoc-drill-{tag}",
        )
        scratch_url = new_database(f"crossdoc_drill_{tag}")
        scratch_bucket = f"crossdoc-drill-{tag}"
        # The deployment's own engines are refused as scratch targets.
        for own in (
            ["--database-url", d.database_url, "--storage-url", f"s3://{scratch_bucket}"],
            ["--database-url", scratch_url, "--storage-url", f"s3://{d.bucket}"],
            [
                *("--database-url", scratch_url),
                *("--storage-url", f"s3://{scratch_bucket}"),
                *("--search-index", d.search_index),
            ],
        ):
            r = crossdoc(d.env, "drill", *own)
            assert r.returncode == 2, r.stdout + r.stderr
            assert "the drill never writes it" in _text(r.stderr)
        r = crossdoc(d.env, "drill", "--database-url", scratch_url)
        assert r.returncode == 2 and "name a scratch bucket" in _text(r.stderr)
        drill += ["--database-url", scratch_url, "--storage-url", f"s3://{scratch_bucket}"]
    before = live_state(d)

    started = time.monotonic()
    r = crossdoc(d.env, *drill)  # the service is still running
    took = time.monotonic() - started
    # The live deployment was only read (checked first: a drill that wrote it may
    # well fail besides).
    assert live_state(d) == before, r.stdout + r.stderr
    assert r.returncode == 0, r.stdout + r.stderr
    assert "drill passed" in r.stdout
    assert f"documents restored: {len(d.docs) + 1} " in r.stdout  # the deleted one too
    assert f"indexed: {len(d.docs)}/{len(d.docs)}" in r.stdout
    assert "RTO:" in r.stdout and "s old" in r.stdout
    assert "originals" in r.stdout and "index" in r.stdout  # seconds per step
    print(f"drill: {took:.1f} s\n{r.stdout}")

    # The drill's scratch copies are gone.
    if full_stack() is not None:
        assert d.search_index and scratch_url and scratch_bucket
        assert indices_named(f"{d.search_index}-drill-") == []
        assert not full_stack().minio().bucket_exists(scratch_bucket)
        scratch = create_engine(scratch_url)
        try:
            with scratch.connect() as conn:
                assert inspect(conn).get_table_names() == []  # emptied for the next drill
        finally:
            scratch.dispose()

    # A bit flipped in one original on the replica, another one gone.
    blobs = sorted(p for p in d.replica.joinpath("blobs").rglob("*") if p.is_file())
    flipped, gone = blobs[0], blobs[1]
    flipped.chmod(0o640)
    data = bytearray(flipped.read_bytes())
    data[0] ^= 0x01
    flipped.write_bytes(bytes(data))
    gone.unlink()
    r = crossdoc(d.env, *drill)
    assert r.returncode == 1, r.stdout + r.stderr
    assert (
        "mismatched: 1" in r.stdout and f"mismatched {flipped.relative_to(d.replica)}" in r.stdout
    )
    assert "missing: 1" in r.stdout and f"missing {gone.relative_to(d.replica)}" in r.stdout
    assert "DRILL FAILED" in _text(r.stderr)
    if full_stack() is not None:
        assert d.search_index and scratch_bucket
        assert indices_named(f"{d.search_index}-drill-") == []
        assert not full_stack().minio().bucket_exists(scratch_bucket)
    # The service never noticed.
    assert live_state(d) == before
    assert d.server.search("kim.a", q="복원 훈련")["total"] >= 1


@own_engines
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


@own_engines
def test_a_drill_never_empties_a_database_it_did_not_fill(tmp_path: Path) -> None:
    """A scratch database in use is refused and left whole; the deployment's own
    catalog is refused as a scratch target. (The drill used to empty the database
    it was given even when the restore had refused it.)"""
    data_dir, replica = tmp_path / "data", tmp_path / "replica"
    replica.mkdir()
    env = {"CROSSDOC_DATA_DIR": str(data_dir), "CROSSDOC_REPLICA_URL": str(replica)}
    catalog = build_catalog(Settings(data_dir=data_dir))
    try:
        bootstrap(catalog, fast_passwords().hash, admin_password=ADMIN_PASSWORD, demo=True)
    finally:
        catalog.close()
    assert crossdoc(env, "backup", "catalog").returncode == 0
    other = tmp_path / "other.sqlite3"
    shutil.copyfile(data_dir / "catalog.sqlite3", other)
    before = database_state(f"sqlite:///{other}")

    r = crossdoc(env, "drill", "--database-url", f"sqlite:///{other}")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "is not empty" in _text(r.stderr) and "DRILL FAILED" in _text(r.stderr)
    assert database_state(f"sqlite:///{other}") == before

    live = f"sqlite:///{(data_dir / 'catalog.sqlite3').resolve()}"
    r = crossdoc(env, "drill", "--database-url", live)
    assert r.returncode == 2 and "the drill never writes it" in _text(r.stderr)
    assert database_state(live)[0]["users"] == before[0]["users"]


@own_engines
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


@own_engines
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
    with moto_s3_server() as endpoint:
        yield endpoint


@own_engines
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

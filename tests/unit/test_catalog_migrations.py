"""Catalog migrations: an existing catalog upgrades in place, with every row kept.

A catalog made by the first release (revision 0001) and filled with the rows a
real deployment has (organisation, documents with versions and grants, outbox,
audit chain, policies) is upgraded to head: nothing may be lost, the foreign
keys must still hold, the audit chain must still verify, and the schema must be
what the models say.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from auth.access import Principal
from indexer.analysis.korean import KoreanAnalyzer
from indexer.index.base import IndexDocument, SearchRequest
from indexer.index.tantivy_index import TantivyIndex
from indexer.pipeline import IndexingPipeline
from indexer.query import parse_user_query
from indexer.worker import drain_once
from services.search import search_documents
from storage.catalog.migrate import alembic_config
from storage.catalog.models import Base
from storage.catalog.policy_match import PolicyMatch
from storage.catalog.records import NewPolicy, upload_fingerprint
from storage.catalog.sql import SqlCatalog
from storage.catalog.sql.audit import GENESIS_HASH, audit_fields
from storage.catalog.sql.audit import chain_hash as _chain_hash

T0 = "2026-01-05 09:00:00.000000"
AT0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

ROWS_AT_0001 = [
    "INSERT INTO ministries (code, name, created_at) VALUES ('MOIS', '행정안전부', :t)",
    "INSERT INTO departments (code, name, ministry_code, created_at)"
    " VALUES ('MOIS-REC', '기록관리과', 'MOIS', :t)",
    "INSERT INTO users (username, password_hash, display_name, department_code, roles,"
    " disabled, created_at, updated_at)"
    " VALUES ('kim', 'x', '김철수', 'MOIS-REC', '[\"member\"]', 0, :t, :t)",
    "INSERT INTO documents (id, title, filename, declared_type, content_type, size, sha256,"
    " blob_key, department, ministry, owner, visibility, tags, status, status_detail,"
    " version, revision, acl_revision, indexed_revision, created_at, updated_at, deleted_at)"
    " VALUES ('d1', '출생통보제 안내', 'notice.hwp', '', 'application/x-hwp', 3, :sha, :key,"
    " 'MOIS-REC', 'MOIS', 'kim', 'department', '[\"공지\"]', 'indexed', '', 1, 2, 2, 2,"
    " :t, :t, NULL)",
    "INSERT INTO documents (id, title, filename, declared_type, content_type, size, sha256,"
    " blob_key, department, ministry, owner, visibility, tags, status, status_detail,"
    " version, revision, acl_revision, indexed_revision, created_at, updated_at, deleted_at)"
    " VALUES ('d2', 'scan.pdf', 'scan.pdf', '', 'application/pdf', 3, :sha, :key,"
    " 'MOIS-REC', 'MOIS', 'kim', 'private', '[]', 'pending', '', 1, 1, 1, 0, :t, :t, NULL)",
    "INSERT INTO document_versions (document_id, version, blob_key, sha256, size, filename,"
    " declared_type, created_by, created_at)"
    " VALUES ('d1', 1, :key, :sha, 3, 'notice.hwp', '', 'kim', :t)",
    "INSERT INTO document_grants (document_id, principal, permission, expires_at,"
    " created_at, created_by) VALUES ('d1', 'user:lee', 'read', NULL, :t, 'kim')",
    "INSERT INTO outbox (document_id, revision, created_at, available_at, attempts,"
    " last_error) VALUES ('d2', 1, :t, :t, 0, '')",
    "INSERT INTO idempotency_keys (username, key, document_id, created_at)"
    " VALUES ('kim', 'upload-1', 'd1', :now)",
    "INSERT INTO policies (name, match, principal, permission, expires_at, created_at,"
    " created_by) VALUES ('기록 열람', '{\"department\": \"MOIS-REC\"}', 'dept:MOIS-AUD',"
    " 'read', NULL, :t, 'admin')",
    "INSERT INTO policies (name, match, principal, permission, expires_at, created_at,"
    " created_by) VALUES ('공지 열람', '{\"tag\": \"공지\"}', 'ministry:MOHW',"
    " 'read', NULL, :t, 'admin')",
]
#: The audit log of the first release: policy 5, created and deleted since, is
#: still named there (its tokens may still be in the index).
AUDITED = (
    ("kim", "upload", "d1"),
    ("kim", "acl_change", "d1"),
    ("admin", "policy_delete", "policy:5"),
)


def _count(conn: object, table: str) -> int:
    return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # type: ignore[attr-defined]


def test_a_populated_first_release_catalog_upgrades_with_every_row(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    engine = create_engine(url)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    sha = "ab" * 32
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # a key still in force
    params = {"t": T0, "now": now, "sha": sha, "key": f"blobs/ab/ab/{sha}"}
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        for statement in ROWS_AT_0001:
            conn.execute(text(statement), params)
        prev = GENESIS_HASH
        for i, (actor, action, target) in enumerate(AUDITED):
            fields = audit_fields(AT0, actor, action, target, "10.0.0.1", "ok", {"n": i})
            digest = _chain_hash(prev, fields)
            conn.execute(
                text(
                    "INSERT INTO audit_events (at, actor, action, target, address, outcome,"
                    " detail, prev_hash, hash) VALUES (:t, :actor, :a, :target, '10.0.0.1',"
                    " 'ok', :d, :p, :h)"
                ),
                {
                    "t": T0,
                    "actor": actor,
                    "a": action,
                    "target": target,
                    "d": f'{{"n": {i}}}',
                    "p": prev,
                    "h": digest,
                },
            )
            prev = digest
    engine.dispose()

    catalog = SqlCatalog(url)
    catalog.migrate()  # what `crossdoc serve` does at start-up
    with catalog.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        for table, expected in {
            "ministries": 1,
            "departments": 1,
            "users": 1,
            "documents": 2,
            "document_versions": 1,
            "document_grants": 1,
            # One access-only row for each document a policy matches (below).
            "outbox": 3,
            "policies": 2,
            "audit_events": 3,
            "idempotency_keys": 1,
        }.items():
            assert _count(conn, table) == expected, table
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        policies_sql = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'policies'"
        ).scalar_one()
        fanouts = conn.exec_driver_sql(
            "SELECT policy_id, generation, documents, done_at FROM policy_fanouts ORDER BY id"
        ).all()
        queued = conn.exec_driver_sql(
            "SELECT document_id, revision FROM outbox WHERE access_only ORDER BY document_id"
        ).all()
    assert diffs == [], diffs
    # Policy ids are never handed out again (SQLite reused the highest one deleted).
    assert "AUTOINCREMENT" in policies_sql, policies_sql

    typed, untyped = catalog.documents.get_many(["d1", "d2"])
    assert (typed.title, typed.title_from_user) == ("출생통보제 안내", True)
    assert (untyped.title, untyped.title_from_user) == ("scan.pdf", False)
    assert [g.principal for g in typed.grants] == ["user:lee"]
    assert typed.tags == ("공지",)
    policies = catalog.policies.list_all()
    assert [p.name for p in policies] == ["기록 열람", "공지 열람"]
    # Index tokens are made of a unique uid: no one holds an old `policy:ID.GEN` token
    # any more, so those a deleted policy left in the index count for no one ...
    uids = [p.uid for p in policies]
    assert len(set(uids)) == 2 and all(len(u) == 32 and int(u, 16) >= 0 for u in uids), uids
    # ... and the documents of the policies in force get the new tokens: queued for an
    # access-only re-index, their fan-outs pending (the grantees match them by the
    # policy's match meanwhile).
    assert catalog.policies.pending_ids() == {p.id for p in policies}
    assert [(f[0], f[1], f[2], f[3]) for f in fanouts] == [(1, 1, 2, None), (2, 1, 1, None)]
    assert queued == [("d1", 3), ("d2", 2)]
    assert catalog.policies.fanout_backlog() == 2
    # A key recorded before fingerprints were kept replays its own upload (0005).
    replay = catalog.documents.idempotent_replay(
        "kim",
        "upload-1",
        upload_fingerprint(sha, "notice.hwp", "출생통보제 안내", "department", ("공지",)),
    )
    assert replay is not None and replay.id == "d1"
    ok, checked, problem = catalog.audit.verify_chain()
    assert (ok, checked) == (True, 3), problem

    # New policies start above every id the catalog names (policy 5 of the audit log),
    # and a deleted one's id is not given out again.
    new = NewPolicy("새 정책", PolicyMatch(department="MOIS-REC"), "user:kim", "read")
    first = catalog.policies.create(new, "admin").policy
    catalog.policies.delete(first.id)
    second = catalog.policies.create(new, "admin").policy
    assert (first.id, second.id) == (6, 7)
    assert first.uid != second.uid


ROWS_AT_0004 = [
    "INSERT INTO ministries (code, name, created_at) VALUES ('MOIS', '행정안전부', :t),"
    " ('MOHW', '보건복지부', :t)",
    "INSERT INTO departments (code, name, ministry_code, created_at) VALUES"
    " ('MOIS-DX', '디지털정부과', 'MOIS', :t), ('MOIS-REC', '기록관리과', 'MOIS', :t),"
    " ('MOHW-POP', '인구정책과', 'MOHW', :t)",
    # p2, which was handed the id of p1 (match MOIS-DX, grant dept:MOHW-POP), deleted
    # after the index had its token `policy:1.1` on kim's documents.
    "INSERT INTO policies (id, name, match, principal, permission, expires_at, created_at,"
    " created_by, updated_by, generation) VALUES (1, 'p2', '{\"department\": \"MOHW-POP\"}',"
    " 'ministry:MOIS', 'read', NULL, :t, 'admin', '', 1)",
]
LEAKY_DOCS = {"d1": ("kim", "MOIS-DX", "MOIS"), "d2": ("kim", "MOIS-DX", "MOIS")}
P2_DOCS = {"e1": ("choi", "MOHW-POP", "MOHW")}


def test_an_index_leaking_through_a_reused_policy_id_stops_on_upgrade(tmp_path: Path) -> None:
    """A deployment that already met the leak (a policy holding a deleted one's id, the
    index still carrying the deleted one's tokens) upgrades to a state that leaks nothing
    and loses nothing: before the index has caught up, and after."""
    url = f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    engine = create_engine(url)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0004_policies")
    sha = "cd" * 32
    with engine.begin() as conn:
        for statement in ROWS_AT_0004:
            conn.execute(text(statement), {"t": T0})
        for doc_id, (owner, dept, ministry) in {**LEAKY_DOCS, **P2_DOCS}.items():
            conn.execute(
                text(
                    "INSERT INTO documents (id, title, title_from_user, filename, declared_type,"
                    " content_type, size, sha256, blob_key, department, ministry, owner,"
                    " visibility, tags, status, status_detail, version, revision, acl_revision,"
                    " indexed_revision, policy_revision, created_at, updated_at, deleted_at)"
                    " VALUES (:id, :id, 1, 'a.txt', '', 'text/plain', 6, :sha, :key, :dept,"
                    " :ministry, :owner, 'private', '[]', 'indexed', '', 1, 2, 1, 2, 2, :t, :t,"
                    " NULL)"
                ),
                {
                    "id": doc_id,
                    "sha": sha,
                    "key": f"blobs/cd/cd/{sha}",
                    "dept": dept,
                    "ministry": ministry,
                    "owner": owner,
                    "t": T0,
                },
            )
    engine.dispose()
    index = TantivyIndex(tmp_path / "index", KoreanAnalyzer())
    index.upsert(
        [
            IndexDocument(
                id=doc_id,
                revision=2,
                title=doc_id,
                filename="a.txt",
                body="사과",
                department=dept,
                ministry=ministry,
                content_type="text/plain",
                tags=(),
                owner=owner,
                # What the first release wrote: p1's token on kim's, p2's on choi's.
                readers=frozenset(
                    {f"user:{owner}", f"deptadmin:{dept}", "visibility:private", "policy:1.1"}
                ),
                created_at=AT0,
                updated_at=AT0,
            )
            for doc_id, (owner, dept, ministry) in {**LEAKY_DOCS, **P2_DOCS}.items()
        ]
    )
    index.refresh()

    catalog = SqlCatalog(url)
    catalog.migrate()
    park = Principal("park", "MOIS-REC", "MOIS", frozenset({"member"}))  # p2's grantee
    choi = Principal("choi", "MOHW-POP", "MOHW", frozenset({"member"}))  # p1's, once

    def found(who: Principal) -> tuple[int, set[str], dict[str, int]]:
        request = SearchRequest(query=parse_user_query("사과"))
        got = search_documents(catalog.documents, index, who, request)
        facets = {b.value: b.count for b in got.facets["department"]}
        return got.total, {h.id for h in got.hits}, facets

    try:
        for _ in ("before the index has caught up", "after"):
            assert found(park) == (1, {"e1"}, {"MOHW-POP": 1})
            assert found(choi) == (1, {"e1"}, {"MOHW-POP": 1})
            kim = Principal("kim", "MOIS-DX", "MOIS")  # owner, and in p2's ministry
            assert found(kim)[1] == {*LEAKY_DOCS, *P2_DOCS}
            # Access-only: no object store, and an extractor that cannot extract.
            no_text = SimpleNamespace(version="none")
            pipeline = IndexingPipeline(catalog, None, no_text, index, tmp_path)  # type: ignore[arg-type]
            while drain_once(catalog, pipeline, 16):
                pass
            catalog.policies.settle_fanouts()  # the worker's chore once the outbox is empty
        assert catalog.policies.pending_ids() == set()
        assert catalog.policies.fanout_backlog() == 0
    finally:
        index.close()
        catalog.close()


def test_documents_stored_without_text_become_indexed_on_upgrade(tmp_path: Path) -> None:
    """0011_honest_docs: a document whose file holds no text was `failed`; it is
    `indexed` (its reason kept), and only files that could not be read stay `failed`."""
    url = f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    engine = create_engine(url)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0008_user_accounts")
    details = {
        "scan": ("failed", "empty"),
        "blank-no-ocr": ("failed", "empty: ocr unavailable: tesseract is not installed"),
        "locked": ("failed", "encrypted"),
        "blob": ("failed", "unsupported_format"),
        "broken": ("failed", "parse_error: Unexpected end of file"),
        "bomb": ("failed", "limit_exceeded: timeout after 60 s"),
        "text": ("indexed", ""),
        "waiting": ("pending", ""),
    }
    with engine.begin() as conn:
        for statement in ROWS_AT_0001[:3]:
            conn.execute(text(statement), {"t": T0})
        for doc_id, (status, detail) in details.items():
            conn.execute(
                text(
                    "INSERT INTO documents (id, title, title_from_user, filename, declared_type,"
                    " content_type, size, sha256, blob_key, department, ministry, owner,"
                    " visibility, tags, status, status_detail, version, revision, acl_revision,"
                    " indexed_revision, policy_revision, created_at, updated_at, deleted_at)"
                    " VALUES (:id, :id, 0, 'a.bin', '', 'application/pdf', 6, :sha, :key,"
                    " 'MOIS-REC', 'MOIS', 'kim', 'department', '[]', :status, :detail, 1, 1, 1,"
                    " 1, 0, :t, :t, NULL)"
                ),
                {
                    "id": doc_id,
                    "sha": "ef" * 32,
                    "key": "blobs/ef/ef/" + "ef" * 32,
                    "status": status,
                    "detail": detail,
                    "t": T0,
                },
            )
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    with engine.connect() as conn:
        after = dict(conn.execute(text("SELECT id, status FROM documents")).all())
        kept = dict(conn.execute(text("SELECT id, status_detail FROM documents")).all())
    assert after == {
        "scan": "indexed",
        "blank-no-ocr": "indexed",
        "locked": "indexed",
        "blob": "indexed",
        "broken": "failed",
        "bomb": "failed",
        "text": "indexed",
        "waiting": "pending",
    }
    assert kept == {doc_id: detail for doc_id, (_, detail) in details.items()}

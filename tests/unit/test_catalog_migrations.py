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

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from storage.catalog import Catalog
from storage.catalog.migrate import alembic_config
from storage.catalog.models import Base
from storage.catalog.records import upload_fingerprint
from storage.catalog.repository import GENESIS_HASH, _chain_hash, audit_fields

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
]


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
        for i, action in enumerate(("upload", "acl_change")):
            fields = audit_fields(AT0, "kim", action, "d1", "10.0.0.1", "ok", {"n": i})
            digest = _chain_hash(prev, fields)
            conn.execute(
                text(
                    "INSERT INTO audit_events (at, actor, action, target, address, outcome,"
                    " detail, prev_hash, hash) VALUES (:t, 'kim', :a, 'd1', '10.0.0.1', 'ok',"
                    " :d, :p, :h)"
                ),
                {"t": T0, "a": action, "d": f'{{"n": {i}}}', "p": prev, "h": digest},
            )
            prev = digest
    engine.dispose()

    catalog = Catalog(url)
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
            "outbox": 1,
            "policies": 1,
            "audit_events": 2,
            "idempotency_keys": 1,
        }.items():
            assert _count(conn, table) == expected, table
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == [], diffs

    typed, untyped = catalog.get_documents(["d1", "d2"])
    assert (typed.title, typed.title_from_user) == ("출생통보제 안내", True)
    assert (untyped.title, untyped.title_from_user) == ("scan.pdf", False)
    assert [g.principal for g in typed.grants] == ["user:lee"]
    assert typed.tags == ("공지",)
    assert [p.name for p in catalog.list_policies()] == ["기록 열람"]
    # A key recorded before fingerprints were kept replays its own upload (0005).
    replay = catalog.idempotent_replay(
        "kim",
        "upload-1",
        upload_fingerprint(sha, "notice.hwp", "출생통보제 안내", "department", ("공지",)),
    )
    assert replay is not None and replay.id == "d1"
    ok, checked, problem = catalog.verify_audit_chain()
    assert (ok, checked) == (True, 2), problem

"""The catalog's Idempotency-Key records: expiry, keys from before fingerprints were
kept, and a catalog whose disk is full (a real SQLITE_FULL, by a page limit)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Table, event, select, text, update

from storage.catalog.models import IdempotencyKey
from storage.catalog.records import NewBlob, NewDocument
from storage.catalog.sql import SqlCatalog
from storage.catalog.sql.documents import IDEMPOTENCY_KEY_TTL
from storage.errors import IdempotencyKeyReusedError, StorageFullError
from storage.ingest import SpoolWriter, StagedFile, accept_document
from storage.objectstore.local import LocalObjectStore


@pytest.fixture
def catalog(tmp_path: Path) -> SqlCatalog:
    c = SqlCatalog(f"sqlite:///{tmp_path / 'c.db'}")
    c.migrate()
    c.organisation.create_ministry("M1", "부")
    c.organisation.create_department("D1", "과", "M1")
    c.organisation.create_user("kim", "hash", "김", "D1", ["member"])
    return c


def new_doc(sha: str = "a" * 64, filename: str = "a.txt", **kw: Any) -> NewDocument:
    blob = NewBlob(
        f"blobs/sha256/{sha[:2]}/{sha[2:4]}/{sha}", sha, 3, filename, "text/plain", "text/plain"
    )
    fields: dict[str, Any] = {
        "title": filename,
        "department": "D1",
        "owner": "kim",
        "visibility": "department",
    }
    return NewDocument(blob=blob, **(fields | kw))


def _age_keys(catalog: SqlCatalog, by: timedelta) -> None:
    """Move every key's creation time back by `by` (through the typed column)."""
    keys = cast(Table, IdempotencyKey.__table__)
    with catalog.engine.begin() as conn:
        for key, created_at in conn.execute(select(keys.c.key, keys.c.created_at)).all():
            conn.execute(update(keys).where(keys.c.key == key).values(created_at=created_at - by))


def test_a_key_is_free_again_once_expired(catalog: SqlCatalog) -> None:
    first, _ = catalog.documents.create(new_doc("a" * 64), idempotency_key="k")
    catalog.documents.create(new_doc("c" * 64), idempotency_key="other")
    _age_keys(catalog, IDEMPOTENCY_KEY_TTL + timedelta(minutes=1))

    second, created = catalog.documents.create(new_doc("b" * 64), idempotency_key="k")

    assert created and second.id != first.id
    # The key now answers the new upload, and the owner's other expired key is gone.
    again, created_again = catalog.documents.create(new_doc("b" * 64), idempotency_key="k")
    assert not created_again and again.id == second.id
    with catalog.engine.connect() as conn:
        keys = conn.execute(text("SELECT key FROM idempotency_keys")).scalars().all()
    assert keys == ["k"]


def test_a_key_within_its_lifetime_still_refuses_other_bytes(catalog: SqlCatalog) -> None:
    catalog.documents.create(new_doc("a" * 64), idempotency_key="k")
    _age_keys(catalog, IDEMPOTENCY_KEY_TTL - timedelta(minutes=1))
    with pytest.raises(IdempotencyKeyReusedError):
        catalog.documents.create(new_doc("b" * 64), idempotency_key="k")
    assert catalog.documents.count() == 1


def test_a_key_recorded_before_fingerprints_matches_its_first_version(catalog: SqlCatalog) -> None:
    first, _ = catalog.documents.create(
        new_doc("a" * 64, "old.txt", title="제목", title_from_user=True), idempotency_key="k"
    )
    with catalog.engine.begin() as conn:
        conn.execute(text("UPDATE idempotency_keys SET request_hash = ''"))

    replay, created = catalog.documents.create(
        new_doc("a" * 64, "old.txt", title="제목", title_from_user=True), idempotency_key="k"
    )
    assert not created and replay.id == first.id
    with pytest.raises(IdempotencyKeyReusedError):
        catalog.documents.create(new_doc("b" * 64, "old.txt"), idempotency_key="k")


def _fill(catalog: SqlCatalog) -> None:
    for n in range(200):  # the first few may fit in the last free pages
        catalog.documents.create(new_doc(f"{n:064x}"), idempotency_key=f"k{n}")


def test_a_full_catalog_disk_is_storage_full_and_records_nothing(catalog: SqlCatalog) -> None:
    # SQLite's own page limit answers SQLITE_FULL ("database or disk is full"),
    # exactly as a full disk does, on every new connection of the pool.
    with catalog.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()

    def limit(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA max_page_count={pages}")

    event.listen(catalog.engine, "connect", limit)
    catalog.engine.dispose()
    try:
        with pytest.raises(StorageFullError, match="full"):
            _fill(catalog)
    finally:
        event.remove(catalog.engine, "connect", limit)
        catalog.engine.dispose()
    count = catalog.documents.count()
    # Space is back: the next upload is recorded.
    catalog.documents.create(new_doc("f" * 64))
    assert catalog.documents.count() == count + 1


def _staged(tmp_path: Path, content: bytes) -> StagedFile:
    spool = SpoolWriter(tmp_path / "spool", 1 << 20)
    spool.write(content)
    return spool.finish()


def test_the_transaction_refuses_a_reused_key_the_early_check_missed(
    catalog: SqlCatalog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two uploads with one key at once: both pass the check before storing the
    bytes; the catalog transaction, the authority, refuses the second."""
    store = LocalObjectStore(tmp_path / "objects")
    fields: dict[str, Any] = {
        "filename": "a.txt",
        "declared_type": "text/plain",
        "title": None,
        "department": "D1",
        "owner": "kim",
        "visibility": "department",
        "idempotency_key": "k",
    }
    first, created = accept_document(catalog, store, _staged(tmp_path, b"first"), **fields)
    assert created
    monkeypatch.setattr(catalog.documents, "idempotent_replay", lambda *args: None)  # the race

    with pytest.raises(IdempotencyKeyReusedError):
        accept_document(catalog, store, _staged(tmp_path, b"second"), **fields)

    assert catalog.documents.count() == 1
    assert "Idempotency-Key reused" in caplog.text  # the stored blob is not silent
    replay, created = accept_document(catalog, store, _staged(tmp_path, b"first"), **fields)
    assert not created and replay.id == first.id

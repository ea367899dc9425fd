"""Concurrent retries under one Idempotency-Key, with the duplicate check on.

Seen in CI on PostgreSQL: retry B looked the key up before retry A committed,
then found A's document by its bytes and answered 200 "duplicate_of" itself,
where every retry under a key must replay the first answer (202).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from storage.catalog.records import DocumentRecord
from storage.catalog.sql import SqlCatalog
from storage.ingest import StagedFile, UploadOutcome, accept_upload
from storage.objectstore.local import LocalObjectStore

CONTENT = b"one key, same bytes"


def _upload(catalog: Any, store: LocalObjectStore, spool: Path) -> UploadOutcome:
    path = spool / "up.txt"
    path.write_bytes(CONTENT)
    staged = StagedFile(path, hashlib.sha256(CONTENT).hexdigest(), len(CONTENT), CONTENT)
    return accept_upload(
        catalog,
        store,
        staged,
        filename="키.txt",
        declared_type="text/plain",
        title=None,
        department="MOIS-A",
        owner="kim",
        visibility="department",
        idempotency_key="k1",
        answers_duplicate=lambda doc: True,
    )


def test_a_retry_whose_key_committed_after_its_look_up_is_replayed_not_a_duplicate(
    tmp_path: Path,
) -> None:
    catalog = SqlCatalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    catalog.migrate()
    catalog.organisation.create_ministry("MOIS", "행정안전부")
    catalog.organisation.create_department("MOIS-A", "가과", "MOIS")
    store = LocalObjectStore(tmp_path / "objects")
    first = _upload(catalog, store, tmp_path)
    assert first.created

    # Retry B's first look-up of the key ran before retry A (`first`) committed.
    real = catalog.documents.idempotent_replay
    calls: list[int] = []

    def late_commit(*args: Any) -> DocumentRecord | None:
        calls.append(1)
        return None if len(calls) == 1 else real(*args)

    catalog.documents.idempotent_replay = late_commit  # type: ignore[method-assign,assignment]
    retry = _upload(catalog, store, tmp_path)
    assert not retry.duplicate, "a retry under its own key answered as a duplicate"
    assert not retry.created and retry.document.id == first.document.id
    assert catalog.documents.count() == 1
    catalog.close()

"""`services.restore.restore` over a small catalog: what it copies, and what it refuses
to read (the index rebuild is the caller's, stubbed here; the whole command is in
tests/api/test_restore_drill.py)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from services.restore import RestoreError, restore
from storage.backup import LocalBackupSite, take_snapshot
from storage.catalog.sql import SqlCatalog
from storage.ingest import BulkItem, StagedFile, accept_documents
from storage.objectstore.local import LocalObjectStore


def _deployment(data: Path, files: dict[str, bytes]) -> str:
    """A catalog (in a directory with a Korean name) and its objects; returns its URL."""
    data.mkdir(parents=True)
    url = f"sqlite:///{data / 'catalog.sqlite3'}"
    catalog = SqlCatalog(url)
    catalog.migrate()
    catalog.organisation.create_ministry("MOIS", "행정안전부")
    catalog.organisation.create_department("MOIS-A", "가과", "MOIS")
    items = []
    for name, content in files.items():
        path = data / name
        path.write_bytes(content)
        staged = StagedFile(path, hashlib.sha256(content).hexdigest(), len(content), content[:64])
        items.append(BulkItem(staged, name))
    accept_documents(
        catalog,
        LocalObjectStore(data / "objects"),
        items,
        department="MOIS-A",
        owner="@import",
        visibility="department",
    )
    catalog.close()
    return url


def test_a_catalog_naming_a_path_instead_of_a_blob_key_reads_nothing_outside_the_replica(
    tmp_path: Path,
) -> None:
    data = tmp_path / "자료 #1"
    url = _deployment(data, {"a.txt": b"first", "b.txt": b"second"})
    secret = tmp_path / "secret"
    secret.write_bytes(b"first")  # the same bytes as a.txt: a path would pass a re-hash
    conn = sqlite3.connect(data / "catalog.sqlite3")
    with conn:
        conn.execute(
            "UPDATE document_versions SET blob_key = ? WHERE sha256 = ?",
            ("../secret", hashlib.sha256(b"first").hexdigest()),
        )
        conn.execute(
            "UPDATE documents SET blob_key = ? WHERE sha256 = ?",
            ("../secret", hashlib.sha256(b"first").hexdigest()),
        )
    conn.close()
    replica = tmp_path / "replica"
    (replica / "blobs").mkdir(parents=True)
    site = LocalBackupSite(replica)
    take_snapshot(url, site, tmp_path / "spool", keep=3)  # a path with '#' and Hangul
    for blob in (data / "objects" / "blobs").rglob("*"):
        if blob.is_file():
            dest = replica / blob.relative_to(data / "objects")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(blob.read_bytes())

    report = restore(
        site, LocalObjectStore(replica, create_root=False), tmp_path / "out", lambda _: (2, 2)
    )
    assert report.mismatched == ["../secret"]
    assert report.blobs_verified == 1 and not report.ok
    restored = [p for p in (tmp_path / "out" / "objects").rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in restored] == [b"second"]


def test_restore_needs_a_snapshot_and_an_empty_target(tmp_path: Path) -> None:
    replica = tmp_path / "replica"
    replica.mkdir()
    site = LocalBackupSite(replica)
    store = LocalObjectStore(replica, create_root=False)
    with pytest.raises(Exception, match="no catalog snapshot"):
        restore(site, store, tmp_path / "out", lambda _: (0, 0))
    url = _deployment(tmp_path / "data", {"a.txt": b"x"})
    take_snapshot(url, site, tmp_path / "spool", keep=3)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "catalog.sqlite3").write_bytes(b"a deployment")
    with pytest.raises(RestoreError, match="not an empty directory"):
        restore(site, store, tmp_path / "busy", lambda _: (0, 0))
    assert (tmp_path / "busy" / "catalog.sqlite3").read_bytes() == b"a deployment"

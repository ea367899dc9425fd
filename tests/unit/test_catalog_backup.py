"""Catalog snapshots onto the second site (storage/backup.py): consistent while the
catalog is written, checksummed, pointed at by `catalog/latest` only once durable,
the oldest pruned, a corrupt one refused."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.backup import (
    LATEST_KEY,
    SNAPSHOT_PREFIX,
    CorruptSnapshotError,
    LocalBackupSite,
    SnapshotManifest,
    catalog_counts,
    fetch_snapshot,
    latest_manifest,
    load_postgres_dump,
    snapshot_age_seconds,
    take_snapshot,
)
from storage.catalog.records import NewAuditEvent
from storage.catalog.sql import SqlCatalog
from storage.errors import StorageUnavailableError
from tests.pg_databases import ThrowawayDatabases


@pytest.fixture
def catalog_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'data' / 'catalog.sqlite3'}"
    (tmp_path / "data").mkdir()
    catalog = SqlCatalog(url)
    catalog.migrate()
    catalog.close()
    return url


@pytest.fixture
def site(tmp_path: Path) -> LocalBackupSite:
    (tmp_path / "replica").mkdir()
    return LocalBackupSite(tmp_path / "replica")


def _audit(url: str, n: int) -> None:
    catalog = SqlCatalog(url)
    try:
        for i in range(n):
            catalog.audit.append([NewAuditEvent(actor="tester", action="test", target=f"t{i}")])
    finally:
        catalog.close()


def test_a_snapshot_is_a_checksummed_copy_pointed_at_by_latest(
    catalog_url: str, site: LocalBackupSite, tmp_path: Path
) -> None:
    assert latest_manifest(site) is None
    assert snapshot_age_seconds(site) is None
    _audit(catalog_url, 3)
    manifest = take_snapshot(catalog_url, site, tmp_path / "spool", keep=5)
    assert manifest.key.startswith(SNAPSHOT_PREFIX) and manifest.engine == "sqlite"
    assert manifest.counts["audit_events"] == 3
    assert latest_manifest(site) == manifest
    age = snapshot_age_seconds(site)
    assert age is not None and 0 <= age < 60
    later = snapshot_age_seconds(site, datetime.now(UTC) + timedelta(minutes=10))
    assert later is not None and later >= 600
    copy = tmp_path / "copy.sqlite3"
    fetch_snapshot(site, manifest, copy)
    assert catalog_counts(f"sqlite:///{copy}")["audit_events"] == 3
    # The work file is gone; the snapshot is self-contained (no WAL beside it).
    assert list((tmp_path / "spool").iterdir()) == []
    assert not Path(str(site.root / manifest.key) + "-wal").exists()


PG_ENV = "CROSSDOC_TEST_DATABASE_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Makes fresh, migrated-or-empty catalogs of one engine: `new(migrated=True)`."""
    if request.param == "sqlite":
        made = iter(range(1000))

        def new_sqlite(migrated: bool = True) -> str:
            url = f"sqlite:///{tmp_path / f'catalog-{next(made)}.sqlite3'}"
            if migrated:
                SqlCatalog(url).migrate()
            return url

        yield new_sqlite
        return
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL leg: set {PG_ENV} (`infra/dev/engines up postgres`)")
    with ThrowawayDatabases(url, "crossdoc_backup") as dbs:

        def new_pg(migrated: bool = True) -> str:
            return dbs.new(migrated=migrated)

        yield new_pg


def test_snapshots_taken_while_the_catalog_is_written_are_consistent(
    database: Callable[..., str], site: LocalBackupSite, tmp_path: Path
) -> None:
    """A snapshot is one transaction's image, and its manifest counts that image's
    rows: every snapshot's audit chain verifies and holds exactly the rows its
    manifest says, whatever was being appended meanwhile."""
    url = database()
    stop = threading.Event()

    def write() -> None:
        catalog = SqlCatalog(url)
        try:
            i = 0
            while not stop.is_set():
                catalog.audit.append([NewAuditEvent(actor="w", action="test", target=f"x{i}")])
                i += 1
        finally:
            catalog.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        seen = []
        for _ in range(4):
            manifest = take_snapshot(url, site, tmp_path / "spool", keep=10)
            copy = tmp_path / f"copy-{len(seen)}"
            fetch_snapshot(site, manifest, copy)
            if manifest.engine == "sqlite":
                restored_url = f"sqlite:///{copy}"
            else:
                restored_url = database(migrated=False)
                load_postgres_dump(copy, restored_url)
            restored = SqlCatalog(restored_url)
            try:
                ok, checked, problem = restored.audit.verify_chain()
            finally:
                restored.close()
            assert ok, problem
            assert checked == manifest.counts["audit_events"]
            seen.append(checked)
    finally:
        stop.set()
        writer.join()
    assert seen == sorted(seen) and seen[-1] > 0


def test_only_the_newest_snapshots_are_kept(
    catalog_url: str, site: LocalBackupSite, tmp_path: Path
) -> None:
    made = []
    for i in range(4):
        _audit(catalog_url, 1)  # a different catalog each time: a different checksum
        made.append(take_snapshot(catalog_url, site, tmp_path / "spool", keep=2))
        if i < 3:
            # Keys carry the time to the second: make the next one later.
            import time

            time.sleep(1.05)
    kept = site.list_keys(SNAPSHOT_PREFIX)
    assert kept == sorted(m.key for m in made[-2:])
    assert latest_manifest(site) == made[-1]


def test_a_corrupt_snapshot_is_refused(
    catalog_url: str, site: LocalBackupSite, tmp_path: Path
) -> None:
    _audit(catalog_url, 2)
    manifest = take_snapshot(catalog_url, site, tmp_path / "spool", keep=5)
    path = site.root / manifest.key
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    dest = tmp_path / "copy.sqlite3"
    with pytest.raises(CorruptSnapshotError, match="corrupt"):
        fetch_snapshot(site, manifest, dest)
    assert not dest.exists()


def test_a_snapshot_matching_a_forged_manifest_still_fails_sqlite_s_own_check(
    site: LocalBackupSite, tmp_path: Path
) -> None:
    import hashlib

    junk = b"not a database" * 100
    key = f"{SNAPSHOT_PREFIX}20261130T000000Z-{hashlib.sha256(junk).hexdigest()}.sqlite3"
    site.put_bytes(key, junk)
    manifest = SnapshotManifest(
        key=key,
        sha256=hashlib.sha256(junk).hexdigest(),
        size=len(junk),
        engine="sqlite",
        created_at=datetime.now(UTC).isoformat(),
    )
    with pytest.raises(CorruptSnapshotError, match="not a readable database"):
        fetch_snapshot(site, manifest, tmp_path / "copy.sqlite3")


def test_a_garbled_latest_pointer_is_a_clear_error(site: LocalBackupSite) -> None:
    site.put_bytes(LATEST_KEY, b'{"key": "blobs/sha256/aa"}')
    with pytest.raises(CorruptSnapshotError, match="not a valid manifest"):
        latest_manifest(site)


def test_the_site_touches_nothing_but_catalog_keys(site: LocalBackupSite) -> None:
    for key in ("blobs/sha256/aa/bb/" + "ab" * 32, "catalog/../blobs", "catalog/other"):
        with pytest.raises(ValueError, match="not a catalog backup key"):
            site.put_bytes(key, b"x")


def test_a_missing_site_directory_is_not_recreated(catalog_url: str, tmp_path: Path) -> None:
    """An unmounted second site must fail, not fill the disk beneath the mount point."""
    site = LocalBackupSite(tmp_path / "unmounted")
    with pytest.raises(StorageUnavailableError, match="missing"):
        take_snapshot(catalog_url, site, tmp_path / "spool", keep=5)
    assert not (tmp_path / "unmounted").exists()


def test_the_snapshot_is_a_plain_database_file(
    catalog_url: str, site: LocalBackupSite, tmp_path: Path
) -> None:
    manifest = take_snapshot(catalog_url, site, tmp_path / "spool", keep=5)
    conn = sqlite3.connect(site.root / manifest.key)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    finally:
        conn.close()

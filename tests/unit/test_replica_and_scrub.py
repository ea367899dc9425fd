"""The second site without HTTP: the replicator (copy, read back, retry, drain), the sync
mirror, and the scrub (bit flips found and repaired on either site, crash leftovers
removed), over local stores and a SQLite catalog."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest

from storage.catalog.records import NewBlob, NewDocument
from storage.catalog.sql import SqlCatalog
from storage.errors import StorageUnavailableError
from storage.objectstore.base import blob_key_for
from storage.objectstore.local import LocalObjectStore
from storage.replica import Replicator, SyncMirror
from storage.scrub import SCRUB_ACTOR, Scrubber


@pytest.fixture
def catalog(tmp_path: Path) -> SqlCatalog:
    c = SqlCatalog(f"sqlite:///{tmp_path / 'c.db'}", replicate=True)
    c.migrate()
    c.organisation.create_ministry("M1", "행정안전부")
    c.organisation.create_department("D1", "기록관리과", "M1")
    return c


@pytest.fixture
def primary(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "primary")


@pytest.fixture
def replica_root(tmp_path: Path) -> Path:
    root = tmp_path / "site-b"
    root.mkdir()
    return root


def _store_and_record(
    catalog: SqlCatalog, store: LocalObjectStore, tmp_path: Path, content: bytes
) -> str:
    sha = hashlib.sha256(content).hexdigest()
    src = tmp_path / f"src-{sha[:8]}"
    src.write_bytes(content)
    blob = store.put_file(src, sha256=sha, size=len(content))
    catalog.documents.create(
        NewDocument(
            blob=NewBlob(blob.key, sha, len(content), "a.txt", "text/plain", "text/plain"),
            title="문서",
            department="D1",
            owner="kim",
            visibility="department",
        )
    )
    return blob.key


def _flip_a_bit(path: Path) -> None:
    os.chmod(path, 0o640)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def test_replicator_copies_verifies_and_empties_the_queue(
    catalog: SqlCatalog, primary: LocalObjectStore, replica_root: Path, tmp_path: Path
) -> None:
    replica = LocalObjectStore(replica_root, create_root=False)
    keys = [_store_and_record(catalog, primary, tmp_path, f"문서 {n}".encode()) for n in range(5)]
    # The same bytes twice: two rows, one blob, one copy.
    catalog.documents.create(
        NewDocument(
            blob=NewBlob(keys[0], keys[0].rsplit("/", 1)[1], len("문서 0".encode()), "b", "", ""),
            title="again",
            department="D1",
            owner="kim",
            visibility="department",
        )
    )
    assert catalog.replication.backlog().items == 6
    replicator = Replicator(catalog, primary, replica, tmp_path / "spool")
    replicator.drain()
    assert catalog.replication.backlog().items == 0
    assert replicator.copied == 5
    for key in keys:
        assert (replica_root / key).read_bytes() == (primary.root / key).read_bytes()


def test_replica_unreachable_backlog_grows_then_drains(
    catalog: SqlCatalog, primary: LocalObjectStore, replica_root: Path, tmp_path: Path
) -> None:
    replica = LocalObjectStore(replica_root, create_root=False)
    away = replica_root.with_name("site-b-unmounted")
    replica_root.rename(away)  # the mount is gone
    replicator = Replicator(catalog, primary, replica, tmp_path / "spool")
    for n in range(3):
        _store_and_record(catalog, primary, tmp_path, f"기록 {n}".encode())
        replicator.run_once()
    backlog = catalog.replication.backlog()
    assert backlog.items == 3 and backlog.failing == 3
    assert "missing" in backlog.last_error
    assert not replica_root.exists()  # never recreated on the disk beneath the mount
    away.rename(replica_root)
    # The rows are due again after their backoff (about a second): wait for it.
    deadline = time.monotonic() + 10
    while catalog.replication.backlog().items and time.monotonic() < deadline:
        replicator.run_once()
        time.sleep(0.1)
    assert catalog.replication.backlog().items == 0


def test_a_corrupt_primary_blob_is_not_replicated(
    catalog: SqlCatalog, primary: LocalObjectStore, replica_root: Path, tmp_path: Path
) -> None:
    replica = LocalObjectStore(replica_root, create_root=False)
    key = _store_and_record(catalog, primary, tmp_path, b"x" * 1000)
    _flip_a_bit(primary.root / key)
    Replicator(catalog, primary, replica, tmp_path / "spool").run_once()
    assert not replica.exists(key)
    assert catalog.replication.backlog().items == 1  # kept: the scrub repairs, never guesses


def test_sync_mirror_writes_both_or_fails_unavailable(
    primary: LocalObjectStore, replica_root: Path, tmp_path: Path
) -> None:
    mirror = SyncMirror(primary, LocalObjectStore(replica_root, create_root=False))
    src = tmp_path / "f"
    src.write_bytes(b"both sites")
    sha = hashlib.sha256(b"both sites").hexdigest()
    blob = mirror.put_file(src, sha256=sha, size=10)
    assert (replica_root / blob.key).read_bytes() == b"both sites"
    shutil.rmtree(replica_root)
    src.write_bytes(b"one site")
    with pytest.raises(StorageUnavailableError):
        mirror.put_file(src, sha256=hashlib.sha256(b"one site").hexdigest(), size=8)


@pytest.mark.parametrize("trial", range(3))
@pytest.mark.parametrize("site", ["primary", "replica"])
def test_scrub_finds_and_repairs_bit_flips(
    catalog: SqlCatalog,
    primary: LocalObjectStore,
    replica_root: Path,
    tmp_path: Path,
    site: str,
    trial: int,
) -> None:
    replica = LocalObjectStore(replica_root, create_root=False)
    keys = [
        _store_and_record(catalog, primary, tmp_path, os.urandom(2000 + 997 * n))
        for n in range(4 + trial)
    ]
    Replicator(catalog, primary, replica, tmp_path / "spool").drain()
    bad_root = primary.root if site == "primary" else replica_root
    victim = keys[trial % len(keys)]
    _flip_a_bit(bad_root / victim)
    missing = keys[-1]
    (replica_root / missing).unlink()  # and one blob lost on the replica
    scrubber = Scrubber(catalog, primary, replica, tmp_path / "spool")
    found = scrubber.run()
    assert (site, victim, "corrupt") in found.problems
    assert ("replica", missing, "missing") in found.problems
    assert found.unrepaired == len(found.problems) == 2
    repaired = scrubber.run(repair=True)
    assert sorted(repaired.repaired) == sorted([(site, victim), ("replica", missing)])
    assert repaired.unrepaired == 0
    for key in keys:
        assert (primary.root / key).read_bytes() == (replica_root / key).read_bytes()
        assert hashlib.sha256((primary.root / key).read_bytes()).hexdigest() in key
    assert scrubber.run().problems == []
    audited = [e for e in catalog.audit.each() if e.actor == SCRUB_ACTOR]
    assert {(e.action, e.target) for e in audited} == {
        ("blob_repair", victim),
        ("blob_repair", missing),
    }


def test_scrub_reports_a_blob_bad_on_both_sites(
    catalog: SqlCatalog, primary: LocalObjectStore, replica_root: Path, tmp_path: Path
) -> None:
    replica = LocalObjectStore(replica_root, create_root=False)
    key = _store_and_record(catalog, primary, tmp_path, b"y" * 500)
    Replicator(catalog, primary, replica, tmp_path / "spool").drain()
    _flip_a_bit(primary.root / key)
    (replica_root / key).unlink()
    report = Scrubber(catalog, primary, replica, tmp_path / "spool").run(repair=True)
    assert report.unrepairable == [key] and report.repaired == []


def test_scrub_removes_crash_leftovers_and_throttles(
    catalog: SqlCatalog, primary: LocalObjectStore, tmp_path: Path
) -> None:
    key = _store_and_record(catalog, primary, tmp_path, b"z" * 300_000)
    sha = key.rsplit("/", 1)[1]
    leftover = primary.root / key.rsplit("/", 1)[0] / f".{sha}.abc123.tmp"
    leftover.write_bytes(b"half a blob")
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "upload-x1").write_bytes(b"an upload cut by a crash")
    fresh = spool / "upload-x2"
    fresh.write_bytes(b"an upload in progress")
    old = 1_000_000_000
    os.utime(leftover, (old, old))
    os.utime(spool / "upload-x1", (old, old))
    report = Scrubber(catalog, primary, None, spool).run(rate_bytes=1_000_000)
    assert report.temp_files_removed == 2
    assert not leftover.exists() and fresh.exists()
    assert report.blobs == 1 and report.bytes_read == 300_000
    assert report.seconds >= 0.25  # 0.3 MB at 1 MB/s
    assert primary.exists(key)


def test_blob_key_stays_the_primary_key(primary: LocalObjectStore) -> None:
    # The contract with restore: the replica's key is blob_key_for(sha256), as on the primary.
    assert blob_key_for("a" * 64) == "blobs/sha256/aa/aa/" + "a" * 64

"""Reads that fall back to the replica (`storage.fallback.ReplicaFallbackStore`), without
HTTP: over local stores and a SQLite catalog, with a store that does not answer."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from storage.catalog.sql import SqlCatalog
from storage.errors import NoIntactCopyError, StorageUnavailableError
from storage.fallback import READ_REPAIR_ACTOR, ReplicaFallbackStore, fallback_counts
from storage.objectstore.base import ObjectStore, StoredBlob, blob_key_for
from storage.objectstore.local import LocalObjectStore
from storage.replica import SyncMirror, primary_of

CONTENT = "대체 읽기 시험 문서 · fallback read ".encode() * 5000  # ~180 KB: several chunks


class Unreachable:
    """An object store that does not answer (a primary site whose network is gone)."""

    def put_file(self, path: Path, *, sha256: str, size: int) -> StoredBlob:
        raise StorageUnavailableError("unreachable")

    def open(self, key: str) -> BinaryIO:
        raise StorageUnavailableError("unreachable")

    def iter_chunks(self, key: str, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        raise StorageUnavailableError("unreachable")

    def exists(self, key: str) -> bool:
        raise StorageUnavailableError("unreachable")

    def size(self, key: str) -> int:
        raise StorageUnavailableError("unreachable")

    def ping(self) -> None:
        raise StorageUnavailableError("unreachable")


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[SqlCatalog]:
    c = SqlCatalog(f"sqlite:///{tmp_path / 'c.db'}")
    c.migrate()
    yield c
    c.close()


@pytest.fixture
def sites(tmp_path: Path) -> tuple[LocalObjectStore, LocalObjectStore, str]:
    """Both sites holding `CONTENT`; its key."""
    primary = LocalObjectStore(tmp_path / "primary")
    replica = LocalObjectStore(tmp_path / "replica")
    sha = hashlib.sha256(CONTENT).hexdigest()
    source = tmp_path / "source"
    source.write_bytes(CONTENT)
    for store in (primary, replica):
        store.put_file(source, sha256=sha, size=len(CONTENT))
    return primary, replica, blob_key_for(sha)


def _flip_a_bit(path: Path) -> None:
    os.chmod(path, 0o640)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))


def _repairs(catalog: SqlCatalog) -> list[tuple[str, str, dict[str, object]]]:
    return [
        (e.action, e.target, e.detail) for e in catalog.audit.each() if e.actor == READ_REPAIR_ACTOR
    ]


def _fallback(
    primary: ObjectStore, replica: ObjectStore, catalog: SqlCatalog, tmp_path: Path
) -> ReplicaFallbackStore:
    return ReplicaFallbackStore(primary, replica, catalog, tmp_path / "spool")


def test_a_sound_primary_is_read_and_the_replica_is_not_asked(
    sites: tuple[LocalObjectStore, LocalObjectStore, str], catalog: SqlCatalog, tmp_path: Path
) -> None:
    primary, _, key = sites
    store = _fallback(primary, Unreachable(), catalog, tmp_path)
    assert b"".join(store.iter_chunks(key)) == CONTENT
    with store.open(key) as f:
        assert f.read() == CONTENT
    assert store.size(key) == len(CONTENT) and store.exists(key)
    assert fallback_counts(store) == store.counts
    assert (store.counts.reads, store.counts.repairs, store.counts.failures) == (0, 0, 0)
    assert _repairs(catalog) == []


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_missing_or_corrupt_primary_copy_is_read_from_the_replica_and_repaired(
    sites: tuple[LocalObjectStore, LocalObjectStore, str],
    catalog: SqlCatalog,
    tmp_path: Path,
    damage: str,
) -> None:
    primary, replica, key = sites
    if damage == "missing":
        (primary.root / key).unlink()
    else:
        _flip_a_bit(primary.root / key)
    store = _fallback(primary, replica, catalog, tmp_path)

    assert b"".join(store.iter_chunks(key)) == CONTENT

    assert (primary.root / key).read_bytes() == CONTENT  # repaired, byte for byte
    assert (store.counts.reads, store.counts.repairs, store.counts.failures) == (1, 1, 0)
    sha = key.rsplit("/", 1)[1]
    assert _repairs(catalog) == [
        (
            "blob_repair",
            key,
            {
                "sha256": sha,
                "size": len(CONTENT),
                "site": "primary",
                "was": damage,
                "from": "replica",
            },
        )
    ]
    # Repaired: the next read is the primary's again.
    with store.open(key) as f:
        assert f.read() == CONTENT
    assert store.counts.reads == 1


def test_the_indexers_open_reads_the_replica_when_the_primary_is_corrupt(
    sites: tuple[LocalObjectStore, LocalObjectStore, str], catalog: SqlCatalog, tmp_path: Path
) -> None:
    primary, replica, key = sites
    _flip_a_bit(primary.root / key)
    store = _fallback(primary, replica, catalog, tmp_path)
    with store.open(key) as f:
        assert f.read() == CONTENT
    assert store.counts.repairs == 1


def test_an_unreachable_primary_is_read_from_the_replica_without_a_repair(
    sites: tuple[LocalObjectStore, LocalObjectStore, str], catalog: SqlCatalog, tmp_path: Path
) -> None:
    _, replica, key = sites
    store = _fallback(Unreachable(), replica, catalog, tmp_path)
    assert b"".join(store.iter_chunks(key)) == CONTENT
    assert store.size(key) == len(CONTENT) and store.exists(key)
    assert (store.counts.reads, store.counts.repairs) == (1, 0)
    assert _repairs(catalog) == []


def test_no_intact_copy_anywhere_serves_nothing(
    sites: tuple[LocalObjectStore, LocalObjectStore, str], catalog: SqlCatalog, tmp_path: Path
) -> None:
    primary, replica, key = sites
    _flip_a_bit(primary.root / key)
    _flip_a_bit(replica.root / key)
    store = _fallback(primary, replica, catalog, tmp_path)
    with pytest.raises(NoIntactCopyError, match="corrupt on the primary, corrupt on the replica"):
        store.iter_chunks(key)
    (replica.root / key).unlink()
    with pytest.raises(NoIntactCopyError, match="missing on the replica"):
        store.open(key)
    assert store.counts.failures == 2 and store.counts.repairs == 0
    assert _repairs(catalog) == []


def test_a_site_that_does_not_answer_makes_it_unavailable_not_lost(
    sites: tuple[LocalObjectStore, LocalObjectStore, str], catalog: SqlCatalog, tmp_path: Path
) -> None:
    _, replica, key = sites
    _flip_a_bit(replica.root / key)
    store = _fallback(Unreachable(), replica, catalog, tmp_path)
    with pytest.raises(StorageUnavailableError) as raised:
        store.iter_chunks(key)
    assert not isinstance(raised.value, NoIntactCopyError)  # the primary may be back soon


def test_concurrent_reads_of_a_corrupt_blob_repair_it_once(
    sites: tuple[LocalObjectStore, LocalObjectStore, str], catalog: SqlCatalog, tmp_path: Path
) -> None:
    primary, replica, key = sites
    _flip_a_bit(primary.root / key)
    store = _fallback(primary, replica, catalog, tmp_path)
    start = threading.Barrier(4)
    results: list[bytes] = []

    def read() -> None:
        start.wait()
        results.append(b"".join(store.iter_chunks(key)))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [CONTENT] * 4
    assert len(_repairs(catalog)) == 1 and store.counts.repairs == 1
    assert (primary.root / key).read_bytes() == CONTENT


def test_writes_go_to_the_primary_and_the_scrub_sees_through_the_wrapper(
    sites: tuple[LocalObjectStore, LocalObjectStore, str], catalog: SqlCatalog, tmp_path: Path
) -> None:
    primary, replica, _ = sites
    mirror = SyncMirror(primary, replica)
    store = _fallback(mirror, replica, catalog, tmp_path)
    assert primary_of(store) is primary
    assert primary_of(_fallback(primary, replica, catalog, tmp_path)) is primary
    data = "새 판".encode()
    source = tmp_path / "new"
    source.write_bytes(data)
    blob = store.put_file(source, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    assert (primary.root / blob.key).read_bytes() == data
    assert (replica.root / blob.key).read_bytes() == data  # the sync mirror's write

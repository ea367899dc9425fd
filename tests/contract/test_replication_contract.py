"""The replication queue's contract (`storage.catalog.replication`), on SQLite and a real
PostgreSQL (the catalog contract's fixtures): rows are written in the transaction that
records a version, claimed under a lease, retried, and removed once replicated."""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from storage.catalog.ports import CatalogStore
from storage.catalog.records import NewBlob, NewDocument
from storage.catalog.sql import SqlCatalog
from storage.errors import NotFoundError, StorageUnavailableError
from storage.objectstore.base import ObjectStore
from storage.objectstore.local import LocalObjectStore
from storage.objectstore.s3 import S3ObjectStore
from storage.replica import Replicator, SyncMirror
from storage.scrub import Scrubber
from tests.contract.test_catalog_contract import (  # noqa: F401 - fixtures
    catalog,
    new_doc,
    postgres_template,
)


@pytest.fixture
def queue(catalog: CatalogStore) -> CatalogStore:  # noqa: F811 - the imported fixture
    """The contract's catalog, told to queue new versions (a replica in async mode)."""
    assert isinstance(catalog, SqlCatalog)
    catalog.database.replicate = True
    return catalog


def _sha(n: int) -> str:
    return f"{n:064x}"


def test_every_new_version_is_queued_with_its_blob(queue: CatalogStore) -> None:
    doc, _ = queue.documents.create(new_doc(_sha(1)))
    docs = queue.documents.create_many([new_doc(_sha(2)), new_doc(_sha(3))])
    blob = NewBlob(f"blobs/sha256/00/00/{_sha(4)}", _sha(4), 7, "b.txt", "text/plain", "text/plain")
    queue.documents.add_version(doc.id, blob, "kim")
    backlog = queue.replication.backlog()
    assert backlog.items == 4
    assert backlog.bytes == 3 + 3 + 3 + 7
    assert backlog.oldest_at is not None and backlog.failing == 0
    items = queue.replication.claim(10, timedelta(minutes=1))
    assert [(i.document_id, i.version, i.sha256) for i in items] == [
        (doc.id, 1, _sha(1)),
        (docs[0].id, 1, _sha(2)),
        (docs[1].id, 1, _sha(3)),
        (doc.id, 2, _sha(4)),
    ]
    assert all(i.attempts == 1 for i in items)


def test_not_queued_without_replication(catalog: CatalogStore) -> None:  # noqa: F811
    catalog.documents.create(new_doc(_sha(1)))
    assert catalog.replication.backlog().items == 0


def test_queue_row_commits_with_the_upload_or_not_at_all(queue: CatalogStore) -> None:
    with queue.unit_of_work() as uow:
        uow.documents.create(new_doc(_sha(1)))
        # Left without commit(): rolled back, the queue row with it.
    assert queue.replication.backlog().items == 0
    with pytest.raises(NotFoundError):
        queue.documents.create_many([new_doc(_sha(2)), new_doc(_sha(3), department="NOPE")])
    assert queue.replication.backlog().items == 0
    with queue.unit_of_work() as uow:
        uow.documents.create(new_doc(_sha(4)))
        assert uow.replication.backlog().items == 1  # visible inside the transaction
        uow.commit()
    assert queue.replication.backlog().items == 1


def test_claims_lease_retry_and_done(queue: CatalogStore) -> None:
    queue.documents.create_many([new_doc(_sha(1)), new_doc(_sha(2)), new_doc(_sha(1))])
    first = queue.replication.claim(2, timedelta(minutes=5))
    assert len(first) == 2
    # Claimed rows are not claimed again while their lease holds.
    second = queue.replication.claim(10, timedelta(minutes=5))
    assert len(second) == 1 and second[0].id not in {i.id for i in first}
    # A failure gives rows back, due after the delay, with the error kept.
    queue.replication.retry([first[0].id], "replica unreachable", timedelta(0))
    backlog = queue.replication.backlog()
    assert backlog.items == 3 and backlog.failing == 1
    assert backlog.last_error == "replica unreachable"
    again = queue.replication.claim(10, timedelta(minutes=5))
    assert [i.id for i in again] == [first[0].id] and again[0].attempts == 2
    # Done removes every row of the blob (two versions share sha 1).
    assert queue.replication.done([f"blobs/sha256/{_sha(1)[:2]}/{_sha(1)}"]) == 2
    assert queue.replication.backlog().items == 1


def test_a_lapsed_claim_is_claimable_again(queue: CatalogStore) -> None:
    queue.documents.create(new_doc(_sha(1)))
    (item,) = queue.replication.claim(1, timedelta(milliseconds=200))
    assert queue.replication.claim(1, timedelta(minutes=1)) == []
    time.sleep(0.3)
    (again,) = queue.replication.claim(1, timedelta(minutes=1))
    assert again.id == item.id and again.attempts == 2


def test_enqueue_all_and_stored_blobs(catalog: CatalogStore) -> None:  # noqa: F811
    docs = catalog.documents.create_many([new_doc(_sha(n)) for n in (3, 1, 2, 1)])
    catalog.documents.soft_delete(docs[0].id)  # its blob is still stored, and scrubbed
    assert catalog.replication.enqueue_all() == 4
    assert catalog.replication.enqueue_all() == 0
    assert catalog.replication.backlog().items == 4
    first = catalog.replication.stored_blobs("", 2)
    assert [b.sha256 for b in first] == [_sha(1), _sha(2)]
    rest = catalog.replication.stored_blobs(first[-1].blob_key, 10)
    assert [b.sha256 for b in rest] == [_sha(3)] and rest[0].size == 3


# -- an S3 replica (moto): copy, repair, sync refusal ---------------------------------


def _s3_replica(endpoint: str, bucket: str) -> ObjectStore:
    from crossdoc.settings import Settings
    from crossdoc.wiring.core import build_replica_store

    settings = Settings(
        replica_s3_access_key="crossdoc-test",
        replica_s3_secret_key="crossdoc-test-secret",
    )
    store = build_replica_store(
        settings, f"s3://{bucket}?endpoint={endpoint}&secure=false&region=us-east-1"
    )
    assert store is not None
    return store


def test_s3_replica_is_filled_verified_and_repaired(moto_s3_endpoint: str, tmp_path: Path) -> None:
    queue_db = SqlCatalog(f"sqlite:///{tmp_path / 'c.db'}", replicate=True)
    queue_db.migrate()
    queue_db.organisation.create_ministry("M1", "행정안전부")
    queue_db.organisation.create_department("D1", "기록관리과", "M1")
    primary = LocalObjectStore(tmp_path / "primary")
    replica = _s3_replica(moto_s3_endpoint, f"crossdoc-rep-{uuid.uuid4().hex[:12]}")
    keys = []
    for n in range(3):
        content = f"S3 복제 {n} ".encode() * 100
        sha = hashlib.sha256(content).hexdigest()
        src = tmp_path / f"s{n}"
        src.write_bytes(content)
        blob = primary.put_file(src, sha256=sha, size=len(content))
        queue_db.documents.create(
            NewDocument(
                blob=NewBlob(blob.key, sha, len(content), "a.txt", "", ""),
                title="t",
                department="D1",
                owner="kim",
                visibility="department",
            )
        )
        keys.append(blob.key)
    Replicator(queue_db, primary, replica, tmp_path / "spool").drain()
    assert queue_db.replication.backlog().items == 0
    for key in keys:
        assert b"".join(replica.iter_chunks(key)) == (primary.root / key).read_bytes()
    # A bit flip on the replica (same size, other bytes), found and repaired.
    assert isinstance(replica, S3ObjectStore)
    good = (primary.root / keys[1]).read_bytes()
    bad = bytearray(good)
    bad[10] ^= 1
    replica._client.put_object(replica.bucket, keys[1], io.BytesIO(bytes(bad)), len(bad))
    scrubber = Scrubber(queue_db, primary, replica, tmp_path / "spool")
    report = scrubber.run(repair=True)
    assert report.problems == [("replica", keys[1], "corrupt")]
    assert report.repaired == [("replica", keys[1])]
    assert b"".join(replica.iter_chunks(keys[1])) == good
    queue_db.close()


def test_sync_mirror_refuses_when_the_s3_replica_is_down(tmp_path: Path) -> None:
    from crossdoc.settings import Settings
    from crossdoc.wiring.core import build_replica_store
    from tests.conftest import free_port

    replica = build_replica_store(
        Settings(replica_s3_access_key="k", replica_s3_secret_key="s"),
        f"s3://nowhere?endpoint=127.0.0.1:{free_port()}&secure=false",
    )
    assert replica is not None
    mirror = SyncMirror(LocalObjectStore(tmp_path / "primary"), replica)
    src = tmp_path / "f"
    src.write_bytes(b"only one site")
    with pytest.raises(StorageUnavailableError):
        mirror.put_file(src, sha256=hashlib.sha256(b"only one site").hexdigest(), size=13)

"""Who replicates: the API process on the embedded default, each `crossdoc worker`
process with a broker (never the API then); and the replica URL forms."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from crossdoc.settings import Settings
from crossdoc.wiring.api import build_services
from crossdoc.wiring.core import ConfigurationError, build_replica_store
from crossdoc.wiring.worker import CeleryWorker
from storage.catalog.records import NewBlob, NewDocument
from storage.fallback import ReplicaFallbackStore
from storage.objectstore.local import LocalObjectStore
from storage.objectstore.s3 import S3ObjectStore
from storage.replica import SyncMirror
from tests.conftest import fast_passwords


def _queue_one(services: object, tmp_path: Path) -> str:
    catalog = services.catalog  # type: ignore[attr-defined]
    store = services.store  # type: ignore[attr-defined]
    catalog.organisation.create_ministry("M1", "행정안전부")
    catalog.organisation.create_department("D1", "기록관리과", "M1")
    content = "작업자 복제".encode()
    sha = hashlib.sha256(content).hexdigest()
    src = tmp_path / "src"
    src.write_bytes(content)
    blob = store.put_file(src, sha256=sha, size=len(content))
    catalog.documents.create(
        NewDocument(
            blob=NewBlob(blob.key, sha, len(content), "a.txt", "", ""),
            title="t",
            department="D1",
            owner="kim",
            visibility="department",
        )
    )
    return str(blob.key)


def test_a_celery_worker_process_replicates_and_the_api_does_not(tmp_path: Path) -> None:
    replica = tmp_path / "site-b"
    replica.mkdir()
    settings = Settings(
        data_dir=tmp_path / "data",
        replica_url=f"file://{replica}",
        broker_url="redis://127.0.0.1:1/0",  # never reached: no task is sent here
        demo=False,
    )
    api = build_services(settings, passwords=fast_passwords())
    try:
        assert api.jobs.replicator is None  # with a broker, the workers replicate
    finally:
        api.close()
    worker = CeleryWorker(settings)
    worker._start_process()
    try:
        assert worker.jobs is not None and worker.jobs.replicator is not None
        assert worker.services is not None
        key = _queue_one(worker.services, tmp_path)
        deadline = time.monotonic() + 30
        while worker.services.catalog.replication.backlog().items:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert (replica / key).read_bytes() == "작업자 복제".encode()
    finally:
        worker._stop_process()
        worker.queue.close()


def test_embedded_api_runs_the_replicator_and_sync_mirrors(tmp_path: Path) -> None:
    replica = tmp_path / "site-b"
    replica.mkdir()
    for mode in ("async", "sync"):
        settings = Settings(
            data_dir=tmp_path / f"data-{mode}", replica_url=str(replica), replication=mode
        )
        services = build_services(settings, passwords=fast_passwords())
        try:
            assert services.jobs.replicator is not None
            # Reads fall back to the replica; writes go through the sync mirror in sync mode.
            assert isinstance(services.store, ReplicaFallbackStore)
            assert isinstance(services.store.primary, SyncMirror) == (mode == "sync")
            assert isinstance(services.replica_store, LocalObjectStore)
        finally:
            services.close()


def test_replica_url_forms() -> None:
    settings = Settings(
        replica_s3_endpoint="site-b.example:9000",
        replica_s3_access_key="a",
        replica_s3_secret_key="s",
    )
    store = build_replica_store(settings, "s3://crossdoc-b")
    assert isinstance(store, S3ObjectStore) and store.bucket == "crossdoc-b"
    assert build_replica_store(Settings()) is None
    local = build_replica_store(settings, "/mnt/site-b/crossdoc")
    assert isinstance(local, LocalObjectStore) and local.root == Path("/mnt/site-b/crossdoc")
    with pytest.raises(ConfigurationError):
        build_replica_store(Settings(), "s3://crossdoc-b")  # no endpoint, no keys
    with pytest.raises(ValueError, match="CROSSDOC_REPLICA_URL"):
        Settings(replica_url="ftp://site-b/crossdoc")

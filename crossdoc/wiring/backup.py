"""The second site's composition root: the replica's object store and backup site, the
catalog snapshot schedule, restore and the drill (`crossdoc backup|restore|drill`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from crossdoc.settings import Settings
from crossdoc.wiring.core import ConfigurationError, build_core
from crossdoc.wiring.core import build_replica_store as build_core_replica_store
from services.restore import RestoreReport, reindex_all, restore
from storage.backup import (
    BackupSite,
    LocalBackupSite,
    S3BackupSite,
    SnapshotManifest,
    take_snapshot,
)
from storage.errors import StorageError
from storage.objectstore.base import ObjectStore

log = logging.getLogger(__name__)


def _replica_s3(settings: Settings) -> tuple[str, str, str, str]:
    endpoint = settings.replica_s3_endpoint or settings.s3_endpoint
    access = settings.replica_s3_access_key or settings.s3_access_key
    secret = settings.replica_s3_secret_key or settings.s3_secret_key
    bucket = settings.replica_bucket
    if not (endpoint and access and secret and bucket):
        raise ConfigurationError(
            "an s3:// replica needs CROSSDOC_REPLICA_S3_ENDPOINT, CROSSDOC_REPLICA_S3_ACCESS_KEY "
            "and CROSSDOC_REPLICA_S3_SECRET_KEY (or the primary's CROSSDOC_S3_*)"
        )
    return endpoint, access.get_secret_value(), secret.get_secret_value(), bucket


def _replica_dir(settings: Settings) -> Path:
    path = settings.replica_dir
    if path is None:
        raise ConfigurationError("set CROSSDOC_REPLICA_URL (or --from) to name the second site")
    if not path.is_dir():
        # An unmounted second site must be noticed, not recreated on the disk below.
        raise ConfigurationError(f"the replica directory {path} does not exist")
    return path


def build_backup_site(settings: Settings, *, must_exist: bool = True) -> BackupSite:
    """Where catalog snapshots go: `catalog/` on the replica. `ConfigurationError`.

    With `must_exist=False` a replica directory missing now is not an error here
    (a long-running schedule reports each failed snapshot and tries again).
    """
    if settings.replica_bucket:
        endpoint, access, secret, bucket = _replica_s3(settings)
        return S3BackupSite(
            endpoint, access, secret, bucket, secure=settings.s3_secure, region=settings.s3_region
        )
    if not must_exist and settings.replica_dir is not None:
        return LocalBackupSite(settings.replica_dir)
    return LocalBackupSite(_replica_dir(settings))


def build_replica_store(settings: Settings) -> ObjectStore:
    """The replica's originals, read through the object store port (the same adapter
    the replicator writes through). `ConfigurationError`."""
    if settings.replica_bucket is None:
        _replica_dir(settings)  # a missing directory is named, not recreated
    store = build_core_replica_store(settings)
    if store is None:
        raise ConfigurationError("set CROSSDOC_REPLICA_URL (or --from) to name the second site")
    return store


def backup_catalog(settings: Settings) -> SnapshotManifest:
    """One catalog snapshot onto the replica (`crossdoc backup catalog`)."""
    site = build_backup_site(settings)
    return take_snapshot(
        settings.resolved_database_url,
        site,
        settings.spool_dir,
        keep=settings.catalog_backup_keep,
    )


class CatalogBackupLoop:
    """A thread taking a catalog snapshot every `CROSSDOC_CATALOG_BACKUP_SECONDS`.

    A failed snapshot is logged and tried again at the next tick: the age of the
    last good one (`storage.backup.snapshot_age_seconds`) is what tells.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._site = build_backup_site(settings, must_exist=False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: SnapshotManifest | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="catalog-backup", daemon=True)
        self._thread.start()

    def run_once(self) -> SnapshotManifest | None:
        try:
            self.last = take_snapshot(
                self._settings.resolved_database_url,
                self._site,
                self._settings.spool_dir,
                keep=self._settings.catalog_backup_keep,
            )
        except (StorageError, OSError) as err:
            log.error("catalog snapshot onto the replica failed: %s", err)
            return None
        log.info("catalog snapshot %s (%d bytes)", self.last.key, self.last.size)
        return self.last

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self._settings.catalog_backup_seconds)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)


def catalog_backups(settings: Settings) -> CatalogBackupLoop | None:
    """The catalog snapshot schedule of a `crossdoc serve` process, started; None
    without a replica or with `CROSSDOC_CATALOG_BACKUP_SECONDS=0`."""
    if not settings.replica_url or settings.catalog_backup_seconds <= 0:
        return None
    loop = CatalogBackupLoop(settings)
    loop.start()
    return loop


def target_settings(settings: Settings, target: Path, database_url: str | None = None) -> Settings:
    """The settings of the deployment restored into `target` (and `database_url`)."""
    return settings.model_copy(
        update={
            "data_dir": target,
            "database_url": database_url,
            "storage_url": None,
            "search_url": "embedded",
            "broker_url": None,
            "replica_url": None,
            "jwt_keys_file": None,
        }
    )


def restore_into(
    settings: Settings,
    target: Path,
    progress: Callable[[str], None] | None = None,
    *,
    database_url: str | None = None,
) -> RestoreReport:
    """`crossdoc restore`: the second site named by `settings.replica_url` into `target`
    (and, for a PostgreSQL catalog, the empty database `database_url`)."""
    site = build_backup_site(settings)
    replica = build_replica_store(settings)

    def rebuild(directory: Path) -> tuple[int, int]:
        core = build_core(target_settings(settings, directory, database_url))
        try:
            return reindex_all(
                core.catalog,
                core.index,
                core.pipeline,
                batch_size=core.settings.worker_batch_size,
                batch_bytes=core.settings.worker_batch_bytes,
            )
        finally:
            core.close()

    return restore(
        site,
        replica,
        target,
        rebuild,
        database_url=database_url,
        progress=progress or (lambda step: log.info("restore: %s", step)),
    )

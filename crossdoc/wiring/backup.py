"""The second site's composition root: the replica's object store and backup site, the
catalog snapshot schedule, restore and the drill (`crossdoc backup|restore|drill`).

Restore and the drill share one path (`_restore`): the targets are checked empty,
then `services.restore.restore` fills them. Their kinds follow the deployment:
a directory, or for a scale-out one an S3 bucket, a PostgreSQL database and an
alias on Elasticsearch/OpenSearch (`RestoreTargets`).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from crossdoc.settings import Settings
from crossdoc.wiring.core import ConfigurationError, build_core, build_object_store
from crossdoc.wiring.core import build_replica_store as build_core_replica_store
from indexer.errors import SearchUnavailableError
from services.restore import RestoreError, RestoreReport, reindex_all, restore
from storage.backup import (
    BackupSite,
    LocalBackupSite,
    S3BackupSite,
    SnapshotManifest,
    catalog_tables,
    drop_catalog,
    take_snapshot,
)
from storage.errors import StorageError, StorageUnavailableError
from storage.objectstore.base import ObjectStore
from storage.objectstore.s3_bucket import S3Bucket

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


@dataclass(frozen=True)
class RestoreTargets:
    """Where a restore writes, each empty (or absent) before it starts.

    `directory`: the restored deployment's data directory (its SQLite catalog,
    its originals and its Tantivy index when no other target is named; spool and
    keys always). `database_url`: an empty PostgreSQL database for the catalog.
    `bucket`: an empty S3 bucket for the originals, at the `CROSSDOC_S3_*`
    endpoint with its keys. `search_index`: a new alias on the engine at
    `CROSSDOC_SEARCH_URL` for the index. The engines' addresses and keys are the
    settings'; these name what on them is the restore's own.
    """

    directory: Path
    database_url: str | None = None
    bucket: str | None = None
    search_index: str | None = None

    def serve_settings(self) -> dict[str, str]:
        """The settings that serve the restored deployment (passwords hidden)."""
        out = {"CROSSDOC_DATA_DIR": str(self.directory)}
        if self.database_url:
            out["CROSSDOC_DATABASE_URL"] = make_url(self.database_url).render_as_string()
        if self.bucket:
            out["CROSSDOC_STORAGE_URL"] = f"s3://{self.bucket}"
        if self.search_index:
            out["CROSSDOC_SEARCH_INDEX"] = self.search_index
        return out


def target_settings(settings: Settings, targets: RestoreTargets) -> Settings:
    """The settings of the deployment restored into `targets` (on the settings' engines)."""
    return settings.model_copy(
        update={
            "data_dir": targets.directory,
            "database_url": targets.database_url,
            "storage_url": f"s3://{targets.bucket}" if targets.bucket else None,
            "search_url": settings.search_url if targets.search_index else "embedded",
            "search_index": targets.search_index or settings.search_index,
            "broker_url": None,
            "replica_url": None,
            "jwt_keys_file": None,
        }
    )


#: A name the engines accept for an alias (as `Settings.search_index`).
_INDEX_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,200}")


def _target_bucket(settings: Settings, bucket: str) -> S3Bucket:
    if not (settings.s3_endpoint and settings.s3_access_key and settings.s3_secret_key):
        raise ConfigurationError(
            f"s3://{bucket}: an S3 target needs CROSSDOC_S3_ENDPOINT, CROSSDOC_S3_ACCESS_KEY "
            "and CROSSDOC_S3_SECRET_KEY"
        )
    return S3Bucket(
        settings.s3_endpoint,
        settings.s3_access_key.get_secret_value(),
        settings.s3_secret_key.get_secret_value(),
        bucket,
        secure=settings.s3_secure,
        region=settings.s3_region,
    )


def _check_targets(settings: Settings, targets: RestoreTargets) -> None:
    """Refuse any target that holds something already (`RestoreError`): a restore
    never writes over a deployment. (The directory is checked by the restore.)"""
    if targets.search_index and settings.search_url == "embedded":
        raise ConfigurationError(
            "--search-index names an index on Elasticsearch/OpenSearch: set CROSSDOC_SEARCH_URL"
        )
    if targets.search_index and not _INDEX_NAME.fullmatch(targets.search_index):
        raise ConfigurationError(
            f"--search-index {targets.search_index!r}: lower-case letters, digits, '_', '.', '-'"
        )
    if targets.database_url:
        tables = catalog_tables(targets.database_url)
        if tables:
            where = make_url(targets.database_url).render_as_string()
            raise RestoreError(
                f"복원 대상 데이터베이스가 비어 있지 않습니다 · the database {where} is not empty "
                f"({len(tables)} tables): restore never writes over an existing catalog"
            )
    if targets.bucket and not _target_bucket(settings, targets.bucket).is_empty():
        raise RestoreError(
            f"복원 대상 버킷이 비어 있지 않습니다 · the bucket s3://{targets.bucket} is not "
            "empty: restore never writes over an existing deployment's originals"
        )
    if targets.search_index:
        from indexer.index.elasticsearch import index_in_use

        try:
            used = index_in_use(settings.search_url, targets.search_index)
        except SearchUnavailableError as err:
            raise StorageUnavailableError(str(err)) from err
        if used:
            raise RestoreError(
                f"복원 대상 색인이 이미 있습니다 · the search index {targets.search_index} "
                f"exists already ({', '.join(used)}): name a new one (--search-index)"
            )


def _restore(
    settings: Settings, targets: RestoreTargets, progress: Callable[[str], None]
) -> RestoreReport:
    """The restore itself, onto targets already checked (shared by restore and the drill)."""
    site = build_backup_site(settings)
    replica = build_replica_store(settings)
    restored = target_settings(settings, targets)
    # The restored deployment's own object store: its directory, or its bucket
    # (made if absent: an empty one was checked for).
    store = build_object_store(restored) if targets.bucket else None

    def rebuild(directory: Path) -> tuple[int, int]:
        core = build_core(restored)
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
        targets.directory,
        rebuild,
        database_url=targets.database_url,
        store=store,
        progress=progress,
    )


def _progress(progress: Callable[[str], None] | None) -> Callable[[str], None]:
    return progress or (lambda step: log.info("restore: %s", step))


def restore_into(
    settings: Settings,
    targets: RestoreTargets,
    progress: Callable[[str], None] | None = None,
) -> RestoreReport:
    """`crossdoc restore`: the second site named by `settings.replica_url` into
    `targets`, each refused unless empty. `ConfigurationError`, `StorageError`."""
    _check_targets(settings, targets)
    return _restore(settings, targets, _progress(progress))


@dataclass
class DrillResult:
    """A drill's report, and what was removed after it (or could not be)."""

    report: RestoreReport | None = None
    #: Why the restore stopped (a corrupt snapshot, an unreachable site…), if it did.
    error: str | None = None
    cleaned: list[str] = field(default_factory=list)
    cleanup_errors: list[str] = field(default_factory=list)


def _same_database(a: str, b: str) -> bool:
    x, y = make_url(a), make_url(b)
    return (x.host, x.port, x.database) == (y.host, y.port, y.database)


def drill_targets(
    settings: Settings,
    directory: Path,
    *,
    database_url: str | None = None,
    bucket: str | None = None,
    search_index: str | None = None,
) -> RestoreTargets:
    """The scratch targets of a drill beside the deployment `settings` describe,
    of the same kinds as its own; never one of its own (`ConfigurationError`).

    A deployment on S3 needs a scratch `bucket` named; on Elasticsearch/OpenSearch
    the scratch index is `<alias>-drill-<UTC time>` unless `search_index` names one.
    """
    if settings.uses_s3 and not bucket:
        raise ConfigurationError(
            "이 배포는 원본을 S3에 둡니다 · this deployment keeps its originals on S3: name a "
            "scratch bucket for the drill (--storage-url s3://SCRATCH-BUCKET)"
        )
    if bucket and bucket in {
        settings.s3_bucket if settings.uses_s3 else None,
        settings.replica_bucket,
    }:
        raise ConfigurationError(
            f"s3://{bucket} is this deployment's own bucket: the drill never writes it"
        )
    if database_url and _same_database(database_url, settings.resolved_database_url):
        raise ConfigurationError(
            "--database-url is this deployment's own catalog: the drill never writes it"
        )
    if settings.search_url != "embedded":
        live = settings.search_index
        search_index = search_index or f"{live}-drill-{datetime.now(UTC):%Y%m%dt%H%M%S}"
        if search_index in {live, f"{live}-rebuild"}:
            raise ConfigurationError(
                f"{search_index} is this deployment's own search index: the drill never writes it"
            )
    return RestoreTargets(directory, database_url, bucket, search_index)


def drill(
    settings: Settings,
    targets: RestoreTargets,
    progress: Callable[[str], None] | None = None,
    *,
    keep: bool = False,
) -> DrillResult:
    """`crossdoc drill`: restore the second site into scratch `targets` (see
    `drill_targets`) beside the running deployment, which is only read (its
    replica), then remove what the restore made: the scratch index and objects,
    the scratch database's tables (unless `keep`). Targets found in use are
    refused and left alone (`ConfigurationError`, `StorageError`); a restore
    that stops midway is `DrillResult.error`, cleaned up after all the same.
    """
    _check_targets(settings, targets)
    # From here on the targets are the drill's own: they were empty.
    bucket = _target_bucket(settings, targets.bucket) if targets.bucket else None
    bucket_existed = bucket.exists() if bucket else False
    result = DrillResult()
    try:
        result.report = _restore(settings, targets, _progress(progress))
    except StorageError as err:
        # Reported as the drill's failure, after the clean-up below.
        result.error = str(err)
    finally:
        if not keep:
            _clean_up(settings, targets, bucket, bucket_existed, result)
    return result


def _clean_up(
    settings: Settings,
    targets: RestoreTargets,
    bucket: S3Bucket | None,
    bucket_existed: bool,
    result: DrillResult,
) -> None:
    steps: list[tuple[str, Callable[[], str]]] = []
    if targets.search_index:
        index = targets.search_index

        def drop_scratch_index() -> str:
            from indexer.index.elasticsearch import drop_index

            dropped = drop_index(settings.search_url, index)
            return f"scratch index {index} ({', '.join(dropped) or 'none made'})"

        steps.append(("index", drop_scratch_index))
    if bucket is not None:
        scratch = bucket

        def empty_scratch_bucket() -> str:
            removed = scratch.remove_all(remove_bucket=not bucket_existed)
            return f"{removed} scratch objects in s3://{scratch.name}"

        steps.append(("bucket", empty_scratch_bucket))
    if targets.database_url:
        url = targets.database_url

        def empty_scratch_database() -> str:
            drop_catalog(url)
            return f"scratch database {make_url(url).render_as_string()} emptied"

        steps.append(("database", empty_scratch_database))
    for what, step in steps:
        try:
            result.cleaned.append(step())
        except (StorageError, SearchUnavailableError, SQLAlchemyError, OSError) as err:
            result.cleanup_errors.append(f"{what}: {err}")

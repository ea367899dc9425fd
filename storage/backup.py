"""The catalog's second site: consistent snapshots, checksummed, kept beside the replica.

The originals reach the replica under their own keys (`blobs/sha256/…`); the
catalog goes there as snapshots under `catalog/`, made by the tool each engine
ships for it:

- SQLite: the online-backup API (`sqlite3.Connection.backup`), which copies a
  consistent image of the live database while the service keeps writing (in WAL
  mode, readers do not block the writer);
- PostgreSQL: `pg_dump --format=custom` (a consistent dump in one transaction).
  In production, PostgreSQL's own WAL archiving (pgBackRest) gives a finer
  recovery point; these dumps are what `crossdoc restore` reads.

Each snapshot is `catalog/snapshots/<UTC time>-<sha256>.<ext>`, and
`catalog/latest` is a small JSON manifest naming it with its SHA-256, size,
time and counts, written only once the snapshot is durable on the site. A reader
checks the snapshot against the manifest before trusting a byte of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from sqlalchemy import Connection, create_engine, func, inspect, select, text, union
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from storage.catalog import models as m
from storage.errors import StorageError, StorageUnavailableError

__all__ = [
    "LATEST_KEY",
    "BackupSite",
    "CatalogBlob",
    "CorruptSnapshotError",
    "LocalBackupSite",
    "NoSnapshotError",
    "S3BackupSite",
    "SnapshotManifest",
    "catalog_blobs",
    "catalog_counts",
    "catalog_tables",
    "drop_catalog",
    "fetch_snapshot",
    "latest_manifest",
    "load_postgres_dump",
    "snapshot_age_seconds",
    "take_snapshot",
]

LATEST_KEY = "catalog/latest"
SNAPSHOT_PREFIX = "catalog/snapshots/"
#: The only keys this module writes or reads: nothing under `blobs/` is ever touched.
_KEY = re.compile(r"catalog/(latest|snapshots/[0-9TZ]{16}-[0-9a-f]{64}\.(sqlite3|pgdump))")
_CHUNK = 1 << 20


class CorruptSnapshotError(StorageError):
    """A catalog snapshot on the backup site does not match its manifest (or is unreadable)."""


class NoSnapshotError(StorageError):
    """The backup site holds no catalog snapshot (`catalog/latest` is missing)."""


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"not a catalog backup key: {key!r}")
    return key


# -- the site -------------------------------------------------------------------------


@runtime_checkable
class BackupSite(Protocol):
    """Where catalog snapshots are kept: the replica's directory or bucket, under `catalog/`.

    Writes are atomic (a reader sees a whole object or none) and durable when
    they return. Keys are checked: only `catalog/…` keys are accepted.
    """

    def put_file(self, key: str, path: Path) -> None:
        """Store the file `path` under `key` (replacing it). `StorageUnavailableError`."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store `data` under `key` (replacing it). `StorageUnavailableError`."""
        ...

    def read_bytes(self, key: str) -> bytes | None:
        """The bytes under `key`, or None if there is no such object."""
        ...

    def get_file(self, key: str, dest: Path) -> None:
        """Copy the object `key` to the local file `dest`. `NoSnapshotError` if missing."""
        ...

    def list_keys(self, prefix: str) -> list[str]:
        """Keys under `prefix`, sorted."""
        ...

    def delete(self, key: str) -> None:
        """Remove `key` (old snapshots beyond the number kept); missing is fine."""
        ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBackupSite:
    """Snapshots in `root/catalog/…` on a local or mounted filesystem (another disk).

    Each object is written to a temporary file in its own directory, fsync'd and
    renamed into place, then its directory is fsync'd: a crash leaves the old
    object or the new one, never a part.
    """

    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    @property
    def root(self) -> Path:
        return self._root

    def _path(self, key: str) -> Path:
        return self._root / _check_key(key)

    def _write(self, key: str, write: object) -> None:
        target = self._path(key)
        try:
            if not self._root.is_dir():
                # An unmounted second site must be noticed, not filled on the disk below.
                raise StorageUnavailableError(f"backup site {self._root} is missing")
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            tmp = Path(name)
            try:
                with os.fdopen(fd, "wb") as out:
                    if isinstance(write, bytes):
                        out.write(write)
                    else:
                        assert isinstance(write, Path)
                        with write.open("rb") as src:
                            shutil.copyfileobj(src, out, _CHUNK)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
            _fsync_dir(target.parent)
            _fsync_dir(target.parent.parent)
        except OSError as err:
            raise StorageUnavailableError(f"cannot write {key} under {self._root}: {err}") from err

    def put_file(self, key: str, path: Path) -> None:
        self._write(key, Path(path))

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write(key, bytes(data))

    def read_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise StorageUnavailableError(f"cannot read {key} under {self._root}: {err}") from err

    def get_file(self, key: str, dest: Path) -> None:
        try:
            shutil.copyfile(self._path(key), dest)
        except FileNotFoundError as err:
            raise NoSnapshotError(f"{key} is missing under {self._root}") from err
        except OSError as err:
            raise StorageUnavailableError(f"cannot read {key} under {self._root}: {err}") from err

    def list_keys(self, prefix: str) -> list[str]:
        base = self._root / prefix
        if not base.is_dir():
            return []
        return sorted(
            f"{prefix}{p.name}"
            for p in base.iterdir()
            if p.is_file() and _KEY.fullmatch(prefix + p.name)
        )

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()


class S3BackupSite:
    """Snapshots as objects `catalog/…` in the replica's S3 bucket (a PUT is atomic)."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool,
        region: str | None = None,
    ) -> None:
        from minio import Minio

        self._bucket = bucket
        self._client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region
        )

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        import urllib3
        from minio.error import S3Error

        try:
            yield
        except S3Error as err:
            if err.code in {"NoSuchKey", "NoSuchObject"}:
                raise NoSnapshotError(f"{what}: {err.code}") from err
            raise StorageUnavailableError(f"{what}: {err.code}: {err.message}") from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise StorageUnavailableError(f"{what}: {err}") from err

    def put_file(self, key: str, path: Path) -> None:
        with self._translated(f"cannot write {_check_key(key)}"):
            self._client.fput_object(self._bucket, key, str(path))

    def put_bytes(self, key: str, data: bytes) -> None:
        import io

        with self._translated(f"cannot write {_check_key(key)}"):
            self._client.put_object(self._bucket, key, io.BytesIO(data), len(data))

    def read_bytes(self, key: str) -> bytes | None:
        try:
            with self._translated(f"cannot read {_check_key(key)}"):
                response = self._client.get_object(self._bucket, key)
                try:
                    return bytes(response.read())
                finally:
                    response.close()
                    response.release_conn()
        except NoSnapshotError:
            return None

    def get_file(self, key: str, dest: Path) -> None:
        with self._translated(f"cannot read {_check_key(key)}"):
            self._client.fget_object(self._bucket, key, str(dest))

    def list_keys(self, prefix: str) -> list[str]:
        with self._translated(f"cannot list {prefix}"):
            names = [
                o.object_name
                for o in self._client.list_objects(self._bucket, prefix=prefix, recursive=True)
                if o.object_name
            ]
        return sorted(n for n in names if _KEY.fullmatch(n))

    def delete(self, key: str) -> None:
        with self._translated(f"cannot delete {_check_key(key)}"):
            self._client.remove_object(self._bucket, key)


# -- snapshots ------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotManifest:
    """What `catalog/latest` says about the newest snapshot."""

    key: str
    sha256: str
    size: int
    engine: str  # "sqlite" or "postgresql"
    created_at: str  # ISO 8601, UTC: when the snapshot's transaction began
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> SnapshotManifest:
        try:
            raw = json.loads(data)
            manifest = cls(
                key=_check_key(str(raw["key"])),
                sha256=str(raw["sha256"]),
                size=int(raw["size"]),
                engine=str(raw["engine"]),
                created_at=str(raw["created_at"]),
                counts={str(k): int(v) for k, v in dict(raw.get("counts", {})).items()},
            )
            manifest.created  # noqa: B018 - a bad time is a corrupt manifest
        except (ValueError, KeyError, TypeError) as err:
            raise CorruptSnapshotError(f"{LATEST_KEY} is not a valid manifest: {err}") from err
        if not re.fullmatch(r"[0-9a-f]{64}", manifest.sha256) or manifest.engine not in {
            "sqlite",
            "postgresql",
        }:
            raise CorruptSnapshotError(f"{LATEST_KEY} is not a valid manifest")
        return manifest


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _sqlite_path(database_url: str) -> Path | None:
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite"):
        return None
    if not url.database or url.database == ":memory:":
        raise StorageError("an in-memory SQLite catalog cannot be backed up")
    return Path(url.database)


def _snapshot_sqlite(source: Path, dest: Path) -> None:
    """A consistent copy of the live database, by SQLite's online-backup API."""
    # A URI (percent-encoded: any file name) opened read-only: a backup never writes it.
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(dest)
        try:
            # All pages in one step: one read transaction, so one consistent image;
            # in WAL mode the service's writers go on meanwhile.
            src.backup(dst)
            # The copy is a self-contained file (no -wal beside it).
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def _snapshot_postgres(database_url: str, dest: Path) -> dict[str, int]:
    """`pg_dump --format=custom` (restored with pg_restore), and the rows it holds.

    The rows are counted in a transaction whose snapshot the dump shares
    (`pg_export_snapshot`, `pg_dump --snapshot`): the counts are the dump's own,
    however busy the catalog is meanwhile.
    """
    engine = create_engine(database_url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn, conn.begin():
            snapshot = str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())
            counts = _count_rows(conn)
            _pg_command(
                "pg_dump",
                database_url,
                "--format=custom",
                "--no-owner",
                f"--snapshot={snapshot}",
                "--file",
                str(dest),
            )
    finally:
        engine.dispose()
    return counts


def _pg_command(program: str, database_url: str, *args: str) -> None:
    """Run a PostgreSQL client program (`pg_dump`, `pg_restore`) on `database_url`."""
    url = make_url(database_url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)  # not on the command line
    libpq = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    path = shutil.which(program)
    if path is None:
        raise StorageUnavailableError(f"{program} is not installed (Debian: postgresql-client)")
    done = subprocess.run(  # noqa: S603 - a PostgreSQL client, fixed arguments; the URL is ours
        [path, *args, f"--dbname={libpq}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=6 * 3600,
        check=False,
    )
    if done.returncode != 0:
        raise StorageUnavailableError(f"{program} failed: {done.stderr.strip()[-500:]}")


def load_postgres_dump(dump: Path, database_url: str) -> None:
    """Load a `pg_dump --format=custom` snapshot into `database_url`, an empty database.

    Raises `StorageError` if the database already holds a catalog.
    """
    tables = catalog_tables(database_url)
    if tables:
        raise StorageError(
            f"the database {make_url(database_url).render_as_string()} is not empty "
            f"({len(tables)} tables): restore never writes over an existing catalog"
        )
    _pg_command("pg_restore", database_url, "--no-owner", "--exit-on-error", str(dump))


def catalog_tables(database_url: str) -> list[str]:
    """The tables of a database (empty: a restore may load a catalog into it).

    Raises `StorageUnavailableError` when the database cannot be reached.
    """
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(inspect(conn).get_table_names())
    except SQLAlchemyError as err:
        where = make_url(database_url).render_as_string()
        raise StorageUnavailableError(f"cannot read the database {where}: {err}") from err
    finally:
        engine.dispose()


def drop_catalog(database_url: str) -> None:
    """Drop a restored catalog's tables (the drill's scratch PostgreSQL database)."""
    engine = create_engine(database_url)
    try:
        m.Base.metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()


def _count_rows(conn: Connection) -> dict[str, int]:
    return {
        name: int(conn.execute(select(func.count()).select_from(model)).scalar_one())
        for name, model in (
            ("documents", m.Document),
            ("versions", m.DocumentVersion),
            ("audit_events", m.AuditEvent),
            ("users", m.User),
        )
    }


def catalog_counts(database_url: str) -> dict[str, int]:
    """Rows of the tables a drill compares (read from the snapshot itself)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return _count_rows(conn)
    finally:
        engine.dispose()


def take_snapshot(
    database_url: str, site: BackupSite, work_dir: Path, *, keep: int
) -> SnapshotManifest:
    """Snapshot the live catalog onto `site`, point `catalog/latest` at it, keep the
    newest `keep` snapshots. Returns the new manifest.

    `work_dir` holds the snapshot while it is hashed and sent (same disk as the
    data, removed afterwards). Raises `StorageUnavailableError` when the site or
    the database cannot be reached.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC)
    sqlite_path = _sqlite_path(database_url)
    engine, ext = ("sqlite", "sqlite3") if sqlite_path else ("postgresql", "pgdump")
    fd, name = tempfile.mkstemp(prefix=".catalog-snapshot.", suffix=f".{ext}", dir=work_dir)
    os.close(fd)
    tmp = Path(name)
    try:
        if sqlite_path is not None:
            tmp.unlink()  # the backup API makes the file
            _snapshot_sqlite(sqlite_path, tmp)
            counts = catalog_counts(f"sqlite:///{tmp}")
        else:
            counts = _snapshot_postgres(database_url, tmp)
        sha256, size = _sha256_file(tmp)
        key = f"{SNAPSHOT_PREFIX}{created.strftime('%Y%m%dT%H%M%SZ')}-{sha256}.{ext}"
        manifest = SnapshotManifest(
            key=key,
            sha256=sha256,
            size=size,
            engine=engine,
            created_at=created.isoformat(),
            counts=counts,
        )
        site.put_file(key, tmp)
        # The pointer moves only once the snapshot it names is durable.
        site.put_bytes(LATEST_KEY, manifest.to_json())
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _prune(site, keep, manifest.key)
    return manifest


def _prune(site: BackupSite, keep: int, newest: str) -> None:
    snapshots = site.list_keys(SNAPSHOT_PREFIX)
    for key in snapshots[: max(0, len(snapshots) - max(1, keep))]:
        if key != newest:
            site.delete(key)


def latest_manifest(site: BackupSite) -> SnapshotManifest | None:
    """The manifest of the newest snapshot, or None if the site holds none.

    Raises `CorruptSnapshotError` if `catalog/latest` is not a valid manifest.
    """
    data = site.read_bytes(LATEST_KEY)
    return None if data is None else SnapshotManifest.from_json(data)


def snapshot_age_seconds(site: BackupSite, now: datetime | None = None) -> float | None:
    """Seconds since the newest catalog snapshot began (None: there is none).

    What the replication status reports as the catalog's recovery point.
    """
    manifest = latest_manifest(site)
    if manifest is None:
        return None
    return max(0.0, ((now or datetime.now(UTC)) - manifest.created).total_seconds())


def fetch_snapshot(site: BackupSite, manifest: SnapshotManifest, dest: Path) -> None:
    """Copy the snapshot to `dest` and check it against its manifest.

    Raises `CorruptSnapshotError` (and leaves no `dest`) when its size or SHA-256
    differ, or when a SQLite snapshot fails SQLite's own integrity check.
    """
    try:
        site.get_file(manifest.key, dest)
        sha256, size = _sha256_file(dest)
        if size != manifest.size or sha256 != manifest.sha256:
            raise CorruptSnapshotError(
                f"catalog snapshot {manifest.key} is corrupt: {size} bytes with SHA-256 "
                f"{sha256}, the manifest says {manifest.size} bytes with {manifest.sha256}"
            )
        if manifest.engine == "sqlite":
            _check_sqlite(dest, manifest.key)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            dest.unlink()
        raise


def _check_sqlite(path: Path, key: str) -> None:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        raise CorruptSnapshotError(
            f"catalog snapshot {key} is not a readable database: {err}"
        ) from err
    if result != [("ok",)]:
        raise CorruptSnapshotError(
            f"catalog snapshot {key} fails its integrity check: {result[:3]}"
        )


@dataclass(frozen=True)
class CatalogBlob:
    """One original the catalog refers to: its key, SHA-256 and size."""

    key: str
    sha256: str
    size: int


def catalog_blobs(database_url: str) -> list[CatalogBlob]:
    """Every blob the catalog refers to (current and older versions, deleted documents'
    too: deletes are soft), each once, sorted by key."""
    versions = select(m.DocumentVersion.blob_key, m.DocumentVersion.sha256, m.DocumentVersion.size)
    current = select(m.Document.blob_key, m.Document.sha256, m.Document.size)
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(union(versions, current)).all()
    finally:
        engine.dispose()
    return sorted((CatalogBlob(str(r[0]), str(r[1]), int(r[2])) for r in rows), key=lambda b: b.key)

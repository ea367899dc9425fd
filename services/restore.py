"""Restore a working deployment from the second site alone, and the drill.

`restore` (for `crossdoc restore --from REPLICA --to DIR` and `crossdoc drill`),
onto the embedded engines or the scale-out ones alike:

1. the newest catalog snapshot (`catalog/latest`), checked against its manifest
   (size, SHA-256, SQLite's integrity check), becomes `DIR/catalog.sqlite3`, or
   is loaded into an empty PostgreSQL database;
2. every original the catalog refers to is copied from the replica into the
   target object store (`DIR/objects`, or an empty S3 bucket), re-hashed against
   the catalog's SHA-256 on the way (the object store refuses bytes that do not
   match); missing and mismatched blobs are listed, never papered over;
3. the audit chain is verified;
4. the search index is rebuilt from the record (what `crossdoc reindex` does).

The report says what was restored, what is lost, and how long it took (RTO).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from indexer.claims import ClaimKeeper
from indexer.index.base import SearchIndex
from indexer.pipeline import IndexingPipeline
from indexer.worker import drain_once
from storage.backup import (
    BackupSite,
    CatalogBlob,
    NoSnapshotError,
    SnapshotManifest,
    catalog_blobs,
    catalog_counts,
    fetch_snapshot,
    latest_manifest,
    load_postgres_dump,
)
from storage.catalog.ports import CatalogStore
from storage.catalog.sql import SqlCatalog
from storage.errors import BlobNotFoundError, IntegrityError, StorageError
from storage.objectstore.base import ObjectStore, sha256_of_key
from storage.objectstore.local import LocalObjectStore

log = logging.getLogger(__name__)

#: The catalog file of an embedded deployment in its data directory.
CATALOG_FILE = "catalog.sqlite3"
#: Blobs copied at once (I/O and hashing; hashlib releases the GIL).
COPY_THREADS = 4


class RestoreError(StorageError):
    """The restore cannot start or go on (a target in use, no usable snapshot…)."""


@dataclass
class RestoreReport:
    """What a restore did: the figures `crossdoc restore` and `crossdoc drill` print."""

    snapshot: SnapshotManifest
    snapshot_age_seconds: float
    documents: int = 0
    versions: int = 0
    audit_events: int = 0
    blobs: int = 0
    blobs_verified: int = 0
    bytes_verified: int = 0
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    audit_ok: bool = False
    audit_problem: str | None = None
    indexed: int = 0
    index_expected: int = 0
    rto_seconds: float = 0.0
    #: Seconds each step took, in order (catalog, originals, audit, index).
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def counts_match(self) -> bool:
        """The restored catalog holds every row the snapshot's manifest counted."""
        c = self.snapshot.counts
        return (
            c.get("documents", self.documents) == self.documents
            and c.get("versions", self.versions) == self.versions
            and c.get("audit_events", self.audit_events) == self.audit_events
        )

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing altered, the index whole."""
        return (
            not self.missing
            and not self.mismatched
            and self.audit_ok
            and self.counts_match
            and self.indexed == self.index_expected
        )

    def lines(self) -> list[str]:
        """The report, one line per figure (Korean first)."""
        out = [
            f"카탈로그 스냅샷 · catalog snapshot: {self.snapshot.key} "
            f"({self.snapshot.created_at}, {self.snapshot_age_seconds:.0f} s old)",
            f"복원 문서 · documents restored: {self.documents} "
            f"({self.versions} versions, {self.audit_events} audit records)",
            f"검증 원본 · originals verified: {self.blobs_verified}/{self.blobs}, "
            f"{self.bytes_verified} bytes re-hashed",
            f"누락 · missing: {len(self.missing)}",
            f"불일치 · mismatched: {len(self.mismatched)}",
            "감사 기록 · audit chain: "
            + ("intact" if self.audit_ok else f"BROKEN ({self.audit_problem})"),
            f"색인 · indexed: {self.indexed}/{self.index_expected}",
            f"RTO: {self.rto_seconds:.1f} s ("
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.steps.items())
            + ")",
        ]
        if not self.counts_match:
            out.append(
                f"행 수 불일치 · row counts differ from the manifest: {self.snapshot.counts}"
            )
        out += [f"  missing {key}" for key in self.missing[:50]]
        out += [f"  mismatched {key}" for key in self.mismatched[:50]]
        return out


def _copy_blob(
    blob: CatalogBlob, replica: ObjectStore, target: ObjectStore, spool: Path
) -> str | None:
    """Copy one blob from the replica, re-hashed; None, or "missing"/"mismatched"."""
    local_root = replica.root if isinstance(replica, LocalObjectStore) else None
    try:
        if sha256_of_key(blob.key) != blob.sha256:
            return "mismatched"  # the catalog names one blob by another's key
    except ValueError:
        return "mismatched"  # not a blob key at all: never read as a path
    try:
        if local_root is not None:
            # A directory replica: the store reads and re-hashes the file in place.
            source = local_root / blob.key
            if not source.is_file():
                return "missing"
            target.put_file(source, sha256=blob.sha256, size=blob.size)
            return None
        fd, name = tempfile.mkstemp(prefix=".restore.", dir=spool)
        tmp = Path(name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, replica.open(blob.key) as src:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != blob.sha256:
                return "mismatched"
            target.put_file(tmp, sha256=blob.sha256, size=blob.size)
            return None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    except BlobNotFoundError:
        return "missing"
    except IntegrityError:
        return "mismatched"


def _check_target(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise RestoreError(
            f"복원 대상이 비어 있지 않습니다 · {target} is not an empty directory: "
            "restore never writes over an existing deployment"
        )
    target.mkdir(parents=True, exist_ok=True)


def restore(
    site: BackupSite,
    replica: ObjectStore,
    target: Path,
    rebuild_index: Callable[[Path], tuple[int, int]],
    *,
    database_url: str | None = None,
    store: ObjectStore | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> RestoreReport:
    """Rebuild a deployment in the empty directory `target` from the second site.

    A SQLite snapshot becomes `target/catalog.sqlite3`; a PostgreSQL dump is
    loaded into `database_url`, an empty database (required then). The
    originals go to `store` (an empty object store the caller has checked:
    an S3 bucket of a scale-out deployment), by default `target/objects`.
    `rebuild_index(target)` rebuilds the search index of the restored deployment
    (wherever its settings put it) and answers (documents indexed, documents expected). Raises
    `NoSnapshotError`, `CorruptSnapshotError` (the snapshot does not match its
    manifest: nothing is restored) and `RestoreError`; missing or mismatched
    originals are listed in the report, not raised.
    """
    started = time.monotonic()
    manifest = latest_manifest(site)
    if manifest is None:
        raise NoSnapshotError(
            "복제본에 카탈로그 스냅샷이 없습니다 · the replica holds no catalog snapshot"
        )
    if manifest.engine == "postgresql" and not database_url:
        raise RestoreError(
            f"{manifest.key} is a PostgreSQL dump: name an empty database to load it into "
            "(--database-url postgresql+psycopg://…)"
        )
    if manifest.engine == "sqlite" and database_url:
        raise RestoreError(
            f"{manifest.key} is a SQLite snapshot: restore it without a database URL"
        )
    _check_target(target)
    age = max(0.0, (datetime.now(UTC) - manifest.created).total_seconds())
    report = RestoreReport(snapshot=manifest, snapshot_age_seconds=age)

    mark = started

    def step_done(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        report.steps[name] = now - mark
        mark = now

    progress("카탈로그 · catalog snapshot")
    if database_url:
        dump = target / ".catalog.pgdump"
        fetch_snapshot(site, manifest, dump)
        try:
            load_postgres_dump(dump, database_url)
        finally:
            dump.unlink()
        url = database_url
    else:
        partial = target / f".{CATALOG_FILE}.partial"
        fetch_snapshot(site, manifest, partial)
        os.replace(partial, target / CATALOG_FILE)
        url = f"sqlite:///{(target / CATALOG_FILE).resolve()}"

    step_done("catalog")
    progress("원본 · originals")
    blobs = catalog_blobs(url)
    report.blobs = len(blobs)
    if store is None:
        store = LocalObjectStore(target / "objects")
    spool = target / "spool"
    spool.mkdir(exist_ok=True)
    with ThreadPoolExecutor(COPY_THREADS) as pool:
        outcomes = pool.map(lambda b: _copy_blob(b, replica, store, spool), blobs)
        for blob, outcome in zip(blobs, outcomes, strict=True):
            if outcome == "missing":
                report.missing.append(blob.key)
            elif outcome == "mismatched":
                report.mismatched.append(blob.key)
            else:
                report.blobs_verified += 1
                report.bytes_verified += blob.size

    step_done("originals")
    progress("감사 기록 · audit chain")
    catalog = SqlCatalog(url)
    try:
        catalog.migrate()  # a snapshot of an older release is brought up to this one
        ok, _checked, problem = catalog.audit.verify_chain()
        report.audit_ok, report.audit_problem = ok, problem
        counts = catalog_counts(url)
        report.documents = counts["documents"]
        report.versions = counts["versions"]
        report.audit_events = counts["audit_events"]
    finally:
        catalog.close()

    step_done("audit")
    progress("색인 · index")
    report.indexed, report.index_expected = rebuild_index(target)
    step_done("index")
    report.rto_seconds = time.monotonic() - started
    return report


def reindex_all(
    catalog: CatalogStore,
    index: SearchIndex,
    pipeline: IndexingPipeline,
    *,
    batch_size: int,
    batch_bytes: int,
) -> tuple[int, int]:
    """Empty the index and index every document again from the record, in this process.

    Answers (documents in the index, live documents it should hold). What
    `crossdoc reindex` does, without its progress bar, and failing loudly instead
    of leaving the work to a running server (a restored deployment has none yet).
    """
    index.clear()
    catalog.documents.mark_all_for_reindex()
    keeper = ClaimKeeper(catalog)
    owner = keeper.ensure_registered()
    keeper.reclaim()
    try:
        while drain_once(catalog, pipeline, batch_size, batch_bytes=batch_bytes, owner=owner):
            pass
    finally:
        keeper.release()
    index.refresh()
    return index.count(), catalog.documents.count()

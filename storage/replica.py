"""The second site for the originals: copying blobs to the replica, verified.

Every original is stored on the replica under exactly the key it has on the
primary, byte for byte (content-addressed, so a copy never conflicts). Two ways:

- **async** (default): the upload's catalog transaction queues the version
  (`storage.catalog.replication`); a `Replicator` thread claims queued rows,
  copies each blob, reads it back from the replica to check its SHA-256 and
  removes its rows. A failure (replica unreachable, full, refusing) makes the
  rows due again after an exponential backoff; a replicator killed mid-copy
  leaves its claim to lapse (the lease), and the copy is simply made again:
  `put_file` is idempotent, so there is never a duplicate, and the row stays
  until verified, so never a gap.
- **sync**: the object store the uploads write through is a `SyncMirror`: the
  bytes are made durable on the primary, then on the replica and read back
  there, before the catalog transaction; a replica that cannot take them fails
  the upload (`StorageUnavailableError`, 503) before anything is recorded.
  The blob then left on the primary is unreferenced and harmless, like the one
  a crash before the catalog commit leaves (`storage.ingest`).

Nothing here ever deletes a blob on either side.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from storage.catalog.ports import CatalogStore
from storage.catalog.replication import ReplicationItem
from storage.errors import (
    BlobNotFoundError,
    IntegrityError,
    StorageError,
    StorageUnavailableError,
)
from storage.objectstore.base import CHUNK_SIZE, ObjectStore, StoredBlob, blob_key_for

if TYPE_CHECKING:
    from storage.fallback import FallbackCounts

log = logging.getLogger(__name__)

#: Rows a replicator claims at once.
BATCH = 32
#: The longest wait before a failed copy is tried again (keeps the recovery point
#: short once the replica is back: at most this long after it returns).
MAX_BACKOFF_SECONDS = 30.0
#: How often an idle replicator looks for new rows.
IDLE_SECONDS = 0.5


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff with full jitter, capped at `MAX_BACKOFF_SECONDS`."""
    ceiling = min(MAX_BACKOFF_SECONDS, 0.5 * 2.0 ** min(attempts, 16))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311 (not crypto)


def verify_on(store: ObjectStore, key: str, size: int) -> None:
    """Read the blob back from `store` and check its size and SHA-256 (the key's).

    Raises `IntegrityError` on a mismatch, `BlobNotFoundError` if it is missing.
    """
    if store.size(key) != size:
        raise IntegrityError(f"{key}: {store.size(key)} bytes on the replica, expected {size}")
    for _ in store.iter_chunks(key, CHUNK_SIZE):
        pass  # iter_chunks hashes the bytes and raises IntegrityError after the last chunk


def _local_path(store: ObjectStore, key: str) -> Path | None:
    """The file of a blob on a local store (read in place), else None."""
    from storage.objectstore.local import LocalObjectStore

    if isinstance(store, LocalObjectStore):
        return store.root / key
    return None


@contextmanager
def blob_file(store: ObjectStore, key: str, sha256: str, size: int, spool: Path) -> Iterator[Path]:
    """A local file holding the blob's bytes, checked against its SHA-256 on the way.

    On a local store, the blob file itself (the receiving store's `put_file`
    re-hashes it anyway); otherwise a temporary copy in `spool`, removed after.
    Raises `IntegrityError` if the source's bytes do not match.
    """
    path = _local_path(store, key)
    if path is not None:
        if not path.exists():
            raise BlobNotFoundError(key)
        yield path
        return
    spool.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=spool, prefix="replica-")
    tmp = Path(name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, store.open(key) as src:
            while chunk := src.read(CHUNK_SIZE):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise IntegrityError(f"{key}: the source copy does not match its SHA-256")
        yield tmp
    finally:
        with suppress(OSError):
            tmp.unlink()


def copy_blob(
    source: ObjectStore, target: ObjectStore, key: str, sha256: str, size: int, spool: Path
) -> None:
    """Make `target` hold the verified bytes of `source`'s blob `key`, then read them back.

    Idempotent (content-addressed). Raises our storage errors: `BlobNotFoundError`
    (not on `source`), `IntegrityError` (a corrupt source, or bytes that do not
    read back right), `StorageUnavailableError` (either side unreachable).
    """
    with blob_file(source, key, sha256, size, spool) as path:
        target.put_file(path, sha256=sha256, size=size)
    verify_on(target, key, size)


class SyncMirror:
    """The object store of `sync` replication: writes go to both sites, reads to the primary.

    `put_file` returns once the blob is durable on the primary and on the replica,
    read back from the replica and found right; any failure of the replica is a
    `StorageUnavailableError` (the upload is refused with 503, nothing recorded).
    """

    def __init__(self, primary: ObjectStore, replica: ObjectStore) -> None:
        self.primary = primary
        self.replica = replica

    def put_file(self, path: Path, *, sha256: str, size: int) -> StoredBlob:
        """See `ObjectStore.put_file`: durable and verified on both sites on return."""
        stored = self.primary.put_file(path, sha256=sha256, size=size)
        try:
            self.replica.put_file(path, sha256=sha256, size=size)
            verify_on(self.replica, stored.key, size)
        except (StorageError, OSError) as err:
            log.error("sync replication of %s failed: %s", stored.key, err)
            raise StorageUnavailableError(
                f"the replica cannot take the upload now (sync replication): {err}"
            ) from err
        return stored

    def open(self, key: str) -> BinaryIO:
        return self.primary.open(key)

    def iter_chunks(self, key: str, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        return self.primary.iter_chunks(key, chunk_size)

    def exists(self, key: str) -> bool:
        return self.primary.exists(key)

    def size(self, key: str) -> int:
        return self.primary.size(key)

    def ping(self) -> None:
        self.primary.ping()


def primary_of(store: ObjectStore) -> ObjectStore:
    """The primary site's store behind `store` (itself unless a `SyncMirror` or a
    `storage.fallback.ReplicaFallbackStore`, or both)."""
    from storage.fallback import ReplicaFallbackStore

    if isinstance(store, ReplicaFallbackStore):
        store = store.primary
    return store.primary if isinstance(store, SyncMirror) else store


@dataclass(frozen=True)
class ReplicationStatus:
    """The measured recovery point (`GET /admin/replication`, `crossdoc replication status`)."""

    configured: bool
    mode: str
    backlog_items: int
    backlog_bytes: int
    oldest_pending_at: datetime | None
    oldest_pending_age_seconds: float
    #: Seconds of accepted uploads the replica may lack: if the primary site were
    #: lost now, uploads accepted within this many seconds could be lost with it.
    data_at_risk_seconds: float
    failing_items: int
    last_error: str
    replica_reachable: bool | None
    #: Reads this process served from the replica (the primary's copy missing,
    #: corrupt or unreachable), primary copies those reads repaired, and reads that
    #: found no intact copy anywhere (`storage.fallback`), since it started.
    fallback_reads: int = 0
    read_repairs: int = 0
    unreadable_reads: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "configured": self.configured,
            "mode": self.mode,
            "backlog_items": self.backlog_items,
            "backlog_bytes": self.backlog_bytes,
            "oldest_pending_at": (
                self.oldest_pending_at.isoformat() if self.oldest_pending_at else None
            ),
            "oldest_pending_age_seconds": round(self.oldest_pending_age_seconds, 3),
            "data_at_risk_seconds": round(self.data_at_risk_seconds, 3),
            "failing_items": self.failing_items,
            "last_error": self.last_error,
            "replica_reachable": self.replica_reachable,
            "fallback_reads": self.fallback_reads,
            "read_repairs": self.read_repairs,
            "unreadable_reads": self.unreadable_reads,
        }


def replication_status(
    catalog: CatalogStore,
    replica: ObjectStore | None,
    mode: str,
    *,
    ping: bool = True,
    reads: FallbackCounts | None = None,
) -> ReplicationStatus:
    """The backlog and the recovery point now (and whether the replica answers);
    `reads`: this process's read fallback counts (`storage.fallback`), if any."""
    backlog = catalog.replication.backlog()
    age = 0.0
    if backlog.oldest_at is not None:
        age = max(0.0, (datetime.now(UTC) - backlog.oldest_at).total_seconds())
    reachable: bool | None = None
    if replica is not None and ping:
        try:
            replica.ping()
            reachable = True
        except StorageError:
            reachable = False
    return ReplicationStatus(
        configured=replica is not None,
        mode=mode if replica is not None else "off",
        backlog_items=backlog.items,
        backlog_bytes=backlog.bytes,
        oldest_pending_at=backlog.oldest_at,
        oldest_pending_age_seconds=age,
        data_at_risk_seconds=age,
        failing_items=backlog.failing,
        last_error=backlog.last_error,
        replica_reachable=reachable,
        fallback_reads=reads.reads if reads is not None else 0,
        read_repairs=reads.repairs if reads is not None else 0,
        unreadable_reads=reads.failures if reads is not None else 0,
    )


class Replicator:
    """Copies queued versions to the replica: a thread of its own (`start`/`stop`),
    or one pass at a time (`run_once`, for `crossdoc replication drain`).

    Its own thread, not the indexing worker's loop: an indexing batch can take
    minutes (extraction, OCR) and would hold the recovery point back, and a
    replica that is slow or unreachable must not delay indexing. The thread
    mostly waits on I/O (hashing and copying release the GIL).
    """

    def __init__(
        self,
        catalog: CatalogStore,
        primary: ObjectStore,
        replica: ObjectStore,
        spool_dir: Path,
        *,
        lease: timedelta = timedelta(minutes=2),
        batch: int = BATCH,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.catalog = catalog
        self.primary = primary
        self.replica = replica
        self.spool_dir = spool_dir
        self.lease = lease
        self.batch = batch
        self.idle_seconds = idle_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Blobs copied and verified by this replicator (for benches and logs).
        self.copied = 0

    def run_once(self) -> int:
        """Claim one batch and copy it; returns how many rows it settled or retried."""
        items = self.catalog.replication.claim(self.batch, self.lease)
        if not items:
            return 0
        by_key: dict[str, list[ReplicationItem]] = {}
        for item in items:
            by_key.setdefault(item.blob_key, []).append(item)
        done: list[str] = []
        for key, group in by_key.items():
            if self._stop.is_set():
                # Stopping: hand the rest back at once rather than at the lease.
                self.catalog.replication.retry([i.id for i in group], "", timedelta(0))
                continue
            first = group[0]
            try:
                if blob_key_for(first.sha256) != key:
                    raise IntegrityError(f"{key} does not name the SHA-256 {first.sha256}")
                copy_blob(self.primary, self.replica, key, first.sha256, first.size, self.spool_dir)
            except (StorageError, OSError) as err:
                delay = retry_delay(max(i.attempts for i in group))
                log.warning(
                    "replication of %s failed (attempt %d, again in %.1f s): %s",
                    key,
                    first.attempts,
                    delay.total_seconds(),
                    err,
                )
                self.catalog.replication.retry([i.id for i in group], str(err), delay)
                continue
            done.append(key)
        if done:
            self.catalog.replication.done(done)
            self.copied += len(done)
        return len(items)

    def drain(self) -> int:
        """Copy batches until nothing is due (`crossdoc replication drain`)."""
        total = 0
        while n := self.run_once():
            total += n
        return total

    # -- the thread ------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="crossdoc-replicator", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("replication pass failed; trying again shortly")
                busy = 0
            if not busy:
                self._stop.wait(self.idle_seconds)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
            self._thread = None

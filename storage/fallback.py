"""Reads that fall back to the second site: a blob missing or corrupt on the primary,
or a primary store that does not answer, is served from the replica's verified copy,
and the primary is repaired from it.

`ReplicaFallbackStore` is the object store every process reads through when a
replica is configured (`crossdoc.wiring.core`): downloads, version downloads and
the indexer's reads for extraction. Writes and health checks are the primary's.

A read first re-hashes the primary's copy against its key (the catalog's SHA-256:
the key is made from it), in 1 MiB steps, before a byte is served: a copy can only
be swapped for another before the response starts, and a bit flip is found only by
reading everything. So with a replica each read reads the primary's blob twice (the
second time mostly from the page cache on a local store; two GETs on S3): the price
of answering a corrupt primary with the right bytes instead of an error. When the
primary's copy is sound (nearly always) it is served, as without a replica. When it
is missing or corrupt, or the primary store is unreachable, the replica's copy is
re-hashed in the same way and, if sound, served (the adapters hash it again while
streaming and withhold the last chunk on a mismatch, so a copy that changed in
between is cut short, never completed); a missing or corrupt primary copy is then
repaired from it (stored again, or replaced by `replace_corrupt`, as the scrub
does) with an audit record (actor `@read-repair`, action `blob_repair`). When no
site holds an intact copy, the read fails with `NoIntactCopyError` (a kind of
`StorageUnavailableError`), or `StorageUnavailableError` when a site that did not
answer may still hold one: nothing is served.

Nothing here deletes a blob; the only write is the repair of the primary.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from storage.catalog.ports import CatalogStore
from storage.catalog.records import NewAuditEvent
from storage.errors import (
    BlobNotFoundError,
    IntegrityError,
    NoIntactCopyError,
    StorageError,
    StorageUnavailableError,
)
from storage.key_locks import KeyLocks
from storage.objectstore.base import CHUNK_SIZE, ObjectStore, StoredBlob, sha256_of_key

log = logging.getLogger(__name__)

#: The audit actor of a repair made by a read (not a valid username).
READ_REPAIR_ACTOR = "@read-repair"

_OK = "ok"
_MISSING = "missing"
_CORRUPT = "corrupt"
_UNAVAILABLE = "unavailable"
_UNREADABLE = "unreadable"


@dataclass
class FallbackCounts:
    """What this process's reads met since it started (for `/admin/replication`, `/metrics`)."""

    #: Reads served from the replica (the primary's copy missing, corrupt or unreachable).
    reads: int = 0
    #: Primary copies repaired from the replica by a read.
    repairs: int = 0
    #: Reads that found no intact copy on any site (nothing served).
    failures: int = 0


@dataclass(frozen=True)
class _Verdict:
    state: str
    size: int = 0
    error: str = ""


def _verdict(store: ObjectStore, key: str) -> _Verdict:
    """Re-hash one site's copy (bounded memory): ok, missing, corrupt, unavailable…"""
    try:
        size = 0
        for chunk in store.iter_chunks(key, CHUNK_SIZE):
            size += len(chunk)
        return _Verdict(_OK, size)
    except BlobNotFoundError:
        return _Verdict(_MISSING)
    except IntegrityError as err:
        return _Verdict(_CORRUPT, error=str(err))
    except StorageUnavailableError as err:
        return _Verdict(_UNAVAILABLE, error=str(err))
    except StorageError as err:  # e.g. not a regular file, no permission
        return _Verdict(_UNREADABLE, error=str(err))


class ReplicaFallbackStore:
    """The object store of a deployment with a replica: reads verified, served from the
    replica when the primary's copy is missing, corrupt or unreachable, and the
    primary repaired from it (see the module doc); writes go to `primary` (itself a
    `SyncMirror` in sync replication), health checks ask `primary`.

    `catalog` takes the repairs' audit records; `spool_dir` holds the temporary copy
    of a blob read from a replica that is not a local directory.
    """

    def __init__(
        self,
        primary: ObjectStore,
        replica: ObjectStore,
        catalog: CatalogStore,
        spool_dir: Path,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.catalog = catalog
        self.spool_dir = spool_dir
        self.counts = FallbackCounts()
        self._counts_lock = threading.Lock()
        self._repairing = KeyLocks()

    # -- writes and health: the primary's -------------------------------------------

    def put_file(self, path: Path, *, sha256: str, size: int) -> StoredBlob:
        """See `ObjectStore.put_file`: the primary's (and in sync mode the replica's)."""
        return self.primary.put_file(path, sha256=sha256, size=size)

    def ping(self) -> None:
        """The primary's: uploads need it (reads may be served without it)."""
        self.primary.ping()

    # -- reads ------------------------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        """Open an intact copy of the blob (see the module doc); `NoIntactCopyError`,
        `StorageUnavailableError` when there is none to serve now."""
        return self._intact_site(key).open(key)

    def iter_chunks(self, key: str, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        """Stream an intact copy of the blob, chosen before the first chunk (see the
        module doc); the chosen site's adapter hashes it again on the way."""
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        return self._intact_site(key).iter_chunks(key, chunk_size)

    def exists(self, key: str) -> bool:
        """On the primary, or else on the replica (a read would be served from it)."""
        try:
            if self.primary.exists(key):
                return True
        except StorageUnavailableError as first:
            try:
                return self.replica.exists(key)
            except StorageError:
                raise first from None
        try:
            return self.replica.exists(key)
        except StorageError:
            return False  # the primary's answer stands

    def size(self, key: str) -> int:
        """The primary's size, or the replica's when the primary lacks the blob or does
        not answer (the first error is raised when neither can say)."""
        try:
            return self.primary.size(key)
        except (BlobNotFoundError, StorageUnavailableError) as first:
            try:
                return self.replica.size(key)
            except StorageError:
                raise first from None

    # -- the choice ------------------------------------------------------------------------

    def _intact_site(self, key: str) -> ObjectStore:
        sha256 = sha256_of_key(key)  # ValueError for what is not a blob key
        on_primary = _verdict(self.primary, key)
        if on_primary.state == _OK:
            return self.primary
        on_replica = _verdict(self.replica, key)
        if on_replica.state != _OK:
            self._count("failures")
            log.error(
                "no intact copy of %s to read: %s on the primary (%s), %s on the replica (%s)",
                key,
                on_primary.state,
                on_primary.error,
                on_replica.state,
                on_replica.error,
            )
            if _UNAVAILABLE in (on_primary.state, on_replica.state):
                raise StorageUnavailableError(
                    f"{key}: {on_primary.state} on the primary, {on_replica.state} on the replica"
                )
            raise NoIntactCopyError(
                f"{key}: {on_primary.state} on the primary, {on_replica.state} on the replica"
            )
        self._count("reads")
        log.warning(
            "%s is %s on the primary (%s): served from the replica's verified copy",
            key,
            on_primary.state,
            on_primary.error,
        )
        if on_primary.state in (_MISSING, _CORRUPT):
            self._repair(key, sha256, on_replica.size, on_primary.state)
        return self.replica

    def _count(self, what: str) -> None:
        with self._counts_lock:
            setattr(self.counts, what, getattr(self.counts, what) + 1)

    def _repair(self, key: str, sha256: str, size: int, was: str) -> None:
        """Make the primary hold the replica's verified bytes again, audited; a failure
        is logged and leaves the read to be served from the replica all the same."""
        from storage.replica import blob_file, primary_of
        from storage.scrub import RepairableStore

        target = primary_of(self.primary)
        try:
            with self._repairing.lock(key):
                # Another read, or the scrub, may have repaired it while this one waited.
                if _verdict(target, key).state == _OK:
                    return
                with blob_file(self.replica, key, sha256, size, self.spool_dir) as path:
                    if was == _MISSING:
                        target.put_file(path, sha256=sha256, size=size)
                    elif isinstance(target, RepairableStore):
                        target.replace_corrupt(path, sha256=sha256, size=size)
                    else:
                        raise StorageError(f"this object store cannot replace {key}")
                after = _verdict(target, key)
                if after.state != _OK:
                    raise IntegrityError(f"{key} is {after.state} after the repair")
        except (StorageError, OSError) as err:
            log.error("cannot repair %s on the primary from the replica: %s", key, err)
            return
        self._count("repairs")
        log.warning("%s was %s on the primary: repaired from the replica", key, was)
        try:
            self.catalog.audit.append(
                [
                    NewAuditEvent(
                        actor=READ_REPAIR_ACTOR,
                        action="blob_repair",
                        target=key,
                        outcome="ok",
                        detail={
                            "sha256": sha256,
                            "size": size,
                            "site": "primary",
                            "was": was,
                            "from": "replica",
                        },
                    )
                ]
            )
        except StorageError as err:
            log.error("cannot audit the repair of %s: %s", key, err)


def fallback_counts(store: ObjectStore) -> FallbackCounts | None:
    """The read fallback's counts of `store`, or None when it reads no replica."""
    return store.counts if isinstance(store, ReplicaFallbackStore) else None

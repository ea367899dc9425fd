"""The replication queue's port and records: which stored versions still have to be
copied to the second site (the replica), committed with the upload that stored them.

A row is written for each new version in the very transaction that records it
(`Documents.create`, `create_many`, `add_version`), when the catalog is told to
replicate (`SqlCatalog(..., replicate=True)`: a replica is configured in `async`
mode). A replicator claims rows under a lease, copies the blob, verifies it on
the replica and removes every row of that blob (`done`): the queue holds exactly
what the replica may still lack, so its oldest row is the recovery point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ReplicationItem:
    """One version waiting for the replica (claimed by a replicator)."""

    id: int
    document_id: str
    version: int
    blob_key: str
    sha256: str
    size: int
    created_at: datetime
    attempts: int


@dataclass(frozen=True, slots=True)
class ReplicationBacklog:
    """What the replica may lack right now: the measured recovery point."""

    items: int
    bytes: int
    #: When the oldest unreplicated version was accepted (None: nothing pending).
    oldest_at: datetime | None
    #: Rows that failed at least once (the replica refused or could not be reached).
    failing: int
    last_error: str


@dataclass(frozen=True, slots=True)
class StoredBlobRef:
    """A blob some document version points at, as the catalog records it."""

    blob_key: str
    sha256: str
    size: int


class Replication(Protocol):
    """The durable replication queue, and the catalog's list of stored blobs."""

    def claim(self, limit: int, lease: timedelta) -> list[ReplicationItem]:
        """Claim up to `limit` due rows, oldest first, for `lease` (a lapsed claim
        is claimable again: a replicator that died loses nothing)."""

    def done(self, blob_keys: Sequence[str]) -> int:
        """Remove every row of these blobs (now verified on the replica); how many."""

    def retry(self, item_ids: Sequence[int], error: str, retry_in: timedelta) -> None:
        """Give claimed rows back after a failure, due again after `retry_in`."""

    def backlog(self) -> ReplicationBacklog:
        """Rows waiting (due or claimed), their bytes and the oldest one's age."""

    def enqueue_all(self) -> int:
        """Queue every stored version not queued yet (a replica added to a running
        deployment: its history too). Returns how many rows were added."""

    def stored_blobs(self, after: str, limit: int) -> list[StoredBlobRef]:
        """Distinct blobs of every version (deleted documents' too), by key, from
        the first key above `after` (keyset pages, for the scrubber)."""

"""Group commit: uploads that are ready at the same moment share one catalog transaction.

Every accepted upload must be durable before its 202, and on the embedded
default each catalog transaction ends in an fsync of SQLite's WAL
(`synchronous=FULL`); SQLite takes one writer at a time, so with one
transaction per upload, concurrent uploads queue behind each other's fsync.
`GroupCommit` lets them share it instead (leader/follower): the first thread
to find no commit running becomes the leader and commits every item queued at
that moment (its own included) in one transaction, while items arriving
meanwhile queue up for the next one. A lone upload on an idle server is
committed at once: there is no timer, a batch is whatever queued while the
previous commit ran.

Every caller gets its own answer: a batch that fails as a whole (it is all or
nothing: nothing of it is recorded) is split, and each of its items is
committed on its own, so one bad item gets its own error and never fails or
loses the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from storage.catalog.ports import CatalogStore
from storage.catalog.records import DocumentRecord, NewAuditEvent, NewDocument

T = TypeVar("T")
R = TypeVar("R")

#: Most items in one transaction: bounds the transaction (and the wait of the
#: batch's first item) under a burst.
MAX_BATCH = 64


class _Slot(Generic[T, R]):
    """One submitted item and, once its batch is committed, its outcome."""

    __slots__ = ("done", "error", "item", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """Commits items submitted by many threads, in batches of those that queue together.

    `commit_many(items)` commits a batch all or nothing and returns one result
    per item, in order; `commit_one(item)` commits one item. `submit` returns
    (or raises) only when its item's commit has returned (or raised), so a
    caller that answers after `submit` answers after its item is durable.
    Thread-safe; callers block while they wait (run it off the event loop).
    """

    def __init__(
        self,
        commit_many: Callable[[list[T]], Sequence[R]],
        commit_one: Callable[[T], R],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._commit_many = commit_many
        self._commit_one = commit_one
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Slot[T, R]] = []
        self._leading = False

    @property
    def queued(self) -> int:
        """Items waiting for the next batch (not those being committed)."""
        with self._cond:
            return len(self._queue)

    def submit(self, item: T) -> R:
        """Commit `item` with whatever else is queued; its result, or its own error."""
        slot: _Slot[T, R] = _Slot(item)
        with self._cond:
            self._queue.append(slot)
            while True:
                # A follower waits for a leader to commit its slot; when no commit
                # runs and its slot is still queued, it leads the next batch itself.
                while not slot.done and self._leading:
                    self._cond.wait()
                if slot.done:
                    break
                self._leading = True
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    self._cond.release()
                    try:
                        self._commit(batch)
                    finally:
                        self._cond.acquire()
                finally:
                    self._leading = False
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]  # set whenever error is None

    def _commit(self, batch: list[_Slot[T, R]]) -> None:
        """Commit the batch and fill in every slot's outcome (never raises)."""
        try:
            try:
                if len(batch) == 1:
                    results: Sequence[R] = [self._commit_one(batch[0].item)]
                else:
                    results = self._commit_many([s.item for s in batch])
                    if len(results) != len(batch):
                        raise RuntimeError("commit_many returned a result count unlike its batch")
                for s, result in zip(batch, results, strict=True):
                    s.result = result
            except Exception as batch_error:  # noqa: BLE001 (each caller gets its own error)
                if len(batch) == 1:
                    batch[0].error = batch_error
                else:
                    # Nothing of the batch is recorded: each item on its own gets
                    # its own result or error.
                    for s in batch:
                        try:
                            s.result = self._commit_one(s.item)
                        except Exception as err:  # noqa: BLE001 (delivered to its caller)
                            s.error = err
        except BaseException as err:  # interrupted: the items' fate is unknown to us
            for s in batch:
                if s.result is None and s.error is None:
                    s.error = err
            raise
        finally:
            for s in batch:
                s.done = True


@dataclass(frozen=True)
class PendingUpload:
    """A new document whose blob is durable, with the audit record of its upload."""

    document: NewDocument
    audit: NewAuditEvent | None = None


class UploadCommits:
    """The group commit of uploads into one catalog: `record` returns once the
    document, its version, its outbox row and its audit record are committed."""

    def __init__(self, catalog: CatalogStore, *, max_batch: int = MAX_BATCH) -> None:
        self._catalog = catalog
        self._group: GroupCommit[PendingUpload, DocumentRecord] = GroupCommit(
            self._commit_many, self._commit_one, max_batch=max_batch
        )

    @property
    def queued(self) -> int:
        """Uploads waiting for the next transaction."""
        return self._group.queued

    def record(self, upload: PendingUpload) -> DocumentRecord:
        """Record the upload's document (with others queued at the same moment)."""
        return self._group.submit(upload)

    def _commit_many(self, uploads: list[PendingUpload]) -> list[DocumentRecord]:
        return self._catalog.documents.create_many(
            [u.document for u in uploads], audits=[u.audit for u in uploads]
        )

    def _commit_one(self, upload: PendingUpload) -> DocumentRecord:
        doc, _created = self._catalog.documents.create(upload.document, audit=upload.audit)
        return doc

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
previous commit ran, and the items already on their way.

An item is on its way from `announce` (an upload whose bytes are in, while its
blob is being stored) until it is submitted or withdrawn. A leader that knows
others are on their way waits for them a moment (at most `gather_seconds`, and
never when none is): under load each transaction then carries several uploads
instead of one and a half, and the catalog's per-transaction work (the
write lock, the audit chain's head, the commit's fsync) is paid once for them.

Every caller gets its own answer: a batch that fails as a whole (it is all or
nothing: nothing of it is recorded) is split, and each of its items is
committed on its own, so one bad item gets its own error and never fails or
loses the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from storage.catalog.ports import CatalogStore
from storage.catalog.records import DocumentRecord, NewAuditEvent, NewDocument

T = TypeVar("T")
R = TypeVar("R")

#: Most items in one transaction: bounds the transaction (and the wait of the
#: batch's first item) under a burst.
MAX_BATCH = 64
#: How long a leader waits for items on their way (see `GroupCommit.announce`).
GATHER_SECONDS = 0.005


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

    `announce` says an item is on its way (it will be submitted, or withdrawn,
    soon): a leader waits up to `gather_seconds` for the items on their way to
    join its batch.
    """

    def __init__(
        self,
        commit_many: Callable[[list[T]], Sequence[R]],
        commit_one: Callable[[T], R],
        *,
        max_batch: int = MAX_BATCH,
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if gather_seconds < 0:
            raise ValueError("gather_seconds must not be negative")
        self._commit_many = commit_many
        self._commit_one = commit_one
        self._max_batch = max_batch
        self._gather_seconds = gather_seconds
        self._cond = threading.Condition()
        self._queue: list[_Slot[T, R]] = []
        self._leading = False
        #: Items announced and not yet submitted or withdrawn.
        self._on_their_way = 0

    @property
    def queued(self) -> int:
        """Items waiting for the next batch (not those being committed)."""
        with self._cond:
            return len(self._queue)

    @property
    def on_their_way(self) -> int:
        """Items announced and not yet submitted or withdrawn."""
        with self._cond:
            return self._on_their_way

    def announce(self) -> None:
        """An item is on its way: `submit(item, announced=True)` or `withdraw()` follows."""
        with self._cond:
            self._on_their_way += 1

    def withdraw(self) -> None:
        """An announced item will not be submitted after all (its caller failed)."""
        with self._cond:
            self._on_their_way -= 1
            self._cond.notify_all()  # a leader waiting for it stops waiting

    def submit(self, item: T, *, announced: bool = False) -> R:
        """Commit `item` with whatever else is queued; its result, or its own error.

        `announced`: the item was announced (`announce`), and is no longer on its way.
        """
        slot: _Slot[T, R] = _Slot(item)
        with self._cond:
            self._queue.append(slot)
            if announced:
                self._on_their_way -= 1
                self._cond.notify_all()  # a leader may be waiting for it
            while True:
                # A follower waits for a leader to commit its slot; when no commit
                # runs and its slot is still queued, it leads the next batch itself.
                while not slot.done and self._leading:
                    self._cond.wait()
                if slot.done:
                    break
                self._leading = True
                self._gather()
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

    def _gather(self) -> None:
        """As the leader (holding the lock): wait, at most `gather_seconds`, while
        items are on their way and the batch is not full."""
        deadline: float | None = None
        while self._on_their_way > 0 and len(self._queue) < self._max_batch:
            now = time.monotonic()
            if deadline is None:
                deadline = now + self._gather_seconds
            if now >= deadline:
                return
            self._cond.wait(deadline - now)

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
    """A new document whose blob is durable, with the audit record of its upload.

    `answers_duplicate`, if given, says whether a live document of the same
    department holding the same bytes may answer this upload instead (the
    uploader may read it): then nothing is recorded and that document is the
    answer. Decided by the commit's leader, one commit at a time, against the
    catalog and the uploads committed with it (two identical uploads in one
    batch make one document).
    """

    document: NewDocument
    audit: NewAuditEvent | None = None
    answers_duplicate: Callable[[DocumentRecord], bool] | None = None


#: A recorded upload: its document, and whether it was created (False: an
#: existing document with the same bytes answers it).
Recorded = tuple[DocumentRecord, bool]


class Arrival:
    """An upload on its way to `UploadCommits` (see `UploadCommits.arriving`)."""

    __slots__ = ("_commits", "recorded")

    def __init__(self, commits: UploadCommits) -> None:
        self._commits = commits
        self.recorded = False

    def record(self, upload: PendingUpload) -> Recorded:
        """Record the upload (as `UploadCommits.record_upload`); once only."""
        if self.recorded:
            raise RuntimeError("this arrival was already recorded")
        self.recorded = True
        return self._commits._group.submit(upload, announced=True)


class UploadCommits:
    """The group commit of uploads into one catalog: `record` returns once the
    document, its version, its outbox row and its audit record are committed."""

    def __init__(
        self,
        catalog: CatalogStore,
        *,
        max_batch: int = MAX_BATCH,
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        self._catalog = catalog
        self._group: GroupCommit[PendingUpload, Recorded] = GroupCommit(
            self._commit_many, self._commit_one, max_batch=max_batch, gather_seconds=gather_seconds
        )

    @property
    def queued(self) -> int:
        """Uploads waiting for the next transaction."""
        return self._group.queued

    @property
    def on_their_way(self) -> int:
        """Uploads announced by `arriving` and not yet recorded or given up."""
        return self._group.on_their_way

    def record(self, upload: PendingUpload) -> DocumentRecord:
        """Record the upload's document (with others queued at the same moment)."""
        return self._group.submit(upload)[0]

    def record_upload(self, upload: PendingUpload) -> Recorded:
        """Record the upload: (its document, True), or (the document with the same
        bytes that answers it, False) when `upload.answers_duplicate` allows."""
        return self._group.submit(upload)

    @contextmanager
    def arriving(self) -> Iterator[Arrival]:
        """An upload on its way (its blob being stored): a transaction starting
        meanwhile waits a moment for it. Record it with the `Arrival`'s `record`;
        leaving the block without recording it (an error) withdraws it."""
        arrival = Arrival(self)
        self._group.announce()
        try:
            yield arrival
        finally:
            if not arrival.recorded:
                self._group.withdraw()

    def _existing(self, uploads: Sequence[PendingUpload]) -> list[DocumentRecord | None]:
        """For each upload, the live document with its bytes that answers it, if any
        (one catalog read per department of the batch)."""
        wanted: dict[str, set[str]] = {}
        for upload in uploads:
            if upload.answers_duplicate is not None:
                new = upload.document
                wanted.setdefault(new.department, set()).add(new.blob.sha256)
        held: dict[tuple[str, str], list[DocumentRecord]] = {}
        for department, digests in wanted.items():
            for doc in self._catalog.documents.live_with_digests(department, sorted(digests)):
                held.setdefault((department, doc.sha256), []).append(doc)
        found: list[DocumentRecord | None] = []
        for upload in uploads:
            check = upload.answers_duplicate
            candidates = held.get((upload.document.department, upload.document.blob.sha256), [])
            found.append(next((d for d in candidates if check and check(d)), None))
        return found

    def _commit_many(self, uploads: list[PendingUpload]) -> list[Recorded]:
        # The leader commits one batch at a time: nothing else of this group
        # records a document between the look-up and the insert. All or nothing:
        # the batch's documents are made by one `create_many`.
        existing = self._existing(uploads)
        #: Upload index -> the earlier upload of the batch whose document answers it:
        #: the same bytes, department and uploader (who may always read their own).
        twins: dict[int, int] = {}
        to_create: list[int] = []
        for i, upload in enumerate(uploads):
            if existing[i] is not None:
                continue
            new = upload.document
            if upload.answers_duplicate is not None:
                twin = next(
                    (
                        j
                        for j in to_create
                        if uploads[j].document.department == new.department
                        and uploads[j].document.owner == new.owner
                        and uploads[j].document.blob.sha256 == new.blob.sha256
                    ),
                    None,
                )
                if twin is not None:
                    twins[i] = twin
                    continue
            to_create.append(i)
        made: dict[int, DocumentRecord] = {}
        if to_create:
            docs = self._catalog.documents.create_many(
                [uploads[i].document for i in to_create],
                audits=[uploads[i].audit for i in to_create],
            )
            made = dict(zip(to_create, docs, strict=True))
        results: list[Recorded] = []
        for i in range(len(uploads)):
            found = existing[i]
            if found is not None:
                results.append((found, False))
            elif i in twins:
                results.append((made[twins[i]], False))
            else:
                results.append((made[i], True))
        return results

    def _commit_one(self, upload: PendingUpload) -> Recorded:
        (existing,) = self._existing([upload])
        if existing is not None:
            return existing, False
        doc, _created = self._catalog.documents.create(upload.document, audit=upload.audit)
        return doc, True

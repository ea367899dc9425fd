"""Accepting documents: stream the bytes to a spool file, store them, then record them.

The order is what makes an acknowledged upload durable: (1) the bytes stream to a
spool file on the data disk while being hashed and counted, with a hard size
limit, in bounded memory; (2) the object store makes the blob durable (verified
by size and SHA-256); (3) one catalog transaction records the document, its
version and its outbox row (over HTTP, uploads ready at the same moment share
that transaction: `storage.group_commit`). Only then may the caller answer 202.
A crash before (3) leaves at most an unreferenced blob, never a row without bytes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from storage.catalog.ports import CatalogStore
from storage.catalog.records import (
    DocumentRecord,
    GrantRecord,
    NewAuditEvent,
    NewBlob,
    NewDocument,
    upload_fingerprint,
)
from storage.content_guess import guess_content_type
from storage.errors import IdempotencyKeyReusedError, StorageError, os_storage_error
from storage.filenames import sanitize_filename
from storage.group_commit import PendingUpload, UploadCommits
from storage.objectstore.base import ObjectStore

_log = logging.getLogger(__name__)

HEAD_BYTES = 8192
#: Threads storing the blobs of one bulk batch at once.
_STORE_THREADS = 4


class UploadTooLargeError(StorageError):
    """The upload exceeds the configured size limit; nothing was stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than the limit of {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class StagedFile:
    path: Path
    sha256: str
    size: int
    head: bytes

    @property
    def sniffed_type(self) -> str:
        return guess_content_type(self.head, self.path)


class SpoolWriter:
    """Receives an upload chunk by chunk; a context manager that always removes its file.

    The file is created at the first write (or at `finish` for an empty upload),
    so a disk too full to create it fails inside the body's reading like any
    other write. A full disk or quota raises `StorageFullError`, any other
    failure of the spool `StorageUnavailableError`; either way `discard` (and
    leaving the context) removes the file.
    """

    def __init__(self, spool_dir: Path, max_bytes: int) -> None:
        self.spool_dir = spool_dir
        self._file: BinaryIO | None = None
        self.path: Path | None = None
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.sha256()
        self._head = bytearray()

    def _open(self) -> BinaryIO:
        try:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self.spool_dir, prefix="upload-")
        except OSError as err:
            raise os_storage_error(err, f"cannot create a spool file in {self.spool_dir}") from err
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        return self._file

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise UploadTooLargeError(self.max_bytes)
        if len(self._head) < HEAD_BYTES:
            self._head += chunk[: HEAD_BYTES - len(self._head)]
        self._hash.update(chunk)
        file = self._file or self._open()
        try:
            file.write(chunk)
        except OSError as err:
            raise os_storage_error(err, f"cannot write the spool file {self.path}") from err

    def finish(self) -> StagedFile:
        file = self._file or self._open()
        assert self.path is not None
        try:
            # Buffered bytes meet a full disk here at the latest.
            file.flush()
            file.close()
        except OSError as err:
            raise os_storage_error(err, f"cannot write the spool file {self.path}") from err
        return StagedFile(self.path, self._hash.hexdigest(), self.size, bytes(self._head))

    def discard(self) -> None:
        """Close and remove the file, whatever fails on the way (never raises)."""
        try:
            if self._file is not None and not self._file.closed:
                # Closing flushes the buffer, which a full disk refuses again; the
                # descriptor is closed all the same, and the bytes are unwanted.
                self._file.close()
        except OSError as err:
            _log.debug("closing discarded spool file %s: %s", self.path, err)
        finally:
            if self.path is not None:
                try:
                    self.path.unlink(missing_ok=True)
                except OSError as err:
                    _log.error("cannot remove the spool file %s: %s", self.path, err)

    def __enter__(self) -> SpoolWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.discard()


def store_blob(
    store: ObjectStore, staged: StagedFile, filename: str, declared_type: str
) -> NewBlob:
    """Make the staged bytes durable in the object store; return what the catalog records."""
    blob = store.put_file(staged.path, sha256=staged.sha256, size=staged.size)
    return NewBlob(
        blob_key=blob.key,
        sha256=blob.sha256,
        size=blob.size,
        filename=sanitize_filename(filename),
        declared_type=(declared_type or "application/octet-stream")[:200],
        content_type=staged.sniffed_type,
    )


def _new_document(
    blob: NewBlob,
    clean_title: str,
    *,
    department: str,
    owner: str,
    visibility: str,
    tags: tuple[str, ...],
    grants: tuple[GrantRecord, ...],
    folder_id: str | None = None,
) -> NewDocument:
    return NewDocument(
        blob=blob,
        title=clean_title or blob.filename,
        title_from_user=bool(clean_title),
        department=department,
        owner=owner,
        visibility=visibility,
        tags=tags,
        grants=grants,
        folder_id=folder_id,
    )


@dataclass(frozen=True)
class UploadOutcome:
    """What became of an upload: its document, and how."""

    document: DocumentRecord
    #: A new document was recorded.
    created: bool
    #: Nothing was recorded: a live document of the department with the same
    #: bytes, which the uploader may read, answers the upload.
    duplicate: bool = False


def accept_document(
    catalog: CatalogStore,
    store: ObjectStore,
    staged: StagedFile,
    *,
    filename: str,
    declared_type: str,
    title: str | None,
    department: str,
    owner: str,
    visibility: str,
    tags: tuple[str, ...] = (),
    grants: tuple[GrantRecord, ...] = (),
    idempotency_key: str | None = None,
    audit: NewAuditEvent | None = None,
    commits: UploadCommits | None = None,
    folder_id: str | None = None,
) -> tuple[DocumentRecord, bool]:
    """Store and record a new document. Returns (document, created).

    As `accept_upload`, without looking for a duplicate.
    """
    outcome = accept_upload(
        catalog,
        store,
        staged,
        filename=filename,
        declared_type=declared_type,
        title=title,
        department=department,
        owner=owner,
        visibility=visibility,
        tags=tags,
        grants=grants,
        idempotency_key=idempotency_key,
        audit=audit,
        commits=commits,
        folder_id=folder_id,
    )
    return outcome.document, outcome.created


def _duplicate(
    catalog: CatalogStore,
    department: str,
    sha256: str,
    answers_duplicate: Callable[[DocumentRecord], bool] | None,
) -> DocumentRecord | None:
    if answers_duplicate is None:
        return None
    for doc in catalog.documents.live_with_digests(department, [sha256]):
        if answers_duplicate(doc):
            return doc
    return None


def accept_upload(
    catalog: CatalogStore,
    store: ObjectStore,
    staged: StagedFile,
    *,
    filename: str,
    declared_type: str,
    title: str | None,
    department: str,
    owner: str,
    visibility: str,
    tags: tuple[str, ...] = (),
    grants: tuple[GrantRecord, ...] = (),
    idempotency_key: str | None = None,
    audit: NewAuditEvent | None = None,
    commits: UploadCommits | None = None,
    answers_duplicate: Callable[[DocumentRecord], bool] | None = None,
    folder_id: str | None = None,
) -> UploadOutcome:
    """Store and record a new document, unless a duplicate answers it.

    With `answers_duplicate` (whether a document may answer this upload: the
    uploader may read it), a live document of the department whose bytes are
    the same answers the upload and nothing is recorded (`duplicate=True`);
    decided by the group commit's leader for its batch (see `PendingUpload`),
    else before the bytes are stored.

    `audit`, if given, is recorded in the same transaction (its target becomes
    the new document's id), so an upload and its audit record exist together.
    With an `idempotency_key` (see `Catalog.create_document`), a retry of the
    same upload returns the first document (created=False) and another upload
    under the key raises `IdempotencyKeyReusedError`; both are decided before
    the bytes are stored, so a refused upload leaves no unreferenced blob.
    With `commits`, an upload without a key is recorded by that group commit,
    in one transaction with the uploads ready at the same moment; one with a
    key in a transaction of its own, where its key is decided.
    """
    # Without a typed title the file name stands in until indexing finds a
    # title in the file's metadata (see indexer.titles.automatic_title).
    clean_title = " ".join((title or "").split())[:500]
    if idempotency_key:
        fingerprint = upload_fingerprint(
            staged.sha256, sanitize_filename(filename), clean_title, visibility, tags, folder_id
        )
        replay = catalog.documents.idempotent_replay(owner, idempotency_key, fingerprint)
        if replay is not None:
            return UploadOutcome(replay, created=False)
    if commits is not None and not idempotency_key:
        # On its way while its blob is stored: a transaction starting meanwhile
        # waits a moment for it (see storage.group_commit).
        with commits.arriving() as arrival:
            new = _new_document(
                store_blob(store, staged, filename, declared_type),
                clean_title,
                department=department,
                owner=owner,
                visibility=visibility,
                tags=tags,
                grants=grants,
                folder_id=folder_id,
            )
            doc, created = arrival.record(PendingUpload(new, audit, answers_duplicate))
            return UploadOutcome(doc, created=created, duplicate=not created)
    # With a key, in a transaction of its own: the look-up for a duplicate is
    # here (in a group commit, the commit's leader looks, for the whole batch).
    found = _duplicate(catalog, department, staged.sha256, answers_duplicate)
    if found is not None:
        if idempotency_key:
            # A retry under the key may have committed between the look-up of the
            # key above and this one (concurrent retries on PostgreSQL): its
            # document is then this upload's own, replayed, not a duplicate. Both
            # were committed together, so the key is visible now if it is the same.
            replay = catalog.documents.idempotent_replay(owner, idempotency_key, fingerprint)
            if replay is not None:
                return UploadOutcome(replay, created=False)
        return UploadOutcome(found, created=False, duplicate=True)
    blob = store_blob(store, staged, filename, declared_type)
    new = _new_document(
        blob,
        clean_title,
        department=department,
        owner=owner,
        visibility=visibility,
        tags=tags,
        grants=grants,
        folder_id=folder_id,
    )
    try:
        doc, created = catalog.documents.create(new, idempotency_key=idempotency_key, audit=audit)
        return UploadOutcome(doc, created=created)
    except IdempotencyKeyReusedError:
        # Only when another upload with the key committed after the check above:
        # the blob stays (content-addressed, possibly shared), said here.
        _log.warning(
            "upload by %s refused (Idempotency-Key reused) after its blob %s was stored;"
            " no document refers to it unless another has the same bytes",
            owner,
            blob.blob_key,
        )
        raise


@dataclass(frozen=True)
class BulkItem:
    staged: StagedFile
    filename: str
    tags: tuple[str, ...] = ()
    #: The folder to file it in (of the department; None: the top level).
    folder_id: str | None = None


def accept_documents(
    catalog: CatalogStore,
    store: ObjectStore,
    items: list[BulkItem],
    *,
    department: str,
    owner: str,
    visibility: str,
    audit: NewAuditEvent | None = None,
) -> list[DocumentRecord]:
    """Store many files, then record them all in one catalog transaction (bulk import).

    Every blob is durable before the transaction; the transaction is all or
    nothing, so a crash leaves either all of the batch recorded or none of it.
    """
    # Storing a blob mostly waits on fsync, which releases the GIL: a few
    # threads keep the disk busy while this one hashes and inserts.
    with ThreadPoolExecutor(max_workers=_STORE_THREADS) as pool:
        blobs = list(
            pool.map(lambda item: store_blob(store, item.staged, item.filename, ""), items)
        )
    news = [
        NewDocument(
            blob=blob,
            title=blob.filename,
            department=department,
            owner=owner,
            visibility=visibility,
            tags=item.tags,
            folder_id=item.folder_id,
        )
        for item, blob in zip(items, blobs, strict=True)
    ]
    return catalog.documents.create_many(news, audit=audit)

"""The indexing pipeline: from a document id to an up-to-date index entry.

Plain functions over the ports, called by every kind of worker (the in-process
worker, Celery tasks, `crossdoc reindex`). Work is idempotent and always uses
the *current* catalog state of a document, so duplicate, late or out-of-order
deliveries are harmless: the index stores the revision it was built from and
ignores anything older.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from auth.access import index_readers
from indexer.access_facts import document_access
from indexer.errors import ExtractionUnavailableError, SearchUnavailableError
from indexer.extraction.base import OCR_NOTE, Extraction, ExtractionStatus, TextExtractor
from indexer.extraction.classify import base_type
from indexer.index.base import IndexDocument, SearchIndex
from indexer.titles import automatic_title, effective_title, title_is_kept
from storage.catalog.ports import CatalogStore
from storage.catalog.records import (
    DocumentRecord,
    ExtractionRecord,
    IndexOutcome,
    PolicyRecord,
)
from storage.errors import BlobNotFoundError, StorageUnavailableError
from storage.objectstore.base import ObjectStore

log = logging.getLogger(__name__)

_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,10}$")

#: Faults of the infrastructure (not of a document): the work is retried later.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    ExtractionUnavailableError,
    SearchUnavailableError,
    StorageUnavailableError,
)


@dataclass
class BatchReport:
    indexed: list[str] = field(default_factory=list)  # with or without text
    failed: list[str] = field(default_factory=list)  # stored and searchable by name, unreadable
    deleted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unknown ids, or already up to date


#: Default bound of the extracted text a batch holds at once (UTF-8 bytes).
DEFAULT_BATCH_TEXT_BYTES = 16 * 1024 * 1024


#: Extraction outcomes of a file read as far as it can be that holds no text we
#: may read (image-only or blank, password protected, a format without text):
#: the document is stored, indexed by its title and file name, and downloadable,
#: so its status is `indexed` (`status_detail` says why there is no text). Only a
#: file that could not be read (corrupt, or the parser ran out of time or memory)
#: is `failed`.
NO_TEXT_STATUSES = frozenset(
    {ExtractionStatus.EMPTY, ExtractionStatus.ENCRYPTED, ExtractionStatus.UNSUPPORTED_FORMAT}
)


def _document_status(extraction: Extraction) -> tuple[str, str]:
    if extraction.status is ExtractionStatus.OK or extraction.status in NO_TEXT_STATUSES:
        # status_detail: "" or "ocr…" with text; "empty", "encrypted",
        # "unsupported_format" (or "empty: ocr unavailable: …") without.
        return "indexed", extraction.status_detail
    return "failed", extraction.status_detail


def has_text(status: str, status_detail: str) -> bool | None:
    """Whether a document's text was found (None while it is `pending`).

    Read from the catalog's status and detail: an `indexed` document has text
    unless its detail names why not (see `_document_status`).
    """
    if status == "pending":
        return None
    if status != "indexed":
        return False
    return status_detail == "" or status_detail.startswith(OCR_NOTE)


class IndexingPipeline:
    """Extracts, analyses and indexes documents, and records the outcome in the catalog."""

    def __init__(
        self,
        catalog: CatalogStore,
        store: ObjectStore,
        extractor: TextExtractor,
        index: SearchIndex,
        spool_dir: Path,
        *,
        batch_text_bytes: int = DEFAULT_BATCH_TEXT_BYTES,
    ) -> None:
        """`batch_text_bytes` bounds the extracted text (UTF-8 bytes) a batch holds
        at once: beyond it, the batch is indexed in several commits (a document
        larger than that is indexed alone)."""
        if batch_text_bytes < 1:
            raise ValueError("batch_text_bytes must be positive")
        self.catalog = catalog
        self.store = store
        self.extractor = extractor
        self.index = index
        self.spool_dir = spool_dir
        self.batch_text_bytes = batch_text_bytes

    # -- extraction, cached per blob ---------------------------------------------------

    def extract(
        self,
        doc: DocumentRecord,
        fresh: list[ExtractionRecord],
        cache: dict[str, ExtractionRecord],
    ) -> Extraction:
        """The extraction of the document's current blob, from the cache when possible.

        `cache` is the batch's cache lookup (one query for the batch); a new
        extraction is appended to `fresh`, cached by the caller in one transaction.
        """
        cached = cache.get(doc.sha256)
        if cached is not None:
            return Extraction(
                status=ExtractionStatus(cached.status),
                text=cached.text,
                content_type=cached.content_type,
                detail=cached.detail,
                metadata=cached.metadata,
                truncated=cached.truncated,
            )
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        # Keep the extension: Tika uses the resource name as a detection hint.
        suffix = Path(doc.filename).suffix
        if not _SAFE_SUFFIX.match(suffix):
            suffix = ""
        with tempfile.NamedTemporaryFile(
            dir=self.spool_dir, prefix="extract-", suffix=suffix
        ) as tmp:
            try:
                with self.store.open(doc.blob_key) as blob:
                    shutil.copyfileobj(blob, tmp, 1 << 20)
            except BlobNotFoundError:
                # The record says the bytes exist. Do not mark the document failed
                # for good: this is an operational emergency, retried and reported.
                raise StorageUnavailableError(
                    f"blob {doc.blob_key} of {doc.id} is missing"
                ) from None
            tmp.flush()
            extraction = self.extractor.extract(
                Path(tmp.name), filename=doc.filename, declared_type=doc.declared_type
            )
        record = ExtractionRecord(
            sha256=doc.sha256,
            extractor_version=self.extractor.version,
            status=extraction.status.value,
            detail=extraction.detail,
            content_type=extraction.content_type,
            metadata=dict(extraction.metadata),
            text=extraction.text,
            truncated=extraction.truncated,
        )
        fresh.append(record)
        return extraction

    # -- indexing ------------------------------------------------------------------

    @staticmethod
    def index_document(
        doc: DocumentRecord,
        extraction: Extraction | None,
        policies: Sequence[PolicyRecord],
        now: datetime,
    ) -> IndexDocument:
        """The index entry of a document; without `extraction`, for `update_access` (no body)."""
        body = ""
        content_type = doc.content_type
        if extraction is not None:
            content_type = base_type(extraction.content_type) or doc.content_type
            if extraction.status is ExtractionStatus.OK:
                body = extraction.text
        return IndexDocument(
            id=doc.id,
            revision=doc.revision,
            # Access-only: the catalog's title is already the effective one.
            title=doc.title if extraction is None else effective_title(doc, extraction),
            filename=doc.filename,
            body=body,
            department=doc.department,
            ministry=doc.ministry,
            content_type=content_type,
            tags=doc.tags,
            owner=doc.owner,
            readers=index_readers(document_access(doc, policies), now),
            created_at=doc.created_at,
            updated_at=doc.updated_at,
            folder=doc.folder_id or "",
            folder_path=doc.folder_path,
        )

    def process(self, document_ids: Sequence[str]) -> BatchReport:
        """Bring the index up to date for these documents, as one batch.

        The documents to extract are indexed in parts of at most
        `batch_text_bytes` of extracted text (one index commit and one catalog
        transaction each), so the memory of a batch follows its text, not its
        file sizes or its count: a part is extracted, cached, analysed, indexed
        and recorded, then released before the next is extracted.

        Raises one of TRANSIENT_ERRORS when the infrastructure fails; the parts
        already recorded stay done, nothing of the failed part is, and the
        caller retries the batch later (done documents are then skipped or only
        rewritten).
        """
        report = BatchReport()
        docs = self.catalog.documents.get_many(document_ids, include_deleted=True)
        known = {d.id for d in docs}
        report.skipped.extend(i for i in document_ids if i not in known)
        now = datetime.now(UTC)
        # Read after the documents: a policy committed before a document was
        # created (so its fan-out missed it) is then always seen here.
        policies = self.catalog.policies.list_all()

        to_delete = [d for d in docs if d.deleted_at is not None]
        live = [d for d in docs if d.deleted_at is None]
        # Only the access (or title, tags) of these changed since they were
        # indexed: no new version waits ("pending") and no outbox row asks for
        # more (a reindex). The index keeps their text and their entry is
        # rewritten from the catalog; no extraction, no blob read.
        full = self.catalog.outbox.pending_full_reindex([d.id for d in live])
        access_only = [d for d in live if d.id not in full and d.status != "pending"]
        if access_only:
            missing = set(
                self.index.update_access(
                    [self.index_document(d, None, policies, now) for d in access_only]
                )
            )
            access_only = [d for d in access_only if d.id not in missing]
            done = {d.id for d in access_only}
            live = [d for d in live if d.id not in done]
        if to_delete:
            self.index.delete([d.id for d in to_delete])

        outcomes: list[IndexOutcome] = []
        for doc in access_only:
            outcomes.append(IndexOutcome(doc.id, doc.revision, doc.version, None))
            report.indexed.append(doc.id)
        for doc in to_delete:
            outcomes.append(IndexOutcome(doc.id, doc.revision, doc.version, None))
            report.deleted.append(doc.id)

        part: list[tuple[DocumentRecord, Extraction]] = []
        fresh: list[ExtractionRecord] = []
        held = 0
        for window in self._cache_windows(live):
            cache = self.catalog.extractions.get([d.sha256 for d in window], self.extractor.version)
            for doc in window:
                extracted: list[ExtractionRecord] = []
                extraction = self.extract(doc, extracted, cache)
                size = len(extraction.text.encode("utf-8"))
                if part and held + size > self.batch_text_bytes:
                    self._index_part(part, fresh, policies, now, outcomes, report)
                    part, fresh, outcomes, held = [], [], [], 0
                part.append((doc, extraction))
                fresh.extend(extracted)
                held += size
        self._index_part(part, fresh, policies, now, outcomes, report)
        self.index.refresh()
        return report

    def _cache_windows(self, docs: Sequence[DocumentRecord]) -> Iterator[list[DocumentRecord]]:
        """`docs` in runs whose files add up to at most `batch_text_bytes` (at least
        one each): the extraction cache is read for one run at a time, so a batch
        whose text is all cached is not read from the cache all at once."""
        run: list[DocumentRecord] = []
        size = 0
        for doc in docs:
            if run and size + doc.size > self.batch_text_bytes:
                yield run
                run, size = [], 0
            run.append(doc)
            size += doc.size
        if run:
            yield run

    def _index_part(
        self,
        part: Sequence[tuple[DocumentRecord, Extraction]],
        fresh: Sequence[ExtractionRecord],
        policies: Sequence[PolicyRecord],
        now: datetime,
        outcomes: list[IndexOutcome],
        report: BatchReport,
    ) -> None:
        """Cache, index (one commit) and record one part of a batch, with `outcomes`
        already due (access-only rewrites and deletions) recorded alongside."""
        self.catalog.extractions.put(fresh)
        if part:
            self.index.upsert([self.index_document(d, e, policies, now) for d, e in part])
        for doc, extraction in part:
            status, detail = _document_status(extraction)
            outcomes.append(
                IndexOutcome(
                    doc.id,
                    doc.revision,
                    doc.version,
                    status,
                    detail,
                    base_type(extraction.content_type) or None,
                    None if title_is_kept(doc) else automatic_title(doc, extraction),
                )
            )
            (report.indexed if status == "indexed" else report.failed).append(doc.id)
        self.catalog.documents.mark_indexed_many(outcomes)

    # -- rebuilding beside the live index (indexer.rebuild) ---------------------------

    def index_into(self, target: SearchIndex, document_ids: Sequence[str]) -> int:
        """Write these documents' current state into `target`, an index being
        rebuilt beside the live one; returns how many live documents were written.

        Unlike `process`, nothing is recorded in the catalog: the catalog's
        `indexed_revision` describes the live index, which the workers keep
        writing (and, while a rebuild runs, `target` too). The extraction cache
        is read and filled as usual, so a rebuild extracts only what was never
        extracted. Deleted documents are removed from `target`, and so is any
        document deleted while its entry was being written (its deletion by the
        workers may have reached `target` before this write did).

        Raises one of TRANSIENT_ERRORS when the infrastructure fails.
        """
        docs = self.catalog.documents.get_many(document_ids, include_deleted=True)
        live = [d for d in docs if d.deleted_at is None]
        gone = [d.id for d in docs if d.deleted_at is not None]
        policies = self.catalog.policies.list_all()
        now = datetime.now(UTC)
        part: list[IndexDocument] = []
        fresh: list[ExtractionRecord] = []
        held = 0
        for window in self._cache_windows(live):
            cache = self.catalog.extractions.get([d.sha256 for d in window], self.extractor.version)
            for doc in window:
                extraction = self.extract(doc, fresh, cache)
                size = len(extraction.text.encode("utf-8"))
                if part and held + size > self.batch_text_bytes:
                    self.catalog.extractions.put(fresh)
                    target.upsert(part)
                    part, fresh, held = [], [], 0
                part.append(self.index_document(doc, extraction, policies, now))
                held += size
        self.catalog.extractions.put(fresh)
        if part:
            target.upsert(part)
        if live:
            again = self.catalog.documents.get_many([d.id for d in live], include_deleted=True)
            gone += [d.id for d in again if d.deleted_at is not None]
        if gone:
            target.delete(gone)
        target.refresh()
        return len(live)

"""The in-process worker: drains the catalog outbox on a background thread.

Used by the embedded deployment (`crossdoc serve` with no broker). Celery workers
run the same `drain_once` through their tasks.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence
from datetime import timedelta

from indexer.pipeline import TRANSIENT_ERRORS, BatchReport, IndexingPipeline
from storage.catalog.records import OutboxClaim
from storage.catalog.repository import Catalog

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
MAX_BACKOFF_SECONDS = 300.0


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with full jitter, capped (Celery's guide; AWS's "full jitter")."""
    ceiling = min(MAX_BACKOFF_SECONDS, 2.0 ** min(attempts, 16))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311 (not crypto)


def _settle(catalog: Catalog, claims: Sequence[OutboxClaim], report: BatchReport) -> None:
    """Finish the claims of a processed batch.

    Rows of documents the batch indexed, failed or deleted were already removed
    in the transaction that recorded the outcome; only rows naming unknown
    documents are left to remove, and anything else is made due again.
    """
    processed = set(report.indexed) | set(report.failed) | set(report.deleted)
    skipped = set(report.skipped)
    for claim in claims:
        if claim.document_id in skipped:
            catalog.complete_outbox(claim)
        elif claim.document_id not in processed:
            catalog.release_outbox(claim, "", timedelta(0))


def drain_once(
    catalog: Catalog,
    pipeline: IndexingPipeline,
    batch_size: int,
    access_batch_size: int = 0,
    batch_bytes: int | None = None,
) -> int:
    """Claim one batch of due outbox rows and process it. Returns how many rows were claimed.

    A batch holds at most `batch_size` documents, and (beyond its first) at most
    `batch_bytes` of files to extract.

    Up to `access_batch_size` access-only rows (a policy or ACL change: readers
    rewritten, nothing extracted) ride along beyond `batch_size`, so that a
    change touching many documents reaches the index in few large commits.
    """
    claims = catalog.claim_outbox(
        batch_size, LEASE, access_limit=access_batch_size, max_bytes=batch_bytes
    )
    if not claims:
        return 0
    ids = list(dict.fromkeys(c.document_id for c in claims))
    try:
        report = pipeline.process(ids)
    except TRANSIENT_ERRORS as err:
        log.warning("indexing deferred for %d documents: %s", len(ids), err)
        for claim in claims:
            catalog.release_outbox(claim, str(err), backoff(claim.attempts))
        return len(claims)
    except Exception:
        # A bug, not a fault: isolate the document that triggers it so the
        # others keep flowing, and keep retrying it slowly (it is logged).
        if len(ids) == 1:
            log.exception("indexing failed for document %s", ids[0])
            for claim in claims:
                catalog.release_outbox(
                    claim, "internal error (see logs)", backoff(claim.attempts + 4)
                )
            return len(claims)
        for claim in claims:
            catalog.release_outbox(claim, "", timedelta(0))
        for document_id in ids:
            drain_document(catalog, pipeline, document_id)
        return len(claims)
    _settle(catalog, claims, report)
    return len(claims)


def drain_document(catalog: Catalog, pipeline: IndexingPipeline, document_id: str) -> None:
    """Process one document on its own (used to isolate a failing one)."""
    try:
        pipeline.process([document_id])
    except Exception as err:
        log.exception("indexing failed for document %s", document_id)
        del err


class InProcessWorker:
    """A daemon thread that drains the outbox, woken early by `notify`."""

    def __init__(
        self,
        catalog: Catalog,
        pipeline: IndexingPipeline,
        *,
        batch_size: int = 64,
        batch_bytes: int | None = None,
        access_batch_size: int = 1000,
        idle_seconds: float = 2.0,
        maintenance_seconds: float = 5.0,
    ) -> None:
        self.catalog = catalog
        self.pipeline = pipeline
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.access_batch_size = access_batch_size
        self.idle_seconds = idle_seconds
        self.maintenance_seconds = maintenance_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_maintenance = 0.0

    def start(self) -> None:
        """Start the thread (again, after `stop`)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="crossdoc-worker", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def notify(self, document_ids: Sequence[str] = ()) -> None:
        del document_ids
        self._wake.set()

    def ping(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError("the in-process worker is not running")

    def close(self) -> None:
        self.stop()

    def maintenance(self) -> None:
        """Periodic chores: expire grants (their documents are re-indexed) and note
        policy fan-outs the index has caught up with."""
        expired = self.catalog.expire_grants()
        if expired:
            log.info("expired grants on %d documents", len(expired))
        self.catalog.settle_policy_fanouts()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                if now - self._last_maintenance >= self.maintenance_seconds:
                    self._last_maintenance = now
                    self.maintenance()
                if drain_once(
                    self.catalog,
                    self.pipeline,
                    self.batch_size,
                    self.access_batch_size,
                    self.batch_bytes,
                ):
                    continue
                # Idle: the index may just have caught up with a policy change.
                self.catalog.settle_policy_fanouts()
            except Exception:
                log.exception("worker pass failed; retrying shortly")
            self._wake.wait(self.idle_seconds)
            self._wake.clear()

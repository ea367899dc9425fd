"""The in-process worker: drains the catalog outbox on a background thread.

Used by the embedded deployment (`crossdoc serve` with no broker). A Celery worker
process (`crossdoc worker`) runs one too, as its reconciler: it keeps the claims'
heartbeat, takes back dead workers' claims, does the periodic chores and drains
whatever is due every few seconds, so no work depends on a broker message; the
process's tasks drain through the same object (`drain_due`), one pass at a time.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Protocol

from indexer.claims import HEARTBEAT_SECONDS, ClaimKeeper
from indexer.errors import ExtractionUnavailableError, SearchUnavailableError
from indexer.pipeline import TRANSIENT_ERRORS, BatchReport, IndexingPipeline
from storage.catalog.ports import CatalogStore
from storage.catalog.records import OutboxClaim
from storage.errors import StorageUnavailableError

log = logging.getLogger(__name__)

#: The last resort for a claim whose owner cannot be told gone (see `indexer.claims`).
LEASE = timedelta(minutes=10)
MAX_BACKOFF_SECONDS = 300.0
#: The catalog cannot write (disk full, database locked or unreachable): settling
#: claims is retried after at most this long, so it happens soon after it can.
SETTLE_RETRY_MAX_SECONDS = 5.0
#: Without a stop event to wait on (the CLI), how long settling is retried before
#: giving up (the claims are then freed when this process is gone).
SETTLE_PATIENCE_SECONDS = 120.0
#: While a stream of documents arrives, batches start at least this far apart, so
#: that each carries what arrived meanwhile (see `InProcessWorker`).
MIN_BATCH_SECONDS = 0.1
#: Faults of the catalog's writes that pass once the cause goes away.
_WRITE_FAULTS: tuple[type[Exception], ...] = (StorageUnavailableError, OSError)
#: Claims of a document that met a transient fault (an engine down) this many times
#: in a row — about two minutes of backoff — end its wait: a `pending` document is
#: marked `failed` with the reason (`unavailable_detail`), so its uploader is not left
#: guessing. Its outbox row stays and is retried every few minutes (`backoff`, capped):
#: once the engine is back the document ends `indexed`, with no one's action.
TRANSIENT_ATTEMPTS = 6


def unavailable_detail(err: Exception) -> str:
    """The `status_detail` of a document whose indexing waits for an engine (Korean first)."""
    if isinstance(err, SearchUnavailableError):
        what = "검색 엔진에 연결할 수 없어", "the search engine is unavailable"
    elif isinstance(err, ExtractionUnavailableError):
        what = "텍스트 추출 서비스에 연결할 수 없어", "the text extraction service is unavailable"
    else:
        what = "저장소에서 원본을 읽을 수 없어", "the stored file cannot be read"
    return (
        f"unavailable: {what[0]} 아직 색인하지 못했습니다. 다시 연결되면 자동으로 색인합니다 · "
        f"{what[1]}; the document is indexed automatically when it is back"
    )


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with full jitter, capped (Celery's guide; AWS's "full jitter")."""
    ceiling = min(MAX_BACKOFF_SECONDS, 2.0 ** min(attempts, 16))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311 (not crypto)


def _settle(
    catalog: CatalogStore, claims: Sequence[OutboxClaim], report: BatchReport
) -> list[Callable[[], None]]:
    """How to finish the claims of a processed batch.

    Rows of documents the batch indexed, failed or deleted were already removed
    in the transaction that recorded the outcome; only rows naming unknown
    documents are left to remove, and anything else is made due again.
    """
    processed = set(report.indexed) | set(report.failed) | set(report.deleted)
    skipped = set(report.skipped)
    actions: list[Callable[[], None]] = []
    for claim in claims:
        if claim.document_id in skipped:
            actions.append(_complete(catalog, claim))
        elif claim.document_id not in processed:
            actions.append(_release(catalog, claim, "", timedelta(0)))
    return actions


def _complete(catalog: CatalogStore, claim: OutboxClaim) -> Callable[[], None]:
    return lambda: catalog.outbox.complete(claim)


def _release(
    catalog: CatalogStore, claim: OutboxClaim, error: str, retry_in: timedelta
) -> Callable[[], None]:
    return lambda: catalog.outbox.release(claim, error, retry_in)


def settle_retrying(
    actions: Sequence[Callable[[], None]], stop: threading.Event | None = None
) -> None:
    """Run the catalog writes that settle claims, retrying while the catalog cannot write.

    A full disk or a locked database must not leave claims held until their
    lease lapses: the writes (idempotent) are retried with a capped backoff and
    done as soon as the catalog takes them. Gives up (re-raises) once `stop` is
    set, or without `stop` after `SETTLE_PATIENCE_SECONDS`; the claims are then
    freed when this process is gone (`indexer.claims`).
    """
    pending = list(actions)
    delay = 0.2
    deadline = None if stop is not None else time.monotonic() + SETTLE_PATIENCE_SECONDS
    while pending:
        try:
            pending[0]()
        except _WRITE_FAULTS as err:
            if (stop is not None and stop.is_set()) or (
                deadline is not None and time.monotonic() > deadline
            ):
                raise
            log.warning(
                "cannot settle %d outbox claims (%s); retrying in %.1f s", len(pending), err, delay
            )
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)
            delay = min(delay * 2, SETTLE_RETRY_MAX_SECONDS)
            continue
        pending.pop(0)


def drain_once(
    catalog: CatalogStore,
    pipeline: IndexingPipeline,
    batch_size: int,
    access_batch_size: int = 0,
    batch_bytes: int | None = None,
    *,
    owner: str = "",
    stop: threading.Event | None = None,
) -> int:
    """Claim one batch of due outbox rows and process it. Returns how many rows were claimed.

    The claims name `owner` (a registered `ClaimKeeper` id). Claims are settled
    even while the catalog cannot write for a while (see `settle_retrying`,
    which gives up once `stop` is set).

    A batch holds at most `batch_size` documents, and (beyond its first) at most
    `batch_bytes` of files to extract.

    Up to `access_batch_size` access-only rows (a policy or ACL change: readers
    rewritten, nothing extracted) ride along beyond `batch_size`, so that a
    change touching many documents reaches the index in few large commits.
    """
    claims = catalog.outbox.claim(
        batch_size, LEASE, access_limit=access_batch_size, max_bytes=batch_bytes, owner=owner
    )
    if not claims:
        return 0
    ids = list(dict.fromkeys(c.document_id for c in claims))
    try:
        report = pipeline.process(ids)
    except TRANSIENT_ERRORS as err:
        log.warning("indexing deferred for %d documents: %s", len(ids), err)
        _mark_long_waits(catalog, claims, err)
        settle_retrying([_release(catalog, c, str(err), backoff(c.attempts)) for c in claims], stop)
        return len(claims)
    except Exception:
        # A bug, not a fault: isolate the document that triggers it so the
        # others keep flowing, and keep retrying it slowly (it is logged).
        if len(ids) == 1:
            log.exception("indexing failed for document %s", ids[0])
            error = "internal error (see logs)"
            settle_retrying(
                [_release(catalog, c, error, backoff(c.attempts + 4)) for c in claims], stop
            )
            return len(claims)
        settle_retrying([_release(catalog, c, "", timedelta(0)) for c in claims], stop)
        for document_id in ids:
            drain_document(catalog, pipeline, document_id)
        return len(claims)
    settle_retrying(_settle(catalog, claims, report), stop)
    return len(claims)


def _mark_long_waits(catalog: CatalogStore, claims: Sequence[OutboxClaim], err: Exception) -> None:
    """Mark `failed` (with the reason) the pending documents whose claims have met
    transient faults `TRANSIENT_ATTEMPTS` times; their rows stay (see the constant)."""
    waited = [
        c.document_id for c in claims if c.attempts >= TRANSIENT_ATTEMPTS and not c.access_only
    ]
    if not waited:
        return
    try:
        marked = catalog.documents.mark_unavailable(waited, unavailable_detail(err))
    except _WRITE_FAULTS as write_err:
        log.warning("cannot mark %d waiting documents failed: %s", len(waited), write_err)
        return
    if marked:
        log.warning(
            "%d documents marked failed after %d transient faults (retried until indexed): %s",
            len(marked),
            TRANSIENT_ATTEMPTS,
            err,
        )


def drain_document(catalog: CatalogStore, pipeline: IndexingPipeline, document_id: str) -> None:
    """Process one document on its own (used to isolate a failing one)."""
    try:
        pipeline.process([document_id])
    except Exception as err:
        log.exception("indexing failed for document %s", document_id)
        del err


class Companion(Protocol):
    """A thread of its own started and stopped with the worker's."""

    def start(self) -> None: ...

    def close(self) -> None: ...


class InProcessWorker:
    """A daemon thread that drains the outbox, woken early by `notify`.

    Its claims name this process (`ClaimKeeper`); a second daemon thread keeps
    the heartbeat and takes back the claims of workers that are gone, first
    thing at start: after a crash, the batch the dead process held is indexed
    again at once.

    A batch that was not full (the worker has caught up) is followed by the
    next one no sooner than `min_batch_seconds` after it started: while uploads
    stream in, each batch then carries what arrived meanwhile, instead of one
    or two documents each paying the batch's fixed work (an index commit, the
    catalog's transactions) on the cores the API needs. A document arriving on
    an idle worker is taken at once; a backlog is drained without pause.
    """

    def __init__(
        self,
        catalog: CatalogStore,
        pipeline: IndexingPipeline,
        *,
        batch_size: int = 64,
        batch_bytes: int | None = None,
        access_batch_size: int = 1000,
        idle_seconds: float = 2.0,
        maintenance_seconds: float = 5.0,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        keeper: ClaimKeeper | None = None,
        min_batch_seconds: float = MIN_BATCH_SECONDS,
        chores: Sequence[Callable[[], object]] = (),
        companions: Sequence[Companion] = (),
    ) -> None:
        """`companions` are started and stopped with the worker's threads (e.g. the
        taker of rebuild requests, `indexer.rebuild.RebuildRequests`)."""
        self.companions = tuple(companions)
        self.catalog = catalog
        #: More periodic chores, run with `maintenance` (e.g. the trash's purge).
        self.chores = tuple(chores)
        self.min_batch_seconds = min_batch_seconds
        self.pipeline = pipeline
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.access_batch_size = access_batch_size
        self.idle_seconds = idle_seconds
        self.maintenance_seconds = maintenance_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.keeper = keeper or ClaimKeeper(catalog)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._heart: threading.Thread | None = None
        self._last_maintenance = 0.0
        self._reclaimed = False
        #: One drain pass at a time in this process (the loop, and Celery tasks).
        self._pass = threading.Lock()

    def start(self) -> None:
        """Start the threads (again, after `stop`)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="crossdoc-worker", daemon=True)
            self._heart = threading.Thread(
                target=self._keep_claims, name="crossdoc-claims", daemon=True
            )
            self._thread.start()
            self._heart.start()
            for companion in self.companions:
                companion.start()

    def request_stop(self) -> None:
        """Ask the loop and a running `drain_due` to end after their batch (safe in a
        signal handler: it only sets events); `stop` then waits and hands back claims."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the threads and hand back this process's claims (due at once)."""
        self._stop.set()
        self._wake.set()
        for companion in self.companions:
            companion.close()
        for thread in (self._thread, self._heart):
            if thread is not None:
                thread.join(timeout)
        self._thread = self._heart = None
        try:
            self.keeper.release()
        except _WRITE_FAULTS as err:
            # The next worker takes them back when it sees this process gone.
            log.warning("cannot hand back the outbox claims at stop: %s", err)

    def notify(self, document_ids: Sequence[str] = ()) -> None:
        del document_ids
        self._wake.set()

    def ping(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError("the in-process worker is not running")

    def close(self) -> None:
        self.stop()

    def drain_due(self, budget_seconds: float | None = None) -> int:
        """Claim and process due rows, batch after batch, until none is due (or the
        worker is stopping, or `budget_seconds` have passed); returns rows claimed.

        The body of a Celery task: the claims name this process, as the loop's do.
        """
        deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
        total = 0
        while not self._stop.is_set():
            claimed = self._drain_batch()
            total += claimed
            if not claimed or (deadline is not None and time.monotonic() > deadline):
                break
        return total

    def _drain_batch(self) -> int:
        with self._pass:
            return drain_once(
                self.catalog,
                self.pipeline,
                self.batch_size,
                self.access_batch_size,
                self.batch_bytes,
                owner=self._claim_ready(),
                stop=self._stop,
            )

    def maintenance(self) -> None:
        """Periodic chores: expire grants (their documents are re-indexed) and note
        policy fan-outs the index has caught up with."""
        expired = self.catalog.documents.expire_grants()
        if expired:
            log.info("expired grants on %d documents", len(expired))
        self.catalog.policies.settle_fanouts()
        for chore in self.chores:
            try:
                chore()
            except Exception:
                log.exception("periodic chore %r failed; retrying at the next pass", chore)

    def _keep_claims(self) -> None:
        """Heartbeat and take back dead workers' claims, until stopped."""
        while not self._stop.is_set():
            try:
                self.keeper.heartbeat()
                if self.keeper.reclaim():
                    self._wake.set()
            except Exception:
                log.exception("outbox claim upkeep failed; retrying shortly")
            self._stop.wait(self.heartbeat_seconds)

    def _claim_ready(self) -> str:
        """Register this process and take back dead workers' claims before the first claim."""
        owner = self.keeper.ensure_registered()
        if not self._reclaimed:
            self.keeper.reclaim()
            self._reclaimed = True
        return owner

    def _run(self) -> None:
        self._reclaimed = False
        while not self._stop.is_set():
            try:
                self._claim_ready()
                now = time.monotonic()
                if now - self._last_maintenance >= self.maintenance_seconds:
                    self._last_maintenance = now
                    self.maintenance()
                started = time.monotonic()
                claimed = self._drain_batch()
                if claimed:
                    if claimed < self.batch_size:
                        # Caught up: let the next batch gather what arrives meanwhile.
                        rest = self.min_batch_seconds - (time.monotonic() - started)
                        if rest > 0:
                            self._stop.wait(rest)
                    continue
                # Idle: the index may just have caught up with a policy change.
                self.catalog.policies.settle_fanouts()
            except Exception:
                log.exception("worker pass failed; retrying shortly")
            self._wake.wait(self.idle_seconds)
            self._wake.clear()

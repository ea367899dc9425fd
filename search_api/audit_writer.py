"""Recording audit events.

Changes (documents, organisation, policies) are audited in their own transaction
by the services (`services.documents`, `services.organisation`,
`services.policies`: the catalog's unit of work), and audit exports by
`services.audit`, not here. Other events (sign-ins, denials) are written
synchronously, in a transaction of their own, before the answer.
High-volume reads (searches, reads, downloads) go through a small queue flushed
by a background thread every few hundred milliseconds in one transaction per
batch, so that a search does not wait for an fsync; `close()` flushes what is left.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from storage.catalog.ports import CatalogStore
from storage.catalog.records import NewAuditEvent, audit_event

log = logging.getLogger(__name__)

MAX_PENDING = 100_000


class Auditor:
    def __init__(self, catalog: CatalogStore, *, flush_seconds: float = 0.25) -> None:
        self.catalog = catalog
        self.flush_seconds = flush_seconds
        # A deque, not a `queue.Queue`: appending and popping are atomic, and this is
        # on every search and suggestion (a Queue takes a lock and notifies a
        # condition on each put, for a reader that never waits on it).
        self._queue: deque[NewAuditEvent] = deque()
        self._stop = threading.Event()
        # One flush at a time: a caller's flush (e.g. /me/recent, to show an open at
        # once) must not return while the background flush it raced still holds the
        # events it took, uncommitted.
        self._flushing = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="crossdoc-audit", daemon=True)
        self._thread.start()

    #: `storage.catalog.records.audit_event`, reachable from the writer routes hold.
    event = staticmethod(audit_event)

    def record(self, event: NewAuditEvent) -> None:
        """Write one event now (changes, denials, sign-ins)."""
        self.catalog.audit.append([event])

    def record_later(self, event: NewAuditEvent) -> None:
        """Queue a read event; written within `flush_seconds`."""
        self._queue.append(event)

    def flush(self) -> None:
        with self._flushing:
            self._flush()

    def _flush(self) -> None:
        batch: list[NewAuditEvent] = []
        while True:
            try:
                batch.append(self._queue.popleft())
            except IndexError:
                break
        if not batch:
            return
        try:
            self.catalog.audit.append(batch)
        except Exception:
            # Keep the events for the next flush rather than lose them.
            # Back in front of those queued meanwhile, in their order.
            room = max(0, MAX_PENDING - len(self._queue))
            self._queue.extendleft(reversed(batch[:room]))
            raise

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:
                log.exception("audit flush failed")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.flush()

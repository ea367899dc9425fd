"""Recording audit events.

Changes (uploads, ACL, organisation, sign-ins, denials) are written synchronously,
in their own transaction, before the answer. High-volume reads (searches, reads,
downloads) go through a small queue flushed by a background thread every few
hundred milliseconds in one transaction per batch, so that a search does not
wait for an fsync; `close()` flushes what is left.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping

from storage.catalog.records import NewAuditEvent
from storage.catalog.repository import Catalog

log = logging.getLogger(__name__)

MAX_DETAIL_STRING = 1000
MAX_PENDING = 100_000


def _clip(value: object) -> object:
    # Detail is stored as JSON (so newlines or ANSI escapes cannot forge records);
    # long strings are clipped so a huge query cannot bloat the log.
    if isinstance(value, str):
        return value[:MAX_DETAIL_STRING]
    if isinstance(value, list | tuple):
        return [_clip(v) for v in value[:100]]
    if isinstance(value, dict):
        return {str(k)[:100]: _clip(v) for k, v in list(value.items())[:50]}
    return value


class Auditor:
    def __init__(self, catalog: Catalog, *, flush_seconds: float = 0.25) -> None:
        self.catalog = catalog
        self.flush_seconds = flush_seconds
        self._queue: queue.Queue[NewAuditEvent] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crossdoc-audit", daemon=True)
        self._thread.start()

    @staticmethod
    def event(
        actor: str,
        action: str,
        target: str = "",
        address: str = "",
        outcome: str = "ok",
        detail: Mapping[str, object] | None = None,
    ) -> NewAuditEvent:
        clipped = _clip(dict(detail or {}))
        assert isinstance(clipped, dict)
        return NewAuditEvent(
            actor=actor[:64],
            action=action,
            target=target[:200],
            address=address[:64],
            outcome=outcome,
            detail=clipped,
        )

    def record(self, event: NewAuditEvent) -> None:
        """Write one event now (changes, denials, sign-ins)."""
        self.catalog.append_audit([event])

    def record_later(self, event: NewAuditEvent) -> None:
        """Queue a read event; written within `flush_seconds`."""
        self._queue.put(event)

    def flush(self) -> None:
        batch: list[NewAuditEvent] = []
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not batch:
            return
        try:
            self.catalog.append_audit(batch)
        except Exception:
            # Keep the events for the next flush rather than lose them.
            for event in batch[: MAX_PENDING - self._queue.qsize()]:
                self._queue.put(event)
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

"""The batched audit writer (`search_api.audit_writer.Auditor`): read events are
written in the order they came, and a failed write loses none of them."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from search_api.audit_writer import Auditor
from storage.catalog.records import NewAuditEvent, audit_event


class FlakyAudit:
    def __init__(self) -> None:
        self.written: list[str] = []
        self.fail_next = False

    def append(self, events: Sequence[NewAuditEvent]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("catalog unavailable")
        self.written.extend(e.target for e in events)


class Catalog:
    def __init__(self) -> None:
        self.audit = FlakyAudit()


def test_queued_events_survive_a_failed_flush_in_their_order() -> None:
    catalog = Catalog()
    auditor = Auditor(catalog, flush_seconds=3600)  # type: ignore[arg-type]
    try:
        for n in range(3):
            auditor.record_later(audit_event("kim", "suggest", f"e{n}"))
        catalog.audit.fail_next = True
        with pytest.raises(RuntimeError):
            auditor.flush()
        auditor.record_later(audit_event("kim", "suggest", "e3"))
        auditor.flush()
        assert catalog.audit.written == ["e0", "e1", "e2", "e3"]
        auditor.flush()  # nothing left: nothing written twice
        assert catalog.audit.written == ["e0", "e1", "e2", "e3"]
    finally:
        auditor.close()


def test_close_writes_what_is_left() -> None:
    catalog = Catalog()
    auditor = Auditor(catalog, flush_seconds=3600)  # type: ignore[arg-type]
    auditor.record_later(audit_event("kim", "search", "last"))
    auditor.close()
    assert catalog.audit.written == ["last"]


def test_a_flush_waits_for_the_flush_in_flight() -> None:
    """A caller's flush returns only once the events a concurrent flush took are
    committed (seen in CI: /me/recent read before the background flush committed)."""
    import threading as _threading

    entered, release = _threading.Event(), _threading.Event()
    committed: list[int] = []

    class SlowAudit:
        def append(self, batch: list[object]) -> None:
            entered.set()
            release.wait(5)
            committed.append(len(batch))

    class Catalog:
        audit = SlowAudit()

    auditor = Auditor(Catalog(), flush_seconds=3600)  # type: ignore[arg-type]
    try:
        auditor.record_later(NewAuditEvent("kim", "view", "d1", "", "ok", {}))
        background = _threading.Thread(target=auditor.flush)
        background.start()
        assert entered.wait(5)
        done = _threading.Event()

        def flush_and_note() -> None:
            auditor.flush()
            done.set()

        caller = _threading.Thread(target=flush_and_note)
        caller.start()
        assert not done.wait(0.3), "flush returned while the events were not committed"
        release.set()
        assert done.wait(5) and committed == [1]
        background.join(5)
        caller.join(5)
    finally:
        release.set()
        auditor.close()

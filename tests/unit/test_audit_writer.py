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

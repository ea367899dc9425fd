"""Reading the audit log: pages, an export as JSON Lines, the chain check.

Used by the API (`/admin/audit`) and by `crossdoc audit verify|export`. Who may
read the log is the caller's business.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from services.documents import Caller
from storage.catalog.audit_lines import audit_json_line
from storage.catalog.ports import CatalogStore
from storage.catalog.records import AuditFilter, AuditRecord, ChainCheck, audit_event


@dataclass(frozen=True)
class AuditPage:
    """One page of records, and the cursor of the next page (None: this is the last)."""

    records: list[AuditRecord]
    next_cursor: int | None


class AuditService:
    """The audit log of a catalog, for auditors and operators."""

    def __init__(self, catalog: CatalogStore) -> None:
        self._catalog = catalog

    def page(
        self,
        where: AuditFilter,
        *,
        limit: int,
        after_id: int = 0,
        before_id: int | None = None,
        newest_first: bool = False,
    ) -> AuditPage:
        """Records matching `where`, oldest first (ids above `after_id`), or newest
        first (ids below `before_id`). A full page has a cursor: the last id, to
        pass as `after_id` (oldest first) or `before_id` (newest first)."""
        rows = self._catalog.audit.page(
            where, after_id=after_id, before_id=before_id, limit=limit, newest_first=newest_first
        )
        return AuditPage(rows, rows[-1].id if rows and len(rows) == limit else None)

    def export(
        self, where: AuditFilter, caller: Caller, detail: Mapping[str, object]
    ) -> Iterator[str]:
        """The records matching `where` as JSON Lines (each line with its chain
        hashes), oldest first, read in batches as the iterator is consumed.

        The export is audited (`audit_export`, with `detail`) now, before any line
        is read, so that the export itself is in the log it exports.
        """
        event = audit_event(caller.username, "audit_export", "", caller.address, detail=detail)
        self._catalog.audit.append([event])
        return self._lines(where)

    def _lines(self, where: AuditFilter) -> Iterator[str]:
        for record in self._catalog.audit.each(where):
            yield audit_json_line(record)

    def verify_chain(self) -> ChainCheck:
        """Re-hash the whole chain: (ok, records checked, first problem)."""
        return self._catalog.audit.verify_chain()

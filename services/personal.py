"""The personal views: my documents, documents shared with me, my recent documents.

Each is narrowed in the catalog (`storage.catalog.ports.DocumentViews`) and then
re-checked with the access rules of search and download (`auth.access.can`, with
the access policies in force), so a list never shows a document the caller may
not read now: a revoked or expired grant, a move to another department, a
deleted document all count from the next request (fail closed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from auth.access import PRINCIPAL_KINDS, Permission, Principal, can
from indexer.access_facts import document_access
from storage.catalog.ports import CatalogStore
from storage.catalog.records import (
    DocumentFilter,
    DocumentRecord,
    PolicyRecord,
    RecentDocument,
    SharedDocument,
)

T = TypeVar("T")

#: `/me/recent` looks at this many of the caller's newest opens and changes.
RECENT_WINDOW = 500


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, and how many entries the whole list holds."""

    total: int
    items: list[T]


def _now() -> datetime:
    return datetime.now(UTC)


def may(
    principal: Principal,
    doc: DocumentRecord,
    policies: Sequence[PolicyRecord],
    permission: Permission,
    now: datetime,
) -> bool:
    """Whether `principal` holds `permission` on `doc` (the rule of every endpoint)."""
    return can(principal, document_access(doc, policies), permission, now)


def page_of(items: Sequence[T], offset: int, limit: int) -> Page[T]:
    return Page(len(items), list(items[offset : offset + limit]))


class PersonalViews:
    """My documents, shared with me, recent: each a page of what the caller may read."""

    def __init__(self, catalog: CatalogStore, clock: Callable[[], datetime] = _now) -> None:
        self._catalog = catalog
        self._clock = clock

    def _readable(self, principal: Principal) -> Callable[[DocumentRecord], bool]:
        policies = self._catalog.policies.list_all()
        now = self._clock()
        return lambda doc: may(principal, doc, policies, Permission.READ, now)

    def my_documents(
        self, principal: Principal, where: DocumentFilter, offset: int, limit: int
    ) -> Page[DocumentRecord]:
        """Live documents the caller uploaded, newest first."""
        if principal.disabled:
            return Page(0, [])
        total, docs = self._catalog.documents.owned(principal.username, where, offset, limit)
        readable = self._readable(principal)
        shown = [d for d in docs if readable(d)]
        # An uploader always reads their own documents; should a rule ever say
        # otherwise, the page loses them and the total does not count them.
        return Page(total - (len(docs) - len(shown)), shown)

    def shared_with_me(
        self, principal: Principal, where: DocumentFilter, offset: int, limit: int
    ) -> Page[SharedDocument]:
        """Others' live documents a grant in force names the caller (or their department
        or ministry) in, newest grant first, with who granted it and when."""
        tokens = sorted(t for t in principal.tokens if t.split(":", 1)[0] in PRINCIPAL_KINDS)
        shared = self._catalog.documents.shared_with(
            tokens, principal.username, where, self._clock()
        )
        readable = self._readable(principal)
        return page_of([s for s in shared if readable(s.document)], offset, limit)

    def recent(
        self, principal: Principal, where: DocumentFilter, offset: int, limit: int
    ) -> Page[RecentDocument]:
        """Live documents the caller last opened or changed, newest first (of their
        newest `RECENT_WINDOW`), that they may still read."""
        if principal.disabled:
            return Page(0, [])
        recent = self._catalog.documents.recent(principal.username, where, RECENT_WINDOW)
        readable = self._readable(principal)
        return page_of([r for r in recent if readable(r.document)], offset, limit)

"""The directory members look grantees up in (the sharing dialog): names and codes.

It lists ministries, departments and users (not deleted ones) whose code or name
contains the query, with nothing more than a directory shows: the kind, the code
(`kind:code` is the grant principal), the name, and a user's department code. No
roles, no disabled flag, no documents. Disabled users are listed like the others (a
directory does not show account state, and a grant to them counts again once they
are enabled); deleted users are not. Pages are bounded; lookups are not audited
(they are as frequent as keystrokes in the dialog, read no document and show
only what the organisation publishes to its members; the grant they lead to is).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.catalog.ports import CatalogStore
from storage.catalog.records import DirectoryEntry

KINDS = ("ministry", "dept", "user")
MAX_PAGE_SIZE = 50
#: How far into one query's results a caller may page (bounds the work of a lookup).
MAX_OFFSET = 1000


@dataclass(frozen=True)
class DirectoryPage:
    total: int
    page: int
    size: int
    entries: list[DirectoryEntry]


class DirectoryService:
    def __init__(self, catalog: CatalogStore) -> None:
        self._catalog = catalog

    def lookup(self, query: str, kinds: Sequence[str], page: int, size: int) -> DirectoryPage:
        """Entries of `kinds` (every kind when empty) matching `query` ("" matches all).
        Raises ValueError for a page or size out of bounds, or an unknown kind (the
        caller validates them first)."""
        wanted = tuple(kinds) or KINDS
        if not set(wanted) <= set(KINDS):
            raise ValueError(f"kind: one of {', '.join(KINDS)}")
        offset = (page - 1) * size
        if page < 1 or not 1 <= size <= MAX_PAGE_SIZE or offset >= MAX_OFFSET:
            raise ValueError("page or size out of bounds")
        total, entries = self._catalog.organisation.directory(query.strip(), wanted, offset, size)
        return DirectoryPage(total, page, size, entries)

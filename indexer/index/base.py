"""The search index port.

The index is derived data: it holds, per document, the latest extracted text, the
metadata to filter and facet on, and the document's *readers*: the principal
tokens (`user:…`, `dept:…`, `deptadmin:…`, `ministry:…`, `gov`) allowed to read
it, computed by `auth.access.index_readers`. Every search is the user's text AND
a non-scoring filter "readers ∩ caller's tokens ≠ ∅" (or, for access policies not
yet applied to every entry, "matches one of `reader_matches`"); an empty token
set matches nothing. The user's text can never reach the filter: it is analysed into terms,
never parsed as engine query syntax.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from indexer.query import UserQuery

FACET_FIELDS: tuple[str, ...] = ("department", "ministry", "content_type")


class SortOrder(enum.StrEnum):
    RELEVANCE = "relevance"
    NEWEST = "newest"
    OLDEST = "oldest"


@dataclass(frozen=True)
class IndexDocument:
    """One document as the index stores it (the latest version of its text and ACL)."""

    id: str
    #: Monotonic per document, bumped on every change of text, metadata or ACL.
    #: An upsert with a lower revision than the stored one is ignored.
    revision: int
    title: str
    filename: str
    body: str
    department: str
    ministry: str
    content_type: str
    tags: tuple[str, ...]
    owner: str
    readers: frozenset[str]
    created_at: datetime  # timezone-aware UTC
    updated_at: datetime  # timezone-aware UTC


@dataclass(frozen=True)
class SearchRequest:
    """A permission-filtered search."""

    query: UserQuery
    #: The caller's principal tokens. A document matches only if its readers share
    #: at least one; an empty set matches nothing (fail closed).
    readers: frozenset[str]
    department: str | None = None
    ministry: str | None = None
    content_type: str | None = None
    tag: str | None = None
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive
    sort: SortOrder = SortOrder.RELEVANCE
    offset: int = 0
    limit: int = 20
    #: Documents matching every attribute of one of these are readable too (the
    #: matches of the caller's access policies whose tokens the index may still
    #: lack). Keys: ministry, department, tag, visibility; a match that is empty
    #: or names another key selects nothing. Ignored with `prechecked_ids`.
    reader_matches: tuple[Mapping[str, str], ...] = ()
    #: Restrict to these ids (None: no restriction; empty: nothing).
    only_ids: frozenset[str] | None = None
    #: Never return these ids (documents whose index entry is known to be stale).
    exclude_ids: frozenset[str] = frozenset()
    #: Ids the caller has already checked readable against the catalog, because
    #: their index entry (and its readers) is stale. When set, the search is
    #: restricted to exactly these ids and the reader filter is not applied.
    #: Only the search service sets it, never from user input.
    prechecked_ids: frozenset[str] | None = None
    with_facets: bool = True
    with_highlights: bool = True
    #: Also match a word inside compounds the analyser does not know, ranked below
    #: every precise match (an engine without such a field ignores it). The search
    #: service asks for it only when the precise match finds little.
    compound_fallback: bool = True


@dataclass(frozen=True)
class SearchHit:
    id: str
    score: float
    title: str
    filename: str
    department: str
    ministry: str
    content_type: str
    created_at: datetime
    #: HTML fragments of the original text, escaped, with matches in <mark>…</mark>.
    highlights: tuple[str, ...] = ()


@dataclass(frozen=True)
class FacetCount:
    value: str
    count: int


@dataclass
class SearchResults:
    total: int
    hits: list[SearchHit]
    #: One list per name in FACET_FIELDS, counts descending, computed over the
    #: filtered query (only readable documents count).
    facets: dict[str, list[FacetCount]] = field(default_factory=dict)


class SuggestionKind(enum.StrEnum):
    TITLE = "title"
    TERM = "term"


@dataclass(frozen=True)
class Suggestion:
    """A completion of what the caller is typing, from documents they may read."""

    text: str
    kind: SuggestionKind
    #: How many documents readable by the caller hold it (as the index knows them).
    count: int


@runtime_checkable
class SearchIndex(Protocol):
    """A full-text index of documents with per-document readers."""

    #: Opening found an index built with another schema (an older release) and
    #: emptied it: the caller must queue every document again from the record.
    schema_rebuilt: bool

    def upsert(self, docs: Sequence[IndexDocument]) -> None:
        """Add or replace documents by id, idempotently.

        A document whose stored revision is higher than the given one is left as
        it is (an old task never restores old text or an old ACL). Visible to
        searches after `refresh()` at the latest. Raises `SearchUnavailableError`.
        """
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Remove documents by id (missing ids are ignored). Raises `SearchUnavailableError`."""
        ...

    def update_access(self, docs: Sequence[IndexDocument]) -> list[str]:
        """Rewrite documents already in the index with new readers and metadata, keeping
        the text stored for them (the `body` given is ignored).

        For a change of access only (an ACL, a policy): no extraction and no read
        of the original. The same revision rule as `upsert` applies. Returns the
        ids the index does not hold, which the caller must index in full. Raises
        `SearchUnavailableError`.
        """
        ...

    def search(self, request: SearchRequest) -> SearchResults:
        """Run a permission-filtered search.

        Raises `InvalidQueryError`, `SearchUnavailableError`.
        """
        ...

    def suggest(self, request: SearchRequest, prefix: str, limit: int) -> list[Suggestion]:
        """Titles and terms beginning with `prefix`, from documents `request`'s filter
        lets through (its readers, reader matches, id restrictions; its query is
        ignored): never text of a document the filter excludes.

        Korean prefixes match letter by letter (`행정아` → 행정안전부) and by
        initial consonants (`ㅎㅈㅇㅈㅂ` → 행정안전부). Titles first, then terms,
        each by how many documents hold them; at most `limit`. Raises
        `SearchUnavailableError`.
        """
        ...

    def corrections(self, request: SearchRequest, word: str, limit: int) -> list[Suggestion]:
        """Terms close to `word` by edit distance (Korean letter by letter, other
        scripts by character), from documents `request`'s filter lets through,
        nearest first, then most frequent; `word` itself is never one. Raises
        `SearchUnavailableError`.
        """
        ...

    def revisions(self, ids: Sequence[str]) -> dict[str, int]:
        """The stored revision of each of these ids that is in the index."""
        ...

    def count(self) -> int:
        """How many documents the index holds."""
        ...

    def refresh(self) -> None:
        """Make every write so far visible to the next search."""
        ...

    def clear(self) -> None:
        """Remove every document (before a full rebuild)."""
        ...

    def ping(self) -> None:
        """Raise `SearchUnavailableError` unless the index answers (for /readyz)."""
        ...

    def close(self) -> None:
        """Release writers, locks and connections."""
        ...

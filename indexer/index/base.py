"""The search index port.

The index is derived data: it holds, per document, the latest extracted text, the
metadata to filter and facet on, and the document's *readers*: the principal
tokens (`user:…`, `dept:…`, `deptadmin:…`, `ministry:…`, `gov`, `visibility:…`,
policy tokens) allowed to read it, computed by `auth.access.index_readers`.

A search is two values: the `SearchRequest` (what the user asked: text,
filters, sort, page) and the `AccessFilter` (who asks, built only by the search
service from the live catalog). Every search is the user's text AND the access
filter AND the request's filters, in one query: totals and facets come from
that same filtered query, and the index pages it itself (`offset`, `limit`).
The user's text can never reach the filter: it is analysed into terms, never
parsed as engine query syntax, and it only scores.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from indexer.query import UserQuery
from storage.catalog.policy_match import PolicyMatch

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
    #: The id of the folder it is filed in ("" at the top level). Only the id: a
    #: folder renamed or moved changes nothing here (paths come from the catalog),
    #: and the search service turns a folder filter into the ids of its subtree.
    folder: str = ""
    #: The folder's ancestry, its own id last: what a pending policy's folder match
    #: looks at (a move re-indexes the documents under the folder, access-only).
    folder_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccessFilter:
    """What the caller may read, as an index filter: built only by the search
    service (`services.search`) from the live catalog, never from user input
    (`tests/unit/test_access_filter_builders.py` checks that no other product
    module constructs one).

    A document passes when::

        ( readers ∩ tokens ≠ ∅  OR  it matches one of `pending` )  AND  id ∉ stale_ids
        OR  id ∈ readable_stale_ids

    * `tokens`: the caller's principal tokens, with the tokens of the access
      policies in force for them. Empty: nothing passes (fail closed), and then
      nothing else may be given.
    * `pending`: the matches of the caller's policies that the index may not
      carry on every document yet (a fan-out under way): a document matching
      one (every attribute it names: ministry, department, tag, folder (in
      `folder_path`); visibility as the reader token `visibility:<name>`) passes
      as if it held the policy's token. An empty match lets nothing through.
    * `stale_ids`: documents whose index entry is stale on access (its readers
      or attributes are out of date): the index must not decide them...
    * `readable_stale_ids`: ...so the service decided them against the catalog:
      these (a subset of `stale_ids`) pass, whatever their indexed readers.

    Mapping to Elasticsearch (the scale-out adapter), one request per search;
    the fields are those of `infra/elasticsearch/index-settings.json`::

        {"query": {"bool": {
           "must": [<the user's text>],            # the only scoring clause
           "filter": [
             {"term": {"department": …}}, {"term": {"ministry": …}},
             {"term": {"content_type": …}}, {"term": {"tag": …}},
             {"terms": {"folder": [...folder ids]}},
             {"range": {"created_at": {"gte": …, "lt": …}}},   # the request's filters
             ACCESS                                            # this filter
           ]}},
         "from": offset, "size": limit, "track_total_hits": true,
         "aggs": {"department": {"terms": {"field": "department"}},
                  "ministry": {"terms": {"field": "ministry"}},
                  "content_type": {"terms": {"field": "content_type"}}}}

    where ACCESS is::

        {"bool": {
          "should": [
            {"bool": {
              "should": [
                {"terms": {"readers": [...tokens]}},
                {"bool": {"filter": [{"term": {"ministry": "…"}},
                                     {"term": {"department": "…"}},
                                     {"term": {"tag": "…"}},
                                     {"term": {"folder_path": "…"}},
                                     {"term": {"readers": "visibility:…"}}]}},
                …one per pending match, with a `term` per attribute it names
                 (none for an empty match)
              ],
              "minimum_should_match": 1,
              "must_not": [{"terms": {"id": [...stale_ids]}}]
            }},
            {"terms": {"id": [...readable_stale_ids]}}
          ],
          "minimum_should_match": 1
        }}

    Facets and the total thus come from the same filtered query and count only
    what the filter lets through; the engine pages it (`from`/`size`).
    Suggestions and corrections use ACCESS alone (e.g. as the `filter` of a
    `terms` aggregation on the completion field).

    Raises `ValueError` for a combination that means nothing: readable stale
    ids that are not stale, or pending matches or readable ids without tokens.
    """

    tokens: frozenset[str]
    pending: tuple[PolicyMatch, ...] = ()
    stale_ids: frozenset[str] = frozenset()
    readable_stale_ids: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.readable_stale_ids <= self.stale_ids:
            raise ValueError("readable stale ids must be stale ids")
        if not self.tokens and (self.pending or self.readable_stale_ids):
            raise ValueError("an access filter without tokens lets nothing through")

    @property
    def lets_nothing_through(self) -> bool:
        """True when no document can pass (no tokens): engines may answer empty at once."""
        return not self.tokens


@dataclass(frozen=True)
class SearchRequest:
    """What the user asked: text, filters, sort and page (who asks is the `AccessFilter`)."""

    query: UserQuery
    department: str | None = None
    ministry: str | None = None
    content_type: str | None = None
    tag: str | None = None
    #: Only documents filed in one of these folders (a folder's subtree, resolved
    #: from the catalog); None: no folder filter, () matches nothing.
    folders: tuple[str, ...] | None = None
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive
    sort: SortOrder = SortOrder.RELEVANCE
    offset: int = 0
    limit: int = 20
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
        searches when the call returns: the pipeline records the document indexed
        right after, and searches then trust the index's readers for it (so every
        write of this port is visible on return). Raises `SearchUnavailableError`.
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

    def search(self, request: SearchRequest, access: AccessFilter) -> SearchResults:
        """The page `request.offset`…`+limit` of the documents matching the request's
        text and filters AND `access` (one query; see `AccessFilter`), with the
        total and (if asked) the facets of that same query, and highlights for
        the page's hits (if asked).

        Raises `InvalidQueryError`, `SearchUnavailableError`.
        """
        ...

    def suggest(self, access: AccessFilter, prefix: str, limit: int) -> list[Suggestion]:
        """Titles and terms beginning with `prefix`, from documents `access` lets
        through: never text of a document the filter excludes.

        Korean prefixes match letter by letter (`행정아` → 행정안전부) and by
        initial consonants (`ㅎㅈㅇㅈㅂ` → 행정안전부). Titles first, then terms,
        each by how many documents hold them; at most `limit`. Raises
        `SearchUnavailableError`.
        """
        ...

    def corrections(self, access: AccessFilter, word: str, limit: int) -> list[Suggestion]:
        """Terms close to `word` by edit distance (Korean letter by letter, other
        scripts by character), from documents `access` lets through,
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

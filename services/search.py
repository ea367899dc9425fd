"""Permission-aware search: the index query, corrected by the live catalog.

1. The caller's reader tokens come from the catalog (a disabled user has none and
   gets nothing), plus the tokens of the access policies in force that grant
   one of them: a policy deleted, expired or given to someone else stops
   counting at once. While a new policy (or a new match) is still being added
   to the index, its grantees also match documents by the policy's match.
2. Documents whose index entry is stale on access (ACL, visibility or tags
   changed, deleted, a grant expired, not yet re-indexed) are not decided by the
   index: the catalog decides them, and the index lets through exactly those
   it allows, in the same query. So a revocation is effective in the very next
   search, totals and facets included.
3. The hits of the page are re-checked against the catalog before they are
   returned; anything the catalog denies is dropped (and counted out).

This module is the only builder of `AccessFilter` (1 and 2), which search,
suggestions and corrections share, so they can never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from auth.access import Permission, Principal, can, search_tokens
from indexer.access_facts import document_access, policy_grant
from indexer.errors import InvalidQueryError
from indexer.index.base import (
    FACET_FIELDS,
    AccessFilter,
    SearchIndex,
    SearchRequest,
    SearchResults,
    Suggestion,
)
from indexer.query import UserQuery
from storage.catalog.records import AccessRecord, AccessSnapshot, PolicyRecord


class SearchCatalog(Protocol):
    """The catalog reads search needs (the catalog's `Documents` repository has them)."""

    def access_snapshot(self) -> AccessSnapshot:
        """Policies, pending policy ids and stale-access ids, in one read transaction."""
        ...

    def access_records(self, document_ids: Sequence[str]) -> dict[str, AccessRecord]:
        """The access facts of the live documents among these ids (others are absent)."""
        ...


class _CallerAccess:
    """What `principal` may read, from one catalog snapshot: the index filter, and
    the policies the late check needs."""

    def __init__(self, catalog: SearchCatalog, principal: Principal) -> None:
        self.now = datetime.now(UTC)
        snapshot = catalog.access_snapshot()
        self.policies: tuple[PolicyRecord, ...] = snapshot.policies
        grants = [policy_grant(p) for p in self.policies]
        tokens = search_tokens(principal, grants, self.now)
        pending = tuple(
            p.match
            for p, g in zip(self.policies, grants, strict=True)
            if p.id in snapshot.pending_policy_ids
            and g.active(self.now)
            and g.principal in principal.tokens
        )
        stale = frozenset(snapshot.stale_ids)
        readable_stale = frozenset(
            doc_id
            for doc_id, doc in catalog.access_records(sorted(stale)).items()
            if self.may_read(principal, doc)
        )
        self.filter = AccessFilter(
            tokens=tokens, pending=pending, stale_ids=stale, readable_stale_ids=readable_stale
        )

    def may_read(self, principal: Principal, doc: AccessRecord) -> bool:
        """The catalog's decision (the last word on every hit returned)."""
        return can(principal, document_access(doc, self.policies), Permission.READ, self.now)


#: A search whose precise match finds fewer documents than this also matches
#: words inside compounds the analyser does not know (the compound fallback).
COMPOUND_FALLBACK_BELOW = 100


def search_documents(
    catalog: SearchCatalog,
    index: SearchIndex,
    principal: Principal,
    request: SearchRequest,
    *,
    max_window: int = 10_000,
) -> SearchResults:
    """Search as `principal`: one index query through the caller's access filter
    (the index pages it, and counts totals and facets over it), then the late
    check of the page. Raises `InvalidQueryError`, `SearchUnavailableError`."""
    if request.offset < 0 or request.limit < 1:
        raise InvalidQueryError("page and size must be positive")
    if request.offset + request.limit > max_window:
        raise InvalidQueryError(f"results beyond the first {max_window} are not available")
    if not principal.tokens:
        return SearchResults(total=0, hits=[], facets={name: [] for name in FACET_FIELDS})

    access = _CallerAccess(catalog, principal)
    # The precise (morphological) match first; a search that finds little is
    # widened to words inside unknown compounds. Those rank below every precise
    # match anyway, and scoring the gram phrases of a common word over a large
    # index costs more than the rest of the search.
    results = index.search(replace(request, compound_fallback=False), access.filter)
    if request.compound_fallback and results.total < COMPOUND_FALLBACK_BELOW:
        results = index.search(replace(request, compound_fallback=True), access.filter)

    # Late check: the catalog has the last word on every hit we return.
    docs = catalog.access_records([h.id for h in results.hits])
    allowed = [h for h in results.hits if h.id in docs and access.may_read(principal, docs[h.id])]
    denied = len(results.hits) - len(allowed)
    return SearchResults(total=max(0, results.total - denied), hits=allowed, facets=results.facets)


#: Completions returned at most.
MAX_SUGGESTIONS = 20


def suggest_for(
    catalog: SearchCatalog, index: SearchIndex, principal: Principal, prefix: str, limit: int = 10
) -> list[Suggestion]:
    """Titles and terms beginning with `prefix` from documents `principal` may read,
    through the same access filter as `search_documents` (so a revoked reader
    stops seeing a document's title and words at once)."""
    if not principal.tokens or not prefix.strip():
        return []
    limit = max(1, min(limit, MAX_SUGGESTIONS))
    return index.suggest(_CallerAccess(catalog, principal).filter, prefix, limit)[:limit]


def corrections_for(
    catalog: SearchCatalog, index: SearchIndex, principal: Principal, query: UserQuery
) -> str | None:
    """A corrected query ("did you mean"), each positive word replaced by the nearest
    term of the documents `principal` may read that it is not; None if no word has one.

    Drawn through the same access filter as search and suggestions.
    """
    if not principal.tokens or not query.words:
        return None
    access = _CallerAccess(catalog, principal).filter
    changed = False
    words: list[str] = []
    for word in query.words:
        found = index.corrections(access, word, 3)
        if found and found[0].text != word.lower():
            words.append(found[0].text)
            changed = True
        else:
            words.append(word)
    if not changed:
        return None
    parts = [*words, *(f'"{p}"' for p in query.phrases)]
    parts += [f'-"{e}"' if " " in e else f"-{e}" for e in query.excluded]
    return " ".join(parts)

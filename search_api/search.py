"""Permission-aware search: the index query, corrected by the live catalog.

1. The caller's reader tokens come from the catalog (a disabled user has none and
   gets nothing), plus the tokens of the access policies in force that grant
   one of them: a policy deleted, expired or given to someone else stops
   counting at once. While a new policy (or a new match) is still being added
   to the index, its grantees also match documents by the policy's match.
2. Documents whose index entry is stale on access (ACL, visibility or tags
   changed, deleted, a grant expired, not yet re-indexed) are excluded from the index
   query, decided against the catalog instead, and searched by id: so a
   revocation is effective in the very next search, totals and facets included.
3. The hits of the page are re-checked against the catalog before they are
   returned; anything the catalog denies is dropped (and counted out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from auth.access import Permission, Principal, can, search_tokens
from indexer.access_facts import document_access, policy_grant
from indexer.errors import InvalidQueryError
from indexer.index.base import (
    FACET_FIELDS,
    FacetCount,
    SearchHit,
    SearchIndex,
    SearchRequest,
    SearchResults,
    SortOrder,
    Suggestion,
    SuggestionKind,
)
from indexer.query import UserQuery
from storage.catalog.ports import CatalogStore
from storage.catalog.records import PolicyRecord


def _sort_key(request: SearchRequest, hit: SearchHit) -> tuple[float, str]:
    if request.sort is SortOrder.NEWEST:
        return (-hit.created_at.timestamp(), hit.id)
    if request.sort is SortOrder.OLDEST:
        return (hit.created_at.timestamp(), hit.id)
    return (-hit.score, hit.id)


def _merge_facets(
    a: dict[str, list[FacetCount]], b: dict[str, list[FacetCount]]
) -> dict[str, list[FacetCount]]:
    merged: dict[str, list[FacetCount]] = {}
    for name in FACET_FIELDS:
        counts: dict[str, int] = {}
        for source in (a, b):
            for bucket in source.get(name, []):
                counts[bucket.value] = counts.get(bucket.value, 0) + bucket.count
        merged[name] = [
            FacetCount(value, count)
            for value, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            if count > 0
        ]
    return merged


@dataclass(frozen=True)
class _Access:
    """What the caller may read, as the index filter needs it (one catalog snapshot)."""

    now: datetime
    policies: tuple[PolicyRecord, ...]
    #: The caller's reader tokens, with the tokens of the policies in force for them.
    tokens: frozenset[str]
    #: Matches of the caller's policies the index may not carry yet.
    reader_matches: tuple[Mapping[str, str], ...]
    #: Documents whose index entry is stale on access: decided from the catalog.
    stale_ids: frozenset[str]


def _caller_access(catalog: CatalogStore, principal: Principal) -> _Access:
    """The access filter's inputs for `principal`, from the live catalog (shared by
    search, suggestions and corrections, so they can never disagree)."""
    now = datetime.now(UTC)
    snapshot = catalog.documents.access_snapshot()
    policies = snapshot.policies
    grants = [policy_grant(p) for p in policies]
    tokens = search_tokens(principal, grants, now)
    reader_matches = tuple(
        p.match
        for p, g in zip(policies, grants, strict=True)
        if p.id in snapshot.pending_policy_ids and g.active(now) and g.principal in principal.tokens
    )
    return _Access(now, policies, tokens, reader_matches, frozenset(snapshot.stale_ids))


def _readable_stale(catalog: CatalogStore, principal: Principal, access: _Access) -> frozenset[str]:
    """The stale documents the catalog lets `principal` read."""
    return frozenset(
        doc_id
        for doc_id, doc in catalog.documents.access_records(sorted(access.stale_ids)).items()
        if can(principal, document_access(doc, access.policies), Permission.READ, access.now)
    )


#: A search whose precise match finds fewer documents than this also matches
#: words inside compounds the analyser does not know (the compound fallback).
COMPOUND_FALLBACK_BELOW = 100


def search_documents(
    catalog: CatalogStore,
    index: SearchIndex,
    principal: Principal,
    request: SearchRequest,
    *,
    max_window: int = 10_000,
) -> SearchResults:
    """Search as `principal`. `request.readers` is ignored: it is set from the principal here."""
    if request.offset < 0 or request.limit < 1:
        raise InvalidQueryError("page and size must be positive")
    if request.offset + request.limit > max_window:
        raise InvalidQueryError(f"results beyond the first {max_window} are not available")
    if not principal.tokens:
        return SearchResults(total=0, hits=[], facets={name: [] for name in FACET_FIELDS})

    access = _caller_access(catalog, principal)
    now, policies, tokens = access.now, access.policies, access.tokens
    reader_matches, stale_ids = access.reader_matches, access.stale_ids
    window = request.offset + request.limit
    # Beyond the first page, highlight only the page returned (second pass below).
    deep = request.offset > 0 and request.with_highlights

    def run(compound_fallback: bool) -> SearchResults:
        main = index.search(
            replace(
                request,
                readers=tokens,
                reader_matches=reader_matches,
                exclude_ids=request.exclude_ids | stale_ids,
                prechecked_ids=None,
                offset=0,
                limit=window,
                with_highlights=not deep,
                compound_fallback=compound_fallback,
            )
        )
        if not stale_ids:
            return main
        readable_stale = _readable_stale(catalog, principal, access)
        if request.only_ids is not None:
            readable_stale &= request.only_ids
        if not readable_stale:
            return main
        extra = index.search(
            replace(
                request,
                readers=tokens,
                prechecked_ids=readable_stale,
                exclude_ids=request.exclude_ids,
                offset=0,
                limit=window,
                with_highlights=not deep,
                compound_fallback=compound_fallback,
            )
        )
        return SearchResults(
            total=main.total + extra.total,
            hits=sorted(main.hits + extra.hits, key=lambda h: _sort_key(request, h)),
            facets=_merge_facets(main.facets, extra.facets),
        )

    # The precise (morphological) match first; a search that finds little is
    # widened to words inside unknown compounds. Those rank below every precise
    # match anyway, and scoring the gram phrases of a common word over a large
    # index costs more than the rest of the search.
    results = run(compound_fallback=False)
    fallback = request.compound_fallback and results.total < COMPOUND_FALLBACK_BELOW
    if fallback:
        results = run(compound_fallback=True)

    page = results.hits[request.offset : request.offset + request.limit]
    # Late check: the catalog has the last word on every hit we return.
    docs = catalog.documents.access_records([h.id for h in page])
    allowed = [
        h
        for h in page
        if h.id in docs
        and can(principal, document_access(docs[h.id], policies), Permission.READ, now)
    ]
    denied = len(page) - len(allowed)
    if deep and allowed:
        allowed = _with_highlights(
            index, replace(request, compound_fallback=fallback), tokens, allowed
        )
    return SearchResults(total=max(0, results.total - denied), hits=allowed, facets=results.facets)


def _with_highlights(
    index: SearchIndex, request: SearchRequest, tokens: frozenset[str], hits: list[SearchHit]
) -> list[SearchHit]:
    """The same hits, with highlights from a search restricted to their ids."""
    marked = index.search(
        replace(
            request,
            readers=tokens,
            prechecked_ids=frozenset(h.id for h in hits),  # checked against the catalog above
            only_ids=None,
            exclude_ids=frozenset(),
            offset=0,
            limit=len(hits),
            with_facets=False,
            with_highlights=True,
        )
    )
    highlights = {h.id: h.highlights for h in marked.hits}
    return [replace(h, highlights=highlights.get(h.id, ())) for h in hits]


#: Completions returned at most.
MAX_SUGGESTIONS = 20


def suggest_for(
    catalog: CatalogStore, index: SearchIndex, principal: Principal, prefix: str, limit: int = 10
) -> list[Suggestion]:
    """Titles and terms beginning with `prefix` from documents `principal` may read.

    The same access filter as `search_documents` (built by `_caller_access`):
    the index's readers for documents indexed with their current access, the
    catalog's decision for stale ones (searched by id), so a revoked reader
    stops seeing a document's title and words at once.
    """
    if not principal.tokens or not prefix.strip():
        return []
    limit = max(1, min(limit, MAX_SUGGESTIONS))
    access = _caller_access(catalog, principal)
    request = _access_request(access)
    found = index.suggest(request, prefix, limit)
    if access.stale_ids:
        readable_stale = _readable_stale(catalog, principal, access)
        if readable_stale:
            extra = index.suggest(
                replace(request, exclude_ids=frozenset(), prechecked_ids=readable_stale),
                prefix,
                limit,
            )
            found = _merge_suggestions(found, extra)
    return found[:limit]


def corrections_for(
    catalog: CatalogStore, index: SearchIndex, principal: Principal, query: UserQuery
) -> str | None:
    """A corrected query ("did you mean"), each positive word replaced by the nearest
    term of the documents `principal` may read that it is not; None if no word has one.

    Drawn through the same access filter as search and suggestions.
    """
    if not principal.tokens or not query.words:
        return None
    access = _caller_access(catalog, principal)
    request = _access_request(access)
    readable_stale = _readable_stale(catalog, principal, access) if access.stale_ids else None
    changed = False
    words: list[str] = []
    for word in query.words:
        found = index.corrections(request, word, 3)
        if readable_stale:
            extra = index.corrections(
                replace(request, exclude_ids=frozenset(), prechecked_ids=readable_stale), word, 3
            )
            found = sorted(found + extra, key=lambda s: -s.count)
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


def _access_request(access: _Access) -> SearchRequest:
    """A request carrying only the caller's access filter (no text)."""
    return SearchRequest(
        query=UserQuery(),
        readers=access.tokens,
        reader_matches=access.reader_matches,
        exclude_ids=access.stale_ids,
        with_facets=False,
        with_highlights=False,
    )


def _merge_suggestions(a: list[Suggestion], b: list[Suggestion]) -> list[Suggestion]:
    counts: dict[tuple[str, SuggestionKind], int] = {}
    for s in (*a, *b):
        counts[(s.text, s.kind)] = counts.get((s.text, s.kind), 0) + s.count
    merged = [Suggestion(text, kind, count) for (text, kind), count in counts.items()]
    order = {SuggestionKind.TITLE: 0, SuggestionKind.TERM: 1}
    merged.sort(key=lambda s: (order[s.kind], -s.count, s.text))
    seen: set[str] = set()
    out = []
    for s in merged:
        if s.text not in seen:
            seen.add(s.text)
            out.append(s)
    return out

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

from dataclasses import replace
from datetime import UTC, datetime

from auth.access import Permission, Principal, can, search_tokens
from indexer.access import document_access, policy_grant
from indexer.errors import InvalidQueryError
from indexer.index.base import (
    FACET_FIELDS,
    FacetCount,
    SearchHit,
    SearchIndex,
    SearchRequest,
    SearchResults,
    SortOrder,
)
from storage.catalog.repository import Catalog


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


def search_documents(
    catalog: Catalog,
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

    now = datetime.now(UTC)
    snapshot = catalog.access_snapshot()
    policies = snapshot.policies
    grants = [policy_grant(p) for p in policies]
    tokens = search_tokens(principal, grants, now)
    reader_matches = tuple(
        p.match
        for p, g in zip(policies, grants, strict=True)
        if p.id in snapshot.pending_policy_ids and g.active(now) and g.principal in principal.tokens
    )
    stale_ids = snapshot.stale_ids
    window = request.offset + request.limit
    # Beyond the first page, highlight only the page returned (second pass below).
    deep = request.offset > 0 and request.with_highlights
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
        )
    )
    results = main
    if stale_ids:
        readable_stale = frozenset(
            doc_id
            for doc_id, doc in catalog.access_records(sorted(stale_ids)).items()
            if can(principal, document_access(doc, policies), Permission.READ, now)
        )
        if request.only_ids is not None:
            readable_stale &= request.only_ids
        if readable_stale:
            extra = index.search(
                replace(
                    request,
                    readers=tokens,
                    prechecked_ids=readable_stale,
                    exclude_ids=request.exclude_ids,
                    offset=0,
                    limit=window,
                    with_highlights=not deep,
                )
            )
            hits = sorted(main.hits + extra.hits, key=lambda h: _sort_key(request, h))
            results = SearchResults(
                total=main.total + extra.total,
                hits=hits,
                facets=_merge_facets(main.facets, extra.facets),
            )

    page = results.hits[request.offset : request.offset + request.limit]
    # Late check: the catalog has the last word on every hit we return.
    docs = catalog.access_records([h.id for h in page])
    allowed = [
        h
        for h in page
        if h.id in docs
        and can(principal, document_access(docs[h.id], policies), Permission.READ, now)
    ]
    denied = len(page) - len(allowed)
    if deep and allowed:
        allowed = _with_highlights(index, request, tokens, allowed)
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

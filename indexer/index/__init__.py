"""Search index port and adapters."""

from indexer.index.base import (
    AccessFilter,
    FacetCount,
    IndexDocument,
    SearchHit,
    SearchIndex,
    SearchRequest,
    SearchResults,
    SortOrder,
)

__all__ = [
    "AccessFilter",
    "FacetCount",
    "IndexDocument",
    "SearchHit",
    "SearchIndex",
    "SearchRequest",
    "SearchResults",
    "SortOrder",
]

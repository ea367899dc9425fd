"""Search index port and adapters."""

from indexer.index.base import (
    FacetCount,
    IndexDocument,
    SearchHit,
    SearchIndex,
    SearchRequest,
    SearchResults,
    SortOrder,
)

__all__ = [
    "FacetCount",
    "IndexDocument",
    "SearchHit",
    "SearchIndex",
    "SearchRequest",
    "SearchResults",
    "SortOrder",
]

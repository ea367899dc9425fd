"""The search service widens to the compound fallback only when the precise match finds little.

Matching a word inside unknown compounds (gram phrases) costs more than the rest
of a search over a large index, and such matches rank below every precise match:
so a search is run precisely first, and again with the fallback only when it
finds fewer than `COMPOUND_FALLBACK_BELOW` documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auth.access import Principal
from indexer.index.base import AccessFilter, SearchRequest, SearchResults
from indexer.query import parse_user_query
from services.search import COMPOUND_FALLBACK_BELOW, search_documents
from storage.catalog.sql import SqlCatalog


class RecordingIndex:
    """An index answering a fixed total, recording what it was asked."""

    schema_rebuilt = False

    def __init__(self, total: int) -> None:
        self.total = total
        self.requests: list[SearchRequest] = []

    def search(self, request: SearchRequest, access: AccessFilter) -> SearchResults:
        self.requests.append(request)
        return SearchResults(total=self.total, hits=[], facets={})

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the search service should not call {name}")


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[SqlCatalog]:
    catalog = SqlCatalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    catalog.migrate()
    yield catalog
    catalog.close()


KIM = Principal("kim", "MOIS-DX", "MOIS", frozenset({"member"}))


def _fallback_flags(catalog: SqlCatalog, total: int, **request: Any) -> list[bool]:
    index = RecordingIndex(total)
    search_documents(
        catalog.documents,
        index,  # type: ignore[arg-type]
        KIM,
        SearchRequest(query=parse_user_query("키오스크"), **request),
    )
    return [r.compound_fallback for r in index.requests]


def test_a_search_that_finds_enough_is_not_widened(catalog: SqlCatalog) -> None:
    assert _fallback_flags(catalog, COMPOUND_FALLBACK_BELOW) == [False]
    assert _fallback_flags(catalog, 20_000) == [False]


def test_a_search_that_finds_little_is_widened_to_words_inside_compounds(
    catalog: SqlCatalog,
) -> None:
    assert _fallback_flags(catalog, 0) == [False, True]
    assert _fallback_flags(catalog, COMPOUND_FALLBACK_BELOW - 1) == [False, True]


def test_a_caller_may_ask_for_no_fallback(catalog: SqlCatalog) -> None:
    assert _fallback_flags(catalog, 0, compound_fallback=False) == [False]

"""The adjacency boosts rank a search's first hits again, rather than every match.

A phrase among a search's optional clauses is checked by tantivy against the
positions of every document holding its terms, readable or not; at 1M documents
that cost more than the rest of the search (issue 12's latency regression). So
the ranking pass leaves the adjacency boosts out and the first RESCORE_WINDOW
hits are scored with them afterwards: below that many matches the ranking is the
one the whole query gives; further down the order is the ranking pass's own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tantivy

from indexer.analysis.korean import KoreanAnalyzer
from indexer.analysis.query_terms import analyze_query
from indexer.index import tantivy_index
from indexer.index.base import AccessFilter, IndexDocument, SearchRequest
from indexer.index.tantivy_index import TantivyIndex
from indexer.query import parse_user_query
from tests.factories import index_doc

GOV = frozenset({"gov"})
ACCESS = AccessFilter(GOV)
MOMENT = datetime(2024, 1, 1, tzinfo=UTC)


def doc(doc_id: str, body: str, *, created_at: datetime = MOMENT) -> IndexDocument:
    return index_doc(
        doc_id, body, filename=f"{doc_id}.txt", content_type="text/plain", created_at=created_at
    )


def request(q: str, **kwargs: object) -> SearchRequest:
    return SearchRequest(query=parse_user_query(q), **kwargs)  # type: ignore[arg-type]


#: Documents with the words of `출생 신고 절차` together, apart, or in part, some
#: long (a lower BM25 score), so the boosts reorder the ranking pass's order.
BODIES = [
    "출생 신고 절차 안내",
    "출생신고 절차를 마쳤다 " + "행정 " * 30,
    "신고 절차와 출생 " + "예산 " * 5,
    "출생 관련 신고 절차 " * 2,
    "절차 신고 출생",
    "출생 신고 절차 " + "보고서 " * 40,
    "출생과 신고의 절차",
    "출생 신고 " + "절차 " * 3,
    "신고 출생 절차 " + "회의 " * 10,
    "출생신고절차",
]


def whole_query_ranking(index: TantivyIndex, q: str) -> list[tuple[str, float]]:
    """The ranking the whole query gives: the adjacency boosts as optional clauses."""
    req = request(q)
    analyzed = analyze_query(index._analyzer, req.query)
    query = tantivy.Query.boolean_query(
        [(tantivy.Occur.Must, index._build_query(analyzed, req, ACCESS))]
        + [(tantivy.Occur.Should, b) for b in index._adjacency_boosts(analyzed)]
    )
    searcher = index._index.searcher()
    return [
        (str(searcher.doc(address).get_first("id")), score)
        for score, address in searcher.search(query, 100).hits
    ]


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("first", "step"),
    [(MOMENT, timedelta(days=1)), (MOMENT, timedelta(0)), (EPOCH, timedelta(0))],
    ids=["distinct", "same_created_at", "created_at_zero"],
)
def test_below_the_window_the_ranking_is_the_whole_querys(
    tmp_path: Path, korean_analyzer: KoreanAnalyzer, first: datetime, step: timedelta
) -> None:
    index = TantivyIndex(tmp_path / "ix", korean_analyzer)
    index.upsert([doc(f"d{i}", body, created_at=first + i * step) for i, body in enumerate(BODIES)])
    try:
        for q in ("출생 신고 절차", "출생신고 절차", "출생신고"):
            expected = whole_query_ranking(index, q)
            hits = index.search(request(q, limit=20), ACCESS).hits
            assert [h.id for h in hits] == [i for i, _ in expected], q
            assert [h.score for h in hits] == pytest.approx([s for _, s in expected], rel=1e-5)
    finally:
        index.close()


def test_the_boosts_rank_only_the_first_hits_and_pages_stay_consistent(
    tmp_path: Path, korean_analyzer: KoreanAnalyzer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Many short documents with the two words apart rank first in the ranking
    # pass; one long document holding them together ranks last there.
    index = TantivyIndex(tmp_path / "ix", korean_analyzer)
    apart = [doc(f"apart{i:02d}", "출생 아기 신고") for i in range(12)]
    together = doc("together", "출생 신고 " + "행정 예산 보고서 " * 2)
    index.upsert([*apart, together])
    try:
        first = index.search(request("출생 신고", limit=5), ACCESS).hits
        assert first[0].id == "together"  # below the window: the boost counts

        monkeypatch.setattr(tantivy_index, "RESCORE_WINDOW", 4, raising=False)
        listing = [h.id for h in index.search(request("출생 신고", limit=13), ACCESS).hits]
        assert listing[-1] == "together"  # beyond the window: the ranking pass's order
        pages = [
            h.id
            for offset in range(0, 13, 3)
            for h in index.search(request("출생 신고", offset=offset, limit=3), ACCESS).hits
        ]
        assert pages == listing
    finally:
        index.close()

"""Suggestions walk the term dictionary no more than the list they return needs.

Each walk of the completion keys counts every key under the prefix over the
access filter (issue 12: suggestions p99 under 20 ms at 100k documents); titles
come first, so when they fill the list the words' walk is left out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from indexer.analysis.korean import KoreanAnalyzer
from indexer.index.base import AccessFilter, IndexDocument, SuggestionKind
from indexer.index.tantivy_index import TantivyIndex
from tests.factories import index_doc

GOV = frozenset({"gov"})
MOMENT = datetime(2024, 1, 1, tzinfo=UTC)


def doc(doc_id: str, title: str, body: str) -> IndexDocument:
    return index_doc(doc_id, body, title=title, filename=f"{doc_id}.txt", content_type="text/plain")


def test_words_are_not_walked_when_titles_fill_the_list(
    tmp_path: Path, korean_analyzer: KoreanAnalyzer, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = TantivyIndex(tmp_path / "ix", korean_analyzer)
    index.upsert(
        [
            doc("a", "출생신고 개선 안내", "출생신고 제도를 개선한다"),
            doc("b", "출생신고 절차", "출생 신고 절차 안내"),
            doc("c", "출생통계 분석", "출생 통계를 분석한다"),
        ]
    )
    walked: list[str] = []
    completions = TantivyIndex._completions

    def spy(self: TantivyIndex, searcher: Any, key: str, *args: Any) -> Any:
        walked.append(key[:2])
        return completions(self, searcher, key, *args)

    monkeypatch.setattr(TantivyIndex, "_completions", spy)
    access = AccessFilter(GOV)
    try:
        found = index.suggest(access, "출생", 2)
        assert [s.kind for s in found] == [SuggestionKind.TITLE] * 2
        assert walked == ["tj"]  # two titles fill the list: no walk of the words

        walked.clear()
        found = index.suggest(access, "출생", 10)
        assert walked == ["tj", "wj"]
        assert {s.text for s in found} >= {"출생신고 개선 안내", "출생신고"}
    finally:
        index.close()

"""Query words are analysed in context, as documents are."""

from __future__ import annotations

from indexer.analysis.korean import KoreanAnalyzer
from indexer.analysis.query_terms import analyze_query
from indexer.query import parse_user_query


def test_words_are_analysed_together() -> None:
    analyzer = KoreanAnalyzer()
    in_document = [t.text for t in analyzer.analyze("빈 파일")]
    analyzed = analyze_query(analyzer, parse_user_query("빈 파일"))
    assert [term for word in analyzed.words for _, term in word] == in_document
    assert len(analyzed.words) == 2  # still one group per word: each must match


def test_each_word_keeps_its_own_terms() -> None:
    analyzed = analyze_query(KoreanAnalyzer(), parse_user_query("출생신고 저장소에서"))
    first, second = analyzed.words
    assert {t for _, t in first} >= {"출생", "신고"}
    assert "에서" not in {t for _, t in second}
    assert first[0][0] == 0 and second[0][0] == 0  # positions relative to each word

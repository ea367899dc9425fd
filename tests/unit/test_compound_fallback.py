"""Hangul bigrams (indexer.analysis.grams) and how Tantivy ranks the compound fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

import indexer.index.tantivy_index as tantivy_index
from indexer.analysis.grams import hangul_grams, query_runs, run_grams
from indexer.analysis.korean import KoreanAnalyzer
from indexer.analysis.query_terms import analyze_query
from indexer.index.base import AccessFilter, SearchRequest
from indexer.query import parse_user_query
from tests.factories import index_doc


def test_grams_are_consecutive_inside_a_run_and_apart_across_runs() -> None:
    grams = hangul_grams("출생신고 AI 제도개선")
    assert [(g, p) for g, p, _, _ in grams] == [
        ("출생", 0),
        ("생신", 1),
        ("신고", 2),
        ("제도", 4),  # one empty position: no phrase spans the space
        ("도개", 5),
        ("개선", 6),
    ]
    assert [(s, e) for _, _, s, e in grams][:3] == [(0, 2), (1, 3), (2, 4)]
    # Runs of one or two syllables take positions but give no grams.
    assert [(g, p) for g, p, _, _ in hangul_grams("법 제3조 시행령")] == [
        ("시행", 6),
        ("행령", 7),
    ]
    assert hangul_grams("2024 report 신고") == []


def test_query_runs_drop_single_syllables_and_a_trailing_particle() -> None:
    assert query_runs("저장소에서") == ["저장소"]
    assert query_runs("경로당의") == ["경로당"]
    assert query_runs("회의") == ["회의"]  # one syllable would remain: kept whole
    assert query_runs("AI바우처") == ["바우처"]
    assert query_runs("2024년") == []
    assert run_grams("키오스크") == ["키오", "오스", "스크"]


def test_the_fallback_surface_leaves_particles_out() -> None:
    analyzed = analyze_query(KoreanAnalyzer(), parse_user_query("키오스크를 AI바우처 2024년"))
    fallbacks = [analyzed.fallback(i) for i in range(len(analyzed.words))]
    assert fallbacks[0] is not None and fallbacks[0].runs == ("키오스크",)
    assert fallbacks[1] is not None and fallbacks[1].runs == ("바우처",)
    assert fallbacks[1].terms == ("ai",)
    assert fallbacks[2] is None
    assert analyzed.highlight_surfaces == frozenset({"키오스크", "바우처"})


def test_the_morphological_tier_holds_even_if_the_fallback_weighed_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ten times the BM25 of the fallback would put the compound first by score;
    # the tier keeps every morphological match above it.
    monkeypatch.setattr(tantivy_index, "FALLBACK_WEIGHT", 10.0)
    index = tantivy_index.TantivyIndex(tmp_path / "index", KoreanAnalyzer())
    try:
        filler = " ".join(f"항목{i} 검토" for i in range(200))
        index.upsert(
            [
                index_doc(
                    "inside", "배리어프리키오스크 배리어프리키오스크", title="배리어프리키오스크"
                ),
                *(index_doc(f"word-{i}", f"{filler} 민원실에 키오스크를 둔다.") for i in range(3)),
            ]
        )
        request = SearchRequest(query=parse_user_query("키오스크"))
        hits = index.search(request, AccessFilter(frozenset({"gov"}))).hits
        assert [h.id for h in hits][-1] == "inside"
        assert hits[-1].score < tantivy_index.MORPHOLOGY_TIER <= hits[-2].score
    finally:
        index.close()


def test_without_the_fallback_the_grams_field_stays_empty(tmp_path: Path) -> None:
    index = tantivy_index.TantivyIndex(
        tmp_path / "index", KoreanAnalyzer(), compound_fallback=False
    )
    try:
        index.upsert([index_doc("inside", "배리어프리키오스크 사업")])
        request = SearchRequest(query=parse_user_query("키오스크"))
        assert index.search(request, AccessFilter(frozenset({"gov"}))).total == 0
    finally:
        index.close()

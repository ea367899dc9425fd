"""Query-time synonyms and the user dictionary through the real Tantivy adapter."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossdoc.settings import shipped_analysis_file
from indexer.analysis.korean import KoreanAnalyzer
from indexer.analysis.synonyms import Synonyms, SynonymsFile, parse_synonyms
from indexer.analysis.user_dictionary import load_user_dictionary
from indexer.index.base import AccessFilter, SearchRequest
from indexer.index.tantivy_index import TantivyIndex
from indexer.query import parse_user_query
from tests.factories import index_doc as doc

GOV = frozenset({"gov"})


def found(index: TantivyIndex, q: str) -> set[str]:
    results = index.search(SearchRequest(query=parse_user_query(q), limit=100), AccessFilter(GOV))
    assert results.total == len(results.hits)
    return {hit.id for hit in results.hits}


@pytest.fixture(scope="module")
def shipped_analyzer() -> KoreanAnalyzer:
    return KoreanAnalyzer(user_words=load_user_dictionary(shipped_analysis_file("userdict_ko.txt")))


@pytest.fixture
def shipped_index(tmp_path: Path, shipped_analyzer: KoreanAnalyzer) -> Iterator[TantivyIndex]:
    synonyms = SynonymsFile(shipped_analysis_file("synonyms_ko.txt"), shipped_analyzer)
    index = TantivyIndex(tmp_path / "index", shipped_analyzer, synonyms=synonyms)
    index.upsert(
        [
            doc("full", "행정안전부 지침을 전자정부 사업에 시행한다."),
            doc("abbr", "행안부 지침에 따라 점검한다."),
            doc("former", "행정자치부 시절의 지침을 폐지한다."),
            doc("other", "보건복지부가 복지 급여 지침을 개정한다."),
            doc("design", "국민디자인단의 정책 제안을 받는다."),
            doc("design-like", "국민 참여 디자인 공모단을 모집한다."),
            doc("sector", "산업부문 투자 동향 보고서."),
            doc("ministry", "산업통상자원부의 수출 지원 계획."),
        ]
    )
    yield index
    index.close()


def test_an_abbreviation_finds_the_full_and_former_names(shipped_index: TantivyIndex) -> None:
    assert found(shipped_index, "행안부") == {"full", "abbr", "former"}
    assert found(shipped_index, "행정안전부") == {"full", "abbr", "former"}
    assert found(shipped_index, "행정자치부의 지침") == {"full", "abbr", "former"}
    assert found(shipped_index, "복지부") == {"other"}


def test_synonyms_apply_to_phrases_and_exclusions(shipped_index: TantivyIndex) -> None:
    assert found(shipped_index, '"행안부 지침"') == {"full", "abbr"}
    assert found(shipped_index, '"행정자치부 지침"') == {"full", "abbr"}
    assert found(shipped_index, '"행정자치부 시절"') == {"former"}
    assert found(shipped_index, "지침 -행안부") == {"other"}


def test_user_words_stay_whole_in_the_index(shipped_index: TantivyIndex) -> None:
    assert found(shipped_index, "국민디자인단") == {"design"}
    assert found(shipped_index, "산업부") == {"ministry"}  # not 산업부문


def test_a_multi_term_synonym_is_a_phrase(tmp_path: Path, korean_analyzer: KoreanAnalyzer) -> None:
    # `개인정보 보호` is three terms: as an alternative it must occur as a phrase,
    # so a document with the three terms scattered is not a match for `privacy`.
    synonyms = Synonyms(parse_synonyms("privacy, 개인정보 보호\n"), korean_analyzer)
    assert korean_analyzer.terms("개인정보 보호") == ["개인", "정보", "보호"]
    index = TantivyIndex(tmp_path / "index", korean_analyzer, synonyms=synonyms)
    index.upsert(
        [
            doc("phrase", "개인정보 보호 지침을 개정했다."),
            doc("spaced", "개인 정보보호 지침"),
            doc("scattered", "개인 사업자의 정보 공개와 보호 조치"),
            doc("typed", "privacy policy 개정"),
        ]
    )
    assert found(index, "privacy") == {"phrase", "spaced", "typed"}
    assert found(index, "privacy 지침") == {"phrase", "spaced"}
    assert found(index, "개정 privacy") == {"phrase", "typed"}
    # The typed words keep their own meaning (all terms, anywhere), as without synonyms,
    # and gain the alternative.
    assert found(index, "개인정보 보호") == {"phrase", "spaced", "scattered", "typed"}
    assert found(index, '"개인정보 보호"') == {"phrase", "spaced", "typed"}
    index.close()


def test_one_way_rules_replace_the_typed_words(
    tmp_path: Path, korean_analyzer: KoreanAnalyzer
) -> None:
    synonyms = Synonyms(parse_synonyms("보훈처 => 보훈부\n"), korean_analyzer)
    index = TantivyIndex(tmp_path / "index", korean_analyzer, synonyms=synonyms)
    index.upsert([doc("old", "보훈처 공고"), doc("new", "보훈부 공고")])
    assert found(index, "보훈처") == {"new"}
    assert found(index, "보훈부") == {"new"}
    index.close()


def test_an_edited_synonyms_file_applies_without_reindex(
    tmp_path: Path, korean_analyzer: KoreanAnalyzer
) -> None:
    path = tmp_path / "synonyms.txt"
    path.write_text("# none yet\n", encoding="utf-8")
    synonyms = SynonymsFile(path, korean_analyzer, check_seconds=0)
    index = TantivyIndex(tmp_path / "index", korean_analyzer, synonyms=synonyms)
    index.upsert([doc("a", "민원 처리 지침"), doc("b", "고충 처리 지침")])
    assert found(index, "민원") == {"a"}

    path.write_text("민원, 고충\n", encoding="utf-8")
    os.utime(path, ns=(1, 1))  # a new modification time even on coarse clocks
    assert found(index, "민원") == {"a", "b"}

    path.write_text("민원, => 고충 => x\n", encoding="utf-8")  # a bad edit
    os.utime(path, ns=(2, 2))
    assert found(index, "민원") == {"a", "b"}  # the last good rules stay
    index.close()

"""The user dictionary and synonyms files: parsing, the shipped files, settings, and
the Elasticsearch index settings that must use the same files and analysis chain."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from crossdoc.settings import Settings, shipped_analysis_file
from crossdoc.wiring.core import ConfigurationError, build_analyzer
from indexer.analysis import korean
from indexer.analysis.korean import KoreanAnalyzer
from indexer.analysis.query_terms import analyze_query
from indexer.analysis.synonyms import SynonymRule, Synonyms, parse_synonyms
from indexer.analysis.user_dictionary import UserWord, load_user_dictionary, parse_user_dictionary
from indexer.errors import AnalysisConfigError
from indexer.index import tantivy_index
from indexer.query import parse_user_query

USERDICT = shipped_analysis_file("userdict_ko.txt")
SYNONYMS = shipped_analysis_file("synonyms_ko.txt")


@pytest.fixture(scope="module")
def shipped_analyzer() -> KoreanAnalyzer:
    return KoreanAnalyzer(user_words=load_user_dictionary(USERDICT))


# -- parsing ----------------------------------------------------------------------------


def test_user_dictionary_format() -> None:
    text = "# comment\n\n국민디자인단\n세종시 세종 시  # trailing comment\n국민디자인단\n정부3.0\n"
    assert parse_user_dictionary(text) == [
        UserWord("국민디자인단"),
        UserWord("세종시", ("세종", "시")),
        UserWord("정부3.0"),
    ]
    with pytest.raises(AnalysisConfigError, match="line 1"):
        parse_user_dictionary("세종시 세종 구")


def test_user_dictionary_decomposition_is_a_compound(tmp_path: Path) -> None:
    analyzer = KoreanAnalyzer(user_words=[UserWord("세종시", ("세종", "시"))])
    tokens = analyzer.analyze("세종시에서 열린 회의")
    assert [(t.text, t.position) for t in tokens[:3]] == [("세종시", 0), ("세종", 0), ("시", 1)]
    assert analyzer.terms("세종시") == ["세종", "시"]  # queries use the parts, as nori's discard


def test_user_words_do_not_cut_longer_nouns(shipped_analyzer: KoreanAnalyzer) -> None:
    def terms(text: str) -> list[str]:
        return [t.text for t in shipped_analyzer.analyze(text)]

    assert terms("산업부는") == ["산업부"]
    assert terms("고용노동부의 지침") == ["고용노동부", "지침"]  # mecab reads 부의 as one noun
    assert terms("농식품부가 발표") == ["농식품부", "발표"]
    assert "산업부" not in terms("산업부문 투자")  # 산업 + 부문, not 산업부 + 문
    assert "고용부" not in terms("고용부담금 납부")
    assert terms("행정안전부장관") == ["행정안전부", "장관"]


def test_synonyms_format() -> None:
    text = "# c\n행안부, 행정안전부 ,행정자치부\n보훈처 => 국가보훈부\na\\, b, c\n단독\n"
    assert parse_synonyms(text) == [
        SynonymRule(("행안부", "행정안전부", "행정자치부"), ("행안부", "행정안전부", "행정자치부")),
        SynonymRule(("보훈처",), ("국가보훈부",)),
        SynonymRule(("a, b", "c"), ("a, b", "c")),
    ]
    with pytest.raises(AnalysisConfigError, match="line 1"):
        parse_synonyms("a => b => c")
    with pytest.raises(AnalysisConfigError, match="line 2"):
        parse_synonyms("a, b\n => c")


def test_a_synonym_without_words_is_refused() -> None:
    with pytest.raises(AnalysisConfigError, match="no searchable word"):
        Synonyms(parse_synonyms("행안부, ...\n"), KoreanAnalyzer())


def test_synonyms_match_analysed_terms_and_span_words() -> None:
    analyzer = KoreanAnalyzer()
    synonyms = Synonyms(parse_synonyms("출생신고, 출생 등록\n"), analyzer)
    # The particle and the spacing do not matter: the rule sees terms.
    for query in ("출생신고를", "출생 신고를"):
        analyzed = analyze_query(analyzer, parse_user_query(query), synonyms)
        assert len(analyzed.words) == 1, query  # a span across two words joins them
        (span,) = analyzed.word_spans(0)
        assert span.keep_original
        assert [[t for _, t in alt] for alt in span.alternatives] == [["출생", "등록"]]
    assert analyze_query(analyzer, parse_user_query("출생 통계"), synonyms).word_synonyms == ()


# -- the shipped files --------------------------------------------------------------------


def test_shipped_files_parse_and_names_stay_whole(shipped_analyzer: KoreanAnalyzer) -> None:
    words = {w.word for w in load_user_dictionary(USERDICT)}
    assert {"국민디자인단", "출생통보제", "정부3.0", "행정안전부", "행안부"} <= words
    rules = parse_synonyms(SYNONYMS.read_text(encoding="utf-8"))
    synonyms = Synonyms(rules, shipped_analyzer)
    assert len(synonyms) > 50
    for phrase in ("국민디자인단", "출생통보제", "정부3.0"):
        assert shipped_analyzer.terms(phrase) == [phrase]
    for rule in rules:
        if not any(e.endswith(("부", "처", "청", "위원회", "본부", "위")) for e in rule.inputs):
            continue
        for entry in rule.inputs:
            # Ministry names are in the user dictionary, so each is one token even
            # with a particle (mecab alone reads 행정안전부는 as 행정/안전/붓).
            assert entry in words, entry
            assert shipped_analyzer.terms(entry + "는") == [entry], entry


@pytest.mark.parametrize(
    ("abbreviation", "full"),
    [
        ("행안부", "행정안전부"),
        ("행정자치부", "행정안전부"),
        ("복지부", "보건복지부"),
        ("국토부", "국토교통부"),
        ("과기정통부", "과학기술정보통신부"),
        ("기재부", "기획재정부"),
        ("산업부", "산업통상자원부"),
        ("문체부", "문화체육관광부"),
        ("고용부", "고용노동부"),
        ("여가부", "여성가족부"),
        ("중기부", "중소벤처기업부"),
        ("해수부", "해양수산부"),
        ("농식품부", "농림축산식품부"),
        ("국가보훈처", "국가보훈부"),
    ],
)
def test_shipped_synonyms_join_names(
    shipped_analyzer: KoreanAnalyzer, abbreviation: str, full: str
) -> None:
    synonyms = Synonyms(parse_synonyms(SYNONYMS.read_text(encoding="utf-8")), shipped_analyzer)
    for typed, other in ((abbreviation, full), (full, abbreviation)):
        (span,) = synonyms.spans(shipped_analyzer.terms(typed))
        assert ((0, other),) in span.alternatives, (typed, other)


# -- settings ----------------------------------------------------------------------------


def test_settings_default_to_the_shipped_files_and_can_point_elsewhere(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.user_dictionary_path == USERDICT and USERDICT.is_file()
    assert settings.synonyms_path == SYNONYMS and SYNONYMS.is_file()
    edited = tmp_path / "userdict.txt"
    edited.write_text("범정부문서클라우드\n", encoding="utf-8")
    settings = Settings(data_dir=tmp_path, user_dictionary=edited)
    assert build_analyzer(settings).terms("범정부문서클라우드에서") == ["범정부문서클라우드"]


def test_a_broken_user_dictionary_stops_start_up(tmp_path: Path) -> None:
    broken = tmp_path / "userdict.txt"
    broken.write_text("세종시 세종 구\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="CROSSDOC_USER_DICTIONARY"):
        build_analyzer(Settings(data_dir=tmp_path, user_dictionary=broken))
    with pytest.raises(ConfigurationError, match="CROSSDOC_USER_DICTIONARY"):
        build_analyzer(Settings(data_dir=tmp_path, user_dictionary=tmp_path / "missing.txt"))


# -- Elasticsearch index settings -------------------------------------------------------


@pytest.fixture(scope="module")
def es_settings() -> dict[str, object]:
    text = resources.files("infra.elasticsearch").joinpath("index-settings.json").read_text()
    loaded: dict[str, object] = json.loads(text)
    return loaded


def test_elasticsearch_uses_the_same_files_and_chain(es_settings: dict[str, object]) -> None:
    analysis = es_settings["settings"]["index"]["analysis"]  # type: ignore[index]
    analyzers = analysis["analyzer"]
    tokenizers = analysis["tokenizer"]
    filters = analysis["filter"]

    index_analyzer = analyzers["crossdoc_korean_index"]
    search_analyzer = analyzers["crossdoc_korean_search"]
    index_tok = tokenizers[index_analyzer["tokenizer"]]
    search_tok = tokenizers[search_analyzer["tokenizer"]]
    # Documents: compounds whole and decomposed (our AnalysisMode.INDEX); queries:
    # parts only (AnalysisMode.QUERY), which synonym_graph needs (no graph input).
    assert index_tok["type"] == search_tok["type"] == "nori_tokenizer"
    assert index_tok["decompound_mode"] == "mixed"
    assert search_tok["decompound_mode"] == "discard"
    for tok in (index_tok, search_tok):
        assert Path(tok["user_dictionary"]).name == USERDICT.name

    # Same filters in the same order, synonyms last and at search time only.
    assert search_analyzer["filter"][:-1] == index_analyzer["filter"]
    synonym_filter = filters[search_analyzer["filter"][-1]]
    assert synonym_filter["type"] == "synonym_graph"
    assert Path(synonym_filter["synonyms_path"]).name == SYNONYMS.name
    assert synonym_filter["updateable"] is True  # reloadable: an edit needs no reindex
    index_filter_types = [filters.get(f, {}).get("type") for f in index_analyzer["filter"]]
    assert "synonym_graph" not in index_filter_types

    chain = index_analyzer["filter"]
    pos = filters[chain[0]]
    assert pos["type"] == "nori_part_of_speech"
    assert {"J", "E", "XSN", "VCP", "SF"} <= set(pos["stoptags"])  # particles, endings, …
    # …but nothing our analyser keeps (nori's default stoptags drop MAG and MM).
    assert not set(pos["stoptags"]) & korean._CONTENT_TAGS
    assert chain.index("lowercase") < chain.index("crossdoc_english_stem")
    # tantivy's "english" stemmer is Snowball English, which is porter2.
    assert filters["crossdoc_english_stem"] == {"type": "stemmer", "language": "porter2"}


def test_elasticsearch_mapping_mirrors_the_tantivy_schema(es_settings: dict[str, object]) -> None:
    fields = es_settings["mappings"]["properties"]  # type: ignore[index]
    keywords = {*tantivy_index._KEYWORD_FIELDS, "tag", "readers", "folder", "folder_path"}
    for name in keywords:
        assert fields[name]["type"] == "keyword", name
    analysed = {tantivy_index.TEXT_FIELD, *tantivy_index.BOOST_FIELDS}
    for name in analysed:
        assert fields[name]["analyzer"] == "crossdoc_korean_index", name
        assert fields[name]["search_analyzer"] == "crossdoc_korean_search", name
    for name in (*tantivy_index.BOOST_FIELDS, "body"):
        assert fields[name]["copy_to"] == [tantivy_index.TEXT_FIELD, tantivy_index.GRAMS_FIELD]
    text = fields[tantivy_index.TEXT_FIELD]
    assert text["index_options"] == "positions"
    assert text["position_increment_gap"] == tantivy_index._PART_GAP
    assert fields["revision"]["type"] == "long"
    assert fields["created_at"]["type"] == "date_nanos"  # microseconds, as tantivy's integers
    # The completion keys, as Tantivy's `complete` field: untokenised.
    assert fields[tantivy_index.COMPLETE_FIELD]["type"] == "keyword"
    assert set(fields) == keywords | analysed | {
        "body",
        "revision",
        "created_at",
        tantivy_index.GRAMS_FIELD,
        tantivy_index.COMPLETE_FIELD,
    }


def test_elasticsearch_has_the_compound_fallback_field(es_settings: dict[str, object]) -> None:
    # The same Hangul bigrams as indexer.analysis.grams: analysis-common's
    # cjk_bigram, Hangul only, a lone syllable kept as itself, with positions.
    analysis = es_settings["settings"]["index"]["analysis"]  # type: ignore[index]
    grams = es_settings["mappings"]["properties"][tantivy_index.GRAMS_FIELD]  # type: ignore[index]
    assert grams["index_options"] == "positions"
    assert grams["position_increment_gap"] == tantivy_index._PART_GAP
    analyzer = analysis["analyzer"][grams["analyzer"]]
    bigram = analysis["filter"][analyzer["filter"][-1]]
    assert bigram["type"] == "cjk_bigram"
    assert "hangul" not in bigram["ignored_scripts"]
    assert bigram["output_unigrams"] is False

"""KoreanAnalyzer, NFC offsets, query terms and highlighting, on real mecab-ko."""

from __future__ import annotations

import time
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.analysis.highlight import highlight
from indexer.analysis.korean import MAX_TOKEN_CHARS, AnalysisMode, KoreanAnalyzer, Token
from indexer.analysis.query_terms import analyze_query
from indexer.analysis.unicode_offsets import to_nfc
from indexer.query import parse_user_query


@pytest.fixture(scope="module")
def analyzer() -> KoreanAnalyzer:
    return KoreanAnalyzer(user_words=["국민디자인단", "정부3.0", "K-Gov"])


def terms(analyzer: KoreanAnalyzer, text: str) -> list[str]:
    return [t.text for t in analyzer.analyze(text)]


def query_terms(analyzer: KoreanAnalyzer, text: str) -> set[str]:
    return set(analyzer.terms(text))


def assert_offsets_valid(text: str, tokens: list[Token]) -> None:
    for tok in tokens:
        assert 0 <= tok.start < tok.end <= len(text), tok
        assert not text[tok.start : tok.end].isspace(), tok
    positions = [t.position for t in tokens]
    assert positions == sorted(positions)


# -- morphology -----------------------------------------------------------------------


def test_particles_and_endings_are_dropped(analyzer: KoreanAnalyzer) -> None:
    assert terms(analyzer, "저장소에서 자료를 확인했습니다") == ["저", "장소", "자료", "확인"]
    assert "에서" not in terms(analyzer, "저장소에서")
    assert terms(analyzer, "학교에") == terms(analyzer, "학교는") == ["학교"]


def test_query_for_a_noun_is_found_in_its_inflected_form(analyzer: KoreanAnalyzer) -> None:
    assert query_terms(analyzer, "저장소") <= set(terms(analyzer, "문서는 저장소에서 관리한다"))


@pytest.mark.parametrize("document", ["출생 신고를 마쳤다", "출생신고체계 개편", "출생신고"])
def test_compound_query_matches_spaced_and_longer_forms(
    analyzer: KoreanAnalyzer, document: str
) -> None:
    assert query_terms(analyzer, "출생신고") <= set(terms(analyzer, document))


def test_spacing_variants_analyse_alike(analyzer: KoreanAnalyzer) -> None:
    assert terms(analyzer, "출생 신고를") == terms(analyzer, "출생신고를") == ["출생", "신고"]
    # Dropped particles leave no position gap, so phrases survive them.
    assert [t.position for t in analyzer.analyze("출생 신고를")] == [0, 1]


def test_dictionary_compound_is_indexed_whole_and_decomposed(analyzer: KoreanAnalyzer) -> None:
    text = "국립중앙도서관에서"
    tokens = analyzer.analyze(text)
    by_text = {t.text: t for t in tokens}
    assert [t.text for t in tokens] == ["국립중앙도서관", "국립", "중앙", "도서", "관"]
    assert by_text["국립중앙도서관"].position == by_text["국립"].position == 0
    assert [by_text[p].position for p in ("국립", "중앙", "도서", "관")] == [0, 1, 2, 3]
    assert [text[t.start : t.end] for t in tokens] == [t.text for t in tokens]
    # A query uses the parts only, so it also finds the spaced or shorter forms.
    assert analyzer.terms("국립중앙도서관") == ["국립", "중앙", "도서", "관"]
    assert set(analyzer.terms("도서관")) <= set(by_text)


def test_verb_and_adjective_stems_are_lemmatised(analyzer: KoreanAnalyzer) -> None:
    assert terms(analyzer, "밥을 먹었다") == ["밥", "먹"]
    assert terms(analyzer, "음악을 들었다") == ["음악", "듣"]  # irregular: 들 → 듣
    tokens = analyzer.analyze("아름다운 강산")
    assert tokens[0].text == "아름답"
    assert "아름다운 강산"[tokens[0].start : tokens[0].end] == "아름다운"


def test_english_is_lowercased_and_stemmed(analyzer: KoreanAnalyzer) -> None:
    assert terms(analyzer, "Running") == terms(analyzer, "runs") == ["run"]
    assert terms(analyzer, "The POLICIES were Updated") == ["the", "polici", "were", "updat"]


def test_numbers_hanja_and_mixed_scripts_are_kept(analyzer: KoreanAnalyzer) -> None:
    out = terms(analyzer, "2024년 漢字 COVID-19 대응")
    assert out == ["2024", "년", "漢字", "covid", "19", "대응"]


def test_punctuation_and_query_syntax_analyse_to_nothing(analyzer: KoreanAnalyzer) -> None:
    assert terms(analyzer, "*:* ... !!! -- {}") == []
    assert terms(analyzer, "title:x") == ["titl", "x"]


def test_user_words_stay_whole(analyzer: KoreanAnalyzer) -> None:
    text = "국민디자인단의 정부3.0 사업과 k-gov 플랫폼"
    tokens = analyzer.analyze(text)
    assert [t.text for t in tokens][:2] == ["국민디자인단", "정부3.0"]
    assert "k-gov" in [t.text for t in tokens]
    assert "의" not in [t.text for t in tokens]
    for tok in tokens:
        if tok.text in {"국민디자인단", "정부3.0", "k-gov"}:
            assert text[tok.start : tok.end].lower() == tok.text
    assert analyzer.terms("국민디자인단") == ["국민디자인단"]
    assert KoreanAnalyzer().terms("국민디자인단") == ["국민", "디자인", "단"]


# -- offsets --------------------------------------------------------------------------


def test_offsets_point_at_the_surface_in_messy_text(analyzer: KoreanAnalyzer) -> None:
    text = "  행정안전부는\t2024년   AI기반\n\n 전자정부 서비스를\r\n개선했다.  Open-API v2.0 "
    tokens = analyzer.analyze(text)
    assert_offsets_valid(text, tokens)
    surfaces = {t.text: text[t.start : t.end] for t in tokens}
    assert surfaces["행정"] == "행정"
    assert surfaces["2024"] == "2024"
    assert surfaces["ai"] == "AI"
    assert surfaces["전자"] == "전자"
    assert surfaces["api"] == "API"
    assert surfaces["개선"] == "개선"


def test_offsets_map_into_decomposed_input(analyzer: KoreanAnalyzer) -> None:
    nfc = "출생신고를 저장소에서 Café 확인"
    nfd = unicodedata.normalize("NFD", nfc)
    assert len(nfd) > len(nfc)
    tokens = analyzer.analyze(nfd)
    assert [t.text for t in tokens] == terms(analyzer, nfc)
    assert_offsets_valid(nfd, tokens)
    for tok in tokens:
        surface = unicodedata.normalize("NFC", nfd[tok.start : tok.end])
        assert surface.lower().startswith(tok.text[:2]), (tok, surface)
    cafe = next(t for t in tokens if t.text == "café")
    assert nfd[cafe.start : cafe.end] == unicodedata.normalize("NFD", "Café")


def test_control_characters_do_not_break_offsets(analyzer: KoreanAnalyzer) -> None:
    text = "보고서\x00작성\x07완료\x1b 예산"
    tokens = analyzer.analyze(text)
    assert_offsets_valid(text, tokens)
    assert {"보고서", "작성", "완료", "예산"} <= {t.text for t in tokens}


def test_long_text_is_chunked_without_changing_the_result() -> None:
    paragraph = "정부는 국민의 편의를 위하여 전자정부 서비스를 제공합니다. running apps 2024\n"
    text = paragraph * 200
    small = KoreanAnalyzer(chunk_chars=300)
    large = KoreanAnalyzer(chunk_chars=len(text) + 1)
    small_tokens = small.analyze(text)
    assert small_tokens == large.analyze(text)
    assert_offsets_valid(text, small_tokens)
    assert len({t.position for t in small_tokens}) == len(small_tokens)  # no compounds here


def test_a_huge_word_without_spaces_is_skipped(analyzer: KoreanAnalyzer) -> None:
    # mecab cuts long Latin runs into short pieces; they are joined back, and a
    # run longer than any real word is not a term.
    text = "앞 " + "x" * 200 + " 뒤 " + "internationalizationfoundation" + " " + "7" * 40
    tokens = analyzer.analyze(text)
    assert [t.text for t in tokens] == ["앞", "뒤", "internationalizationfound", "7" * 40]
    assert_offsets_valid(text, tokens)
    blob = "앞 " + "a" * 20_000 + " 뒤"
    blob_tokens = analyzer.analyze(blob)
    assert_offsets_valid(blob, blob_tokens)
    assert {"앞", "뒤"} <= {t.text for t in blob_tokens}
    assert all(len(t.text) <= MAX_TOKEN_CHARS for t in blob_tokens)


def test_to_nfc_maps_every_character_back() -> None:
    original = unicodedata.normalize("NFD", "한글 éa") + "\u0301"
    nfc, offsets = to_nfc(original)
    assert nfc == unicodedata.normalize("NFC", original)
    assert offsets is not None
    assert offsets.span(0, 1) == (0, 3)  # 한 = 3 jamo
    assert offsets.span(0, 2) == (0, 6)
    assert original[slice(*offsets.span(3, 4))] == "e\u0301"
    assert to_nfc("이미 NFC") == ("이미 NFC", None)


_TEXT_ALPHABET = st.sampled_from(
    [
        *"가나다라마바사한글국민저장소출생신고를에서은는abcXYZ0129 .,-_:*\"'\n\t\u3000",
        *("\u1100", "\u1161", "\u11a8", "e\u0301", "漢"),
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_TEXT_ALPHABET, max_size=60).map("".join))
def test_offsets_are_always_valid(text: str) -> None:
    tokens = _shared_analyzer().analyze(text)
    assert_offsets_valid(text, tokens)
    for tok in tokens:
        assert tok.text == tok.text.lower()


def _shared_analyzer(cache: dict[str, KoreanAnalyzer] = {}) -> KoreanAnalyzer:  # noqa: B006
    # hypothesis forbids function-scoped fixtures in @given tests.
    if "a" not in cache:
        cache["a"] = KoreanAnalyzer()
    return cache["a"]


# -- query terms ------------------------------------------------------------------------


def test_query_syntax_is_only_text(analyzer: KoreanAnalyzer) -> None:
    assert analyze_query(analyzer, parse_user_query("*:*")).matches_nothing
    fielded = analyze_query(analyzer, parse_user_query("readers:gov"))
    assert fielded.words == (((0, "reader"), (1, "gov")),)
    blank = analyze_query(analyzer, parse_user_query(""))
    assert not blank.matches_nothing
    assert not blank.has_positive


def test_query_words_phrases_and_exclusions(analyzer: KoreanAnalyzer) -> None:
    q = analyze_query(analyzer, parse_user_query('저장소 "출생 신고" -예산 !!'))
    assert q.words == (((0, "저"), (1, "장소")),)
    assert q.phrases == (((0, "출생"), (1, "신고")),)
    assert q.excluded == (((0, "예산"),),)
    assert q.highlight_terms == {"저", "장소", "출생", "신고"}


# -- highlighting ------------------------------------------------------------------------


def test_highlight_marks_the_inflected_surface(analyzer: KoreanAnalyzer) -> None:
    body = "관련 자료는 저장소에서 확인할 수 있습니다."
    assert highlight(analyzer, body, analyzer.terms("저장소")) == [
        "관련 자료는 <mark>저장소</mark>에서 확인할 수 있습니다."
    ]
    assert highlight(analyzer, "아름다운 강산", analyzer.terms("아름답다")) == [
        "<mark>아름다운</mark> 강산"
    ]
    assert highlight(analyzer, "The dogs were running", analyzer.terms("runs")) == [
        "The dogs were <mark>running</mark>"
    ]
    assert highlight(analyzer, "COVID-19 대응과 Covid 현황", analyzer.terms("covid")) == [
        "<mark>COVID</mark>-19 대응과 <mark>Covid</mark> 현황"
    ]


def test_highlight_escapes_html(analyzer: KoreanAnalyzer) -> None:
    body = '<script>alert("x")</script> 예산 & 결산 <b>보고</b>'
    (fragment,) = highlight(analyzer, body, analyzer.terms("예산"))
    assert "<script>" not in fragment and "<b>" not in fragment
    assert "&lt;script&gt;" in fragment
    assert "<mark>예산</mark> &amp; 결산 &lt;b&gt;보고&lt;/b&gt;" in fragment


def test_highlight_fragments_are_bounded_and_ellipsised(analyzer: KoreanAnalyzer) -> None:
    filler = "기타 내용이 이어집니다. " * 40
    body = filler + "첫 예산 항목. " + filler + "둘째 예산 항목. " + filler + "셋째 예산. " + filler
    body += "넷째 예산. " + filler
    fragments = highlight(analyzer, body, analyzer.terms("예산"))
    assert len(fragments) == 3
    for fragment in fragments:
        assert fragment.startswith("…") and fragment.endswith("…")
        assert "<mark>예산</mark>" in fragment
        plain = fragment.replace("<mark>", "").replace("</mark>", "")
        assert len(plain) <= 160
    assert highlight(analyzer, body, analyzer.terms("없는말")) == []


def test_highlight_work_is_bounded_for_huge_texts(analyzer: KoreanAnalyzer) -> None:
    body = "가나다라 관리 " * 300_000 + "마지막 예산"
    started = time.perf_counter()
    fragments = highlight(analyzer, body, analyzer.terms("관리"))
    assert time.perf_counter() - started < 1.0
    assert fragments and "<mark>관리</mark>" in fragments[0]


def test_analysis_mode_query_differs_only_on_compounds(analyzer: KoreanAnalyzer) -> None:
    text = "전자정부 서비스를 개선했다"
    assert analyzer.analyze(text, AnalysisMode.QUERY) == analyzer.analyze(text)


def test_analyze_words_analyses_each_word_on_its_own_and_remembers_it() -> None:
    analyzer = KoreanAnalyzer(user_words=["국민디자인단"])
    words = ["저장소에서", "국민디자인단은", "Running", "저장소에서", "출생신고를"]
    alone = [tuple(analyzer.analyze(word, AnalysisMode.QUERY)) for word in words]
    first = analyzer.analyze_words(words)
    assert [[t.text for t in w] for w in first] == [[t.text for t in w] for w in alone]
    # Offsets index into each word.
    assert all(word[t.start : t.end] for word, toks in zip(words, first, strict=True) for t in toks)
    assert all(words[0][t.start : t.end] == t.text for t in first[0])
    # Remembered: the second call does not reach mecab, and says the same.
    calls: list[str] = []
    real_tag = analyzer._tagger.parse

    def counting_parse(text: str) -> str:
        calls.append(text)
        return real_tag(text)

    analyzer._tagger = type("Spy", (), {"parse": staticmethod(counting_parse)})()
    assert analyzer.analyze_words(list(reversed(words))) == list(reversed(first))
    assert calls == []
    # A new word among known ones: only it is analysed, order kept.
    mixed = analyzer.analyze_words(["저장소에서", "보고서를", "Running"])
    assert calls == ["보고서를"]
    analyzer._tagger = type("Real", (), {"parse": staticmethod(real_tag)})()
    assert mixed[1] == tuple(analyzer.analyze("보고서를", AnalysisMode.QUERY))
    assert mixed[0] == first[0] and mixed[2] == first[2]


def test_highlight_leaves_out_the_texts_own_edge_whitespace(analyzer: KoreanAnalyzer) -> None:
    body = "\n  행정안전부는 출생신고 제도를 개선했다.\n"
    assert highlight(analyzer, body, analyzer.terms("출생신고")) == [
        "행정안전부는 <mark>출생신고</mark> 제도를 개선했다."
    ]
    assert highlight(analyzer, " 출생신고\n", analyzer.terms("출생신고")) == [
        "<mark>출생신고</mark>"
    ]

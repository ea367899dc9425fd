"""The SearchIndex contract: every adapter (fixture `search_index`) must pass all of it.

Written against the port only (indexer/index/base.py), so a new engine joins by
adding a param to the fixture; a behaviour it lacks is declared in
`SEARCH_INDEX_GAPS` (tests/contract/conftest.py), never silently skipped.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from indexer.errors import InvalidQueryError
from indexer.index.base import (
    FACET_FIELDS,
    AccessFilter,
    IndexDocument,
    SearchIndex,
    SearchRequest,
    SearchResults,
    SortOrder,
)
from indexer.query import parse_user_query
from storage.catalog.policy_match import PolicyMatch
from tests.factories import T0
from tests.factories import index_doc as doc

GOV = frozenset({"gov"})


def put(index: SearchIndex, *docs: IndexDocument) -> None:
    index.upsert(list(docs))
    index.refresh()


#: The `AccessFilter` fields a test can give `search` besides `readers` (its tokens).
ACCESS_FIELDS = ("pending", "stale_ids", "readable_stale_ids")


def search(
    index: SearchIndex, q: str = "", readers: frozenset[str] = GOV, **kwargs: object
) -> SearchResults:
    """Search `q` as a caller holding `readers`; access and request fields by name."""
    access = {k: kwargs.pop(k) for k in ACCESS_FIELDS if k in kwargs}
    return index.search(
        SearchRequest(query=parse_user_query(q), **kwargs),  # type: ignore[arg-type]
        AccessFilter(readers, **access),  # type: ignore[arg-type]
    )


def ids(results: SearchResults) -> list[str]:
    return [hit.id for hit in results.hits]


def facet(results: SearchResults, name: str) -> dict[str, int]:
    return {f.value: f.count for f in results.facets[name]}


# -- access ------------------------------------------------------------------------


def test_a_term_only_in_an_unreadable_document_finds_nothing(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("secret", "극비 청사진 문서", readers=["dept:intel"], department="intel"),
        doc("public", "공개 보도자료", readers=["gov"], department="press"),
    )
    results = search(search_index, "청사진")
    assert results.total == 0
    assert results.hits == []
    assert all(results.facets[name] == [] for name in FACET_FIELDS)

    listing = search(search_index, "")
    assert ids(listing) == ["public"]
    assert facet(listing, "department") == {"press": 1}

    allowed = search(search_index, "청사진", readers=frozenset({"dept:intel"}))
    assert ids(allowed) == ["secret"]
    assert any("<mark>청사진</mark>" in h for h in allowed.hits[0].highlights)


def test_any_shared_reader_token_grants_access(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("mine", "예산 보고서", readers=["user:kim"]),
        doc("team", "예산 보고서", readers=["dept:budget", "user:lee"]),
        doc("other", "예산 보고서", readers=["ministry:defense"]),
    )
    results = search(search_index, "예산", readers=frozenset({"user:kim", "dept:budget"}))
    assert sorted(ids(results)) == ["mine", "team"]
    assert results.total == 2


def test_empty_readers_see_nothing(search_index: SearchIndex) -> None:
    put(search_index, doc("a", "예산 보고서"), doc("b", "예산 계획"))
    for q in ("", "예산", "*:*"):
        results = search(search_index, q, readers=frozenset())
        assert results.total == 0
        assert results.hits == []
        assert all(not results.facets.get(name) for name in FACET_FIELDS)


@pytest.mark.parametrize(
    "q",
    [
        "*:*",
        "*",
        "readers:gov",
        "readers:dept\\:intel",
        "title:청사진",
        "id:secret OR *:*",
        '{"query": {"match_all": {}}}',
        "청사진 OR readers:*",
        "(청사진) || gov",
    ],
)
def test_query_syntax_never_widens_access(search_index: SearchIndex, q: str) -> None:
    put(
        search_index,
        doc("secret", "청사진 readers gov title id", readers=["dept:intel"]),
        doc("public", "공개 자료", readers=["gov"]),
    )
    for readers in (GOV, frozenset({"user:nobody"})):
        results = search(search_index, q, readers=readers)
        assert "secret" not in ids(results)
        if readers != GOV:
            assert results.total == 0


def test_query_syntax_is_searched_as_plain_words(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("plain", "the readers of gov documents"),
        doc("other", "공개 자료"),
    )
    assert ids(search(search_index, "readers:gov")) == ["plain"]
    assert search(search_index, "*:*").total == 0  # nothing to search for: no match


# -- text matching -------------------------------------------------------------------


def test_korean_particles_spacing_and_compounds(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("storage", "자료는 저장소에서 관리합니다"),
        doc("spaced", "출생 신고를 온라인으로 하세요"),
        doc("system", "출생신고체계 개편 방안"),
        doc("library", "국립중앙도서관에 기증"),
        doc("unrelated", "예산 집행 현황"),
    )
    assert ids(search(search_index, "저장소")) == ["storage"]
    assert ids(search(search_index, "저장소를")) == ["storage"]
    assert sorted(ids(search(search_index, "출생신고"))) == ["spaced", "system"]
    assert sorted(ids(search(search_index, "출생 신고"))) == ["spaced", "system"]
    assert ids(search(search_index, "도서관")) == ["library"]
    assert ids(search(search_index, "국립중앙도서관")) == ["library"]


def test_english_words_are_stemmed(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("runs", "The service runs every night"),
        doc("policy", "New POLICIES were published"),
        doc("other", "nothing relevant"),
    )
    assert ids(search(search_index, "running")) == ["runs"]
    assert ids(search(search_index, "policy")) == ["policy"]


def test_every_word_must_match(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("both", "예산 결산 보고"),
        doc("one", "예산 계획"),
    )
    assert ids(search(search_index, "예산 결산")) == ["both"]
    assert sorted(ids(search(search_index, "예산"))) == ["both", "one"]
    assert search(search_index, "예산 없는단어").total == 0


def test_a_word_may_match_in_any_text_field(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("in-title", "본문", title="감사 결과"),
        doc("in-file", "본문", filename="감사_결과보고.hwp"),
        doc("in-tags", "본문", tags=("감사",)),
        doc("in-body", "정기 감사 일정"),
        doc("none", "본문"),
    )
    found = sorted(ids(search(search_index, "감사")))
    assert found == ["in-body", "in-file", "in-tags", "in-title"]
    assert ids(search(search_index, "결과보고")) == ["in-file"]
    assert ids(search(search_index, "hwp")) == ["in-file"]


def test_phrases_need_adjacent_words(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("adjacent", "출생 신고를 마쳤다"),
        doc("apart", "신고 절차와 출생 증명"),
    )
    assert ids(search(search_index, '"출생 신고"')) == ["adjacent"]
    assert ids(search(search_index, '"출생신고"')) == ["adjacent"]
    assert sorted(ids(search(search_index, "출생 신고"))) == ["adjacent", "apart"]


def test_a_phrase_does_not_span_two_fields(search_index: SearchIndex) -> None:
    put(search_index, doc("split", "신고 안내", title="출생"), doc("whole", "출생 신고 안내"))
    assert ids(search(search_index, '"출생 신고"')) == ["whole"]


def test_excluded_words_and_phrases(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("a", "예산 보고서 초안"),
        doc("b", "예산 보고서 최종"),
        doc("c", "예산 출생 신고 안내"),
    )
    assert sorted(ids(search(search_index, "예산 -초안"))) == ["b", "c"]
    assert sorted(ids(search(search_index, '예산 -"출생 신고"'))) == ["a", "b"]
    assert sorted(ids(search(search_index, "-최종"))) == ["a", "c"]


def test_blank_query_lists_readable_documents(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("old", "가", created_at=T0),
        doc("new", "나", created_at=T0 + timedelta(days=1)),
        doc("hidden", "다", readers=["user:x"]),
    )
    results = search(search_index, "")
    assert ids(results) == ["new", "old"]
    assert results.total == 2


def test_a_query_that_analyses_to_nothing_matches_nothing(search_index: SearchIndex) -> None:
    put(search_index, doc("a", "예산 보고서"))
    for q in ("!!!", "... ---", '"..."'):
        assert search(search_index, q).total == 0


# -- filters, sorting, paging, facets ------------------------------------------------


def test_keyword_filters(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("a", "예산", department="d1", ministry="m1", content_type="text/plain", tags=("회계",)),
        doc("b", "예산", department="d2", ministry="m1", content_type="application/pdf"),
        doc("c", "예산", department="d1", ministry="m2", content_type="application/pdf"),
    )
    assert sorted(ids(search(search_index, "예산", department="d1"))) == ["a", "c"]
    assert sorted(ids(search(search_index, "예산", ministry="m1"))) == ["a", "b"]
    assert ids(search(search_index, "예산", content_type="text/plain")) == ["a"]
    assert ids(search(search_index, "", tag="회계")) == ["a"]
    assert ids(search(search_index, "", department="d1", ministry="m2")) == ["c"]
    assert search(search_index, "", department="nope").total == 0


def test_created_range_is_inclusive_exclusive(search_index: SearchIndex) -> None:
    exact = T0 + timedelta(microseconds=1)
    put(
        search_index,
        doc("before", "가", created_at=T0),
        doc("from", "가", created_at=exact),
        doc("inside", "가", created_at=T0 + timedelta(hours=1)),
        doc("to", "가", created_at=T0 + timedelta(days=1)),
    )
    results = search(search_index, "", created_from=exact, created_to=T0 + timedelta(days=1))
    assert sorted(ids(results)) == ["from", "inside"]
    assert sorted(ids(search(search_index, "", created_to=exact))) == ["before"]
    assert sorted(ids(search(search_index, "", created_from=T0 + timedelta(days=1)))) == ["to"]


def test_sort_orders(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("body", "예산 안내", title="안내", created_at=T0 + timedelta(days=2)),
        doc("title", "일반 안내", title="예산 편성", created_at=T0),
        doc("mid", "예산", title="공지", created_at=T0 + timedelta(days=1)),
    )
    relevance = search(search_index, "예산")
    assert relevance.hits[0].id == "title"  # a title match ranks first
    assert all(a.score >= b.score for a, b in zip(relevance.hits, relevance.hits[1:], strict=False))
    assert ids(search(search_index, "예산", sort=SortOrder.NEWEST)) == ["body", "mid", "title"]
    assert ids(search(search_index, "예산", sort=SortOrder.OLDEST)) == ["title", "mid", "body"]


def test_pagination(search_index: SearchIndex) -> None:
    put(
        search_index,
        *(doc(f"d{i:02}", "공지", created_at=T0 + timedelta(minutes=i)) for i in range(25)),
    )
    oldest = SortOrder.OLDEST
    pages = [search(search_index, "공지", sort=oldest, offset=o, limit=10) for o in (0, 10, 20)]
    assert [len(p.hits) for p in pages] == [10, 10, 5]
    assert all(p.total == 25 for p in pages)
    assert [i for p in pages for i in ids(p)] == [f"d{i:02}" for i in range(25)]
    counted = search(search_index, "공지", limit=0)
    assert counted.total == 25
    assert counted.hits == []


def test_invalid_paging_is_rejected(search_index: SearchIndex) -> None:
    with pytest.raises(InvalidQueryError):
        search(search_index, "공지", offset=-1)
    with pytest.raises(InvalidQueryError):
        search(search_index, "공지", limit=-5)


def test_facets_count_the_filtered_query(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("a", "예산", department="d1", ministry="m1", content_type="application/pdf"),
        doc("b", "예산", department="d1", ministry="m2", content_type="text/plain"),
        doc("c", "예산", department="d2", ministry="m2", content_type="application/pdf"),
        doc("d", "결산", department="d3", ministry="m3", content_type="application/pdf"),
        doc("e", "예산", department="d4", ministry="m4", readers=["user:other"]),
    )
    results = search(search_index, "예산")
    assert results.total == 3
    assert facet(results, "department") == {"d1": 2, "d2": 1}
    assert [f.value for f in results.facets["department"]] == ["d1", "d2"]  # counts descending
    assert facet(results, "ministry") == {"m2": 2, "m1": 1}
    assert facet(results, "content_type") == {"application/pdf": 2, "text/plain": 1}
    filtered = search(search_index, "예산", ministry="m2")
    assert facet(filtered, "department") == {"d1": 1, "d2": 1}
    unfaceted = search(search_index, "예산", with_facets=False)
    assert unfaceted.facets == {}
    assert unfaceted.total == 3
    assert search(search_index, "예산", with_facets=False, limit=0).total == 3


# -- nouns inside unknown compounds -----------------------------------------------------

#: Coined names mecab reads into pieces of which the noun is not one.
COINED = {"키오스크": "배리어프리키오스크", "귀가": "안심귀가스카우트", "상품권": "지역사랑상품권"}


@pytest.mark.parametrize(("noun", "compound"), COINED.items())
def test_a_noun_finds_documents_that_hold_it_only_inside_a_compound(
    search_index: SearchIndex, noun: str, compound: str
) -> None:
    put(
        search_index,
        doc("inside", f"올해 {compound} 사업을 추진한다."),
        doc("unrelated", "올해 주민 편의 사업을 추진한다."),
    )
    results = search(search_index, noun)
    assert ids(results) == ["inside"]
    assert results.total == 1
    assert facet(results, "department") == {"dept-a": 1}
    assert results.hits[0].highlights == (
        f"올해 {compound.replace(noun, f'<mark>{noun}</mark>')} 사업을 추진한다.",
    )
    # With a particle, and beside another word, it is found all the same.
    assert ids(search(search_index, f"{noun}를 사업")) == ["inside"]


def test_morphological_matches_rank_above_matches_inside_compounds(
    search_index: SearchIndex,
) -> None:
    filler = " ".join(f"항목{i} 검토" for i in range(200))
    words = [f"word-{i}" for i in range(6)]
    put(
        search_index,
        # By term statistics alone this one would win: short, the compound
        # three times, in the title too, and its grams rare; the others are
        # long and the word is common among them.
        doc("inside", "배리어프리키오스크 배리어프리키오스크", title="배리어프리키오스크"),
        *(doc(w, f"{filler} 민원실에 키오스크를 둔다. {filler}") for w in words),
    )
    found = ids(search(search_index, "키오스크"))
    assert sorted(found[:-1]) == words
    assert found[-1] == "inside"
    assert "inside" not in ids(search(search_index, "키오스크 검토"))


def test_exclusions_and_phrases_with_compound_matches(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("inside", "배리어프리키오스크 설치 사업"),
        doc("word", "무인 키오스크 설치 사업"),
        doc("neither", "민원 창구 설치 사업"),
    )
    # An excluded word is excluded wherever the word would be found.
    assert ids(search(search_index, "사업 -키오스크")) == ["neither"]
    assert ids(search(search_index, '"키오스크 설치"')) == ["word"]
    assert sorted(ids(search(search_index, "설치 -창구"))) == ["inside", "word"]


def test_compound_matches_stay_inside_one_word(search_index: SearchIndex) -> None:
    # 상품 and 권 in separate words are not the word 상품권.
    put(search_index, doc("apart", "새 상품 판매 권장 사항"))
    assert search(search_index, "상품권").total == 0


def test_compound_matches_respect_readers(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("secret", "배리어프리키오스크 구매 계획", readers=["dept:intel"]),
        doc("public", "공개 자료"),
    )
    assert search(search_index, "키오스크").total == 0
    assert ids(search(search_index, "키오스크", readers=frozenset({"dept:intel"}))) == ["secret"]


def test_a_returned_write_is_searchable_without_refresh(search_index: SearchIndex) -> None:
    # The pipeline marks a document indexed as soon as the write returns; from then
    # on searches trust the index's readers for it, so a revoked reader must not
    # still find it in an entry the engine has not made visible yet.
    search_index.upsert([doc("a", "잠수함 예산", readers=["dept:intel", "gov"])])
    assert ids(search(search_index, "잠수함")) == ["a"]
    search_index.update_access([doc("a", readers=["dept:intel"], revision=2)])
    assert ids(search(search_index, "잠수함")) == []
    assert search_index.suggest(AccessFilter(GOV), "잠수", 10) == []
    search_index.delete(["a"])
    assert ids(search(search_index, "잠수함", readers=frozenset({"dept:intel"}))) == []


# -- suggestions and corrections ---------------------------------------------------------


def suggestions(index: SearchIndex, prefix: str, readers: frozenset[str] = GOV) -> list[str]:
    return [s.text for s in index.suggest(AccessFilter(readers), prefix, 10)]


def test_suggestions_complete_korean_letter_by_letter_and_by_initials(
    search_index: SearchIndex,
) -> None:
    put(search_index, doc("a", "출생신고 제도를 개선한다", title="출생신고 개선 안내"))
    for typed in ("출생", "출새", "ㅊㅅㅅㄱ"):
        found = suggestions(search_index, typed)
        assert "출생신고 개선 안내" in found, typed
        assert "출생신고" in found, typed
    # One character (or two initials) completes words only, not titles.
    for typed in ("ㅊ", "출", "ㅊㅅ"):
        found = suggestions(search_index, typed)
        assert "출생신고" in found and "출생신고 개선 안내" not in found, typed
    assert suggestions(search_index, "개서") == ["개선"]  # a word of the body, not the title
    assert suggestions(search_index, "한다") == []  # endings are not words
    assert suggestions(search_index, "") == []


def test_suggestions_come_only_from_readable_documents(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("secret", "잠수함도입계획 검토", title="잠수함 극비", readers=["dept:intel"]),
        doc("public", "잠자리 생태 조사", title="잠자리 조사"),
    )
    assert set(suggestions(search_index, "잠자")) == {"잠자리 조사", "잠자리"}
    assert set(suggestions(search_index, "잠")) == {"잠자리"}
    assert suggestions(search_index, "ㅈㅅㅎ") == []
    assert suggestions(search_index, "잠", readers=frozenset()) == []
    intel = frozenset({"dept:intel"})
    assert {"잠수함 극비", "잠수함도입계획"} <= set(
        suggestions(search_index, "잠수", readers=intel)
    )
    counted = {s.text: s.count for s in search_index.suggest(AccessFilter(GOV), "잠자", 10)}
    assert counted == {"잠자리 조사": 1, "잠자리": 1}  # the secret one counts nowhere


def test_corrections_come_only_from_readable_documents(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("public", "주민등록등본 발급 안내"),
        doc("secret", "주민등록초본 검토", readers=["dept:intel"]),
    )
    request = AccessFilter(GOV)
    assert [s.text for s in search_index.corrections(request, "쥬민등록등본", 3)] == [
        "주민등록등본"
    ]
    found = [s.text for s in search_index.corrections(request, "주민등록쵸본", 3)]
    assert "주민등록초본" not in found
    intel = AccessFilter(frozenset({"dept:intel"}))
    assert [s.text for s in search_index.corrections(intel, "주민등록쵸본", 3)] == ["주민등록초본"]
    assert search_index.corrections(request, "주민등록등본", 3) == []  # already right


# -- highlights ------------------------------------------------------------------------


def test_highlights_mark_inflected_korean(search_index: SearchIndex) -> None:
    put(search_index, doc("a", "관련 자료는 저장소에서 확인할 수 있습니다."))
    (hit,) = search(search_index, "저장소").hits
    assert hit.highlights == ("관련 자료는 <mark>저장소</mark>에서 확인할 수 있습니다.",)


def test_highlights_escape_html(search_index: SearchIndex) -> None:
    put(search_index, doc("x", '<script>alert("예산")</script> 예산 & <b>결산</b>'))
    (hit,) = search(search_index, "예산").hits
    assert hit.highlights
    text = "".join(hit.highlights)
    assert "<script>" not in text and "<b>" not in text
    assert "&lt;script&gt;" in text
    assert "<mark>예산</mark>" in text
    stripped = text.replace("<mark>", "").replace("</mark>", "")
    assert "<" not in stripped and ">" not in stripped


def test_highlights_fall_back_to_the_title(search_index: SearchIndex) -> None:
    put(search_index, doc("t", "본문에는 없음", title="2024년 <감사> 계획"))
    (hit,) = search(search_index, "감사").hits
    assert hit.highlights == ("2024년 &lt;<mark>감사</mark>&gt; 계획",)
    assert hit.title == "2024년 <감사> 계획"  # the title itself is returned raw


def test_highlights_can_be_turned_off_and_blank_queries_have_none(
    search_index: SearchIndex,
) -> None:
    put(search_index, doc("a", "예산 보고"))
    assert search(search_index, "예산", with_highlights=False).hits[0].highlights == ()
    assert search(search_index, "").hits[0].highlights == ()


def test_hits_carry_the_stored_metadata(search_index: SearchIndex) -> None:
    created = datetime(2023, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    put(
        search_index,
        doc(
            "meta",
            "예산",
            title="예산서",
            filename="예산서_2023.hwp",
            department="기획재정부 예산실",
            ministry="기획재정부",
            content_type="application/x-hwp",
            created_at=created,
        ),
    )
    (hit,) = search(search_index, "예산").hits
    assert (hit.id, hit.title, hit.filename) == ("meta", "예산서", "예산서_2023.hwp")
    assert (hit.department, hit.ministry) == ("기획재정부 예산실", "기획재정부")
    assert hit.content_type == "application/x-hwp"
    assert hit.created_at == created


# -- writes ----------------------------------------------------------------------------


def test_an_older_revision_never_overwrites_a_newer_one(search_index: SearchIndex) -> None:
    put(search_index, doc("a", "최신 본문", revision=5, readers=["dept:new"]))
    put(search_index, doc("a", "옛날 본문", revision=4, readers=["gov"]))
    assert search_index.revisions(["a"]) == {"a": 5}
    assert search(search_index, "옛날").total == 0
    assert search(search_index, "").total == 0  # the old, wider ACL did not come back
    assert ids(search(search_index, "최신", readers=frozenset({"dept:new"}))) == ["a"]
    put(search_index, doc("a", "다음 본문", revision=6, readers=["gov"]))
    assert ids(search(search_index, "다음")) == ["a"]
    assert search_index.count() == 1


def test_upsert_is_idempotent(search_index: SearchIndex) -> None:
    put(search_index, doc("a", "본문", revision=3))
    put(search_index, doc("a", "본문", revision=3))
    put(search_index, doc("a", "본문", revision=3), doc("a", "본문", revision=2))
    assert search_index.count() == 1
    assert search_index.revisions(["a", "missing"]) == {"a": 3}
    assert search(search_index, "본문").total == 1


def test_a_batch_keeps_the_highest_revision_per_id(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("a", "둘째", revision=2),
        doc("a", "셋째", revision=3),
        doc("a", "첫째", revision=1),
        *(doc(f"bulk{i}", "대량") for i in range(200)),
    )
    assert search_index.revisions(["a"]) == {"a": 3}
    assert ids(search(search_index, "셋째")) == ["a"]
    assert search(search_index, "대량").total == 200
    assert search_index.count() == 201


def test_pending_policy_matches_widen_access_by_attributes(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("a", "예산 보고서", readers=["user:kim", "visibility:private"], tags=("감사",)),
        doc("b", "예산 보고서", readers=["user:kim", "visibility:ministry"], department="d-2"),
        doc(
            "c",
            "예산 보고서",
            readers=["user:kim", "visibility:private"],
            ministry="m-2",
            folder="f2",
            folder_path=("f1", "f2"),
        ),
    )
    lee = frozenset({"user:lee"})

    def found(*matches: PolicyMatch) -> list[str]:
        return sorted(ids(search(search_index, "예산", readers=lee, pending=matches)))

    assert found() == []
    assert found(PolicyMatch(tag="감사")) == ["a"]
    assert found(PolicyMatch(department="d-2"), PolicyMatch(ministry="m-2")) == ["b", "c"]
    assert found(PolicyMatch(ministry="ministry-a", visibility="private")) == ["a"]
    assert found(PolicyMatch(visibility="ministry", tag="감사")) == []
    assert found(PolicyMatch()) == []  # selects nothing, never everything
    # A folder: the documents filed in it or under it.
    assert found(PolicyMatch(folder="f1")) == found(PolicyMatch(folder="f2")) == ["c"]
    assert found(PolicyMatch(folder="f3")) == found(PolicyMatch(folder="f1", tag="감사")) == []
    listing = search(search_index, "", readers=lee, pending=(PolicyMatch(tag="감사"),))
    assert listing.total == 1 and facet(listing, "department") == {"dept-a": 1}
    # The caller's own tokens still count.
    assert (
        found(PolicyMatch(tag="없음")) == []
        and len(ids(search(search_index, "예산", readers=frozenset({"user:kim"})))) == 3
    )
    # Matches pending for a caller without tokens mean nothing: not representable.
    with pytest.raises(ValueError, match="tokens"):
        AccessFilter(frozenset(), pending=(PolicyMatch(tag="감사"),))


def test_update_access_rewrites_readers_and_keeps_the_text(search_index: SearchIndex) -> None:
    put(search_index, doc("a", "출생신고 처리 지침", readers=["user:kim"], tags=("민원",)))
    missing = search_index.update_access(
        [
            doc("a", "", readers=["dept:pop"], revision=2, tags=("민원",)),
            doc("ghost", "", readers=["gov"], revision=1),
        ]
    )
    search_index.refresh()
    assert missing == ["ghost"]
    assert search(search_index, "출생신고", readers=frozenset({"user:kim"})).total == 0
    moved = search(search_index, "출생신고", readers=frozenset({"dept:pop"}))
    assert ids(moved) == ["a"]
    assert any("<mark>출생신고</mark>" in h for h in moved.hits[0].highlights)
    assert ids(search(search_index, "", readers=frozenset({"dept:pop"}), tag="민원")) == ["a"]
    assert search_index.revisions(["a", "ghost"]) == {"a": 2}


def test_folder_filter_matches_any_of_the_folders_given(search_index: SearchIndex) -> None:
    put(
        search_index,
        doc("a", "예산 보고", folder="f1"),
        doc("b", "예산 보고", folder="f2"),
        doc("c", "예산 보고"),  # the top level
        doc("d", "예산 보고", folder="f1", readers=["user:other"]),
    )
    assert ids(search(search_index, "예산", folders=("f1",))) == ["a"]
    assert sorted(ids(search(search_index, "예산", folders=("f1", "f2")))) == ["a", "b"]
    found = search(search_index, "", folders=("f1", "f2"))
    assert found.total == 2 and sum(facet(found, "department").values()) == 2
    # An empty subtree (an unknown folder) matches nothing, never everything.
    assert search(search_index, "예산", folders=()).total == 0
    assert search(search_index, "예산").total == 3
    # Filing again is an access-only rewrite: the folder moves with it, text kept.
    search_index.update_access([doc("a", "", folder="f2", revision=2)])
    search_index.refresh()
    assert sorted(ids(search(search_index, "예산", folders=("f2",)))) == ["a", "b"]


def test_update_access_never_goes_back_a_revision(search_index: SearchIndex) -> None:
    put(search_index, doc("a", "예산 보고서", readers=["user:kim"], revision=5))
    assert search_index.update_access([doc("a", "", readers=["gov"], revision=4)]) == []
    search_index.refresh()
    assert search(search_index, "예산").total == 0
    assert ids(search(search_index, "예산", readers=frozenset({"user:kim"}))) == ["a"]


def test_delete(search_index: SearchIndex) -> None:
    put(search_index, doc("a", "예산"), doc("b", "예산"))
    search_index.delete(["a", "never-existed"])
    search_index.refresh()
    assert ids(search(search_index, "예산")) == ["b"]
    assert search_index.revisions(["a", "b"]) == {"b": 1}
    search_index.delete([])
    assert search_index.count() == 1


def test_stale_entries_are_decided_by_the_caller_in_the_same_query(
    search_index: SearchIndex,
) -> None:
    # The search service decided these against the catalog: their indexed
    # readers are stale (`old`: the index still lets gov read it, the catalog
    # no longer does; `moved`: only the old owner in the index, the catalog
    # lets the caller read it now).
    put(
        search_index,
        doc("old", "예산", readers=["gov"], department="d1"),
        doc("moved", "예산", readers=["user:old"], department="d2"),
        doc("moved2", "예산", readers=["user:old"], department="d3"),
        doc("fresh", "예산", readers=["gov"]),
        doc("other", "예산", readers=["user:other"]),
    )
    stale = frozenset({"old", "moved", "moved2"})
    readable = frozenset({"moved", "moved2"})
    results = search(search_index, "예산", stale_ids=stale, readable_stale_ids=readable)
    assert sorted(ids(results)) == ["fresh", "moved", "moved2"]
    assert results.total == 3
    assert facet(results, "department") == {"dept-a": 1, "d2": 1, "d3": 1}
    narrowed = search(
        search_index,
        "예산",
        stale_ids=stale,
        readable_stale_ids=readable,
        department="d2",
    )
    assert ids(narrowed) == ["moved"]
    # Stale and not readable: excluded, whatever the index's readers say.
    assert sorted(ids(search(search_index, "예산", stale_ids=stale))) == ["fresh"]
    # A pending policy match does not let a stale entry through either.
    pending = (PolicyMatch(department="d1"),)
    assert sorted(ids(search(search_index, "예산", stale_ids=stale, pending=pending))) == ["fresh"]
    # Suggestions go through the same filter.
    access = AccessFilter(GOV, stale_ids=stale, readable_stale_ids=frozenset({"moved"}))
    (word,) = search_index.suggest(access, "예", 10)
    assert (word.text, word.count) == ("예산", 2)


def test_access_filter_refuses_combinations_that_mean_nothing() -> None:
    with pytest.raises(ValueError, match="stale"):
        AccessFilter(GOV, readable_stale_ids=frozenset({"a"}))  # readable but not stale
    with pytest.raises(ValueError, match="tokens"):
        AccessFilter(frozenset(), stale_ids=frozenset({"a"}), readable_stale_ids=frozenset({"a"}))
    assert AccessFilter(frozenset(), stale_ids=frozenset({"a"})).lets_nothing_through


def test_the_index_pages_itself(search_index: SearchIndex) -> None:
    put(
        search_index,
        *(
            doc(f"d{i:02d}", "예산", created_at=T0 + timedelta(days=i), readers=["gov"])
            for i in range(30)
        ),
        doc("stale", "예산", created_at=T0 + timedelta(days=100), readers=["user:old"]),
    )
    stale = frozenset({"stale", "d29"})
    access = {"stale_ids": stale, "readable_stale_ids": frozenset({"stale"})}
    everything = search(search_index, "", sort=SortOrder.NEWEST, limit=100, **access)
    assert everything.total == 30 and ids(everything)[0] == "stale" and "d29" not in ids(everything)
    pages = [
        search(search_index, "", sort=SortOrder.NEWEST, offset=o, limit=7, **access)
        for o in range(0, 30, 7)
    ]
    assert [h for p in pages for h in ids(p)] == ids(everything)
    assert all(p.total == 30 for p in pages)
    assert all(facet(p, "department") == {"dept-a": 30} for p in pages)


def test_clear_and_count(search_index: SearchIndex) -> None:
    assert search_index.count() == 0
    put(search_index, *(doc(f"d{i}", "내용") for i in range(5)))
    assert search_index.count() == 5
    search_index.clear()
    search_index.refresh()
    assert search_index.count() == 0
    assert search(search_index, "").total == 0
    put(search_index, doc("again", "내용"))
    assert search_index.count() == 1


def test_ping_answers(search_index: SearchIndex) -> None:
    search_index.ping()


def test_searches_run_while_documents_are_written(search_index: SearchIndex) -> None:
    put(search_index, *(doc(f"seed{i}", "공통 예산") for i in range(20)))
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                results = search(search_index, "예산")
                assert results.total >= 20
        except BaseException as err:  # collected and re-raised in the main thread
            errors.append(err)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for batch in range(5):
            search_index.upsert([doc(f"w{batch}-{i}", "공통 예산") for i in range(10)])
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    search_index.refresh()
    assert search(search_index, "예산").total == 70

"""TantivyIndex behaviour outside the SearchIndex contract: its directory, writer and limits."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from pathlib import Path

import pytest
import tantivy

from indexer.analysis.korean import KoreanAnalyzer
from indexer.errors import InvalidQueryError, SearchUnavailableError
from indexer.index.base import AccessFilter, SearchRequest
from indexer.index.tantivy_index import TantivyIndex
from indexer.query import parse_user_query
from tests.factories import index_doc as doc

GOV = frozenset({"gov"})


def request(q: str, **kwargs: object) -> SearchRequest:
    return SearchRequest(query=parse_user_query(q), **kwargs)  # type: ignore[arg-type]


#: Everything `gov` reads.
AS_GOV = AccessFilter(GOV)


def test_documents_survive_reopening(tmp_path: Path, korean_analyzer: KoreanAnalyzer) -> None:
    index = TantivyIndex(tmp_path / "ix", korean_analyzer)
    index.upsert([doc("a", "예산 보고서", revision=7)])
    index.close()
    reopened = TantivyIndex(tmp_path / "ix", korean_analyzer)
    assert reopened.count() == 1
    assert reopened.revisions(["a"]) == {"a": 7}
    assert [h.id for h in reopened.search(request("예산"), AS_GOV).hits] == ["a"]
    reopened.close()


def test_a_second_writer_on_the_same_directory_is_unavailable(
    tmp_path: Path, korean_analyzer: KoreanAnalyzer
) -> None:
    first = TantivyIndex(tmp_path / "ix", korean_analyzer)
    first.upsert([doc("a", "예산")])
    second = TantivyIndex(tmp_path / "ix", korean_analyzer)  # reading needs no lock
    second.refresh()
    assert second.count() == 1
    with pytest.raises(SearchUnavailableError):
        second.upsert([doc("b", "예산")])
    first.close()
    second.upsert([doc("b", "예산")])  # the lock is released on close
    assert second.count() == 2
    second.close()


def test_a_directory_with_another_schema_is_rebuilt_empty(
    tmp_path: Path, korean_analyzer: KoreanAnalyzer
) -> None:
    # An index of an older release (e.g. without the compound fallback's grams):
    # derived data, so it is emptied and the caller told to queue everything again.
    (tmp_path / "ix").mkdir()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("something_else", stored=True)
    old = tantivy.Index(builder.build(), str(tmp_path / "ix"))
    writer = old.writer(15_000_000, 1)
    document = tantivy.Document()
    document.add_text("something_else", "x")
    writer.add_document(document)
    writer.commit()
    writer.wait_merging_threads()
    index = TantivyIndex(tmp_path / "ix", korean_analyzer)
    try:
        assert index.schema_rebuilt
        assert index.count() == 0
        index.upsert([doc("a", "예산")])
        assert index.count() == 1
    finally:
        index.close()
    again = TantivyIndex(tmp_path / "ix", korean_analyzer)
    try:
        assert not again.schema_rebuilt
        assert again.count() == 1
    finally:
        again.close()


def test_a_directory_that_is_not_an_index_is_refused(
    tmp_path: Path, korean_analyzer: KoreanAnalyzer
) -> None:
    (tmp_path / "ix").write_text("not a directory")
    with pytest.raises(SearchUnavailableError, match="cannot open"):
        TantivyIndex(tmp_path / "ix", korean_analyzer)


def test_a_closed_index_is_unavailable(tmp_path: Path, korean_analyzer: KoreanAnalyzer) -> None:
    index = TantivyIndex(tmp_path / "ix", korean_analyzer)
    index.close()
    index.close()  # idempotent
    with pytest.raises(SearchUnavailableError):
        index.ping()
    with pytest.raises(SearchUnavailableError):
        index.upsert([doc("a", "x")])


def test_paging_limits(tmp_path: Path, korean_analyzer: KoreanAnalyzer) -> None:
    index = TantivyIndex(tmp_path / "ix", korean_analyzer, max_result_window=100)
    index.upsert([doc(f"d{i}", "공지") for i in range(120)])
    assert len(index.search(request("공지", offset=90, limit=10), AS_GOV).hits) == 10
    with pytest.raises(InvalidQueryError):
        index.search(request("공지", limit=101), AS_GOV)
    with pytest.raises(InvalidQueryError):
        index.search(request("공지", offset=100, limit=1), AS_GOV)
    index.close()


def test_long_bodies_are_cut_and_text_is_stored_as_nfc(
    tmp_path: Path, korean_analyzer: KoreanAnalyzer
) -> None:
    index = TantivyIndex(tmp_path / "ix", korean_analyzer, max_body_chars=200)
    body = unicodedata.normalize("NFD", "저장소에서 확인. ") + "채움 " * 200 + "끝부분단어"
    index.upsert([doc("a", body, title=unicodedata.normalize("NFD", "한글 제목"))])
    (hit,) = index.search(request("저장소"), AS_GOV).hits
    assert hit.title == "한글 제목"  # NFC
    assert hit.highlights[0].startswith("<mark>저장소</mark>에서 확인.")
    assert index.search(request("끝부분단어"), AS_GOV).total == 0  # beyond max_body_chars
    index.close()


def test_a_failed_batch_is_rolled_back_whole(
    tmp_path: Path, korean_analyzer: KoreanAnalyzer
) -> None:
    index = TantivyIndex(tmp_path / "ix", korean_analyzer)
    broken = replace(doc("bad", "본문"), created_at="not a date")
    with pytest.raises(AttributeError):
        index.upsert([doc("good", "예산"), broken])
    index.upsert([doc("later", "예산")])  # must not carry "good" along
    assert index.count() == 1
    assert [h.id for h in index.search(request("예산"), AS_GOV).hits] == ["later"]
    index.close()


def test_an_upsert_analyses_its_documents_a_group_at_a_time_in_one_commit(
    tmp_path: Path, korean_analyzer: KoreanAnalyzer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tokens of a large upsert are not all held at once: its documents are
    analysed in groups of about `analysis_chunk_chars`, and still committed together."""
    import indexer.index.tantivy_index as module

    groups: list[int] = []
    real = module.analyze_texts

    def counting(
        analyzer: KoreanAnalyzer, texts: list[str]
    ) -> list[list[tuple[str, int, int, int]]]:
        groups.append(sum(len(t) for t in texts))
        return real(analyzer, texts)

    monkeypatch.setattr(module, "analyze_texts", counting)
    index = TantivyIndex(tmp_path / "ix", korean_analyzer, analysis_chunk_chars=2_000)
    commits: list[int] = []
    real_writing = index._writing

    def writing(action: str):  # type: ignore[no-untyped-def]
        commits.append(1)
        return real_writing(action)

    monkeypatch.setattr(index, "_writing", writing)
    body = "예산 보고서를 검토하였다. " * 60  # ~900 characters
    index.upsert([doc(f"d{i}", body + f"표식{i}") for i in range(6)])
    assert len(commits) == 1
    assert len(groups) >= 3
    assert max(groups) <= 2 * 1_000 + 200  # two bodies (and their titles) at most
    assert index.count() == 6
    assert {h.id for h in index.search(request("표식3"), AS_GOV).hits} == {"d3"}
    # A document larger than a group is analysed alone, and indexed.
    groups.clear()
    index.upsert([doc("big", body * 5 + "거대표식")])
    assert len(groups) == 1
    assert [h.id for h in index.search(request("거대표식"), AS_GOV).hits] == ["big"]
    # update_access rebuilds from stored bodies the same way.
    groups.clear()
    missing = index.update_access(
        [doc(f"d{i}", "", readers={"gov", "x"}) for i in range(6)] + [doc("absent", "")]
    )
    assert missing == ["absent"]
    assert len(groups) >= 3
    assert {h.id for h in index.search(request("표식3"), AS_GOV).hits} == {"d3"}
    index.close()

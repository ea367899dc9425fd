"""The embedded index's generations (a rebuild beside the live index, then a swap):
the pointer file, reopening, a reading process following the swap, clean-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.analysis.korean import KoreanAnalyzer
from indexer.errors import IndexBusyError, RebuildInProgressError
from indexer.index.base import AccessFilter, SearchRequest
from indexer.index.tantivy_index import CURRENT_FILE, TantivyIndex
from indexer.query import parse_user_query
from tests.factories import index_doc as doc

AS_GOV = AccessFilter(frozenset({"gov"}))


def found(index: TantivyIndex, q: str) -> set[str]:
    return {h.id for h in index.search(SearchRequest(query=parse_user_query(q)), AS_GOV).hits}


def test_a_swapped_generation_is_what_the_index_reads_and_reopens(
    tmp_path: Path, korean_analyzer: KoreanAnalyzer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("indexer.index.tantivy_index.OLD_GENERATION_GRACE_SECONDS", 0.0)
    home = tmp_path / "ix"
    index = TantivyIndex(home, korean_analyzer)
    index.upsert([doc("old", "예산 보고서")])
    reader = TantivyIndex(home, korean_analyzer)  # another process, reading only
    assert found(reader, "예산") == {"old"}

    target = index.begin_rebuild()
    with pytest.raises(RebuildInProgressError):
        index.begin_rebuild()
    target.upsert([doc("old", "예산 보고서"), doc("rebuilt", "예산 집행")])
    index.upsert([doc("meanwhile", "예산 편성")])  # reaches both
    assert found(index, "예산") == {"old", "meanwhile"}  # the live one until the swap
    index.finish_rebuild()
    assert found(index, "예산") == {"old", "rebuilt", "meanwhile"}
    generation = (home / CURRENT_FILE).read_text().strip()
    assert generation.startswith("gen-") and (home / generation / "meta.json").exists()
    index.upsert([doc("after", "예산 결산")])  # written to the new generation
    assert found(index, "예산") == {"old", "rebuilt", "meanwhile", "after"}

    reader._pointer_checked = 0.0  # (it looks once a second)
    assert found(reader, "예산") == {"old", "rebuilt", "meanwhile", "after"}
    reader.close()
    index.close()
    # The legacy files of the home were deleted after the grace period.
    assert sorted(p.name for p in home.iterdir() if not p.name.startswith(".")) == sorted(
        [CURRENT_FILE, generation]
    )
    reopened = TantivyIndex(home, korean_analyzer)
    assert found(reopened, "예산") == {"old", "rebuilt", "meanwhile", "after"}
    reopened.close()


def test_an_aborted_rebuild_leaves_the_live_index_and_no_directory(
    tmp_path: Path, korean_analyzer: KoreanAnalyzer
) -> None:
    home = tmp_path / "ix"
    index = TantivyIndex(home, korean_analyzer)
    index.upsert([doc("a", "예산")])
    target = index.begin_rebuild()
    target.upsert([doc("b", "예산")])
    index.abort_rebuild()
    assert not any(p.name.startswith("gen-") for p in home.iterdir())
    assert not (home / CURRENT_FILE).exists()
    index.upsert([doc("c", "예산")])
    assert found(index, "예산") == {"a", "c"}
    index.close()


def test_only_the_process_holding_the_writer_can_rebuild(
    tmp_path: Path, korean_analyzer: KoreanAnalyzer
) -> None:
    home = tmp_path / "ix"
    server = TantivyIndex(home, korean_analyzer)
    server.upsert([doc("a", "예산")])  # holds the writer
    command = TantivyIndex(home, korean_analyzer)
    with pytest.raises(IndexBusyError):
        command.begin_rebuild()
    assert not any(p.name.startswith("gen-") for p in home.iterdir())
    command.close()
    server.close()

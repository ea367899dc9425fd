"""An indexing batch holds at most its budget of extracted text (issue 9, defect 7).

The outbox bounds a batch by files (count and bytes); the pipeline must also
bound it by the text they hold, since the memory of indexing follows the text
(and its tokens), and a compressed file can hold many times its size in text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crossdoc.settings import Settings
from crossdoc.wiring.api import Services, build_services
from indexer.index.base import AccessFilter, IndexDocument, SearchRequest
from indexer.pipeline import IndexingPipeline
from indexer.query import parse_user_query
from indexer.worker import drain_once
from services.bootstrap import bootstrap
from storage.ingest import BulkItem, StagedFile, accept_documents
from tests.conftest import fast_passwords

BUDGET = 30_000  # UTF-8 bytes of extracted text


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path / "data", demo=True, worker_batch_text_bytes=2 << 20)
    built = build_services(settings, passwords=fast_passwords())
    bootstrap(
        built.catalog, built.passwords.hash, admin_password="admin-password-for-tests", demo=True
    )
    yield built
    built.close()


def _text(marker: str, size: int) -> bytes:
    line = "예산 집행 현황을 점검하고 개선 방안을 보고하였다.\n".encode()
    return line * (size // len(line)) + f"{marker}\n".encode()


def _accept(services: Services, tmp_path: Path, files: dict[str, bytes]) -> list[str]:
    items = []
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content)
        staged = StagedFile(path, hashlib.sha256(content).hexdigest(), len(content), content[:8192])
        items.append(BulkItem(staged, name))
    docs = accept_documents(
        services.catalog,
        services.store,
        items,
        department="MOIS-REC",
        owner="user:admin",
        visibility="government",
    )
    return [d.id for d in docs]


def test_a_batch_over_its_text_budget_is_indexed_in_parts(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = IndexingPipeline(
        services.catalog,
        services.store,
        services.extractor,
        services.index,
        tmp_path / "spool",
        batch_text_bytes=BUDGET,
    )
    commits: list[list[str]] = []
    real_upsert = services.index.upsert

    def upsert(docs: Sequence[IndexDocument]) -> None:
        commits.append([d.id for d in docs])
        real_upsert(docs)

    monkeypatch.setattr(services.index, "upsert", upsert)
    files = {f"보고서{i}.txt": _text(f"표식{i}", 12_000) for i in range(5)}
    files["큰보고서.txt"] = _text("거대표식", 3 * BUDGET)  # larger than the budget alone
    ids = _accept(services, tmp_path, files)

    # One claim takes them all (the file bounds allow it): the text budget splits it.
    assert drain_once(services.catalog, pipeline, 256, batch_bytes=64 << 20) == 6
    assert services.catalog.outbox.backlog() == 0
    assert sorted(i for part in commits for i in part) == sorted(ids)
    assert len(commits) >= 3
    sizes = {i: len(c) for i, c in zip(ids, files.values(), strict=True)}
    for part in commits:
        # Each part holds at most the budget, unless it is one document alone.
        assert len(part) == 1 or sum(sizes[i] for i in part) <= BUDGET
    assert [ids[-1]] in commits

    docs = services.catalog.documents.get_many(ids)
    assert {d.status for d in docs} == {"indexed"}
    readers = IndexingPipeline.index_document(docs[0], None, [], datetime.now(UTC)).readers
    for i, doc_id in enumerate(ids[:-1]):
        hits = services.index.search(
            SearchRequest(query=parse_user_query(f"표식{i}")), AccessFilter(readers)
        ).hits
        assert [h.id for h in hits] == [doc_id]
    hits = services.index.search(
        SearchRequest(query=parse_user_query("거대표식")), AccessFilter(readers)
    ).hits
    assert [h.id for h in hits] == [ids[-1]]


def test_the_setting_reaches_the_pipeline(services: Services) -> None:
    assert services.pipeline.batch_text_bytes == 2 << 20

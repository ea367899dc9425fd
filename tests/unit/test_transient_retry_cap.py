"""Transient faults that outlast the retries (issue 10, deliverable 1).

An engine down (the search node, Tika server, the object store) defers indexing
with backoff. After `TRANSIENT_ATTEMPTS` faults in a row a pending document ends
`failed` with the reason in `status_detail`, so its uploader is told; its outbox
row stays, so once the engine is back the document ends `indexed` without anyone
acting. A document already indexed (an access change waiting) is left `indexed`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

import indexer.worker as worker_module
from indexer.errors import ExtractionUnavailableError, SearchUnavailableError
from indexer.pipeline import BatchReport
from indexer.worker import TRANSIENT_ATTEMPTS, drain_once
from storage.catalog.records import IndexOutcome
from storage.catalog.sql import SqlCatalog
from tests.unit.test_outbox_claims import add_documents


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[SqlCatalog]:
    c = SqlCatalog(f"sqlite:///{tmp_path / 'c.db'}")
    c.migrate()
    c.organisation.create_ministry("M1", "부")
    c.organisation.create_department("D1", "과", "M1")
    c.organisation.create_user("kim", "hash", "김", "D1", ["member"])
    yield c
    c.close()


class EnginePipeline:
    """Stands for the pipeline over an engine that is down until `down` is cleared."""

    def __init__(self, catalog: SqlCatalog, error: Exception) -> None:
        self.catalog = catalog
        self.error = error
        self.down = True
        self.calls = 0

    def process(self, document_ids: Sequence[str]) -> BatchReport:
        self.calls += 1
        if self.down:
            raise self.error
        docs = self.catalog.documents.get_many(list(document_ids))
        self.catalog.documents.mark_indexed_many(
            [IndexOutcome(d.id, d.revision, d.version, "indexed", "", None) for d in docs]
        )
        return BatchReport(indexed=list(document_ids))


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each retry due at once: the test counts attempts, not minutes.
    monkeypatch.setattr(worker_module, "backoff", lambda attempts: timedelta(0))


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (SearchUnavailableError("connection refused"), "검색 엔진"),
        (ExtractionUnavailableError("tika down"), "텍스트 추출"),
    ],
    ids=["search-node", "tika-server"],
)
def test_a_document_failed_by_an_engine_outage_is_indexed_when_it_returns(
    catalog: SqlCatalog, error: Exception, reason: str
) -> None:
    ids = add_documents(catalog, 2)
    pipeline = EnginePipeline(catalog, error)
    for _ in range(TRANSIENT_ATTEMPTS - 1):
        assert drain_once(catalog, pipeline, 10) == 2  # type: ignore[arg-type]
    # Retried, still within the cap: the documents wait, pending.
    assert {d.status for d in catalog.documents.get_many(ids)} == {"pending"}

    assert drain_once(catalog, pipeline, 10) == 2  # type: ignore[arg-type]
    docs = catalog.documents.get_many(ids)
    assert {d.status for d in docs} == {"failed"}
    for doc in docs:
        assert doc.status_detail.startswith("unavailable: ")
        assert reason in doc.status_detail and "automatically" in doc.status_detail
    # Not given up: the rows stay, and are retried (every few minutes in production).
    assert catalog.outbox.backlog() == 2
    assert drain_once(catalog, pipeline, 10) == 2  # type: ignore[arg-type]
    assert {d.status for d in catalog.documents.get_many(ids)} == {"failed"}

    pipeline.down = False  # the engine is back
    assert drain_once(catalog, pipeline, 10) == 2  # type: ignore[arg-type]
    docs = catalog.documents.get_many(ids)
    assert {(d.status, d.status_detail) for d in docs} == {("indexed", "")}
    assert catalog.outbox.backlog() == 0
    assert pipeline.calls == TRANSIENT_ATTEMPTS + 2


def test_an_indexed_document_waiting_for_an_access_change_stays_indexed(
    catalog: SqlCatalog,
) -> None:
    (doc_id,) = add_documents(catalog, 1)
    up = EnginePipeline(catalog, SearchUnavailableError("down"))
    up.down = False
    drain_once(catalog, up, 10)  # type: ignore[arg-type]
    assert catalog.documents.get(doc_id).status == "indexed"
    # Its access changes (an access-only row), and the search node is down.
    catalog.documents.set_acl(doc_id, "department", [], "kim")
    down = EnginePipeline(catalog, SearchUnavailableError("down"))
    for _ in range(TRANSIENT_ATTEMPTS + 1):
        drain_once(catalog, down, 10)  # type: ignore[arg-type]
    # Its text is in the index: it stays indexed; the access change is still retried.
    assert catalog.documents.get(doc_id).status == "indexed"
    assert catalog.outbox.backlog() == 1

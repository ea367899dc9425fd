"""The in-process worker under a stream of uploads: batches start at least
`min_batch_seconds` apart once it has caught up, so each carries what arrived
meanwhile; a document on an idle worker is taken at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from indexer.pipeline import BatchReport
from indexer.worker import InProcessWorker
from storage.catalog.records import IndexOutcome, NewBlob, NewDocument
from storage.catalog.sql import SqlCatalog


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[SqlCatalog]:
    c = SqlCatalog(f"sqlite:///{tmp_path / 'c.db'}")
    c.migrate()
    c.organisation.create_ministry("M1", "부")
    c.organisation.create_department("D1", "과", "M1")
    yield c
    c.close()


def add_document(catalog: SqlCatalog) -> str:
    sha = "a" * 64
    blob = NewBlob(f"blobs/{sha}", sha, 3, "a.txt", "text/plain", "text/plain")
    doc, _ = catalog.documents.create(
        NewDocument(blob=blob, title="t", department="D1", owner="kim", visibility="private")
    )
    return doc.id


class BatchPipeline:
    """Stands for the indexing pipeline: records each batch, marks it indexed."""

    def __init__(self, catalog: SqlCatalog) -> None:
        self.catalog = catalog
        self.batches: list[list[str]] = []
        self.processed = threading.Condition()

    def process(self, document_ids: Sequence[str]) -> BatchReport:
        docs = self.catalog.documents.get_many(list(document_ids))
        self.catalog.documents.mark_indexed_many(
            [IndexOutcome(d.id, d.revision, d.version, "indexed", "", None) for d in docs]
        )
        with self.processed:
            self.batches.append(list(document_ids))
            self.processed.notify_all()
        return BatchReport(indexed=list(document_ids))

    def wait_for(self, count: int) -> None:
        with self.processed:
            assert self.processed.wait_for(
                lambda: sum(map(len, self.batches)) >= count, timeout=30
            ), f"indexed {self.batches}, expected {count} documents"


def _worker(catalog: SqlCatalog, pipeline: BatchPipeline, gap: float) -> InProcessWorker:
    return InProcessWorker(
        catalog,
        pipeline,  # type: ignore[arg-type]
        idle_seconds=30,  # only a notification wakes it in these tests
        min_batch_seconds=gap,
    )


def test_documents_streaming_in_share_the_next_batch(catalog: SqlCatalog) -> None:
    pipeline = BatchPipeline(catalog)
    worker = _worker(catalog, pipeline, gap=1.0)
    worker.start()
    try:
        first = add_document(catalog)
        worker.notify([first])
        pipeline.wait_for(1)
        rest = []
        for _ in range(3):  # a stream: each notified, a moment apart
            rest.append(add_document(catalog))
            worker.notify(rest[-1:])
            time.sleep(0.1)
        pipeline.wait_for(4)
    finally:
        worker.stop()
    assert pipeline.batches == [[first], rest]


def test_a_document_on_an_idle_worker_is_taken_at_once(catalog: SqlCatalog) -> None:
    pipeline = BatchPipeline(catalog)
    worker = _worker(catalog, pipeline, gap=30.0)
    worker.start()
    try:
        time.sleep(0.2)  # the worker's first pass found nothing: idle
        started = time.monotonic()
        worker.notify([add_document(catalog)])
        pipeline.wait_for(1)
        assert time.monotonic() - started < 10  # not the 30 s gap
    finally:
        worker.stop()


def test_stop_is_not_held_by_the_gap(catalog: SqlCatalog) -> None:
    pipeline = BatchPipeline(catalog)
    worker = _worker(catalog, pipeline, gap=60.0)
    worker.start()
    worker.notify([add_document(catalog)])
    pipeline.wait_for(1)
    started = time.monotonic()
    worker.stop()
    assert time.monotonic() - started < 10

"""The Celery task queue's parts that need no running Redis: the task body over the
outbox drainer (`InProcessWorker.drain_due`), the API's dispatcher when the broker is
down, and the configurations `crossdoc worker` refuses.

The live legs (a real Redis and real `crossdoc worker` processes) are in
tests/api/test_celery_worker.py and tests/api/test_celery_faults.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from crossdoc.settings import Settings
from crossdoc.wiring.core import ConfigurationError
from crossdoc.wiring.worker import check_celery_settings
from indexer.celery_queue import BrokerError, CeleryDispatcher, CeleryQueue
from indexer.pipeline import BatchReport
from indexer.worker import InProcessWorker
from storage.catalog.records import IndexOutcome
from storage.catalog.sql import SqlCatalog
from tests.conftest import free_port
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


class BatchPipeline:
    """Stands for the pipeline: marks its batches indexed, records them, and how many
    ran at once (`pause` seconds each)."""

    def __init__(self, catalog: SqlCatalog, pause: float = 0.0) -> None:
        self.catalog = catalog
        self.pause = pause
        self.batches: list[list[str]] = []
        self.running = 0
        self.most_at_once = 0
        self.on_batch: list[object] = []
        self._lock = threading.Lock()

    def process(self, document_ids: Sequence[str]) -> BatchReport:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(self.pause)
            docs = self.catalog.documents.get_many(list(document_ids))
            self.catalog.documents.mark_indexed_many(
                [IndexOutcome(d.id, d.revision, d.version, "indexed", "", None) for d in docs]
            )
            with self._lock:
                self.batches.append(list(document_ids))
            for hook in self.on_batch:
                hook()  # type: ignore[operator]
            return BatchReport(indexed=list(document_ids))
        finally:
            with self._lock:
                self.running -= 1


def test_a_task_drains_every_due_row_batch_after_batch_as_this_process(
    catalog: SqlCatalog,
) -> None:
    ids = add_documents(catalog, 5)
    pipeline = BatchPipeline(catalog)
    worker = InProcessWorker(catalog, pipeline, batch_size=2)  # type: ignore[arg-type]
    # A task's body runs without the drainer's own loop (e.g. before it started).
    assert worker.drain_due() == 5
    assert [len(b) for b in pipeline.batches] == [2, 2, 1]
    assert sorted(i for b in pipeline.batches for i in b) == sorted(ids)
    assert catalog.outbox.backlog() == 0
    # The claims named this process, registered as an outbox owner.
    assert [o.id for o in catalog.outbox.owners()] == [worker.keeper.owner.id]
    assert worker.drain_due() == 0  # nothing left: a late message costs one query
    worker.stop()
    assert catalog.outbox.owners() == []


def test_a_task_ends_after_its_batch_when_the_worker_is_asked_to_stop(
    catalog: SqlCatalog,
) -> None:
    add_documents(catalog, 5)
    pipeline = BatchPipeline(catalog)
    worker = InProcessWorker(catalog, pipeline, batch_size=2)  # type: ignore[arg-type]
    pipeline.on_batch.append(worker.request_stop)  # SIGTERM arrives during the first batch
    assert worker.drain_due() == 2
    assert catalog.outbox.backlog() == 3  # left due, for the next worker
    worker.stop()
    assert len(catalog.outbox.due_ids()) == 3


def test_tasks_and_the_reconciler_never_run_two_batches_at_once(catalog: SqlCatalog) -> None:
    # The extractor's child, the analysis child and the index writer serve one
    # batch at a time: a task and the drainer's own loop take turns.
    ids = add_documents(catalog, 24)
    pipeline = BatchPipeline(catalog, pause=0.02)
    worker = InProcessWorker(
        catalog,
        pipeline,  # type: ignore[arg-type]
        batch_size=1,
        idle_seconds=0.01,
    )
    worker.start()
    tasks = [threading.Thread(target=worker.drain_due) for _ in range(3)]
    for task in tasks:
        task.start()
    for task in tasks:
        task.join(30)
    worker.stop()
    assert sorted(i for b in pipeline.batches for i in b) == sorted(ids)
    assert pipeline.most_at_once == 1


def dead_broker() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def test_the_dispatcher_never_raises_nor_blocks_when_the_broker_is_down() -> None:
    dispatcher = CeleryDispatcher(CeleryQueue(dead_broker()))
    dispatcher.start()
    try:
        started = time.monotonic()
        for i in range(50):
            dispatcher.notify([f"doc-{i}"])  # on the request path, after the commit
        assert time.monotonic() - started < 0.5
        with pytest.raises(BrokerError, match="does not answer"):
            dispatcher.ping()  # /readyz says "not ready"
    finally:
        started = time.monotonic()
        dispatcher.close(timeout=2)
        assert time.monotonic() - started < 10


def test_the_broker_password_is_kept_out_of_messages() -> None:
    port = free_port()
    queue = CeleryQueue(f"redis://:s3cret-pass@127.0.0.1:{port}/0")
    with pytest.raises(BrokerError) as caught:
        queue.ping()
    assert "s3cret-pass" not in str(caught.value)
    assert f"127.0.0.1:{port}" in str(caught.value)
    queue.close()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"broker_url": "amqp://guest@localhost//"}, "redis://"),
        ({"broker_url": "redis://127.0.0.1:6379/0", "worker_concurrency": 2}, "shared search"),
    ],
)
def test_worker_configurations_that_cannot_run_are_refused(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    settings = Settings(data_dir=tmp_path, **changes)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=message):
        check_celery_settings(settings)


def test_one_worker_process_on_the_embedded_index_is_accepted(tmp_path: Path) -> None:
    check_celery_settings(Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/0"))

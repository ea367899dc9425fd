"""Celery on Redis, live: the API with `CROSSDOC_BROKER_URL` indexes nothing itself;
real `crossdoc worker` processes index what it accepts, from the task messages and,
when messages are lost, from the outbox (the reconciler).

Needs `CROSSDOC_TEST_REDIS_URL` (`infra/dev/engines up redis`); skips without it.
About 30 s on 2 cores, and 20 s more for the PostgreSQL leg (which needs
`CROSSDOC_TEST_DATABASE_URL` too). The fault trials are in test_celery_faults.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from indexer.celery_queue import QUEUE
from tests.api.worker_process import WorkerProcess, documents, redis_url, wait_settled
from tests.conftest import Server, free_port, start_server
from tests.pg_databases import ThrowawayDatabases

pytestmark = pytest.mark.embedded_only(
    "it builds the Celery stack it needs itself (its own Redis database, PostgreSQL leg and "
    "workers)"
)

__all__ = ["redis_url"]  # the fixture, used by name

DEPARTMENT = "MOIS-CELERY"
USER = "celery.kim"


@pytest.fixture
def api(tmp_path: Path, redis_url: str) -> Iterator[Server]:
    """The API on the embedded engines with Celery as its dispatcher (in this process)."""
    for server in start_server(tmp_path, broker_url=redis_url):
        server.user(USER, DEPARTMENT)
        yield server


def upload(api: Server, text: str, filename: str = "공문.txt") -> str:
    doc = api.upload(USER, text.encode(), filename, visibility="ministry", wait=False)
    assert doc["status"] == "pending"
    return str(doc["id"])


def search_ids(api: Server, q: str) -> set[str]:
    return {hit["id"] for hit in api.search(USER, q=q)["hits"]}


def test_uploads_are_indexed_by_a_separate_worker_from_its_task_messages(
    api: Server, redis_url: str, tmp_path: Path
) -> None:
    data = api.services.settings.data_dir
    with httpx.Client(base_url=api.base_url) as http:
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text  # Redis answers
    first = upload(api, "출생신고 제도 개선 계획 보고서")
    time.sleep(3)
    # The API process indexes nothing itself: with no worker, the document waits.
    assert {d.id: d.status for d in documents(api.services.catalog)} == {first: "pending"}
    assert redis.Redis.from_url(redis_url).llen(QUEUE) >= 1  # its task is queued

    # The reconciler would take 10 minutes: what follows is the task messages' doing.
    worker = WorkerProcess(data, redis_url, reconcile_seconds=600)
    try:
        wait_settled(api.services.catalog, {first}, timeout=60)
        time.sleep(1)  # the worker is idle now, its first pass done
        later = {upload(api, f"지방자치단체 예산 집행 협조 요청 {i}호") for i in range(3)}
        docs = wait_settled(api.services.catalog, later, timeout=30)
        assert {d.status for d in docs} == {"indexed"}
        # The API's searches see what the worker indexed (another process's commits).
        deadline = time.monotonic() + 30
        while search_ids(api, "예산 집행") != later:
            assert time.monotonic() < deadline, search_ids(api, "예산 집행")
            time.sleep(0.25)
        assert search_ids(api, "출생신고") == {first}
    finally:
        code = worker.stop(signal.SIGTERM)
    assert code == 0, worker.output()[-3000:]
    assert "Warm shutdown" in worker.output()
    # A clean stop hands back the worker's claims and removes it as an outbox owner.
    assert api.services.catalog.outbox.owners() == []
    assert "Traceback" not in worker.output()


def test_tasks_lost_with_the_broker_are_indexed_by_the_reconciler(
    api: Server, redis_url: str
) -> None:
    data = api.services.settings.data_dir
    ids = {upload(api, f"국민 디자인단 운영 결과 {i}") for i in range(4)}
    broker = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 10
    while broker.llen(QUEUE) == 0:  # published from the API's background thread
        assert time.monotonic() < deadline, "no task message was queued"
        time.sleep(0.05)
    broker.flushdb()  # Redis restarted empty: the queued tasks are gone
    assert broker.llen(QUEUE) == 0
    worker = WorkerProcess(data, redis_url, reconcile_seconds=1)
    try:
        docs = wait_settled(api.services.catalog, ids, timeout=60)
        assert {d.status for d in docs} == {"indexed"}
        # And while it runs: messages lost again, the next pass finds the rows.
        broker.flushdb()
        more = {upload(api, f"행정안전부 공문 협조 {i}") for i in range(3)}
        broker.flushdb()
        docs = wait_settled(api.services.catalog, more, timeout=60)
        assert {d.status for d in docs} == {"indexed"}
    finally:
        code = worker.stop(signal.SIGINT)  # Ctrl+C is a clean stop too
    assert code == 0, worker.output()[-3000:]
    assert api.services.catalog.outbox.owners() == []


def test_the_api_is_not_ready_while_the_broker_does_not_answer_yet_keeps_uploads(
    tmp_path: Path,
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    for api in start_server(tmp_path, broker_url=dead):
        api.user(USER, DEPARTMENT)
        with httpx.Client(base_url=api.base_url) as http:
            ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "not_ready"
        assert "worker is not available" in ready.json()["error"]["message"]
        # An upload is accepted all the same: the outbox holds it for the workers.
        doc_id = upload(api, "브로커 장애 중 업로드")
        assert api.services.catalog.outbox.backlog() == 1
        assert api.services.catalog.documents.get(doc_id).status == "pending"


PG_ENV = "CROSSDOC_TEST_DATABASE_URL"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test's own (dropped afterwards)."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL leg: set {PG_ENV} (`infra/dev/engines up postgres` starts one "
            "and prints it)"
        )
    with ThrowawayDatabases(url, "crossdoc_celery") as dbs:
        yield dbs.new()


@pytest.mark.slow
def test_workers_index_over_the_postgresql_catalog(
    tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    # The scale-out catalog: the API and the worker share PostgreSQL, and a worker
    # killed mid-batch leaves its claims to the next one (SKIP LOCKED claims).
    for api in start_server(tmp_path, broker_url=redis_url, database_url=postgres_url):
        api.user(USER, DEPARTMENT)
        data = api.services.settings.data_dir
        env = {"CROSSDOC_DATABASE_URL": postgres_url, "CROSSDOC_WORKER_BATCH_SIZE": "2"}
        worker = WorkerProcess(data, redis_url, reconcile_seconds=2, extra_env=env)
        ids = {upload(api, f"국가기록원 기록물 이관 공문 {i}호") for i in range(8)}
        outbox = api.services.catalog.outbox
        deadline = time.monotonic() + 30
        while outbox.backlog() == len(outbox.due_ids()) and time.monotonic() < deadline:
            time.sleep(0.01)  # until the worker holds a batch
        worker.kill()
        worker = WorkerProcess(data, redis_url, reconcile_seconds=2, extra_env=env)
        try:
            docs = wait_settled(api.services.catalog, ids, timeout=60)
            assert {d.status for d in docs} == {"indexed"}
            deadline = time.monotonic() + 30
            while search_ids(api, "기록물 이관") != ids:
                assert time.monotonic() < deadline, search_ids(api, "기록물 이관")
                time.sleep(0.25)
        finally:
            assert worker.stop() == 0, worker.output()[-3000:]
        assert outbox.owners() == []


def test_workers_keep_indexing_while_the_broker_is_down(tmp_path: Path) -> None:
    # No Redis at all (never up): the API accepts, the worker waits for the broker
    # and meanwhile indexes from the outbox.
    dead = f"redis://127.0.0.1:{free_port()}/0"
    for api in start_server(tmp_path, broker_url=dead):
        api.user(USER, DEPARTMENT)
        data = api.services.settings.data_dir
        worker = WorkerProcess(data, dead, reconcile_seconds=1, ready_line="indexing worker ready")
        try:
            ids = {upload(api, f"브로커 없이 색인 {i}") for i in range(3)}
            docs = wait_settled(api.services.catalog, ids, timeout=60)
            assert {d.status for d in docs} == {"indexed"}
            assert worker.process.poll() is None  # still waiting for Redis, not exited
        finally:
            assert worker.stop() == 0, worker.output()[-3000:]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CROSSDOC_BROKER_URL": "amqp://guest@127.0.0.1//"}, "redis://"),
        (
            {"CROSSDOC_BROKER_URL": "redis://127.0.0.1:1/0", "CROSSDOC_WORKER_CONCURRENCY": "2"},
            "shared search index",
        ),
    ],
)
def test_crossdoc_worker_refuses_what_it_cannot_run(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "crossdoc", "worker"],
        env=dict(os.environ, CROSSDOC_DATA_DIR=str(tmp_path / "data"), **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "configuration error" in result.stderr
    assert message in " ".join(result.stderr.split())  # rich wraps lines

"""Fault trials on Celery and Redis (issue 10, item 8), repeated, with real processes:

- the `crossdoc worker` SIGKILLed mid-batch, then restarted;
- Redis restarted empty (a real `redis-server`, killed and started again on its
  port, without persistence) while tasks are queued and the worker is busy.

After the trials every upload answered 202 is indexed, or failed with a reason; it
is served back byte for byte; and it is indexed once (the index holds as many
entries as the catalog has indexed documents, each at the catalog's revision). No
process of a killed worker is left.

Both stacks (tests/api/conftest.py): the embedded engines, and the full stack
(OpenSearch, Tika server, PostgreSQL, S3), with this module's own broker and workers.

Needs `CROSSDOC_TEST_REDIS_URL` (`infra/dev/engines up redis`); the restart trials
also need `redis-server` on the PATH (the engines' Debian package) for a Redis of
their own they may kill. About 2 minutes on 2 cores.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from indexer.celery_queue import QUEUE
from tests.api.serve_process import marked_processes
from tests.api.worker_process import (
    WorkerProcess,
    documents,
    redis_url,
    redis_url_or_skip,
    wait_settled,
)
from tests.conftest import Server, free_port, start_server

__all__ = ["redis_url"]  # the fixture, used by name

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
]

DEPARTMENT = "MOIS-FAULT"
USER = "fault.lee"
SEED = int(os.environ.get("CROSSDOC_CRASH_SEED", "20261130"))
KILL_TRIALS = 5
RESTART_TRIALS = 3
#: Small batches, so that a kill lands inside one with others still to come.
WORKER_ENV = {"CROSSDOC_WORKER_BATCH_SIZE": "3"}

WORDS = ["행정안전부", "출생신고", "제도", "개선", "국민", "예산", "집행", "공문", "협조", "요청"]


def _content(rng: random.Random, n: int) -> tuple[str, bytes]:
    """A unique file: Korean text, or HTML (extracted by the sandboxed child)."""
    words = " ".join(rng.choice(WORDS) for _ in range(40))
    if n % 2:
        return f"문서{n}.html", (
            f"<html><head><title>보고서 {n}</title></head><body><p>{words}</p>"
            f"<p>일련번호 {n}</p></body></html>"
        ).encode()
    return f"문서{n}.txt", f"{words}\n일련번호 {n}\n".encode()


class Uploads:
    """Uploads answered 202: document id → SHA-256 of the bytes sent."""

    def __init__(self, api: Server, rng: random.Random) -> None:
        self.api = api
        self.rng = rng
        self.accepted: dict[str, str] = {}

    def add(self, count: int) -> set[str]:
        ids = set()
        for _ in range(count):
            name, content = _content(self.rng, len(self.accepted))
            doc = self.api.upload(USER, content, name, visibility="ministry", wait=False)
            self.accepted[doc["id"]] = hashlib.sha256(content).hexdigest()
            ids.add(str(doc["id"]))
        return ids


@pytest.fixture
def api(tmp_path: Path, redis_url: str) -> Iterator[Server]:
    # On the full stack leg (tests/api/conftest.py) the engines are OpenSearch, Tika
    # server, PostgreSQL and S3; the broker and the workers are this test's own.
    for server in start_server(tmp_path, broker_url=redis_url):
        server.user(USER, DEPARTMENT)
        yield server


def assert_nothing_lost(api: Server, uploads: Uploads, timeout: float = 120) -> dict[str, int]:
    """Every 202 settled with a reason if failed, byte for byte, indexed once."""
    docs = wait_settled(api.services.catalog, set(uploads.accepted), timeout=timeout)
    assert {d.id for d in documents(api.services.catalog)} == set(
        uploads.accepted
    )  # nothing stored twice
    unexplained = [d.id for d in docs if d.status == "failed" and not d.status_detail]
    assert unexplained == [], f"seed {SEED}: failed without a reason: {unexplained}"
    with api.client(USER) as http:
        for doc_id, digest in uploads.accepted.items():
            r = http.get(f"/documents/{doc_id}/content")
            assert r.status_code == 200, (doc_id, r.text)
            assert hashlib.sha256(r.content).hexdigest() == digest, f"seed {SEED}: {doc_id}"
    indexed = {d.id: d.revision for d in docs if d.status == "indexed"}
    api.services.index.refresh()  # the worker's commits, seen by this process now
    assert api.services.index.count() == len(indexed)
    assert api.services.index.revisions(list(indexed)) == indexed
    return {"indexed": len(indexed), "failed": len(docs) - len(indexed)}


def _claimed(api: Server) -> int:
    """Outbox rows held by a worker now (claimed, not yet due again)."""
    outbox = api.services.catalog.outbox
    return outbox.backlog() - len(outbox.due_ids())


def test_a_worker_killed_mid_batch_loses_nothing(api: Server, redis_url: str) -> None:
    rng = random.Random(SEED)
    data = api.services.settings.data_dir
    uploads = Uploads(api, rng)
    mid_batch = 0
    leftovers: list[int] = []
    started = time.monotonic()
    for _trial in range(KILL_TRIALS):
        worker = WorkerProcess(
            data, redis_url, reconcile_seconds=2, extra_env={**api.engine_env, **WORKER_ENV}
        )
        uploads.add(8)
        deadline = time.monotonic() + 30
        while not _claimed(api) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.3))
        mid_batch += bool(_claimed(api))
        worker.kill()
        deadline = time.monotonic() + 10
        while (left := marked_processes(worker.marker)) and time.monotonic() < deadline:
            time.sleep(0.1)
        leftovers += left
    assert leftovers == [], f"processes outlived a killed worker: {leftovers}"
    final = WorkerProcess(
        data, redis_url, reconcile_seconds=2, extra_env={**api.engine_env, **WORKER_ENV}
    )
    try:
        outcome = assert_nothing_lost(api, uploads)
    finally:
        assert final.stop() == 0
    assert mid_batch >= KILL_TRIALS // 2, f"seed {SEED}: only {mid_batch} kills mid-batch"
    print(
        f"celery kill trials: {KILL_TRIALS} SIGKILLs ({mid_batch} mid-batch), "
        f"{len(uploads.accepted)} uploads, {outcome}, 0 lost, "
        f"{time.monotonic() - started:.0f} s (seed {SEED})"
    )


class RedisServer:
    """A `redis-server` of this test's own (no persistence), to kill and start again."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip(
                "redis-server is not on the PATH (`infra/dev/engines up redis` installs it)"
            )
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", str(self.workdir),
                "--save", "",
                "--appendonly", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(30)
            self.process = None

    def queued(self) -> int:
        client = redis.Redis.from_url(self.url, socket_timeout=5)
        try:
            return int(client.llen(QUEUE))
        finally:
            client.close()


def test_redis_restarted_empty_with_tasks_queued_loses_nothing(tmp_path: Path) -> None:
    redis_url_or_skip()  # the engines are installed (and so is redis-server)
    rng = random.Random(SEED + 1)
    broker = RedisServer(tmp_path / "redis")
    try:
        for api in start_server(tmp_path, broker_url=broker.url):
            api.user(USER, DEPARTMENT)
            data = api.services.settings.data_dir
            uploads = Uploads(api, rng)
            worker = WorkerProcess(
                data, broker.url, reconcile_seconds=3, extra_env={**api.engine_env, **WORKER_ENV}
            )
            lost_messages = 0
            try:
                for _trial in range(RESTART_TRIALS):
                    # The worker is busy (stopped): tasks pile up in Redis.
                    worker.process.send_signal(signal.SIGSTOP)
                    queued = uploads.add(6)
                    deadline = time.monotonic() + 10
                    while broker.queued() == 0:
                        assert time.monotonic() < deadline, "no task was queued"
                        time.sleep(0.05)
                    lost_messages += broker.queued()
                    broker.kill()  # Redis restarted empty: the queued tasks are gone
                    during = uploads.add(2)  # uploads while Redis is down: still 202
                    # (No check that the queue is empty now: the API's publisher may
                    # already have sent the notifications of `during` again.)
                    broker.start()
                    worker.process.send_signal(signal.SIGCONT)
                    after = uploads.add(2)  # the API publishes again after the restart
                    wait_settled(api.services.catalog, queued | during | after, timeout=90)
                with httpx.Client(base_url=api.base_url) as http:
                    assert http.get("/readyz").status_code == 200  # reconnected
                outcome = assert_nothing_lost(api, uploads)
            finally:
                worker.process.send_signal(signal.SIGCONT)
                code = worker.stop()
            assert code == 0, worker.output()[-3000:]
            print(
                f"celery redis restart trials: {RESTART_TRIALS} restarts, {lost_messages} "
                f"queued messages lost with Redis, {len(uploads.accepted)} uploads, "
                f"{outcome}, 0 lost (seed {SEED + 1})"
            )
    finally:
        broker.kill()

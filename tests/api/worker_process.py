"""`crossdoc worker` (Celery on Redis) as a real process, for the live tests.

The broker is the real Redis of `CROSSDOC_TEST_REDIS_URL` (`infra/dev/engines up
redis`); without it the tests that use `redis_url` skip, naming the variable.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from storage.catalog.ports import CatalogStore
from storage.catalog.records import DocumentRecord
from tests.conftest import ADMIN_PASSWORD

REDIS_ENV = "CROSSDOC_TEST_REDIS_URL"


def redis_url_or_skip() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(
            f"Celery leg: set {REDIS_ENV} (`infra/dev/engines up redis` starts Redis and prints it)"
        )
    return url


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The test Redis, emptied before and after (no task of another test is left)."""
    url = redis_url_or_skip()
    client = redis.Redis.from_url(url, socket_timeout=10)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


class WorkerProcess:
    """`crossdoc worker` on `data_dir` with `broker_url`, started when the constructor
    returns (its log shows `ready_line`: by default, the Celery worker ready)."""

    def __init__(
        self,
        data_dir: Path,
        broker_url: str,
        *,
        reconcile_seconds: float = 2.0,
        start_timeout: float = 90.0,
        extra_env: dict[str, str] | None = None,
        ready_line: str = " ready.",
    ) -> None:
        self.marker = uuid.uuid4().hex
        env = dict(
            os.environ,
            CROSSDOC_DATA_DIR=str(data_dir),
            CROSSDOC_DEMO="false",
            CROSSDOC_ADMIN_PASSWORD=ADMIN_PASSWORD,
            CROSSDOC_BROKER_URL=broker_url,
            CROSSDOC_WORKER_RECONCILE_SECONDS=str(reconcile_seconds),
            CROSSDOC_TEST_MARKER=self.marker,
            **(extra_env or {}),
        )
        self.log = data_dir.parent / f"worker-{self.marker[:8]}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "crossdoc", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.start_timeout = start_timeout
        self.wait_ready(ready_line)

    def wait_ready(self, ready_line: str = " ready.") -> None:
        """Wait until the log shows `ready_line` (an empty one: return at once)."""
        deadline = time.monotonic() + self.start_timeout
        while ready_line not in self.output():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.kill()
                raise AssertionError(f"the worker did not start: {self.output()[-3000:]}")
            time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Ask the worker to stop (as an operator or a supervisor would); its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"the worker did not stop on {sig.name}: {self.output()[-3000:]}"
            ) from None


def documents(catalog: CatalogStore) -> list[DocumentRecord]:
    """Every document of the catalog, as it stands now (written by other processes too)."""
    ids = [i for batch in catalog.documents.all_ids() for i in batch]
    return catalog.documents.get_many(ids, include_deleted=True)


def wait_settled(catalog: CatalogStore, ids: set[str], timeout: float) -> list[DocumentRecord]:
    """Wait until every document of `ids` is indexed or failed; their records."""
    deadline = time.monotonic() + timeout
    while True:
        docs = [d for d in documents(catalog) if d.id in ids]
        if len(docs) == len(ids) and all(d.status in ("indexed", "failed") for d in docs):
            return docs
        if time.monotonic() > deadline:
            late = sorted(
                f"{d.id}:{d.status}" for d in docs if d.status not in ("indexed", "failed")
            )
            raise AssertionError(
                f"{len(late)} documents not settled in {timeout:.0f} s: {late[:10]} "
                f"(of {len(ids)}; {len(docs)} in the catalog)"
            )
        time.sleep(0.25)

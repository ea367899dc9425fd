"""`crossdoc serve --workers 2` as real processes: two API processes on one port and
one indexing process, under the supervisor.

To aim a request at one API process, the test stops the other (SIGSTOP): the two
share one listening socket, so a stopped process accepts nothing and the running
one takes every new connection.

About 40-60 s on two busy cores (the processes start once).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from crossdoc.settings import Settings
from storage.catalog.sql import SqlCatalog
from tests.api.serve_process import (
    UPLOADER,
    descendants,
    marked_processes,
    prepare_data_dir,
)
from tests.conftest import ADMIN_PASSWORD, PASSWORD, free_port

pytestmark = pytest.mark.slow

STARTED = re.compile(r"started (\w+-\d+) \(pid (\d+)\)")
#: Sign-in failures allowed per user: small, so the test crosses it quickly.
FAILURES = 4


class WorkersServer:
    def __init__(self, data_dir: Path, workers: int = 2, start_timeout: float = 120) -> None:
        self.marker = uuid.uuid4().hex
        port = str(free_port())
        self.base = f"http://127.0.0.1:{port}"
        env = dict(
            os.environ,
            CROSSDOC_DATA_DIR=str(data_dir),
            CROSSDOC_DEMO="false",
            CROSSDOC_ADMIN_PASSWORD=ADMIN_PASSWORD,
            CROSSDOC_RATE_SIGN_IN_FAILURES_PER_USER=str(FAILURES),
            CROSSDOC_TEST_MARKER=self.marker,
        )
        env.pop("CROSSDOC_BROKER_URL", None)
        self.log = data_dir.parent / "serve.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "crossdoc",
                    "serve",
                    "--workers",
                    str(workers),
                    "--port",
                    port,
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_ready(start_timeout)
        self.token = self.sign_in(UPLOADER, PASSWORD).json()["access_token"]

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"not ready: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def children(self) -> dict[str, int]:
        """The latest pid of each child, by label (`api-1`, `api-2`, `indexer-1`)."""
        return {label: int(pid) for label, pid in STARTED.findall(self.log.read_text())}

    def wait_restarted(self, label: str, old: int, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while (pid := self.children().get(label)) == old:
            assert time.monotonic() < deadline, f"{label} was not started again"
            time.sleep(0.2)
        assert pid is not None
        return pid

    def sign_in(self, username: str, password: str) -> httpx.Response:
        # A new connection each time: it goes to whichever process accepts it.
        return httpx.post(
            f"{self.base}/api/v1/auth/token",
            data={"username": username, "password": password},
            timeout=60,
        )

    def search(self, word: str) -> dict[str, Any]:
        r = httpx.get(
            f"{self.base}/api/v1/search",
            params={"q": word},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        found: dict[str, Any] = r.json()
        return found

    def upload(self, text: str) -> str:
        r = httpx.post(
            f"{self.base}/api/v1/documents",
            files={"file": ("note.txt", text.encode())},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        for pid in marked_processes(self.marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def only(server: WorkersServer, label: str) -> Iterator[None]:
    """Every new connection goes to the API process `label` (the others are stopped)."""
    others = [pid for name, pid in server.children().items() if name.startswith("api-")]
    others = [pid for pid in others if pid != server.children()[label]]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)


def wait_found(server: WorkersServer, word: str, doc_id: str, timeout: float = 30) -> float:
    """Seconds until a search for `word` finds `doc_id` (fails after `timeout`)."""
    start = time.monotonic()
    while True:
        if doc_id in [h["id"] for h in server.search(word)["hits"]]:
            return time.monotonic() - start
        assert time.monotonic() - start < timeout, f"{doc_id} not searchable in {timeout}s"
        time.sleep(0.1)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[WorkersServer]:
    data = tmp_path / "data"
    prepare_data_dir(data)
    s = WorkersServer(data)
    try:
        yield s
    finally:
        s.stop()


def test_two_api_processes_one_indexer_shared_limits_restarts_and_stop(
    server: WorkersServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    children = server.children()
    assert set(children) == {"api-1", "api-2", "indexer-1"}
    assert set(children.values()) <= descendants(server.process.pid)
    # Only the indexing process extracts: an API process, asked whether it is ready,
    # starts no extraction child of its own (it did, ~100 MB each).
    for label in ("api-1", "api-2"):
        with only(server, label):
            assert httpx.get(f"{server.base}/readyz", timeout=30).status_code == 200
        assert descendants(children[label]) == set(), label

    # A document uploaded through one process is searchable through both.
    with only(server, "api-1"):
        doc = server.upload("출생신고 안내 문서 가나다라마바사")
    for label in ("api-1", "api-2"):
        with only(server, label):
            wait_found(server, "가나다라마바사", doc)

    # The sign-in lockout counts failures across both processes: FAILURES in all,
    # not FAILURES in each.
    half = FAILURES // 2
    for label in ("api-1", "api-2"):
        with only(server, label):
            for _ in range(half):
                assert server.sign_in(UPLOADER, "wrong-password").status_code == 401
    for label in ("api-1", "api-2"):
        with only(server, label):
            locked = server.sign_in(UPLOADER, "wrong-password")
            assert locked.status_code == 429, locked.text

    # A killed API process is replaced; the other serves meanwhile.
    old = server.children()["api-1"]
    os.kill(old, signal.SIGKILL)
    assert server.search("가나다라마바사")["total"] == 1
    new = server.wait_restarted("api-1", old)
    server.wait_ready(60)
    with only(server, "api-1"):
        assert server.search("가나다라마바사")["total"] == 1

    # A killed indexer is replaced, and indexes what comes next.
    old = server.children()["indexer-1"]
    os.kill(old, signal.SIGKILL)
    server.wait_restarted("indexer-1", old)
    second = server.upload("두번째 문서 아자차카타파하")
    wait_found(server, "아자차카타파하", second, timeout=60)

    # Both processes audit at once (searches in parallel): one hash chain, unbroken.
    with ThreadPoolExecutor(4) as pool:
        assert all(
            t == 1 for t in pool.map(lambda _: server.search("가나다라마바사")["total"], range(20))
        )

    # SIGTERM stops every child, and the supervisor exits 0.
    assert new in descendants(server.process.pid)
    server.process.terminate()
    assert server.process.wait(90) == 0
    deadline = time.monotonic() + 10
    while (left := marked_processes(server.marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left
    catalog = SqlCatalog(Settings(data_dir=data_dir).resolved_database_url)
    try:
        check = catalog.audit.verify_chain()
        assert check.ok, check
        assert check.checked > 20
    finally:
        catalog.close()

"""The second site over HTTP: uploads copied to the replica under the same key, the
measured recovery point (`/admin/replication`, `/metrics`), a replica that goes away
(async: uploads go on and the backlog drains when it returns; sync: 503 and nothing
recorded), and the fire: the primary data directory deleted mid-load."""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from storage.objectstore.base import blob_key_for
from tests.conftest import Server, start_server

UPLOADER = "rep.kim"
DEPARTMENT = "MOIS-REP"


def _server(tmp_path: Path, mode: str) -> Iterator[tuple[Server, Path]]:
    replica = tmp_path / "site-b"
    replica.mkdir()
    for server in start_server(
        tmp_path, replica_url=f"file://{replica}", replication=mode, rate_limits=False
    ):
        server.user(UPLOADER, DEPARTMENT)
        yield server, replica


@pytest.fixture
def async_server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    yield from _server(tmp_path, "async")


@pytest.fixture
def sync_server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    yield from _server(tmp_path, "sync")


def _status(server: Server) -> dict[str, Any]:
    with server.client("admin") as c:
        r = c.get("/admin/replication")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


def _wait_drained(server: Server, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = _status(server)
        if status["backlog_items"] == 0:
            return status
        assert time.monotonic() < deadline, f"backlog not drained in {timeout}s: {status}"
        time.sleep(0.2)


def _upload(server: Server, content: bytes) -> httpx.Response:
    with server.client(UPLOADER) as c:
        return c.post("/documents", files={"file": ("기록.txt", content)})


def test_uploads_reach_the_replica_under_the_same_key(
    async_server: tuple[Server, Path],
) -> None:
    server, replica = async_server
    contents = [f"복제 시험 문서 {n}".encode() * 50 for n in range(4)]
    for content in contents:
        assert _upload(server, content).status_code == 202
    status = _wait_drained(server)
    assert status["mode"] == "async" and status["configured"] is True
    assert status["data_at_risk_seconds"] == 0 and status["replica_reachable"] is True
    for content in contents:
        key = blob_key_for(hashlib.sha256(content).hexdigest())
        assert (replica / key).read_bytes() == content
        # The primary through its port: a directory, or S3 on the full stack.
        with server.services.store.open(key) as primary:
            assert primary.read() == content
    # The figures are for admins only, and exported for Prometheus.
    with server.client(UPLOADER) as c:
        assert c.get("/admin/replication").status_code == 403
    metrics = httpx.get(f"{server.base_url}/metrics", timeout=30)
    assert metrics.status_code == 200
    assert "crossdoc_replication_data_at_risk_seconds 0\n" in metrics.text
    assert "crossdoc_replica_up 1\n" in metrics.text


def test_async_replica_unreachable_uploads_go_on_then_the_backlog_drains(
    async_server: tuple[Server, Path],
) -> None:
    server, replica = async_server
    away = replica.with_name("site-b-unmounted")
    replica.rename(away)  # the second site's mount is gone
    contents = [f"장애 중 문서 {n}".encode() for n in range(5)]
    for content in contents:
        assert _upload(server, content).status_code == 202
    deadline = time.monotonic() + 30
    while (status := _status(server))["failing_items"] < 5:
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status["backlog_items"] == 5 and status["replica_reachable"] is False
    assert status["data_at_risk_seconds"] > 0
    assert "crossdoc_replica_up 0\n" in httpx.get(f"{server.base_url}/metrics").text
    away.rename(replica)
    _wait_drained(server)
    for content in contents:
        key = blob_key_for(hashlib.sha256(content).hexdigest())
        assert (replica / key).read_bytes() == content


def test_sync_answers_202_only_with_both_copies_and_503_without_the_replica(
    sync_server: tuple[Server, Path],
) -> None:
    server, replica = sync_server
    content = "동기 복제 문서".encode()
    assert _upload(server, content).status_code == 202
    # At the 202 the replica already holds it: nothing is queued, nothing at risk.
    assert (replica / blob_key_for(hashlib.sha256(content).hexdigest())).read_bytes() == content
    status = _status(server)
    assert status["mode"] == "sync" and status["backlog_items"] == 0
    count = server.services.catalog.documents.count()
    away = replica.with_name("site-b-unmounted")
    replica.rename(away)
    refused = _upload(server, "복제할 수 없는 문서".encode())
    assert refused.status_code == 503, refused.text
    assert set(refused.json()["error"]) == {"code", "message"}
    assert server.services.catalog.documents.count() == count  # nothing half recorded
    assert server.services.catalog.replication.backlog().items == 0
    away.rename(replica)
    again = _upload(server, "복제할 수 없는 문서".encode())
    assert again.status_code == 202, again.text
    assert server.services.catalog.documents.count() == count + 1


def _fire(server: Server, mode: str, replica: Path) -> None:
    """Upload from two clients; mid-load read the recovery point, then delete the
    primary data directory; every version acknowledged before the oldest unreplicated
    one (all of them in sync mode) must be on the replica, byte for byte."""
    acked: list[tuple[float, bytes]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def uploader(n: int) -> None:
        i = 0
        with server.client(UPLOADER) as c:
            while not stop.is_set():
                content = f"화재 시험 {n}-{i} ".encode() * 200
                i += 1
                try:
                    r = c.post("/documents", files={"file": ("f.txt", content)})
                except httpx.HTTPError:
                    continue
                if r.status_code == 202:
                    with lock:
                        acked.append((time.time(), content))

    threads = [threading.Thread(target=uploader, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    try:
        # Mid-load: once some acknowledged uploads are behind the recovery point
        # (the time this takes follows the machine's load; bounded).
        deadline = time.monotonic() + 60
        while True:
            time.sleep(0.3)
            started = time.time()
            status = _status(server)
            oldest = status["oldest_pending_at"]
            cutoff = datetime.fromisoformat(oldest).timestamp() if oldest else started
            with lock:
                behind = sum(1 for at, _ in acked if at < cutoff)
            if (behind >= 5 and len(acked) > behind) or time.monotonic() > deadline:
                break
        # The fire: the primary data directory (blobs, catalog, index) is gone at once.
        data = server.services.settings.data_dir
        burnt = data.with_name("burnt")
        data.rename(burnt)
        shutil.rmtree(burnt, ignore_errors=True)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert status["data_at_risk_seconds"] <= 60, status
    with lock:
        before = [content for at, content in acked if at < cutoff]
    assert len(before) >= 5, (len(acked), status)
    if mode == "sync":
        before = [content for _, content in acked]  # sync: every acknowledged version
    lost = [
        c
        for c in before
        if not (replica / blob_key_for(hashlib.sha256(c).hexdigest())).is_file()
        or (replica / blob_key_for(hashlib.sha256(c).hexdigest())).read_bytes() != c
    ]
    print(f"fire {mode}: {len(acked)} acknowledged, {len(before)} checked, {status}")
    assert lost == [], f"{len(lost)} of {len(before)} acknowledged versions lost ({status})"


@pytest.mark.parametrize("trial", range(2))
def test_fire_async_loses_nothing_older_than_the_reported_rpo(
    async_server: tuple[Server, Path], trial: int
) -> None:
    server, replica = async_server
    _fire(server, "async", replica)


@pytest.mark.parametrize("trial", range(2))
def test_fire_sync_loses_nothing_acknowledged(sync_server: tuple[Server, Path], trial: int) -> None:
    server, replica = sync_server
    _fire(server, "sync", replica)

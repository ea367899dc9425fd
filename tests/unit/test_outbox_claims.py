"""Outbox claims name their owner: a dead worker's batch is indexed again at once.

Issue 9, defects 4 and 6 (worker half): after a crash, the batch being indexed
stayed claimed until the 10-minute lease lapsed; a worker whose catalog could
not write (disk full) kept its claims for as long.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from indexer.claims import ClaimKeeper, ClaimOwner, owner_is_gone, process_started
from indexer.pipeline import BatchReport
from indexer.worker import LEASE, InProcessWorker, drain_once
from storage.catalog.records import IndexOutcome, NewBlob, NewDocument, OutboxOwnerRecord
from storage.catalog.sql import SqlCatalog


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[SqlCatalog]:
    c = SqlCatalog(f"sqlite:///{tmp_path / 'c.db'}")
    c.migrate()
    c.organisation.create_ministry("M1", "부")
    c.organisation.create_department("D1", "과", "M1")
    c.organisation.create_user("kim", "hash", "김", "D1", ["member"])
    yield c
    c.close()


def add_documents(catalog: SqlCatalog, n: int) -> list[str]:
    ids = []
    for i in range(n):
        sha = f"{i:064x}"
        blob = NewBlob(f"blobs/{sha}", sha, 3, "a.txt", "text/plain", "text/plain")
        doc, _ = catalog.documents.create(
            NewDocument(blob=blob, title="t", department="D1", owner="kim", visibility="private")
        )
        ids.append(doc.id)
    return ids


class RecordingPipeline:
    """Stands for the indexing pipeline: records every id it is given, marks them indexed."""

    def __init__(self, catalog: SqlCatalog) -> None:
        self.catalog = catalog
        self.seen: list[str] = []
        self.done = threading.Event()

    def process(self, document_ids: Sequence[str]) -> BatchReport:
        self.seen.extend(document_ids)
        docs = self.catalog.documents.get_many(list(document_ids))
        self.catalog.documents.mark_indexed_many(
            [IndexOutcome(d.id, d.revision, d.version, "indexed", "", None) for d in docs]
        )
        self.done.set()
        return BatchReport(indexed=list(document_ids))


def dead_pid() -> int:
    """A pid that ran a moment ago and is now gone (reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_dead_workers_claims_are_indexed_at_once_by_the_next(catalog: SqlCatalog) -> None:
    ids = add_documents(catalog, 3)
    # A worker registered, claimed the batch for the full lease, then was SIGKILLed.
    me = ClaimOwner.this_process()
    dead = replace(me, id="dead-worker", pid=dead_pid(), started="1")
    catalog.outbox.register_owner(dead.id, dead.host, dead.pid, dead.started)
    claims = catalog.outbox.claim(10, LEASE, owner=dead.id)
    assert [c.document_id for c in claims] == ids
    assert catalog.outbox.claim(10, LEASE) == []  # leased for 10 minutes

    pipeline = RecordingPipeline(catalog)
    worker = InProcessWorker(catalog, pipeline, idle_seconds=0.05)  # type: ignore[arg-type]
    started = time.monotonic()
    worker.start()
    try:
        assert pipeline.done.wait(10)
        while catalog.outbox.backlog() and time.monotonic() - started < 10:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert sorted(pipeline.seen) == sorted(ids)
    assert catalog.outbox.backlog() == 0
    assert time.monotonic() - started < 10
    assert all(d.status == "indexed" for d in catalog.documents.get_many(ids))
    # The dead owner is gone from the catalog, and so is the stopped worker.
    assert catalog.outbox.owners() == []


def test_a_live_owners_claims_are_not_taken(catalog: SqlCatalog) -> None:
    add_documents(catalog, 2)
    # Another live process on this host (this test's parent: alive, own start time).
    parent = os.getppid()
    me = ClaimOwner.this_process()
    live = ClaimOwner("live-worker", me.host, parent, process_started(parent) or "")
    catalog.outbox.register_owner(live.id, live.host, live.pid, live.started)
    # Another host, heartbeat fresh.
    catalog.outbox.register_owner("remote", "other-host/boot", 1, "5")
    claims = catalog.outbox.claim(1, LEASE, owner=live.id)
    remote = catalog.outbox.claim(1, LEASE, owner="remote")
    assert claims and remote

    keeper = ClaimKeeper(catalog)
    keeper.register()
    assert keeper.reclaim() == 0
    assert catalog.outbox.claim(10, LEASE, owner=keeper.owner.id) == []
    assert {o.id for o in catalog.outbox.owners()} == {"live-worker", "remote", keeper.owner.id}


def test_which_owners_are_gone() -> None:
    me = ClaimOwner.this_process()
    now = datetime.now(UTC)

    def rec(**kw: Any) -> OutboxOwnerRecord:
        fields: dict[str, Any] = {
            "id": "x",
            "host": me.host,
            "pid": me.pid,
            "started": me.started,
            "heartbeat_at": now,
        }
        fields.update(kw)
        return OutboxOwnerRecord(**fields)

    assert not owner_is_gone(rec(id=me.id), me)
    # Same host: the pid decides, whatever the heartbeat says.
    assert not owner_is_gone(rec(heartbeat_at=now - timedelta(days=1)), me)
    assert owner_is_gone(rec(pid=dead_pid()), me)
    assert owner_is_gone(rec(started="1"), me)  # the pid was reused by another process
    # The same host name with another boot or pid namespace (a reboot, another
    # container or machine given the same name): only the heartbeat can tell.
    host_name = me.host.split("/")[0]
    for other in (f"{host_name}/another-boot/pid:[1]", f"{me.host}-other-namespace"):
        assert not owner_is_gone(rec(host=other, pid=dead_pid()), me)
        assert owner_is_gone(rec(host=other, heartbeat_at=now - timedelta(minutes=2)), me)
    # Another host: the heartbeat decides.
    assert not owner_is_gone(rec(host="far/boot", heartbeat_at=now - timedelta(seconds=5)), me)
    assert owner_is_gone(rec(host="far/boot", heartbeat_at=now - timedelta(minutes=2)), me)
    # Named by claims but not registered (removed as dead already).
    assert owner_is_gone(rec(host="", pid=0), me)


def test_a_stopped_worker_hands_its_claims_back(catalog: SqlCatalog) -> None:
    (doc_id,) = add_documents(catalog, 1)
    keeper = ClaimKeeper(catalog)
    claims = catalog.outbox.claim(10, LEASE, owner=keeper.ensure_registered())
    assert [c.document_id for c in claims] == [doc_id]
    keeper.release()
    assert [c.document_id for c in catalog.outbox.claim(10, LEASE)] == [doc_id]


class DiskFull:
    """Makes the catalog's writes fail as SQLite does on a full disk, while `full` is set."""

    def __init__(self, catalog: SqlCatalog) -> None:
        self.full = threading.Event()
        self.refused = 0
        event.listen(catalog.engine, "before_cursor_execute", self._before)

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        del conn, cursor, args
        verb = statement.lstrip().split(None, 1)[0].upper()
        if self.full.is_set() and verb in {"INSERT", "UPDATE", "DELETE"}:
            self.refused += 1
            raise sqlite3.OperationalError("database or disk is full")


def test_a_full_disk_does_not_keep_claims_once_space_returns(catalog: SqlCatalog) -> None:
    ids = add_documents(catalog, 2)
    disk = DiskFull(catalog)
    keeper = ClaimKeeper(catalog)
    owner = keeper.ensure_registered()
    pipeline = RecordingPipeline(catalog)
    stop = threading.Event()
    outcome: list[int] = []

    def drain() -> None:
        outcome.append(drain_once(catalog, pipeline, 10, owner=owner, stop=stop))  # type: ignore[arg-type]

    # The claim is taken, then the disk fills: recording the outcome fails, and
    # so does releasing the claims, for a while.
    real_process = pipeline.process

    def fill_then_process(document_ids: Sequence[str]) -> BatchReport:
        disk.full.set()
        return real_process(document_ids)

    pipeline.process = fill_then_process  # type: ignore[method-assign]
    thread = threading.Thread(target=drain)
    thread.start()
    time.sleep(1.5)
    assert disk.refused >= 2  # the release was tried again
    assert thread.is_alive()  # still retrying: no crash, claims not dropped
    disk.full.clear()  # space returns
    thread.join(10)
    assert not thread.is_alive() and outcome == [2]
    # Released at once (due after a short backoff), not after the 10-minute lease.
    deadline = time.monotonic() + 10
    claimed: list[str] = []
    while time.monotonic() < deadline and len(claimed) < 2:
        claimed += [c.document_id for c in catalog.outbox.claim(10, LEASE)]
        time.sleep(0.2)
    assert sorted(claimed) == sorted(ids)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs (needs the right to mount: root in CI; skipped otherwise)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_really_full_disk_does_not_keep_claims_once_space_returns(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = SqlCatalog(f"sqlite:///{small_disk / 'c.db'}")
    try:
        catalog.migrate()
        catalog.organisation.create_ministry("M1", "부")
        catalog.organisation.create_department("D1", "과", "M1")
        catalog.organisation.create_user("kim", "hash", "김", "D1", ["member"])
        ids = add_documents(catalog, 2)
        keeper = ClaimKeeper(catalog)
        owner = keeper.ensure_registered()
        pipeline = RecordingPipeline(catalog)
        filler = small_disk / "filler"
        real_process = pipeline.process

        def fill_then_process(document_ids: Sequence[str]) -> BatchReport:
            # The disk fills up after the claim: nothing more can be written.
            with filler.open("wb") as f:
                with contextlib.suppress(OSError):
                    while True:
                        f.write(b"\0" * (1 << 16))
                        f.flush()
            return real_process(document_ids)

        pipeline.process = fill_then_process  # type: ignore[method-assign]
        stop = threading.Event()
        outcome: list[int] = []
        errors: list[BaseException] = []

        def drain() -> None:
            try:
                outcome.append(drain_once(catalog, pipeline, 10, owner=owner, stop=stop))  # type: ignore[arg-type]
            except BaseException as err:
                errors.append(err)

        thread = threading.Thread(target=drain)
        thread.start()
        time.sleep(2.0)
        assert errors == [] and thread.is_alive()  # retrying: no crash, claims kept
        assert "database or disk is full" in caplog.text
        filler.unlink()  # space returns
        thread.join(15)
        stop.set()
        assert not thread.is_alive() and errors == [] and outcome == [2]
        deadline = time.monotonic() + 10
        claimed: list[str] = []
        while time.monotonic() < deadline and len(claimed) < 2:
            claimed += [c.document_id for c in catalog.outbox.claim(10, LEASE)]
            time.sleep(0.2)
        assert sorted(claimed) == sorted(ids)
    finally:
        catalog.close()

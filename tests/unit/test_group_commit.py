"""The group commit: items queued while a commit runs share the next one; a lone
item is committed at once; a failed batch is split so that each caller gets its
own answer; uploads recorded together each keep their own audit record."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from storage.catalog.ports import CatalogStore
from storage.catalog.records import (
    AuditFilter,
    DocumentRecord,
    NewAuditEvent,
    NewBlob,
    NewDocument,
)
from storage.catalog.sql import SqlCatalog
from storage.errors import NotFoundError, StorageFullError
from storage.group_commit import GroupCommit, PendingUpload, UploadCommits
from storage.ingest import StagedFile, accept_document


class Recorder:
    """A commit that records its batches, and holds its first commit until `release`."""

    def __init__(self, bad: frozenset[int] = frozenset()) -> None:
        self.batches: list[list[int]] = []
        self.singles: list[int] = []
        self.bad = bad
        self.entered = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()

    def _hold(self) -> None:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30)

    def many(self, items: list[int]) -> list[str]:
        self._hold()
        with self.lock:
            self.batches.append(list(items))
        if self.bad & set(items):
            raise ValueError("a bad item: nothing of the batch is committed")
        return [f"r{i}" for i in items]

    def one(self, item: int) -> str:
        self._hold()
        with self.lock:
            self.singles.append(item)
        if item in self.bad:
            raise ValueError(f"bad {item}")
        return f"r{item}"


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _submit_all(
    group: GroupCommit[int, str], items: list[int], results: dict[int, object]
) -> list[threading.Thread]:
    def run(item: int) -> None:
        try:
            results[item] = group.submit(item)
        except ValueError as err:
            results[item] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in items]
    for t in threads:
        t.start()
    return threads


def _held_first_then(
    recorder: Recorder, group: GroupCommit[int, str], rest: list[int]
) -> dict[int, object]:
    """Item 0 commits (held) while `rest` queue up; then all are let through."""
    results: dict[int, object] = {}
    threads = _submit_all(group, [0], results)
    assert recorder.entered.wait(30)  # the leader is inside its commit
    threads += _submit_all(group, rest, results)
    _wait_until(lambda: group.queued == len(rest))
    recorder.release.set()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    return results


def test_a_lone_item_is_committed_at_once_on_its_own() -> None:
    recorder = Recorder()
    recorder.entered.set()  # nothing held
    group = GroupCommit(recorder.many, recorder.one)
    assert group.submit(7) == "r7"
    assert group.submit(8) == "r8"
    assert recorder.singles == [7, 8] and recorder.batches == []


def test_items_queued_during_a_commit_share_the_next_one() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.many, recorder.one)
    results = _held_first_then(recorder, group, [1, 2, 3, 4, 5])
    assert recorder.singles == [0]
    assert [sorted(b) for b in recorder.batches] == [[1, 2, 3, 4, 5]]
    assert results == {i: f"r{i}" for i in range(6)}  # each caller its own result


def test_a_failed_batch_is_split_and_only_the_bad_item_fails() -> None:
    recorder = Recorder(bad=frozenset({3}))
    group = GroupCommit(recorder.many, recorder.one)
    results = _held_first_then(recorder, group, [1, 2, 3, 4])
    assert [sorted(b) for b in recorder.batches] == [[1, 2, 3, 4]]
    assert sorted(recorder.singles) == [0, 1, 2, 3, 4]
    assert isinstance(results.pop(3), ValueError)
    assert results == {0: "r0", 1: "r1", 2: "r2", 4: "r4"}


def test_batches_are_bounded_and_every_item_is_committed() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.many, recorder.one, max_batch=2)
    results = _held_first_then(recorder, group, [1, 2, 3, 4, 5])
    assert recorder.batches and all(len(b) <= 2 for b in recorder.batches)
    committed = recorder.singles + [i for b in recorder.batches for i in b]
    assert sorted(committed) == list(range(6))  # each exactly once
    assert results == {i: f"r{i}" for i in range(6)}


def test_many_threads_each_get_their_own_result() -> None:
    recorder = Recorder()
    recorder.entered.set()
    group = GroupCommit(recorder.many, recorder.one, max_batch=8)
    results: dict[int, object] = {}
    for t in _submit_all(group, list(range(200)), results):
        t.join(30)
    assert results == {i: f"r{i}" for i in range(200)}
    committed = recorder.singles + [i for b in recorder.batches for i in b]
    assert sorted(committed) == list(range(200))  # each exactly once


def test_a_leader_waits_for_items_on_their_way_and_commits_them_together() -> None:
    recorder = Recorder()
    recorder.entered.set()
    group = GroupCommit(recorder.many, recorder.one, gather_seconds=30)
    group.announce()  # item 2 is on its way (its blob being stored, say)
    results: dict[int, object] = {}
    threads = _submit_all(group, [1], results)
    time.sleep(0.05)
    assert results == {}  # the leader waits for item 2
    assert group.submit(2, announced=True) == "r2"
    for t in threads:
        t.join(30)
    assert results == {1: "r1"}
    assert recorder.batches == [[1, 2]] and recorder.singles == []
    assert group.on_their_way == 0


def test_with_nothing_on_its_way_a_leader_does_not_wait() -> None:
    recorder = Recorder()
    recorder.entered.set()
    group = GroupCommit(recorder.many, recorder.one, gather_seconds=30)
    started = time.monotonic()
    assert group.submit(1) == "r1"
    assert time.monotonic() - started < 10  # not the 30 s gathering bound


def test_a_withdrawn_item_stops_the_leader_waiting_for_it() -> None:
    recorder = Recorder()
    recorder.entered.set()
    group = GroupCommit(recorder.many, recorder.one, gather_seconds=30)
    group.announce()
    results: dict[int, object] = {}
    started = time.monotonic()
    threads = _submit_all(group, [1], results)
    time.sleep(0.05)
    group.withdraw()  # its caller failed: it will never be submitted
    for t in threads:
        t.join(30)
    assert results == {1: "r1"} and recorder.singles == [1]
    assert time.monotonic() - started < 10


def test_the_wait_for_items_on_their_way_is_bounded() -> None:
    recorder = Recorder()
    recorder.entered.set()
    group = GroupCommit(recorder.many, recorder.one, gather_seconds=0.05)
    group.announce()  # never submitted nor withdrawn
    assert group.submit(1) == "r1"
    assert recorder.singles == [1]


# -- uploads into a real catalog -----------------------------------------------------


@pytest.fixture
def catalog(tmp_path: Path) -> CatalogStore:
    c = SqlCatalog(f"sqlite:///{tmp_path / 'c.db'}")
    c.migrate()
    c.organisation.create_ministry("M1", "부")
    c.organisation.create_department("D1", "과", "M1")
    c.organisation.create_user("kim", "hash", "김", "D1", ["member"])
    return c


def _upload(n: int, department: str = "D1") -> PendingUpload:
    sha = f"{n:064x}"
    blob = NewBlob(f"blobs/sha256/{sha[:2]}/{sha[2:4]}/{sha}", sha, 3, f"{n}.txt", "", "")
    new = NewDocument(
        blob=blob, title=f"{n}.txt", department=department, owner="kim", visibility="department"
    )
    return PendingUpload(new, NewAuditEvent("kim", "upload", detail={"n": n}))


def test_uploads_recorded_together_keep_their_own_audit_and_a_bad_one_fails_alone(
    catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits = UploadCommits(catalog)
    real_many = catalog.documents.create_many
    batches: list[int] = []
    gate = threading.Event()
    first = threading.Event()

    def create_documents(news: list[NewDocument], **kw: object) -> object:
        batches.append(len(news))
        return real_many(news, **kw)  # type: ignore[arg-type]

    real_one = catalog.documents.create

    def create_document(new: NewDocument, **kw: object) -> object:
        if not first.is_set():
            first.set()
            assert gate.wait(30)  # hold the first commit while the others queue
        return real_one(new, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(catalog.documents, "create_many", create_documents)
    monkeypatch.setattr(catalog.documents, "create", create_document)
    uploads = [_upload(0)] + [_upload(n, "NO-SUCH" if n == 3 else "D1") for n in range(1, 6)]
    results: dict[int, object] = {}

    def run(n: int) -> None:
        try:
            results[n] = commits.record(uploads[n])
        except NotFoundError as err:
            results[n] = err

    threads = [threading.Thread(target=run, args=(0,))]
    threads[0].start()
    assert first.wait(30)
    threads += [threading.Thread(target=run, args=(n,)) for n in range(1, 6)]
    for t in threads[1:]:
        t.start()
    _wait_until(lambda: commits.queued == 5)
    gate.set()
    for t in threads:
        t.join(30)

    assert batches == [5]  # the five queued together, refused as a whole, then split
    assert isinstance(results.pop(3), NotFoundError)
    docs = {n: r for n, r in results.items()}
    assert sorted(docs) == [0, 1, 2, 4, 5]
    assert catalog.documents.count() == 5
    for n, doc in docs.items():
        assert doc.filename == f"{n}.txt"  # type: ignore[attr-defined]
        (audit,) = catalog.audit.page(AuditFilter(target=doc.id))  # type: ignore[attr-defined]
        assert audit.detail == {"n": n}


def test_a_batch_of_uploads_is_one_transaction(catalog: CatalogStore) -> None:
    docs = catalog.documents.create_many(
        [_upload(n).document for n in range(3)], audits=[_upload(n).audit for n in range(3)]
    )
    assert len({d.created_at for d in docs}) == 1
    assert [a.detail for a in catalog.audit.page(AuditFilter(action="upload"))] == [
        {"n": n} for n in range(3)
    ]
    with pytest.raises(ValueError, match="one per new document"):
        catalog.documents.create_many([_upload(9).document], audits=[None, None])
    assert catalog.documents.count() == 3


class _FullStore:
    """An object store whose disk is full."""

    def put_file(self, path: Path, *, sha256: str, size: int) -> object:
        raise StorageFullError("no space left on the object store")


def test_an_upload_that_fails_on_its_way_is_withdrawn(
    catalog: CatalogStore, tmp_path: Path
) -> None:
    commits = UploadCommits(catalog, gather_seconds=30)
    spooled = tmp_path / "upload"
    spooled.write_bytes(b"abc")
    staged = StagedFile(spooled, hashlib.sha256(b"abc").hexdigest(), 3, b"abc")

    def accept() -> None:
        accept_document(
            catalog,
            _FullStore(),  # type: ignore[arg-type]
            staged,
            filename="a.txt",
            declared_type="text/plain",
            title=None,
            department="D1",
            owner="kim",
            visibility="department",
            commits=commits,
        )

    with pytest.raises(StorageFullError):
        accept()
    assert commits.on_their_way == 0
    started = time.monotonic()
    doc = commits.record(_upload(1))  # nothing on its way: committed at once
    assert time.monotonic() - started < 10
    with commits.arriving() as arrival:
        assert commits.on_their_way == 1
        second, created = arrival.record(_upload(2))
        assert created
    assert commits.on_their_way == 0
    assert {d.id for d in catalog.documents.get_many([doc.id, second.id])} == {doc.id, second.id}


def test_identical_uploads_in_one_batch_make_one_document(
    catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: the leader decides duplicates for its whole batch, against the catalog
    and the batch itself: the same bytes by the same uploader make one document; by
    another uploader (who may not read the first), a document of their own."""
    catalog.organisation.create_user("lee", "hash", "이", "D1", ["member"])
    commits = UploadCommits(catalog)
    real_one = catalog.documents.create
    real_many = catalog.documents.create_many
    batches: list[int] = []
    gate, first = threading.Event(), threading.Event()

    def create_document(new: NewDocument, **kw: object) -> object:
        if not first.is_set():
            first.set()
            assert gate.wait(30)  # hold the first commit while the others queue
        return real_one(new, **kw)  # type: ignore[arg-type]

    def create_documents(news: list[NewDocument], **kw: object) -> object:
        batches.append(len(news))
        return real_many(news, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(catalog.documents, "create", create_document)
    monkeypatch.setattr(catalog.documents, "create_many", create_documents)

    def same_bytes(owner: str, n: int) -> PendingUpload:
        upload = _upload(7)
        new = replace(upload.document, owner=owner, title=f"copy {n}")
        return PendingUpload(new, upload.audit, answers_duplicate=lambda doc: doc.owner == owner)

    uploads = [_upload(1), same_bytes("kim", 1), same_bytes("kim", 2), same_bytes("lee", 3)]
    results: dict[int, tuple[DocumentRecord, bool]] = {}

    def run(n: int) -> None:
        results[n] = commits.record_upload(uploads[n])

    threads = [threading.Thread(target=run, args=(0,))]
    threads[0].start()
    assert first.wait(30)
    threads += [threading.Thread(target=run, args=(n,)) for n in (1, 2, 3)]
    for t in threads[1:]:
        t.start()
    _wait_until(lambda: commits.queued == 3)
    gate.set()
    for t in threads:
        t.join(30)

    assert batches == [2]  # kim's first copy and lee's: kim's second is answered by the first
    kim1, kim2, lee = results[1], results[2], results[3]
    assert kim1[1] is True and kim2 == (kim1[0], False)
    assert lee[1] is True and lee[0].id != kim1[0].id
    assert catalog.documents.count() == 3
    # Once committed, the catalog answers the next one (a batch of one).
    again = commits.record_upload(same_bytes("kim", 4))
    assert again == (kim1[0], False)
    assert catalog.documents.count() == 3

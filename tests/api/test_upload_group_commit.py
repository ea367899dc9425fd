"""Uploads that arrive together commit together (storage.group_commit), over HTTP:
every concurrent upload is there and answered with its own document; a batch
with one upload that cannot be recorded fails only that one, with its own
error; concurrent uploads under one Idempotency-Key still make one document."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from storage.catalog.records import AuditFilter, NewDocument
from storage.errors import StorageUnavailableError
from tests.conftest import Server

CLIENTS = 12
PER_CLIENT = 4


@pytest.fixture(scope="module")
def uploader(server: Server) -> str:
    return server.user("batch-kim", "MOIS-GC")


def _upload(
    server: Server, user: str, name: str, content: bytes, key: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    with server.client(user) as c:
        return c.post("/documents", files={"file": (name, content)}, headers=headers)


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_concurrent_uploads_are_all_there_each_answered_with_its_own(
    server: Server, uploader: str
) -> None:
    before = server.services.catalog.documents.count()
    files = [
        (f"동시{n}.txt", f"동시 업로드 {n} 번째 문서입니다. {'가나다' * n}".encode())
        for n in range(CLIENTS * PER_CLIENT)
    ]
    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(lambda f: _upload(server, uploader, *f), files))

    assert [r.status_code for r in answers] == [202] * len(files), answers[0].text
    ids = [r.json()["id"] for r in answers]
    assert len(set(ids)) == len(files)
    assert server.services.catalog.documents.count() == before + len(files)
    with server.client(uploader) as c:
        for (name, content), answer in zip(files, answers, strict=True):
            body = answer.json()
            assert body["filename"] == name
            assert body["sha256"] == hashlib.sha256(content).hexdigest()
            assert body["size"] == len(content)
            assert c.get(f"/documents/{body['id']}/content").content == content
    for (name, content), doc_id in zip(files, ids, strict=True):
        (audit,) = server.services.catalog.audit.page(AuditFilter(target=doc_id, action="upload"))
        assert audit.detail["filename"] == name
        assert audit.detail["sha256"] == hashlib.sha256(content).hexdigest()


def test_one_upload_that_cannot_be_recorded_fails_alone(
    server: Server, uploader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first upload's commit is held until five more queue behind it; one of
    those cannot be recorded (a stand-in for a constraint or a catalog error)."""
    catalog = server.services.catalog
    commits = server.services.upload_commits
    real_many, real_one = catalog.documents.create_many, catalog.documents.create
    held, release = threading.Event(), threading.Event()
    batches: list[int] = []

    def refuse_bad(news: Sequence[NewDocument]) -> None:
        if any(n.blob.filename == "bad.txt" for n in news):
            raise StorageUnavailableError("the catalog refused this document")

    def create_documents(news: Sequence[NewDocument], **kw: Any) -> Any:
        batches.append(len(news))
        refuse_bad(news)
        return real_many(news, **kw)

    def create_document(new: NewDocument, **kw: Any) -> Any:
        if new.blob.filename == "first.txt":
            held.set()
            assert release.wait(30)
        refuse_bad([new])
        return real_one(new, **kw)

    monkeypatch.setattr(catalog.documents, "create_many", create_documents)
    monkeypatch.setattr(catalog.documents, "create", create_document)
    before = catalog.documents.count()
    names = ["good1.txt", "good2.txt", "bad.txt", "good3.txt", "good4.txt"]
    with ThreadPoolExecutor(len(names) + 1) as pool:
        first = pool.submit(_upload, server, uploader, "first.txt", b"held first")
        assert held.wait(30)
        rest = [
            pool.submit(_upload, server, uploader, name, f"batched {name}".encode())
            for name in names
        ]
        _wait_until(lambda: commits.queued == len(names))
        release.set()
        answers = {name: f.result() for name, f in zip(names, rest, strict=True)}
        assert first.result().status_code == 202

    assert batches == [len(names)]  # they queued together, and were split
    bad = answers.pop("bad.txt")
    assert bad.status_code == 503, bad.text
    assert bad.json()["error"]["code"]
    assert all(r.status_code == 202 for r in answers.values()), answers
    assert catalog.documents.count() == before + 1 + len(answers)
    for name, r in answers.items():
        assert catalog.documents.get(r.json()["id"]).filename == name
    assert not list(server.services.settings.spool_dir.glob("upload-*"))


def test_concurrent_uploads_under_one_key_make_one_document(server: Server, uploader: str) -> None:
    before = server.services.catalog.documents.count()
    with ThreadPoolExecutor(8) as pool:
        same = list(
            pool.map(
                lambda _: _upload(server, uploader, "키.txt", b"one key, same bytes", "gc-k1"),
                range(8),
            )
        )
    assert [r.status_code for r in same] == [202] * 8, [r.text for r in same]
    assert len({r.json()["id"] for r in same}) == 1
    assert server.services.catalog.documents.count() == before + 1

    with ThreadPoolExecutor(6) as pool:
        other = list(
            pool.map(
                lambda n: _upload(server, uploader, f"{n}.txt", f"bytes {n}".encode(), "gc-k2"),
                range(6),
            )
        )
    codes = sorted(r.status_code for r in other)
    assert codes == [202] + [409] * 5, [r.text for r in other]
    assert all(
        r.json()["error"]["code"] == "idempotency_key_reused" for r in other if r.status_code == 409
    )
    assert server.services.catalog.documents.count() == before + 2

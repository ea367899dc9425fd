"""A document change and its audit record survive a crash together or not at all.

A child process makes the change through the document service (one unit of
work) and is SIGKILLed at a point between the change and the commit: after the
change is flushed to the database but before its audit record is written, or
with both written just before the commit. The catalog must then hold the change
if and only if it holds the audit record (here: neither). Without the kill, both.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from storage.catalog.records import AuditFilter, DocumentRecord, NewBlob, NewDocument
from storage.catalog.sql import SqlCatalog

# The child: make one change, dying at `point` (with SIGKILL: no clean-up, no rollback).
CHILD = r"""
import os, signal, sys
from services.documents import Caller, DocumentService
from storage.catalog.records import GrantRecord, NewBlob
from storage.catalog.sql import SqlCatalog
from storage.catalog.sql.audit import SqlAuditLog
from storage.catalog.sql.unit_of_work import SqlUnitOfWork

url, doc_id, op, point = sys.argv[1:]

def die(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if point == "before_audit":  # the change is flushed; its audit record is not written
    SqlAuditLog.append = die
elif point == "before_commit":  # change and audit record flushed, not committed
    def commit(self):
        self._session.flush()
        die()
    SqlUnitOfWork.commit = commit

notified = []
service = DocumentService(SqlCatalog(url), notified.extend)
caller = Caller("kim", "127.0.0.1")
if op == "set_acl":
    service.set_acl(doc_id, "government", [GrantRecord("user:lee", "read")], caller)
elif op == "update_metadata":
    service.update_metadata(doc_id, caller, title="바뀐 제목", tags=["새태그"])
elif op == "new_version":
    sha = "b" * 64
    blob = NewBlob("blobs/sha256/bb/bb/" + sha, sha, 5, "b.txt", "text/plain", "text/plain")
    service.new_version(doc_id, blob, caller)
elif op == "delete":
    service.delete(doc_id, caller)
assert notified == [doc_id], notified  # woken once, after the commit
"""

ACTIONS = {
    "set_acl": "acl_change",
    "update_metadata": "update_metadata",
    "new_version": "new_version",
    "delete": "delete",
}


def _changed(op: str, doc: DocumentRecord) -> bool:
    if op == "set_acl":
        return doc.visibility == "government" and len(doc.grants) == 1
    if op == "update_metadata":
        return doc.title == "바뀐 제목" and doc.tags == ("새태그",)
    if op == "new_version":
        return doc.version == 2
    return doc.deleted_at is not None


@pytest.fixture
def setup(tmp_path: Path) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    catalog = SqlCatalog(url)
    catalog.migrate()
    catalog.organisation.create_ministry("M1", "부")
    catalog.organisation.create_department("D1", "과", "M1")
    catalog.organisation.create_user("kim", "hash", "김", "D1", ["member"])
    sha = "a" * 64
    blob = NewBlob("blobs/sha256/aa/aa/" + sha, sha, 3, "a.txt", "text/plain", "text/plain")
    doc, _ = catalog.documents.create(NewDocument(blob, "제목", "D1", "kim", "department"))
    catalog.close()
    return url, doc.id


@pytest.mark.parametrize("op", sorted(ACTIONS))
@pytest.mark.parametrize("point", ["before_audit", "before_commit", "none"])
def test_a_change_and_its_audit_record_survive_together_or_not_at_all(
    setup: tuple[str, str], op: str, point: str
) -> None:
    url, doc_id = setup
    child = subprocess.run(
        [sys.executable, "-c", CHILD, url, doc_id, op, point],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if point == "none":
        assert child.returncode == 0, child.stderr
    else:
        assert child.returncode == -signal.SIGKILL, child.stderr
    catalog = SqlCatalog(url)
    try:
        doc = catalog.documents.get(doc_id, include_deleted=True)
        changed = _changed(op, doc)
        audited = bool(catalog.audit.page(AuditFilter(action=ACTIONS[op], target=doc_id)))
        assert changed == audited, f"change kept: {changed}, audit record kept: {audited}"
        assert changed == (point == "none")
        assert catalog.audit.verify_chain().ok
    finally:
        catalog.close()

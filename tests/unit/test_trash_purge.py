"""The trash's writes are crash-safe: a purge or a restore and its audit record survive a
SIGKILL together or not at all, and a purge run again after a crash (or twice) purges
each document exactly once. The worker runs the purge with its periodic chores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from crossdoc.settings import Settings
from crossdoc.wiring.worker import build_worker
from indexer.worker import InProcessWorker
from services.documents import Caller, DocumentService
from services.trash import TrashService
from storage.catalog import models as m
from storage.catalog.records import AuditFilter, NewBlob, NewDocument
from storage.catalog.sql import SqlCatalog
from tests.unit.test_change_and_audit_atomic import _run_child

CHILD = r"""
from datetime import timedelta
from services.documents import Caller
from services.trash import TrashService
from storage.catalog.sql import SqlCatalog

notified = []
trash = TrashService(SqlCatalog(url), timedelta(days=30), notified.extend)
if op == "purge":
    assert trash.purge_due() == [target]
else:
    trash.restore(target, Caller("kim", "127.0.0.1"))
assert notified == [target], notified  # woken once, after the commit
"""


def _deleted_document(url: str, days_ago: float) -> str:
    catalog = SqlCatalog(url)
    try:
        catalog.migrate()
        catalog.organisation.create_ministry("M1", "부")
        catalog.organisation.create_department("D1", "과", "M1")
        catalog.organisation.create_user("kim", "hash", "김", "D1", ["member"])
        sha = "a" * 64
        blob = NewBlob("blobs/sha256/aa/aa/" + sha, sha, 3, "a.txt", "text/plain", "text/plain")
        doc, _ = catalog.documents.create(NewDocument(blob, "제목", "D1", "kim", "department"))
        DocumentService(catalog).delete(doc.id, Caller("kim"))
        table = m.Document.__table__
        with catalog.engine.begin() as conn:
            when = datetime.now(UTC) - timedelta(days=days_ago)
            conn.execute(update(table).where(table.c.id == doc.id).values(deleted_at=when))
        return doc.id
    finally:
        catalog.close()


@pytest.mark.parametrize("op", ["purge", "restore"])
@pytest.mark.parametrize("point", ["before_audit", "before_commit", "none"])
def test_a_purge_or_restore_and_its_audit_record_survive_together(
    tmp_path: Path, op: str, point: str
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    doc_id = _deleted_document(url, 31 if op == "purge" else 1)
    _run_child(CHILD, url, doc_id, op, point)
    catalog = SqlCatalog(url)
    try:
        doc = catalog.documents.get(doc_id, include_deleted=True)
        changed = doc.purged_at is not None if op == "purge" else doc.deleted_at is None
        audited = catalog.audit.page(AuditFilter(action=op, target=doc_id))
        assert changed == bool(audited) == (point == "none")
        assert catalog.audit.verify_chain().ok
        if op == "purge":
            # Run again (after the crash, or a second time): purged exactly once.
            trash = TrashService(catalog, timedelta(days=30))
            assert trash.purge_due() == ([] if changed else [doc_id])
            assert trash.purge_due() == []
            assert len(catalog.audit.page(AuditFilter(action="purge", target=doc_id))) == 1
    finally:
        catalog.close()


def test_the_worker_purges_with_its_periodic_chores(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", demo=False, trash_retention_days=7)
    worker = build_worker(settings)
    try:
        catalog = worker.catalog
        assert isinstance(catalog, SqlCatalog)
        url = settings.resolved_database_url
        doc_id = _deleted_document(url, 8)
        worker.worker.maintenance()
        assert catalog.documents.get(doc_id, include_deleted=True).purged_at is not None
        (record,) = catalog.audit.page(AuditFilter(action="purge", target=doc_id))
        assert (record.actor, record.detail["retention_days"]) == ("system", 7)
    finally:
        worker.close()


def test_a_failing_chore_leaves_the_others_running() -> None:
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("boom")

    class Catalog:
        class documents:
            @staticmethod
            def expire_grants() -> list[str]:
                return []

        class policies:
            @staticmethod
            def settle_fanouts() -> int:
                return 0

    worker = InProcessWorker(
        Catalog(),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        chores=[broken, lambda: ran.append("next")],
    )
    worker.maintenance()
    assert ran == ["next"]

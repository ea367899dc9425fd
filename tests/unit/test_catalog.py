"""The catalog repository on SQLite (PostgreSQL runs the same tests in the scale-out issue)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.catalog.records import (
    GrantRecord,
    IndexOutcome,
    NewAuditEvent,
    NewBlob,
    NewDocument,
    Revocation,
)
from storage.catalog.sql import SqlCatalog
from storage.errors import ConflictError, NotFoundError


@pytest.fixture
def catalog(tmp_path: Path) -> SqlCatalog:
    c = SqlCatalog(f"sqlite:///{tmp_path / 'c.db'}")
    c.migrate()
    c.organisation.create_ministry("M1", "부")
    c.organisation.create_department("D1", "과", "M1")
    c.organisation.create_user("kim", "hash", "김", "D1", ["member"])
    return c


def new_doc(sha: str = "a" * 64, **kw: object) -> NewDocument:
    blob = NewBlob(
        f"blobs/sha256/{sha[:2]}/{sha[2:4]}/{sha}", sha, 3, "a.txt", "text/plain", "text/plain"
    )
    fields: dict[str, object] = {
        "title": "t",
        "department": "D1",
        "owner": "kim",
        "visibility": "department",
    }
    fields.update(kw)
    return NewDocument(blob=blob, **fields)  # type: ignore[arg-type]


def test_migrations_are_idempotent(catalog: SqlCatalog) -> None:
    catalog.migrate()
    assert catalog.organisation.get_user("kim") is not None


def test_duplicates_conflict(catalog: SqlCatalog) -> None:
    with pytest.raises(ConflictError):
        catalog.organisation.create_ministry("M1", "again")
    with pytest.raises(ConflictError):
        catalog.organisation.create_user("kim", "h", "k", "D1", [])
    with pytest.raises(NotFoundError):
        catalog.organisation.create_department("D9", "x", "M9")


def test_document_row_version_and_outbox_in_one_transaction(catalog: SqlCatalog) -> None:
    doc, created = catalog.documents.create(new_doc())
    assert created and doc.status == "pending" and doc.version == 1
    assert doc.ministry == "M1"
    assert catalog.documents.list_versions(doc.id)[0].sha256 == "a" * 64
    claims = catalog.outbox.claim(10, timedelta(minutes=1))
    assert [c.document_id for c in claims] == [doc.id]
    assert catalog.outbox.claim(10, timedelta(minutes=1)) == []  # leased


def test_failed_transaction_leaves_nothing(catalog: SqlCatalog) -> None:
    with pytest.raises(NotFoundError):
        catalog.documents.create(new_doc(department="NOPE"))
    assert catalog.documents.count() == 0
    assert catalog.outbox.backlog() == 0
    with pytest.raises(ConflictError):
        catalog.documents.create(
            new_doc(grants=(GrantRecord("user:x", "read"), GrantRecord("user:x", "write")))
        )
    assert catalog.documents.count() == 0


def test_lapsed_claims_are_claimable_again(catalog: SqlCatalog) -> None:
    catalog.documents.create(new_doc())
    assert catalog.outbox.claim(10, timedelta(seconds=-1))
    assert catalog.outbox.claim(10, timedelta(minutes=1))


def test_acl_change_marks_stale_until_indexed(catalog: SqlCatalog) -> None:
    doc, _ = catalog.documents.create(new_doc())
    catalog.documents.mark_indexed_many([IndexOutcome(doc.id, 1, 1, "indexed", "", "text/plain")])
    assert catalog.documents.stale_access_ids() == set()
    changed = catalog.documents.set_acl(doc.id, "private", [GrantRecord("user:lee", "read")], "kim")
    assert catalog.documents.stale_access_ids() == {doc.id}
    # An older revision landing late does not clear the stale mark.
    catalog.documents.mark_indexed_many([IndexOutcome(doc.id, 1, 1, "indexed", "", None)])
    assert catalog.documents.stale_access_ids() == {doc.id}
    catalog.documents.mark_indexed_many(
        [IndexOutcome(doc.id, changed.revision, 1, "indexed", "", None)]
    )
    assert catalog.documents.stale_access_ids() == set()
    assert catalog.outbox.backlog() == 0


def test_expired_grants_are_stale_then_swept(catalog: SqlCatalog) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    doc, _ = catalog.documents.create(new_doc(grants=(GrantRecord("user:lee", "read", past),)))
    catalog.documents.mark_indexed_many(
        [IndexOutcome(doc.id, doc.revision, 1, "indexed", "", None)]
    )
    assert doc.id in catalog.documents.stale_access_ids()
    assert catalog.documents.expire_grants() == [doc.id]
    assert catalog.documents.get(doc.id).grants == ()
    assert doc.id in catalog.documents.stale_access_ids()  # until the new revision is indexed


def test_idempotency_key(catalog: SqlCatalog) -> None:
    first, created1 = catalog.documents.create(new_doc(), idempotency_key="k")
    second, created2 = catalog.documents.create(new_doc(), idempotency_key="k")
    assert created1 and not created2 and first.id == second.id
    assert catalog.documents.count() == 1


def test_soft_delete_keeps_the_record(catalog: SqlCatalog) -> None:
    doc, _ = catalog.documents.create(new_doc())
    catalog.documents.soft_delete(doc.id)
    with pytest.raises(NotFoundError):
        catalog.documents.get(doc.id)
    assert catalog.documents.get(doc.id, include_deleted=True).deleted_at is not None
    assert doc.id in catalog.documents.stale_access_ids()


def test_timestamps_are_aware_utc(catalog: SqlCatalog) -> None:
    doc, _ = catalog.documents.create(new_doc())
    again = catalog.documents.get(doc.id)
    assert again.created_at.tzinfo is not None
    assert abs((again.created_at - datetime.now(UTC)).total_seconds()) < 60


def test_audit_chain_detects_edits_and_deletions(catalog: SqlCatalog) -> None:
    catalog.audit.append(
        [
            NewAuditEvent("kim", "sign_in"),
            NewAuditEvent("kim", "search", detail={"q": "예산\n\x1b[31m"}),
            NewAuditEvent("lee", "download", "doc1"),
        ]
    )
    assert catalog.audit.verify_chain() == (True, 3, "")
    with catalog.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_events SET actor='mallory' WHERE id=2")
    ok, _, problem = catalog.audit.verify_chain()
    assert not ok and "record 2" in problem
    with catalog.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_events SET actor='kim' WHERE id=2")
        conn.exec_driver_sql("DELETE FROM audit_events WHERE id=2")
    ok, _, problem = catalog.audit.verify_chain()
    assert not ok and "record 3" in problem


def test_completing_a_claim_never_removes_another_documents_row(catalog: SqlCatalog) -> None:
    # SQLite reuses the highest rowid once that row is deleted: a stale claim
    # must not complete (or release) the row of a document enqueued since.
    first, _ = catalog.documents.create(new_doc())
    (claim,) = catalog.outbox.claim(10, timedelta(minutes=1))
    catalog.documents.mark_indexed_many(
        [IndexOutcome(first.id, 1, 1, "indexed", "", None)]
    )  # deletes its row
    second, _ = catalog.documents.create(new_doc(sha="b" * 64))
    with catalog.engine.connect() as conn:
        reused = conn.exec_driver_sql("SELECT id FROM outbox").scalar_one()
    assert reused == claim.id  # the id really was reused
    catalog.outbox.release(claim, "late", timedelta(hours=1))
    catalog.outbox.complete(claim)
    (fresh,) = catalog.outbox.claim(10, timedelta(minutes=1))
    assert fresh.document_id == second.id


def test_access_records_are_the_access_facts_of_live_documents(catalog: SqlCatalog) -> None:
    until = datetime.now(UTC) + timedelta(days=1)
    grants = (GrantRecord("user:lee", "read", until), GrantRecord("dept:D1", "write"))
    doc, _ = catalog.documents.create(new_doc(tags=("예산", "기밀"), grants=grants))
    gone, _ = catalog.documents.create(new_doc("b" * 64))
    catalog.documents.soft_delete(gone.id)
    records = catalog.documents.access_records([doc.id, gone.id, "f" * 32, doc.id])
    assert list(records) == [doc.id]  # deleted and unknown ids are absent
    full = catalog.documents.get(doc.id)
    record = records[doc.id]
    assert (record.owner, record.department, record.ministry, record.visibility) == (
        full.owner,
        full.department,
        full.ministry,
        full.visibility,
    )
    assert record.tags == full.tags and record.grants == full.grants
    assert catalog.documents.access_records([]) == {}


def test_access_snapshot_reads_what_a_search_needs(catalog: SqlCatalog) -> None:
    doc, _ = catalog.documents.create(new_doc())
    catalog.documents.mark_indexed_many(
        [IndexOutcome(doc.id, doc.revision, 1, "indexed", "", None)]
    )
    snapshot = catalog.documents.access_snapshot()
    assert snapshot.policies == () and snapshot.stale_ids == frozenset()
    catalog.documents.set_acl(doc.id, "private", [], "kim")
    assert catalog.documents.access_snapshot().stale_ids == {doc.id}


def test_token_holder_is_none_for_revoked_tokens_and_unknown_users(catalog: SqlCatalog) -> None:
    issued = datetime.now(UTC)
    holder = catalog.tokens.holder("kim", "jti-1", "fam-1", issued)
    assert holder is not None and holder.ministry == "M1" and holder.department == "D1"
    assert holder.password_hash == ""  # never read on this path
    assert catalog.tokens.holder("nobody", "jti-1", "fam-1", issued) is None
    later = issued + timedelta(days=1)
    catalog.tokens.revoke([Revocation("jti", "jti-1", later)])
    assert catalog.tokens.holder("kim", "jti-1", "fam-1", issued) is None
    assert catalog.tokens.holder("kim", "jti-2", "fam-1", issued) is not None
    catalog.tokens.revoke([Revocation("family", "fam-1", later)])
    assert catalog.tokens.holder("kim", "jti-2", "fam-1", issued) is None
    assert catalog.tokens.is_revoked("jti-2", "fam-1", "kim", issued)
    catalog.tokens.revoke([Revocation("user", "kim", later)])
    # Tokens issued up to the user's revocation are refused; newer ones are not.
    assert catalog.tokens.holder("kim", "jti-3", "fam-2", issued) is None
    newer = datetime.now(UTC) + timedelta(seconds=1)
    assert catalog.tokens.holder("kim", "jti-3", "fam-2", newer) is not None
    assert not catalog.tokens.is_revoked(None, "fam-2", "kim", newer)


def test_a_claimed_batch_is_bounded_by_the_bytes_of_its_files(catalog: SqlCatalog) -> None:
    def doc_of(size: int, n: int) -> str:
        sha = f"{n:064x}"
        blob = NewBlob(f"blobs/sha256/{sha}", sha, size, f"{n}.txt", "text/plain", "text/plain")
        doc, _ = catalog.documents.create(
            NewDocument(blob=blob, title="t", department="D1", owner="kim", visibility="private")
        )
        return doc.id

    ids = [doc_of(size, n) for n, size in enumerate([40, 40, 20, 5, 1000, 1])]
    lease = timedelta(minutes=1)
    assert [c.document_id for c in catalog.outbox.claim(10, lease, max_bytes=100)] == ids[:3]
    # The first row is always claimed, even when it alone is over the budget.
    assert [c.document_id for c in catalog.outbox.claim(10, lease, max_bytes=4)] == ids[3:4]
    assert [c.document_id for c in catalog.outbox.claim(10, lease, max_bytes=4)] == ids[4:5]
    assert [c.document_id for c in catalog.outbox.claim(10, lease, max_bytes=4)] == ids[5:]

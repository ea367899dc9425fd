"""The catalog's contract: every repository of `storage.catalog.ports` and the unit of
work, run over each adapter — SQLite (embedded) and a real PostgreSQL.

The PostgreSQL leg needs `CROSSDOC_TEST_DATABASE_URL` (a role that may create
databases; `infra/dev/engines up postgres` starts one and prints it) and skips
without it. Each test gets a database of its own, copied from one migrated once
per session (`CREATE DATABASE … TEMPLATE`), so no test sees another's rows.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from storage.catalog.ports import CatalogStore
from storage.catalog.records import (
    AuditFilter,
    DocumentFilter,
    ExtractionRecord,
    GrantRecord,
    IndexOutcome,
    NewAuditEvent,
    NewBlob,
    NewDocument,
    NewPolicy,
    Revocation,
)
from storage.catalog.sql import SqlCatalog
from storage.errors import ConflictError, IdempotencyKeyReusedError, NotFoundError
from tests.pg_databases import ThrowawayDatabases

_PG_ENV = "CROSSDOC_TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated database on the test cluster, the template of each test's own."""
    url = os.environ.get(_PG_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL leg: set {_PG_ENV} (a role that may create databases; "
            "`infra/dev/engines up postgres` starts one and prints it)"
        )
    with ThrowawayDatabases(url, "crossdoc_contract_tmpl") as dbs:
        yield str(make_url(dbs.new(migrated=True)).database)


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CatalogStore]:
    if request.param == "sqlite":
        store = SqlCatalog(f"sqlite:///{tmp_path / 'c.db'}")
        store.migrate()
        databases = None
    else:
        template = request.getfixturevalue("postgres_template")
        databases = ThrowawayDatabases(os.environ[_PG_ENV], "crossdoc_contract")
        store = SqlCatalog(databases.new(template=template))
    store.organisation.create_ministry("M1", "행정안전부")
    store.organisation.create_department("D1", "기록관리과", "M1")
    store.organisation.create_department("D2", "정보공개과", "M1")
    store.organisation.create_user("kim", "hash", "김민수", "D1", ["member"])
    try:
        yield store
    finally:
        store.close()
        if databases is not None:
            databases.close()


def new_doc(sha: str = "a" * 64, **kw: object) -> NewDocument:
    blob = NewBlob(f"blobs/sha256/{sha[:2]}/{sha}", sha, 3, "a.txt", "text/plain", "text/plain")
    fields: dict[str, object] = {
        "title": "제목",
        "department": "D1",
        "owner": "kim",
        "visibility": "department",
    }
    fields.update(kw)
    return NewDocument(blob=blob, **fields)  # type: ignore[arg-type]


def indexed(catalog: CatalogStore, *ids: str) -> None:
    docs = catalog.documents.get_many(list(ids), include_deleted=True)
    catalog.documents.mark_indexed_many(
        [IndexOutcome(d.id, d.revision, d.version, "indexed") for d in docs]
    )


# -- organisation -------------------------------------------------------------------------


def test_organisation(catalog: CatalogStore) -> None:
    org = catalog.organisation
    assert [m.code for m in org.list_ministries()] == ["M1"]
    assert org.get_ministry("M1") is not None and org.get_ministry("M9") is None
    assert [d.code for d in org.list_departments()] == ["D1", "D2"]
    assert org.get_department("D2") is not None and org.get_department("D9") is None
    with pytest.raises(ConflictError):
        org.create_ministry("M1", "again")
    with pytest.raises(NotFoundError):
        org.create_department("D9", "x", "M9")
    with pytest.raises(ConflictError):
        org.create_user("kim", "h", "k", "D1", [])
    lee = org.create_user("lee", "h2", "이지영", "D2", ["member", "member", "dept_admin"])
    assert lee.ministry == "M1" and lee.roles == ("dept_admin", "member")
    moved = org.update_user("lee", department="D1", roles=["member"], password_hash="h3")
    assert moved.department == "D1" and moved.roles == ("member",)
    assert org.get_user("lee") is not None
    assert [u.username for u in org.list_users()] == ["kim", "lee"]
    with pytest.raises(NotFoundError):
        org.update_user("nobody", disabled=True)


def test_user_accounts_fields(catalog: CatalogStore) -> None:
    org = catalog.organisation
    kim = org.get_user("kim")
    assert kim is not None
    assert not kim.must_change_password and kim.password_changed_at is None and not kim.deleted
    reset = org.update_user("kim", password_hash="h9", must_change_password=True)
    assert reset.must_change_password and reset.password_hash == "h9"
    assert reset.password_changed_at is not None
    renamed = org.update_user("kim", display_name="김철수", must_change_password=False)
    assert renamed.display_name == "김철수" and not renamed.must_change_password
    gone = org.update_user("kim", deleted=True)
    assert gone.deleted and gone.disabled
    assert [u.username for u in org.list_users() if u.deleted] == ["kim"]


def test_organisation_upkeep(catalog: CatalogStore) -> None:
    org = catalog.organisation
    assert org.rename_ministry("M1", "새 부처").name == "새 부처"
    assert org.rename_department("D2", "새 과") == org.get_department("D2")
    with pytest.raises(NotFoundError):
        org.rename_ministry("M9", "x")
    with pytest.raises(NotFoundError):
        org.rename_department("D9", "x")
    # D1 holds kim; M1 holds both departments; D2 holds a document, a grant names
    # D1 and a policy matches D2.
    docs = catalog.documents
    doc, _ = docs.create(new_doc(department="D2", grants=(GrantRecord("dept:D1", "read"),)))
    docs.soft_delete(doc.id)  # a deleted document still counts: it may be restored
    catalog.policies.create(NewPolicy("p", {"department": "D2"}, "user:kim", "read"), "admin")
    assert org.usage("dept", "D1").users == 1 and org.usage("dept", "D1").grants == 1
    d2 = org.usage("dept", "D2")
    assert (d2.documents, d2.users, d2.policies, d2.empty) == (1, 0, 1, False)
    m1 = org.usage("ministry", "M1")
    assert (m1.departments, m1.users, m1.documents) == (2, 1, 1)
    org.create_ministry("M2", "빈 부처")
    org.create_department("D3", "빈 과", "M2")
    assert org.usage("dept", "D3").empty and not org.usage("ministry", "M2").empty
    org.delete_department("D3")
    assert org.usage("ministry", "M2").empty
    org.delete_ministry("M2")
    assert org.get_department("D3") is None and org.get_ministry("M2") is None
    with pytest.raises(NotFoundError):
        org.delete_department("D3")
    with pytest.raises(NotFoundError):
        org.delete_ministry("M2")


def test_directory(catalog: CatalogStore) -> None:
    org = catalog.organisation
    org.create_user("lee", "h", "이지영", "D2", ["member"])
    org.create_user("gone", "h", "지워진 사람", "D2", ["member"])
    org.update_user("gone", deleted=True)
    org.create_user("pct", "h", "100%_done", None, ["member"])
    total, everything = org.directory("", ("ministry", "dept", "user"), 0, 50)
    assert [(e.kind, e.code) for e in everything] == [
        ("ministry", "M1"),
        ("dept", "D1"),
        ("dept", "D2"),
        ("user", "kim"),
        ("user", "lee"),
        ("user", "pct"),
    ]
    assert total == 6
    assert everything[4].name == "이지영" and everything[4].department == "D2"
    assert everything[1].department is None
    # Pages cut across kinds; the total stays.
    assert [e.code for e in org.directory("", ("ministry", "dept", "user"), 2, 2)[1]] == [
        "D2",
        "kim",
    ]
    assert org.directory("", ("ministry", "dept", "user"), 2, 2)[0] == 6
    assert [e.code for e in org.directory("지영", ("user",), 0, 10)[1]] == ["lee"]
    assert [e.code for e in org.directory("d", ("dept",), 0, 10)[1]] == ["D1", "D2"]
    assert org.directory("지워진", ("user",), 0, 10) == (0, [])  # deleted users are gone
    # The query is text, not a LIKE pattern.
    assert [e.code for e in org.directory("%_", ("user",), 0, 10)[1]] == ["pct"]
    assert org.directory("_", ("ministry", "dept"), 0, 10) == (0, [])


# -- documents ---------------------------------------------------------------------------


def test_create_read_and_count(catalog: CatalogStore) -> None:
    docs = catalog.documents
    doc, created = docs.create(new_doc(tags=("예산",)), audit=NewAuditEvent("kim", "upload"))
    assert created and doc.version == 1 and doc.ministry == "M1" and doc.status == "pending"
    assert docs.get(doc.id) == doc
    assert [d.id for d in docs.get_many([doc.id, "nope", doc.id])] == [doc.id]
    assert docs.count() == 1 and catalog.outbox.backlog() == 1
    (event,) = catalog.audit.page(AuditFilter(action="upload"))
    assert event.target == doc.id
    many = docs.create_many(
        [new_doc("b" * 64), new_doc("c" * 64, department="D2")],
        audit=NewAuditEvent("kim", "import"),
    )
    assert docs.count() == 3
    assert {e.target for e in catalog.audit.page(AuditFilter(action="import"))} == {
        d.id for d in many
    }
    assert docs.existing_sha256(["a" * 64, "c" * 64, "f" * 64], "D1") == {"a" * 64}
    assert sorted(i for batch in docs.all_ids(batch=2) for i in batch) == sorted(
        [doc.id, *(d.id for d in many)]
    )
    with pytest.raises(NotFoundError):
        docs.create(new_doc(department="D9"))
    with pytest.raises(ConflictError):
        docs.create(new_doc(grants=(GrantRecord("user:x", "read"), GrantRecord("user:x", "write"))))
    assert docs.count() == 3


def test_documents_by_digest_and_by_status(catalog: CatalogStore) -> None:
    """Issue 14: the department's live documents holding some bytes (oldest first), and
    the live documents counted by status and detail."""
    docs = catalog.documents
    first, _ = docs.create(new_doc("d" * 64))
    second, _ = docs.create(new_doc("d" * 64, owner="lee"))
    other, _ = docs.create(new_doc("e" * 64))
    docs.create(new_doc("d" * 64, department="D2"))
    gone, _ = docs.create(new_doc("d" * 64))
    docs.soft_delete(gone.id)
    found = docs.live_with_digests("D1", ["d" * 64, "e" * 64, "f" * 64])
    assert {d.id for d in found} == {first.id, second.id, other.id}
    held = [d.id for d in found if d.sha256 == "d" * 64]
    assert held == [first.id, second.id]  # the oldest first
    assert docs.live_with_digests("D1", []) == []
    docs.mark_indexed_many(
        [
            IndexOutcome(first.id, first.revision, 1, "indexed", ""),
            IndexOutcome(second.id, second.revision, 1, "indexed", "empty"),
        ]
    )
    assert docs.status_counts() == {
        ("indexed", ""): 1,
        ("indexed", "empty"): 1,
        ("pending", ""): 2,  # other, and D2's copy; the deleted one is not counted
    }


def test_idempotency_keys(catalog: CatalogStore) -> None:
    docs = catalog.documents
    first, created = docs.create(new_doc(), idempotency_key="k")
    again, created_again = docs.create(new_doc(), idempotency_key="k")
    assert created and not created_again and again.id == first.id
    assert docs.idempotent_replay("kim", "k", new_doc().fingerprint) == first
    assert docs.idempotent_replay("kim", "other", new_doc().fingerprint) is None
    with pytest.raises(IdempotencyKeyReusedError):
        docs.create(new_doc("b" * 64), idempotency_key="k")
    docs.soft_delete(first.id)
    with pytest.raises(IdempotencyKeyReusedError):
        docs.idempotent_replay("kim", "k", new_doc().fingerprint)
    assert docs.count() == 0


def test_concurrent_creates_under_one_key_make_one_document(catalog: CatalogStore) -> None:
    # Found by the full stack leg (PostgreSQL, READ COMMITTED): a create that found no
    # key at first, then found the one a concurrent create had just committed, took it
    # over as if it had expired; eight uploads under one key made up to eight documents.
    docs = catalog.documents
    start = threading.Barrier(8)
    made: list[str] = []

    def create() -> None:
        start.wait()
        made.append(docs.create(new_doc(), idempotency_key="one-key")[0].id)

    for _ in range(3):  # the race is narrow: a few rounds
        threads = [threading.Thread(target=create) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(set(made)) == 1 and len(made) == 8 * (_ + 1), made
    assert docs.count() == 1


def test_changes_versions_and_staleness(catalog: CatalogStore) -> None:
    docs = catalog.documents
    doc, _ = docs.create(new_doc())
    indexed(catalog, doc.id)
    assert docs.stale_access_ids() == set() and catalog.outbox.backlog() == 0
    blob = NewBlob("blobs/b", "b" * 64, 9, "b.txt", "text/plain", "text/plain")
    v2 = docs.add_version(doc.id, blob, "kim")
    assert v2.version == 2 and v2.sha256 == "b" * 64
    assert [v.version for v in docs.list_versions(doc.id)] == [1, 2]
    titled = docs.update_metadata(doc.id, title="새 제목")
    assert titled.title == "새 제목" and titled.title_from_user
    assert docs.stale_access_ids() == set()  # a title does not change access
    docs.update_metadata(doc.id, tags=["기밀"])
    assert docs.stale_access_ids() == {doc.id}  # policies match on tags
    indexed(catalog, doc.id)
    acl = docs.set_acl(doc.id, "private", [GrantRecord("user:lee", "read")], "kim")
    assert acl.visibility == "private" and acl.grants == (GrantRecord("user:lee", "read"),)
    assert docs.stale_access_ids() == {doc.id}
    assert catalog.outbox.pending_full_reindex([doc.id]) == set()  # access only
    indexed(catalog, doc.id)
    docs.soft_delete(doc.id)
    with pytest.raises(NotFoundError):
        docs.get(doc.id)
    assert docs.get(doc.id, include_deleted=True).deleted_at is not None
    assert docs.stale_access_ids() == {doc.id}
    for change in (
        lambda: docs.soft_delete(doc.id),
        lambda: docs.update_metadata(doc.id, title="x"),
        lambda: docs.add_version(doc.id, blob, "kim"),
        lambda: docs.set_acl(doc.id, "private", [], "kim"),
    ):
        with pytest.raises(NotFoundError):
            change()


def test_index_outcomes(catalog: CatalogStore) -> None:
    docs = catalog.documents
    doc, _ = docs.create(new_doc())
    docs.mark_indexed_many(
        [IndexOutcome(doc.id, doc.revision, 1, "indexed", "", "application/pdf", "메타 제목")]
    )
    done = docs.get(doc.id)
    assert (done.status, done.content_type, done.title) == (
        "indexed",
        "application/pdf",
        "메타 제목",
    )
    assert done.indexed_revision == doc.revision and catalog.outbox.backlog() == 0
    docs.update_metadata(doc.id, title="사용자 제목")
    docs.mark_indexed_many([IndexOutcome(doc.id, doc.revision, 1, "failed", "boom", None, "x")])
    late = docs.get(doc.id)  # an older revision: the indexed revision does not go back
    assert late.indexed_revision == doc.revision and late.title == "사용자 제목"
    assert late.content_type == "application/pdf"
    assert docs.mark_all_for_reindex() == 1
    assert docs.get(doc.id).indexed_revision == 0 and catalog.outbox.backlog() == 1


def test_access_reads(catalog: CatalogStore) -> None:
    docs = catalog.documents
    until = datetime.now(UTC) + timedelta(days=1)
    grants = (GrantRecord("user:lee", "read", until), GrantRecord("dept:D2", "write"))
    doc, _ = docs.create(new_doc(tags=("예산", "기밀"), grants=grants))
    gone, _ = docs.create(new_doc("b" * 64))
    docs.soft_delete(gone.id)
    records = docs.access_records([doc.id, gone.id, "f" * 32])
    assert list(records) == [doc.id]
    record = records[doc.id]
    assert record.tags == ("예산", "기밀") and record.grants == grants
    assert docs.access_records([]) == {}
    indexed(catalog, doc.id, gone.id)
    snapshot = docs.access_snapshot()
    assert snapshot.policies == () and snapshot.stale_ids == frozenset()
    past = datetime.now(UTC) - timedelta(seconds=1)
    lapsed, _ = docs.create(new_doc("c" * 64, grants=(GrantRecord("user:lee", "read", past),)))
    indexed(catalog, lapsed.id)
    assert docs.access_snapshot().stale_ids == {lapsed.id}
    assert docs.expire_grants() == [lapsed.id]
    assert docs.get(lapsed.id).grants == ()


# -- outbox ------------------------------------------------------------------------------


def test_outbox_claims(catalog: CatalogStore) -> None:
    docs = [catalog.documents.create(new_doc(f"{i:064x}"))[0] for i in range(3)]
    outbox = catalog.outbox
    assert len(outbox.due_ids()) == 3
    claims = outbox.claim(2, timedelta(minutes=1), owner="w1")
    assert [c.document_id for c in claims] == [d.id for d in docs[:2]]
    assert [c.attempts for c in claims] == [1, 1]
    assert len(outbox.due_ids()) == 1
    outbox.release(claims[0], "transient", timedelta(seconds=-1))
    outbox.complete(claims[1])
    assert outbox.backlog() == 2
    again = outbox.claim(10, timedelta(minutes=1))
    assert {c.document_id for c in again} == {docs[0].id, docs[2].id}
    assert next(c for c in again if c.document_id == docs[0].id).attempts == 2
    assert outbox.claim(10, timedelta(minutes=1)) == []  # leased
    assert outbox.pending_full_reindex([d.id for d in docs]) == {docs[0].id, docs[2].id}


def test_outbox_batches_by_bytes_and_access(catalog: CatalogStore) -> None:
    for i in range(3):
        catalog.documents.create(new_doc(f"{i:064x}"))
    assert len(catalog.outbox.claim(10, timedelta(minutes=1), max_bytes=4)) == 1
    doc, _ = catalog.documents.create(new_doc("f" * 64))
    indexed(catalog, doc.id)
    for visibility in ("private", "ministry", "department"):
        catalog.documents.set_acl(doc.id, visibility, [], "kim")
    lapsed = catalog.outbox.claim(1, timedelta(seconds=-1))
    assert len(lapsed) == 1  # one row: the limit
    rows = catalog.outbox.claim(1, timedelta(minutes=1), access_limit=3)
    assert sum(1 for r in rows if r.access_only) == 3


def test_outbox_owners(catalog: CatalogStore) -> None:
    catalog.documents.create(new_doc())
    outbox = catalog.outbox
    outbox.register_owner("w1", "host", 42, "t0")
    outbox.register_owner("w1", "host", 43, "t1")  # refreshed
    (claim,) = outbox.claim(10, timedelta(hours=1), owner="w1")
    assert [(o.id, o.pid) for o in outbox.owners()] == [("w1", 43)]
    assert outbox.heartbeat_owner("w1")
    assert outbox.reclaim(["w1"]) == 1
    assert not outbox.heartbeat_owner("w1") and outbox.owners() == []
    assert outbox.claim(10, timedelta(hours=1))[0].document_id == claim.document_id
    assert outbox.reclaim([]) == 0


# -- extractions -------------------------------------------------------------------------


def test_extractions(catalog: CatalogStore) -> None:
    rec = ExtractionRecord(
        "a" * 64, "v1", "ok", "", "text/plain", {"k": "값"}, "본문 " * 100, False
    )
    catalog.extractions.put([rec, rec])
    assert catalog.extractions.get(["a" * 64, "b" * 64], "v1") == {"a" * 64: rec}
    assert catalog.extractions.get(["a" * 64], "v2") == {}
    newer = ExtractionRecord("a" * 64, "v1", "ok", "", "text/html", {}, "새 본문", True)
    catalog.extractions.put([newer])
    assert catalog.extractions.get(["a" * 64], "v1")["a" * 64] == newer
    assert catalog.extractions.get([], "v1") == {}


# -- audit -------------------------------------------------------------------------------


def test_audit_log(catalog: CatalogStore) -> None:
    audit = catalog.audit
    audit.append(
        [
            NewAuditEvent("kim", "sign_in"),
            NewAuditEvent("kim", "search", detail={"q": "예산\n\x1b[31m"}),
            NewAuditEvent("lee", "download", "doc1", outcome="denied"),
        ]
    )
    audit.append([])
    assert [r.action for r in audit.page()] == ["sign_in", "search", "download"]
    assert [r.action for r in audit.page(AuditFilter(actor="kim"))] == ["sign_in", "search"]
    assert [r.actor for r in audit.page(AuditFilter(outcome="denied", target="doc1"))] == ["lee"]
    newest = audit.page(newest_first=True, limit=2)
    assert [r.action for r in newest] == ["download", "search"]
    assert [r.action for r in audit.page(before_id=newest[-1].id, newest_first=True)] == ["sign_in"]
    assert [r.action for r in audit.page(after_id=newest[-1].id)] == ["download"]
    future = datetime.now(UTC) + timedelta(hours=1)
    assert audit.page(AuditFilter(since=future)) == []
    assert len(audit.page(AuditFilter(until=future))) == 3
    assert [r.action for r in audit.each(AuditFilter(actor="kim"), batch=1)] == [
        "sign_in",
        "search",
    ]
    assert audit.page(AuditFilter(action="search"))[0].detail == {"q": "예산\n\x1b[31m"}
    assert audit.verify_chain() == (True, 3, "")


# -- token revocations ---------------------------------------------------------------------


def test_token_revocations(catalog: CatalogStore) -> None:
    tokens = catalog.tokens
    now = datetime.now(UTC)
    later = now + timedelta(hours=1)
    assert tokens.holder("kim", "j1", "f1", now) is not None
    assert tokens.holder("nobody", "j1", "f1", now) is None
    tokens.revoke([Revocation("jti", "j1", later)])
    assert tokens.is_revoked("j1", "f9", "kim", now)
    assert tokens.holder("kim", "j1", "f9", now) is None
    with pytest.raises(ConflictError):
        tokens.revoke([Revocation("jti", "j1", later)], fail_if_revoked=True)
    tokens.revoke([Revocation("family", "f1", later)])
    assert tokens.is_revoked(None, "f1", "kim", now)
    assert not tokens.is_revoked("j2", "f2", "kim", now)
    catalog.organisation.update_user("kim", disabled=True)  # revokes tokens issued so far
    assert tokens.is_revoked("j2", "f2", "kim", now)
    assert tokens.holder("kim", "j2", "f2", now) is None
    issued_later = datetime.now(UTC) + timedelta(seconds=5)
    assert not tokens.is_revoked("j2", "f2", "kim", issued_later)
    tokens.revoke([Revocation("jti", "old", now - timedelta(seconds=1))])
    assert tokens.prune() == 1


# -- policies ----------------------------------------------------------------------------


def test_policies_fan_out_by_their_match(catalog: CatalogStore) -> None:
    tagged, _ = catalog.documents.create(new_doc(tags=("예산",)))
    other, _ = catalog.documents.create(new_doc("b" * 64, department="D2"))
    indexed(catalog, tagged.id, other.id)
    policies = catalog.policies
    new = NewPolicy("예산 열람", {"tag": "예산", "ministry": "M1"}, "dept:D2", "read")
    change = policies.create(new, "admin", audit=NewAuditEvent("admin", "policy_create"))
    assert change.affected_documents == change.reindexed_documents == 1
    assert policies.get(change.policy.id) == change.policy
    assert [p.id for p in policies.list_all()] == [change.policy.id]
    assert policies.pending_ids() == {change.policy.id} and policies.fanout_backlog() == 1
    assert catalog.outbox.claim(10, timedelta(minutes=1))[0].document_id == tagged.id
    (event,) = catalog.audit.page(AuditFilter(action="policy_create"))
    assert event.target == f"policy:{change.policy.id}"
    assert event.detail["affected_documents"] == 1
    assert policies.settle_fanouts() == 0  # the index is behind
    indexed(catalog, tagged.id)
    assert policies.fanout_backlog() == 0 and policies.settle_fanouts() == 1
    assert policies.pending_ids() == set()
    same = policies.update(
        change.policy.id, NewPolicy("새 이름", new.match, "user:lee", "write"), "a"
    )
    assert same.policy.generation == 1 and same.reindexed_documents == 0
    assert same.affected_documents == 1
    moved = policies.update(
        change.policy.id, NewPolicy("부서", {"department": "D2"}, "x", "read"), "a"
    )
    assert moved.policy.generation == 2 and moved.reindexed_documents == 1
    assert catalog.documents.access_snapshot().pending_policy_ids == {change.policy.id}
    gone = policies.delete(change.policy.id)
    assert gone.affected_documents == 1 and policies.list_all() == []
    with pytest.raises(NotFoundError):
        policies.get(change.policy.id)
    with pytest.raises(NotFoundError):
        policies.delete(change.policy.id)
    empty = policies.create(NewPolicy("빈", {"visibility": "없음"}, "x", "read"), "a")
    assert empty.affected_documents == 0 and policies.pending_ids() == set()


# -- unit of work ----------------------------------------------------------------------------


def test_a_unit_of_work_commits_change_audit_and_outbox_together(catalog: CatalogStore) -> None:
    doc, _ = catalog.documents.create(new_doc())
    indexed(catalog, doc.id)
    woken: list[str] = []
    with catalog.unit_of_work() as uow:
        uow.documents.set_acl(doc.id, "government", [], "kim")
        uow.audit.append([NewAuditEvent("kim", "acl_change", doc.id)])
        uow.after_commit(lambda: woken.append(doc.id))
        assert woken == []
        uow.commit()
    assert woken == [doc.id]
    assert catalog.documents.get(doc.id).visibility == "government"
    assert catalog.audit.page(AuditFilter(action="acl_change"))[0].target == doc.id
    assert catalog.outbox.backlog() == 1
    assert catalog.audit.verify_chain().ok


def test_a_unit_of_work_left_without_commit_keeps_nothing(catalog: CatalogStore) -> None:
    doc, _ = catalog.documents.create(new_doc())
    indexed(catalog, doc.id)
    woken: list[str] = []

    def crash() -> None:
        with catalog.unit_of_work() as uow:
            uow.documents.set_acl(doc.id, "government", [], "kim")
            uow.audit.append([NewAuditEvent("kim", "acl_change", doc.id)])
            uow.after_commit(lambda: woken.append(doc.id))
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        crash()
    with catalog.unit_of_work() as uow:
        uow.documents.soft_delete(doc.id)  # no commit: rolled back
    assert woken == []
    assert catalog.documents.get(doc.id).visibility == "department"
    assert catalog.audit.page() == [] and catalog.outbox.backlog() == 0


def test_a_unit_of_work_raises_our_errors_and_keeps_nothing(catalog: CatalogStore) -> None:
    def ministry_again() -> None:
        with catalog.unit_of_work() as uow:
            uow.audit.append([NewAuditEvent("kim", "x")])
            uow.organisation.create_ministry("M1", "again")

    def nowhere() -> None:
        with catalog.unit_of_work() as uow:
            uow.documents.create(new_doc(department="D9"))

    with pytest.raises(ConflictError):
        ministry_again()
    with pytest.raises(NotFoundError):
        nowhere()
    assert catalog.audit.page() == [] and catalog.documents.count() == 0


# -- personal views and the trash (DocumentViews) -----------------------------------------


def test_owned_documents_paged_and_filtered(catalog: CatalogStore) -> None:
    docs = catalog.documents
    catalog.organisation.create_user("lee", "hash", "이지영", "D2", ["member"])
    a = docs.create(new_doc("a" * 64))[0]
    b = docs.create(new_doc("b" * 64, department="D2"))[0]
    docs.create(new_doc("c" * 64, owner="lee"))
    gone = docs.create(new_doc("d" * 64))[0]
    docs.soft_delete(gone.id, actor="kim")
    everything = DocumentFilter()
    total, page = docs.owned("kim", everything, 0, 10)
    assert total == 2 and [d.id for d in page] == [b.id, a.id]  # newest first, live only
    assert [d.id for d in docs.owned("kim", everything, 1, 1)[1]] == [a.id]
    assert docs.owned("kim", DocumentFilter(department="D2"), 0, 10) == (1, [docs.get(b.id)])
    assert docs.owned("kim", DocumentFilter(content_type="application/pdf"), 0, 10) == (0, [])
    later = datetime.now(UTC) + timedelta(hours=1)
    assert docs.owned("kim", DocumentFilter(created_from=later), 0, 10)[0] == 0
    assert docs.owned("kim", DocumentFilter(created_to=later), 0, 10)[0] == 2


def test_shared_with_keeps_who_granted_and_when(catalog: CatalogStore) -> None:
    docs = catalog.documents
    catalog.organisation.create_user("lee", "hash", "이지영", "D2", ["member"])
    mine = docs.create(new_doc("a" * 64, owner="lee"))[0]
    theirs = docs.create(new_doc("b" * 64))[0]
    other = docs.create(new_doc("c" * 64))[0]
    past = datetime.now(UTC) - timedelta(minutes=1)
    docs.set_acl(mine.id, "private", [GrantRecord("user:lee", "read")], "lee")
    docs.set_acl(theirs.id, "private", [GrantRecord("dept:D2", "write")], "kim")
    docs.set_acl(other.id, "private", [GrantRecord("user:lee", "read", past)], "kim")
    shared = docs.shared_with(["user:lee", "dept:D2"], "lee", DocumentFilter(), datetime.now(UTC))
    # Not the caller's own document; not an expired grant (not yet deleted).
    assert [(s.document.id, s.principal, s.permission, s.granted_by) for s in shared] == [
        (theirs.id, "dept:D2", "write", "kim")
    ]
    when = shared[0].granted_at
    assert when is not None
    # Kept as it was in a later ACL change: the same grantor and time.
    docs.set_acl(
        theirs.id,
        "private",
        [GrantRecord("dept:D2", "write"), GrantRecord("user:lee", "read")],
        "boss",
    )
    again = docs.shared_with(["user:lee", "dept:D2"], "lee", DocumentFilter(), datetime.now(UTC))
    newest = again[0]
    assert (newest.principal, newest.granted_by) == ("user:lee", "boss")  # the newest grant
    (dept,) = docs.shared_with(["dept:D2"], "lee", DocumentFilter(), datetime.now(UTC))
    assert (dept.granted_by, dept.granted_at) == ("kim", when)
    assert docs.shared_with([], "lee", DocumentFilter(), datetime.now(UTC)) == []
    assert (
        docs.shared_with(["user:lee"], "lee", DocumentFilter(department="D2"), datetime.now(UTC))
        == []
    )


def test_recent_is_written_with_the_audit_record(catalog: CatalogStore) -> None:
    docs = catalog.documents
    a = docs.create(new_doc("a" * 64))[0]
    b = docs.create(new_doc("b" * 64))[0]
    catalog.audit.append(
        [
            NewAuditEvent("kim", "read", a.id),
            NewAuditEvent("kim", "download", b.id),
            NewAuditEvent("kim", "read", a.id),  # twice in one batch: one row
            NewAuditEvent("kim", "denied", b.id, outcome="denied"),
            NewAuditEvent("kim", "search", ""),
        ]
    )
    recent = docs.recent("kim", DocumentFilter(), 10)
    assert [(r.document.id, r.action) for r in recent] == [(a.id, "read"), (b.id, "download")]
    with catalog.unit_of_work() as uow:
        uow.audit.append([NewAuditEvent("kim", "update_metadata", b.id)])
        # Rolled back with the audit record: nothing recorded.
    assert docs.recent("kim", DocumentFilter(), 10)[0].document.id == a.id
    with catalog.unit_of_work() as uow:
        uow.audit.append([NewAuditEvent("kim", "update_metadata", b.id)])
        uow.commit()
    assert [r.document.id for r in docs.recent("kim", DocumentFilter(), 10)] == [b.id, a.id]
    assert [r.document.id for r in docs.recent("kim", DocumentFilter(), 1)] == [b.id]
    docs.soft_delete(b.id)
    assert [r.document.id for r in docs.recent("kim", DocumentFilter(), 10)] == [a.id]
    assert docs.recent("lee", DocumentFilter(), 10) == []


def test_trash_restore_and_purge(catalog: CatalogStore) -> None:
    docs = catalog.documents
    a = docs.create(new_doc("a" * 64))[0]
    b = docs.create(new_doc("b" * 64))[0]
    live = docs.create(new_doc("c" * 64))[0]
    docs.soft_delete(a.id, actor="kim")
    docs.soft_delete(b.id)
    trashed = docs.trashed(DocumentFilter())
    assert [d.id for d in trashed] == [b.id, a.id]
    assert (trashed[1].deleted_by, trashed[0].deleted_by) == ("kim", None)
    with pytest.raises(ConflictError):
        docs.restore(live.id)
    with pytest.raises(NotFoundError):
        docs.restore("0" * 32)
    restored = docs.restore(b.id)
    assert restored.deleted_at is None and restored.revision > b.revision
    assert b.id in catalog.outbox.pending_full_reindex([b.id])  # queued for a full re-index
    assert [d.id for d in docs.trashed(DocumentFilter())] == [a.id]
    # Purge: only what was deleted before the cut-off, once.
    assert docs.purgeable(datetime.now(UTC) - timedelta(days=1), 10) == []
    assert docs.purge(datetime.now(UTC) - timedelta(days=1), 10) == []
    cut = datetime.now(UTC) + timedelta(seconds=1)
    assert [d.id for d in docs.purgeable(cut, 10)] == [a.id]
    indexed(catalog, a.id, b.id, live.id)
    assert docs.purge(cut, 10) == [a.id]
    assert docs.purge(cut, 10) == []  # idempotent
    gone = docs.get(a.id, include_deleted=True)
    assert gone.purged_at is not None and gone.deleted_by == "kim"
    assert docs.trashed(DocumentFilter()) == []
    assert gone.id in {c.document_id for c in catalog.outbox.claim(10, timedelta(minutes=1))}
    with pytest.raises(ConflictError):
        docs.restore(a.id)
    assert [v.version for v in docs.list_versions(a.id)] == [1]  # its versions are kept


# -- folders ------------------------------------------------------------------------------


def test_folders_tree_rename_move_delete(catalog: CatalogStore) -> None:
    folders = catalog.folders
    a = folders.create("D1", None, "가", "kim")
    b = folders.create("D1", a.id, "나", "kim")
    c = folders.create("D1", b.id, "다", "kim")
    other = folders.create("D2", None, "가", "kim")  # the same name in another department
    assert a.parent_id == "" and a.ancestry == (a.id,)
    assert c.ancestry == (a.id, b.id, c.id)
    with pytest.raises(ConflictError):
        folders.create("D1", a.id, "나", "kim")
    with pytest.raises(ConflictError):
        folders.create("D1", None, "가", "kim")  # unique at the top level too
    with pytest.raises(NotFoundError):
        folders.create("D1", other.id, "x", "kim")  # a parent of another department
    with pytest.raises(NotFoundError):
        folders.create("D9", None, "x", "kim")
    assert [f.id for f in folders.tree("D1")] == [a.id, b.id, c.id]
    assert [f.id for f in folders.children("D1", None)] == [a.id]
    assert sorted(folders.subtree_ids(b.id)) == sorted([b.id, c.id])
    assert folders.subtree_ids("0" * 32) == []
    assert folders.rename(c.id, "라").name == "라"
    with pytest.raises(ConflictError):
        folders.move(a.id, c.id)  # under itself
    with pytest.raises(ConflictError):
        folders.move(a.id, a.id)
    with pytest.raises(NotFoundError):
        folders.move(a.id, other.id)  # another department
    moved = folders.move(b.id, None)
    assert moved.parent_id == "" and moved.ancestry == (b.id,)
    assert folders.get(c.id).ancestry == (b.id, c.id)  # the subtree follows
    assert folders.subtree_ids(a.id) == [a.id]
    assert folders.contents(b.id).folders == 1 and not folders.contents(b.id).empty
    folders.delete(c.id)
    assert folders.contents(b.id).empty
    with pytest.raises(NotFoundError):
        folders.get(c.id)
    assert set(folders.get_many([a.id, c.id, other.id])) == {a.id, other.id}


def test_documents_are_filed_in_folders_of_their_department(catalog: CatalogStore) -> None:
    folders = catalog.folders
    f = folders.create("D1", None, "보관", "kim")
    g = folders.create("D2", None, "다른 부서", "kim")
    doc, _ = catalog.documents.create(new_doc(folder_id=f.id))
    assert doc.folder_id == f.id and catalog.documents.get(doc.id).folder_id == f.id
    with pytest.raises(NotFoundError):
        catalog.documents.create(new_doc("b" * 64, folder_id=g.id))
    with pytest.raises(NotFoundError):
        catalog.documents.create_many([new_doc("c" * 64, folder_id="0" * 32)])
    plain, _ = catalog.documents.create(new_doc("d" * 64))
    indexed(catalog, plain.id)
    filed = folders.file_document(plain.id, f.id)
    # Filing is a change: a new revision, queued (the text unchanged: access-only).
    assert filed.folder_id == f.id and filed.revision == plain.revision + 1
    assert plain.id in {c.document_id for c in catalog.outbox.claim(10, timedelta(minutes=1))}
    with pytest.raises(NotFoundError):
        folders.file_document(plain.id, g.id)
    assert folders.filed_in([doc.id, plain.id]) == {doc.id: f.id, plain.id: f.id}
    assert folders.document_ids([f.id]) == (2, [plain.id, doc.id])  # newest first
    assert folders.document_ids([f.id], offset=1, limit=5) == (2, [doc.id])
    assert folders.contents(f.id).documents == 2
    catalog.documents.soft_delete(doc.id)
    contents = folders.contents(f.id)
    assert (contents.documents, contents.deleted_documents) == (1, 1)
    assert folders.file_document(plain.id, None).folder_id is None
    assert folders.document_ids([f.id]) == (0, [])


def test_a_policy_on_a_folder_selects_its_subtree(catalog: CatalogStore) -> None:
    from storage.catalog.policy_match import PolicyMatch

    folders = catalog.folders
    top = folders.create("D1", None, "위", "kim")
    under = folders.create("D1", top.id, "아래", "kim")
    aside = folders.create("D1", None, "옆", "kim")
    a, _ = catalog.documents.create(new_doc("a" * 64, folder_id=under.id))
    catalog.documents.create(new_doc("b" * 64, folder_id=aside.id))
    catalog.documents.create(new_doc("c" * 64))
    assert catalog.documents.get(a.id).folder_path == (top.id, under.id)
    assert catalog.documents.access_records([a.id])[a.id].folder_path == (top.id, under.id)
    match = PolicyMatch(folder=top.id)
    change = catalog.policies.create(NewPolicy("폴더", match, "dept:D2", "read"), "admin")
    assert change.affected_documents == 1
    # A move re-queues the documents under the folder, their access changed.
    indexed(catalog, a.id)
    folders.move(under.id, aside.id)
    assert a.id in catalog.documents.stale_access_ids()
    assert catalog.documents.get(a.id).folder_path == (aside.id, under.id)
    assert not match.matches(catalog.documents.get(a.id))
    assert (
        catalog.policies.update(
            change.policy.id,
            NewPolicy("폴더", PolicyMatch(folder=aside.id), "dept:D2", "read"),
            "admin",
        ).affected_documents
        == 2
    )

"""Policies in the catalog: the SQL fan-out selects exactly what the access rules match."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import pytest

from indexer.access_facts import policy_matches
from storage.catalog.policy_match import PolicyMatch
from storage.catalog.records import AuditFilter, IndexOutcome, NewAuditEvent, NewPolicy
from storage.catalog.sql import SqlCatalog
from storage.errors import NotFoundError
from tests.unit.test_catalog import new_doc


@pytest.fixture
def catalog(tmp_path: Path) -> SqlCatalog:
    c = SqlCatalog(f"sqlite:///{tmp_path / 'c.db'}")
    c.migrate()
    for ministry, dept in (("M1", "D1"), ("M1", "D2"), ("M2", "D3")):
        if c.organisation.get_ministry(ministry) is None:
            c.organisation.create_ministry(ministry, ministry)
        c.organisation.create_department(dept, dept, ministry)
    c.organisation.create_user("kim", "hash", "김", "D1", ["member"])
    news = [
        new_doc(f"{i:064x}", department=dept, visibility=vis, tags=tags)
        for i, (dept, vis, tags) in enumerate(
            itertools.product(
                ("D1", "D2", "D3"),
                ("private", "department", "ministry", "government"),
                ((), ("감사",), ("감사", "예산"), ("예산감사",)),
            )
        )
    ]
    c.documents.create_many(news)
    return c


MATCHES = [
    {"tag": "감사"},
    {"tag": "예산"},
    {"tag": "감"},  # no partial matches
    {"ministry": "M1"},
    {"department": "D3", "visibility": "private"},
    {"ministry": "M1", "tag": "예산", "visibility": "ministry"},
    {"ministry": "M2", "department": "D1"},
    {"owner": "kim"},  # unknown attribute: nothing
    {},  # empty: nothing, never everything
]


@pytest.mark.parametrize("match", MATCHES)
def test_fan_out_selects_what_the_rules_match(catalog: SqlCatalog, match: dict[str, str]) -> None:
    docs = [catalog.documents.get(i) for batch in catalog.documents.all_ids() for i in batch]
    # As the catalog reads a stored match: an unknown attribute matches nothing.
    new = NewPolicy("p", PolicyMatch.stored(match), "user:kim", "read")
    change = catalog.policies.create(new, "admin")
    expected = {d.id for d in docs if policy_matches(change.policy, d)}
    assert change.affected_documents == change.reindexed_documents == len(expected)
    after = {
        d.id: d for batch in catalog.documents.all_ids() for d in catalog.documents.get_many(batch)
    }
    bumped = {i for i, d in after.items() if d.policy_revision > 0}
    assert bumped == expected
    assert all(after[i].revision == after[i].policy_revision == 2 for i in expected)
    assert catalog.policies.fanout_backlog() == len(expected)
    assert catalog.policies.pending_ids() == ({change.policy.id} if expected else set())


def test_changes_generations_and_settling(catalog: SqlCatalog) -> None:
    created = catalog.policies.create(
        NewPolicy("p", PolicyMatch(tag="감사"), "user:kim", "read"), "admin"
    )
    assert created.policy.generation == 1 and created.affected_documents == 24
    claims = catalog.outbox.claim(1, timedelta(minutes=1), access_limit=100)
    assert len(claims) == 25 and sum(c.access_only for c in claims) == 24  # beyond the limit
    assert catalog.policies.settle_fanouts() == 0  # the index is behind
    # Another grantee and expiry: the same token, nothing re-indexed.
    moved = catalog.policies.update(
        created.policy.id, NewPolicy("q", PolicyMatch(tag="감사"), "dept:D2", "write"), "admin"
    )
    assert moved.policy.generation == 1 and moved.reindexed_documents == 0
    assert moved.affected_documents == 24 and moved.policy.updated_by == "admin"
    rematched = catalog.policies.update(
        created.policy.id, NewPolicy("q", PolicyMatch(tag="예산"), "dept:D2", "write"), "admin"
    )
    assert rematched.policy.generation == 2 and rematched.reindexed_documents == 12
    every = [i for batch in catalog.documents.all_ids() for i in batch]
    docs = catalog.documents.get_many(every)
    catalog.documents.mark_indexed_many(
        [IndexOutcome(d.id, d.revision, d.version, None, "", None) for d in docs]
    )
    assert catalog.policies.fanout_backlog() == 0
    assert catalog.policies.settle_fanouts() == 2 and catalog.policies.pending_ids() == set()
    audit = NewAuditEvent(actor="admin", action="policy_delete")
    deleted = catalog.policies.delete(created.policy.id, audit=audit)
    assert deleted.reindexed_documents == 0 and deleted.affected_documents == 12
    (event,) = catalog.audit.page(AuditFilter(action="policy_delete"))
    assert event.target == f"policy:{created.policy.id}"
    assert event.detail["affected_documents"] == 12
    with pytest.raises(NotFoundError):
        catalog.policies.delete(created.policy.id)
    assert catalog.policies.list_all() == []


def test_a_tag_change_marks_the_access_stale(catalog: SqlCatalog) -> None:
    doc_id = next(iter(catalog.documents.all_ids()))[0]
    doc = catalog.documents.get(doc_id)
    catalog.documents.mark_indexed_many(
        [IndexOutcome(doc.id, doc.revision, doc.version, None, "", None)]
    )
    catalog.documents.update_metadata(doc_id, title="새 제목")
    assert doc_id not in catalog.documents.stale_access_ids()  # a title does not change access
    catalog.documents.update_metadata(doc_id, tags=["새태그"])
    assert doc_id in catalog.documents.stale_access_ids()

"""Policies in the catalog: the SQL fan-out selects exactly what the access rules match."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import pytest

from indexer.access_facts import policy_matches
from storage.catalog import Catalog
from storage.catalog.policy_match import PolicyMatch
from storage.catalog.records import NewAuditEvent, NewPolicy
from storage.errors import NotFoundError
from tests.unit.test_catalog import new_doc


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    c = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    c.migrate()
    for ministry, dept in (("M1", "D1"), ("M1", "D2"), ("M2", "D3")):
        if c.get_ministry(ministry) is None:
            c.create_ministry(ministry, ministry)
        c.create_department(dept, dept, ministry)
    c.create_user("kim", "hash", "김", "D1", ["member"])
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
    c.create_documents(news)
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
def test_fan_out_selects_what_the_rules_match(catalog: Catalog, match: dict[str, str]) -> None:
    docs = [catalog.get_document(i) for batch in catalog.all_document_ids() for i in batch]
    # As the catalog reads a stored match: an unknown attribute matches nothing.
    new = NewPolicy("p", PolicyMatch.stored(match), "user:kim", "read")
    change = catalog.create_policy(new, "admin")
    expected = {d.id for d in docs if policy_matches(change.policy, d)}
    assert change.affected_documents == change.reindexed_documents == len(expected)
    after = {d.id: d for batch in catalog.all_document_ids() for d in catalog.get_documents(batch)}
    bumped = {i for i, d in after.items() if d.policy_revision > 0}
    assert bumped == expected
    assert all(after[i].revision == after[i].policy_revision == 2 for i in expected)
    assert catalog.policy_fanout_backlog() == len(expected)
    assert catalog.pending_policy_ids() == ({change.policy.id} if expected else set())


def test_changes_generations_and_settling(catalog: Catalog) -> None:
    created = catalog.create_policy(
        NewPolicy("p", PolicyMatch(tag="감사"), "user:kim", "read"), "admin"
    )
    assert created.policy.generation == 1 and created.affected_documents == 24
    claims = catalog.claim_outbox(1, timedelta(minutes=1), access_limit=100)
    assert len(claims) == 25 and sum(c.access_only for c in claims) == 24  # beyond the limit
    assert catalog.settle_policy_fanouts() == 0  # the index is behind
    # Another grantee and expiry: the same token, nothing re-indexed.
    moved = catalog.update_policy(
        created.policy.id, NewPolicy("q", PolicyMatch(tag="감사"), "dept:D2", "write"), "admin"
    )
    assert moved.policy.generation == 1 and moved.reindexed_documents == 0
    assert moved.affected_documents == 24 and moved.policy.updated_by == "admin"
    rematched = catalog.update_policy(
        created.policy.id, NewPolicy("q", PolicyMatch(tag="예산"), "dept:D2", "write"), "admin"
    )
    assert rematched.policy.generation == 2 and rematched.reindexed_documents == 12
    every = [i for batch in catalog.all_document_ids() for i in batch]
    docs = catalog.get_documents(every)
    catalog.mark_indexed_many([(d.id, d.revision, d.version, None, "", None) for d in docs])
    assert catalog.policy_fanout_backlog() == 0
    assert catalog.settle_policy_fanouts() == 2 and catalog.pending_policy_ids() == set()
    audit = NewAuditEvent(actor="admin", action="policy_delete")
    deleted = catalog.delete_policy(created.policy.id, audit=audit)
    assert deleted.reindexed_documents == 0 and deleted.affected_documents == 12
    (event,) = catalog.list_audit(action="policy_delete")
    assert event.target == f"policy:{created.policy.id}"
    assert event.detail["affected_documents"] == 12
    with pytest.raises(NotFoundError):
        catalog.delete_policy(created.policy.id)
    assert catalog.list_policies() == []


def test_a_tag_change_marks_the_access_stale(catalog: Catalog) -> None:
    doc_id = next(iter(catalog.all_document_ids()))[0]
    doc = catalog.get_document(doc_id)
    catalog.mark_indexed_many([(doc.id, doc.revision, doc.version, None, "", None)])
    catalog.update_metadata(doc_id, title="새 제목")
    assert doc_id not in catalog.stale_access_ids()  # a title does not change access
    catalog.update_metadata(doc_id, tags=["새태그"])
    assert doc_id in catalog.stale_access_ids()

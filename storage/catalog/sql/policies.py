"""Policies (a grant on every document matching a ministry, department, tag and/or
visibility) and their fan-out: the bulk re-index of the documents a new match
selects, queued in the policy change's own transaction (SQL)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, literal, select, true, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from storage.catalog import models as m
from storage.catalog.policy_match import PolicyMatch, match_clause
from storage.catalog.records import NewAuditEvent, NewPolicy, PolicyChange, PolicyRecord
from storage.catalog.sql.audit import append_events
from storage.catalog.sql.base import SqlRepository
from storage.catalog.sql.database import now as _now
from storage.catalog.sql.database import rowcount
from storage.catalog.sql.database import table as _table
from storage.errors import NotFoundError

#: The document attributes a policy can match on (`indexer.access_facts.policy_matches`).

_POLICIES = _table(m.Policy)
_FANOUTS = _table(m.PolicyFanout)
ALL_POLICIES = select(_POLICIES).order_by(_POLICIES.c.id)
PENDING_POLICY_IDS = select(_FANOUTS.c.policy_id).where(_FANOUTS.c.done_at.is_(None))


def policy_record(r: Any) -> PolicyRecord:
    """From an ORM `Policy` or a Core row of the policies table."""
    return PolicyRecord(
        r.id,
        r.name,
        PolicyMatch.stored(r.match),
        r.principal,
        r.permission,
        r.expires_at,
        r.created_at,
        r.created_by,
        r.updated_at,
        r.updated_by,
        r.generation,
        r.uid,
    )


class SqlPolicies(SqlRepository):
    """`ports.Policies` over SQL."""

    def list_all(self) -> list[PolicyRecord]:
        """Every policy, expired ones included (access rules skip those by date)."""
        with self._read() as conn:
            return [policy_record(r) for r in conn.execute(ALL_POLICIES)]

    def get(self, policy_id: int) -> PolicyRecord:
        """Raises NotFoundError."""
        with self._session() as s:
            r = s.get(m.Policy, policy_id)
            if r is None:
                raise NotFoundError(f"no policy {policy_id}")
            return policy_record(r)

    def _match_clause(self, match: dict[str, str]) -> ColumnElement[bool]:
        """SQL for a policy's stored match over the documents table (`policy_match`)."""
        return match_clause(PolicyMatch.stored(match), _table(m.Document), sqlite=self.is_sqlite)

    def _count_matching(self, s: Session, match: dict[str, str]) -> int:
        docs = _table(m.Document)
        query = select(func.count()).where(docs.c.deleted_at.is_(None), self._match_clause(match))
        return int(s.scalar(query) or 0)

    def _fan_out(self, s: Session, policy: m.Policy, now: datetime) -> int:
        """Queue the documents the policy matches for an access-only re-index, in bulk.

        Bumps their revision and policy revision and adds an outbox row for each
        (two statements, whatever the number of documents), and records the
        fan-out as pending: until the index catches up, searches by the policy's
        grantees also match by the policy's match. Returns the number of documents.
        """
        docs = _table(m.Document)
        outbox = _table(m.OutboxItem)
        where = and_(docs.c.deleted_at.is_(None), self._match_clause(dict(policy.match)))
        result = s.execute(
            update(docs)
            .where(where)
            .values(revision=docs.c.revision + 1, policy_revision=docs.c.revision + 1)
        )
        count = rowcount(result)
        if count:
            at = literal(now, outbox.c.created_at.type)
            s.execute(
                insert(outbox).from_select(
                    [
                        "document_id",
                        "revision",
                        "created_at",
                        "available_at",
                        "attempts",
                        "last_error",
                        "access_only",
                    ],
                    select(
                        docs.c.id, docs.c.revision, at, at, literal(0), literal(""), true()
                    ).where(where),
                )
            )
        s.add(
            m.PolicyFanout(
                policy_id=policy.id,
                generation=policy.generation,
                documents=count,
                created_at=now,
                done_at=None if count else now,
            )
        )
        return count

    @staticmethod
    def _policy_audit(s: Session, audit: NewAuditEvent | None, change: PolicyChange) -> None:
        if audit is None:
            return
        detail = {
            **audit.detail,
            "policy_id": change.policy.id,
            "generation": change.policy.generation,
            "affected_documents": change.affected_documents,
            "reindexed_documents": change.reindexed_documents,
        }
        target = f"policy:{change.policy.id}"
        append_events(s, [replace(audit, target=target, detail=detail)])

    def create(
        self, new: NewPolicy, actor: str, *, audit: NewAuditEvent | None = None
    ) -> PolicyChange:
        """Create a policy and queue its documents for the index, in one transaction.

        `audit`, if given, is recorded in the same transaction (target and detail
        completed with the policy id and the number of documents it matches).
        """
        with self._session(write=True) as s:
            now = _now()
            row = m.Policy(
                uid=uuid.uuid4().hex,
                name=new.name,
                match=dict(new.match),
                principal=new.principal,
                permission=new.permission,
                expires_at=new.expires_at,
                created_at=now,
                created_by=actor,
                updated_at=None,
                updated_by="",
                generation=1,
            )
            s.add(row)
            s.flush()
            queued = self._fan_out(s, row, now)
            change = PolicyChange(policy_record(row), queued, queued)
            self._policy_audit(s, audit, change)
            return change

    def update(
        self,
        policy_id: int,
        new: NewPolicy,
        actor: str,
        *,
        audit: NewAuditEvent | None = None,
    ) -> PolicyChange:
        """Replace a policy's fields.

        A new match starts a new generation (a new index token: documents of the
        old match lose the grant at once) and queues the documents of the new
        match. Principal, permission and expiry count at the next request as
        they are; nothing is re-indexed for them.
        """
        with self._session(write=True) as s:
            row = s.get(m.Policy, policy_id)
            if row is None:
                raise NotFoundError(f"no policy {policy_id}")
            now = _now()
            rematch = dict(row.match) != dict(new.match)
            row.name = new.name
            row.match = dict(new.match)
            row.principal = new.principal
            row.permission = new.permission
            row.expires_at = new.expires_at
            row.updated_at = now
            row.updated_by = actor
            if rematch:
                row.generation += 1
            s.flush()
            queued = self._fan_out(s, row, now) if rematch else 0
            matching = queued if rematch else self._count_matching(s, dict(row.match))
            change = PolicyChange(policy_record(row), matching, queued)
            self._policy_audit(s, audit, change)
            return change

    def delete(self, policy_id: int, *, audit: NewAuditEvent | None = None) -> PolicyChange:
        """Delete a policy. Its token stops counting at once; nothing is re-indexed."""
        with self._session(write=True) as s:
            row = s.get(m.Policy, policy_id)
            if row is None:
                raise NotFoundError(f"no policy {policy_id}")
            record = policy_record(row)
            matching = self._count_matching(s, dict(row.match))
            s.delete(row)
            s.execute(delete(m.PolicyFanout).where(m.PolicyFanout.policy_id == policy_id))
            change = PolicyChange(record, matching, 0)
            self._policy_audit(s, audit, change)
            return change

    def pending_ids(self) -> set[int]:
        """Policies whose token the index may still lack on some documents they match."""
        with self._read() as conn:
            return set(conn.scalars(PENDING_POLICY_IDS))

    def fanout_backlog(self) -> int:
        """Documents whose index entry is older than the policy change that selected them."""
        docs = _table(m.Document)
        with self._session() as s:
            return int(
                s.scalar(
                    select(func.count()).where(docs.c.indexed_revision < docs.c.policy_revision)
                )
                or 0
            )

    def settle_fanouts(self) -> int:
        """Mark fan-outs done once the index holds no document behind its policy revision.

        Returns the number of fan-outs marked done.
        """
        docs = _table(m.Document)
        fanouts = _table(m.PolicyFanout)
        with self._session(write=True) as s:
            # Only fan-outs committed before the check below: under READ COMMITTED
            # one committed meanwhile must not be marked done with its documents
            # still behind.
            last = s.scalar(select(func.max(fanouts.c.id)).where(fanouts.c.done_at.is_(None)))
            if last is None:
                return 0
            behind = s.execute(
                select(docs.c.id).where(docs.c.indexed_revision < docs.c.policy_revision).limit(1)
            ).first()
            if behind is not None:
                return 0
            result = s.execute(
                update(fanouts)
                .where(fanouts.c.done_at.is_(None), fanouts.c.id <= last)
                .values(done_at=_now())
            )
            return rowcount(result)

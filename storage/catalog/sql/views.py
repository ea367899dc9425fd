"""The personal views (my documents, shared with me, recent) and the trash (list,
restore, purge) over SQL: `ports.DocumentViews`, a base of `SqlDocuments`.

The reads narrow in SQL (owner, grants naming the caller's tokens, the caller's
recent rows, deleted documents) and return records; whether the caller may read
(or manage) each one is decided above, by the access rules, never here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.orm import Session

from storage.catalog import models as m
from storage.catalog.records import (
    DocumentFilter,
    DocumentRecord,
    RecentDocument,
    SharedDocument,
)
from storage.catalog.sql.base import SqlRepository
from storage.catalog.sql.database import now as _now
from storage.catalog.sql.database import table as _table
from storage.catalog.sql.outbox import enqueue
from storage.errors import ConflictError, NotFoundError

_DOCS = _table(m.Document)
_GRANTS = _table(m.DocumentGrant)
_RECENT = _table(m.RecentDocument)


def _filtered(query: Select[Any], where: DocumentFilter) -> Select[Any]:
    """The filter, written once for every view: each field given must match."""
    if where.content_type:
        query = query.where(_DOCS.c.content_type == where.content_type)
    if where.department:
        query = query.where(_DOCS.c.department == where.department)
    if where.created_from is not None:
        query = query.where(_DOCS.c.created_at >= where.created_from)
    if where.created_to is not None:
        query = query.where(_DOCS.c.created_at < where.created_to)
    return query


class SqlDocumentViews(SqlRepository):
    """`ports.DocumentViews` over SQL (`SqlDocuments` inherits it)."""

    def get_many(
        self, document_ids: Sequence[str], *, include_deleted: bool = False
    ) -> list[DocumentRecord]:
        raise NotImplementedError  # SqlDocuments' own

    def owned(
        self, owner: str, where: DocumentFilter, offset: int, limit: int
    ) -> tuple[int, list[DocumentRecord]]:
        """(how many live documents `owner` uploaded match, the page from `offset`),
        newest first."""
        base = _filtered(
            select(_DOCS.c.id).where(_DOCS.c.owner == owner, _DOCS.c.deleted_at.is_(None)), where
        )
        with self._read() as conn:
            total = int(conn.scalar(select(func.count()).select_from(base.subquery())) or 0)
            ids = list(
                conn.scalars(
                    base.order_by(_DOCS.c.created_at.desc(), _DOCS.c.id).offset(offset).limit(limit)
                )
            )
        return total, self.get_many(ids)

    def shared_with(
        self, tokens: Sequence[str], not_owner: str, where: DocumentFilter, now: datetime
    ) -> list[SharedDocument]:
        """Live documents not owned by `not_owner` holding a grant, in force at `now`, that
        names one of `tokens`: one entry a document (its newest such grant), newest first."""
        if not tokens:
            return []
        query = _filtered(
            select(
                _GRANTS.c.document_id,
                _GRANTS.c.principal,
                _GRANTS.c.permission,
                _GRANTS.c.created_by,
                _GRANTS.c.created_at,
                _GRANTS.c.expires_at,
            )
            .select_from(_GRANTS.join(_DOCS, _DOCS.c.id == _GRANTS.c.document_id))
            .where(
                _GRANTS.c.principal.in_(list(tokens)),
                or_(_GRANTS.c.expires_at.is_(None), _GRANTS.c.expires_at > now),
                _DOCS.c.owner != not_owner,
                _DOCS.c.deleted_at.is_(None),
            ),
            where,
        ).order_by(_GRANTS.c.created_at.desc(), _GRANTS.c.id.desc())
        newest: dict[str, Any] = {}
        with self._read() as conn:
            for row in conn.execute(query):
                newest.setdefault(row.document_id, row)
        docs = {d.id: d for d in self.get_many(list(newest))}
        return [
            SharedDocument(
                docs[i],
                row.principal,
                row.permission,
                row.created_by or None,
                row.created_at,
                row.expires_at,
            )
            for i, row in newest.items()
            if i in docs
        ]

    def recent(self, username: str, where: DocumentFilter, limit: int) -> list[RecentDocument]:
        """The live documents `username` last opened or changed, newest first, at most
        `limit` (the newest `limit` rows are looked at, then filtered)."""
        query = _filtered(
            select(_RECENT.c.document_id, _RECENT.c.at, _RECENT.c.action)
            .select_from(_RECENT.join(_DOCS, _DOCS.c.id == _RECENT.c.document_id))
            .where(_RECENT.c.username == username, _DOCS.c.deleted_at.is_(None)),
            where,
        )
        with self._read() as conn:
            rows = list(conn.execute(query.order_by(_RECENT.c.at.desc()).limit(limit)))
        docs = {d.id: d for d in self.get_many([r.document_id for r in rows])}
        return [
            RecentDocument(docs[r.document_id], r.at, r.action)
            for r in rows
            if r.document_id in docs
        ]

    def trashed(self, where: DocumentFilter) -> list[DocumentRecord]:
        """Deleted documents not yet purged, most recently deleted first."""
        query = _filtered(
            select(_DOCS.c.id).where(_DOCS.c.deleted_at.is_not(None), _DOCS.c.purged_at.is_(None)),
            where,
        ).order_by(_DOCS.c.deleted_at.desc(), _DOCS.c.id)
        with self._read() as conn:
            ids = list(conn.scalars(query))
        return self.get_many(ids, include_deleted=True)

    def restore(self, document_id: str) -> DocumentRecord:
        """Bring a deleted, not purged document back (queued for a full re-index: its
        index entry was removed). Raises NotFoundError (no such document),
        ConflictError (not deleted, or purged)."""
        with self._session(write=True) as s:
            d = s.get(m.Document, document_id)
            if d is None:
                raise NotFoundError(f"no document {document_id}")
            if d.deleted_at is None or d.purged_at is not None:
                raise ConflictError(f"document {document_id} is not in the trash")
            now = _now()
            d.deleted_at = None
            d.deleted_by = None
            d.revision += 1
            d.acl_revision = d.revision
            d.updated_at = now
            enqueue(s, d.id, d.revision, now)
            s.flush()
        (restored,) = self.get_many([document_id])
        return restored

    def purgeable(self, deleted_before: datetime, limit: int) -> list[DocumentRecord]:
        """Deleted, not purged documents deleted before `deleted_before`, oldest first."""
        with self._read() as conn:
            ids = list(conn.scalars(self._due(deleted_before).limit(limit)))
        return self.get_many(ids, include_deleted=True)

    def purge(self, deleted_before: datetime, limit: int) -> list[str]:
        """Purge up to `limit` documents deleted before `deleted_before` and not purged
        yet: marked purged (never listed or restored again), queued so the index
        drops them (again: idempotent), their recent rows removed. Versions, grants
        and bytes stay. Returns their ids; a second call purges nothing twice."""
        with self._session(write=True) as s:
            ids = list(s.scalars(self._due(deleted_before).limit(limit)))
            if not ids:
                return []
            now = _now()
            for d in s.scalars(select(m.Document).where(m.Document.id.in_(ids))):
                d.purged_at = now
                d.revision += 1
                d.acl_revision = d.revision
                enqueue(s, d.id, d.revision, now)
            _forget_recent(s, ids)
            return ids

    @staticmethod
    def _due(deleted_before: datetime) -> Select[Any]:
        return (
            select(_DOCS.c.id)
            .where(
                _DOCS.c.deleted_at.is_not(None),
                _DOCS.c.purged_at.is_(None),
                _DOCS.c.deleted_at < deleted_before,
            )
            .order_by(_DOCS.c.deleted_at, _DOCS.c.id)
        )


def _forget_recent(s: Session, document_ids: Sequence[str]) -> None:
    s.execute(delete(_RECENT).where(_RECENT.c.document_id.in_(list(document_ids))))

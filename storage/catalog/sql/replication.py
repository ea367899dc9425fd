"""The replication queue over SQL (`storage.catalog.replication`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from storage.catalog import models as m
from storage.catalog.replication import ReplicationBacklog, ReplicationItem, StoredBlobRef
from storage.catalog.sql.base import SqlRepository
from storage.catalog.sql.database import IN_CHUNK as _IN_CHUNK
from storage.catalog.sql.database import now as _now
from storage.catalog.sql.database import table as _table

_QUEUE = _table(m.ReplicationItem)
_VERSIONS = _table(m.DocumentVersion)
_INSERT_QUEUE = insert(_QUEUE)


def replication_row(
    document_id: str, version: int, blob_key: str, sha256: str, size: int, now: datetime
) -> dict[str, Any]:
    """A queue row (Core values) for a version just stored, due now."""
    return {
        "document_id": document_id,
        "version": version,
        "blob_key": blob_key,
        "sha256": sha256,
        "size": size,
        "created_at": now,
        "available_at": now,
        "attempts": 0,
        "last_error": "",
    }


def queue_versions(s: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Queue versions for the replica in the session's transaction (the upload's own)."""
    if rows:
        s.connection().execute(_INSERT_QUEUE, list(rows))


class SqlReplication(SqlRepository):
    """`replication.Replication` over SQL."""

    def claim(self, limit: int, lease: timedelta) -> list[ReplicationItem]:
        now = _now()
        with self._session(write=True) as s:
            rows = list(
                s.scalars(
                    select(m.ReplicationItem)
                    .where(m.ReplicationItem.available_at <= now)
                    .order_by(m.ReplicationItem.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            items = []
            for row in rows:
                row.available_at = now + lease
                row.attempts += 1
                items.append(
                    ReplicationItem(
                        row.id,
                        row.document_id,
                        row.version,
                        row.blob_key,
                        row.sha256,
                        row.size,
                        row.created_at,
                        row.attempts,
                    )
                )
            return items

    def done(self, blob_keys: Sequence[str]) -> int:
        keys = list(dict.fromkeys(blob_keys))
        removed = 0
        with self._session(write=True) as s:
            for first in range(0, len(keys), _IN_CHUNK):
                result = s.execute(
                    delete(_QUEUE).where(_QUEUE.c.blob_key.in_(keys[first : first + _IN_CHUNK]))
                )
                removed += int(getattr(result, "rowcount", 0) or 0)
        return removed

    def retry(self, item_ids: Sequence[int], error: str, retry_in: timedelta) -> None:
        ids = list(item_ids)
        if not ids:
            return
        with self._session(write=True) as s:
            s.execute(
                update(_QUEUE)
                .where(_QUEUE.c.id.in_(ids))
                .values(available_at=_now() + retry_in, last_error=error[:2000])
            )

    def backlog(self) -> ReplicationBacklog:
        with self._session() as s:
            count, size = s.execute(
                select(func.count(), func.coalesce(func.sum(_QUEUE.c.size), 0))
            ).one()
            oldest_at = s.scalar(select(_QUEUE.c.created_at).order_by(_QUEUE.c.created_at).limit(1))
            failing = int(
                s.scalar(select(func.count()).select_from(_QUEUE).where(_QUEUE.c.last_error != ""))
                or 0
            )
            last_error = ""
            if failing:
                last_error = str(
                    s.scalar(
                        select(_QUEUE.c.last_error)
                        .where(_QUEUE.c.last_error != "")
                        .order_by(_QUEUE.c.available_at.desc())
                        .limit(1)
                    )
                    or ""
                )
        return ReplicationBacklog(int(count), int(size), oldest_at, failing, last_error)

    def enqueue_all(self) -> int:
        now = _now()
        queued = (
            select(_QUEUE.c.id)
            .where(
                _QUEUE.c.document_id == _VERSIONS.c.document_id,
                _QUEUE.c.version == _VERSIONS.c.version,
            )
            .exists()
        )
        with self._session(write=True) as s:
            missing = s.execute(
                select(
                    _VERSIONS.c.document_id,
                    _VERSIONS.c.version,
                    _VERSIONS.c.blob_key,
                    _VERSIONS.c.sha256,
                    _VERSIONS.c.size,
                ).where(~queued)
            ).all()
            rows = [replication_row(r[0], r[1], r[2], r[3], r[4], now) for r in missing]
            queue_versions(s, rows)
            return len(rows)

    def stored_blobs(self, after: str, limit: int) -> list[StoredBlobRef]:
        with self._session() as s:
            rows = s.execute(
                select(_VERSIONS.c.blob_key, _VERSIONS.c.sha256, func.max(_VERSIONS.c.size))
                .where(_VERSIONS.c.blob_key > after)
                .group_by(_VERSIONS.c.blob_key, _VERSIONS.c.sha256)
                .order_by(_VERSIONS.c.blob_key)
                .limit(limit)
            ).all()
        return [StoredBlobRef(r[0], r[1], int(r[2])) for r in rows]

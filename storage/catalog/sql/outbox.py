"""The outbox: index work committed with the change that needs it, claimed by
workers under a lease, and the owners (worker processes) that hold claims (SQL)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, false, func, insert, select, true, update
from sqlalchemy.orm import Session

from storage.catalog import models as m
from storage.catalog.records import OutboxClaim, OutboxOwnerRecord
from storage.catalog.sql.base import SqlRepository
from storage.catalog.sql.database import IN_CHUNK as _IN_CHUNK
from storage.catalog.sql.database import now as _now
from storage.catalog.sql.database import rowcount
from storage.catalog.sql.database import table as _table

_DOCS = _table(m.Document)


def outbox_row(
    document_id: str, revision: int, now: datetime, *, access_only: bool = False
) -> dict[str, Any]:
    """An outbox row (Core values) for the document's revision, due now."""
    return {
        "document_id": document_id,
        "revision": revision,
        "created_at": now,
        "available_at": now,
        "attempts": 0,
        "last_error": "",
        "access_only": access_only,
    }


def enqueue(
    s: Session, document_id: str, revision: int, now: datetime, *, access_only: bool = False
) -> None:
    """Queue the document's revision for the index, in the session's transaction."""
    row = outbox_row(document_id, revision, now, access_only=access_only)
    s.execute(insert(_table(m.OutboxItem)), [row])


def _claimed_row(claim: OutboxClaim) -> tuple[Any, ...]:
    # Match the row by id, document and revision, never by id alone: once a
    # row is gone SQLite may give its id to the next row inserted, and a
    # stale claim must not touch another document's work.
    return (
        m.OutboxItem.id == claim.id,
        m.OutboxItem.document_id == claim.document_id,
        m.OutboxItem.revision == claim.revision,
    )


class SqlOutbox(SqlRepository):
    """`ports.Outbox` over SQL."""

    def claim(
        self,
        limit: int,
        lease: timedelta,
        *,
        access_limit: int = 0,
        max_bytes: int | None = None,
        owner: str = "",
    ) -> list[OutboxClaim]:
        """Claim up to `limit` due outbox rows for `lease`; a lapsed claim is claimable again.

        The rows record `owner` (an `outbox_owners` id, registered first) so that
        `reclaim` can hand them back at once if that owner dies.

        With `max_bytes`, the rows that need extraction stop once their documents'
        files add up to more than that (the first row is always claimed): a batch
        is held in memory while it is extracted and indexed, so many small files
        make one large batch and large files go a few at a time.

        With `access_limit` above `limit`, access-only rows (cheap: no extraction)
        are claimed beyond the first `limit` rows, up to `access_limit` of them,
        so a policy change touching many documents is applied in large batches.
        """
        now = _now()
        with self._session(write=True) as s:
            due = (
                select(m.OutboxItem)
                .where(m.OutboxItem.available_at <= now)
                .order_by(m.OutboxItem.id)
                .with_for_update(skip_locked=True)
            )
            rows = list(s.scalars(due.limit(limit)))
            if max_bytes is not None and len(rows) > 1:
                rows = self._within_bytes(s, rows, max_bytes)
            extra = access_limit - sum(1 for r in rows if r.access_only)
            if extra > 0 and len(rows) == limit:
                rows.extend(
                    s.scalars(
                        due.where(
                            m.OutboxItem.access_only.is_(true()),
                            m.OutboxItem.id > rows[-1].id,
                        ).limit(extra)
                    )
                )
            claims = []
            for row in rows:
                row.available_at = now + lease
                row.attempts += 1
                row.claimed_by = owner
                claims.append(
                    OutboxClaim(
                        row.id, row.document_id, row.revision, row.attempts, row.access_only
                    )
                )
            return claims

    @staticmethod
    def _within_bytes(s: Session, rows: list[m.OutboxItem], max_bytes: int) -> list[m.OutboxItem]:
        """The longest prefix of `rows` (at least one) whose documents needing
        extraction add up to at most `max_bytes` of files."""
        wanted = list({r.document_id for r in rows if not r.access_only})
        sizes: dict[str, int] = {
            doc_id: size
            for doc_id, size in s.execute(
                select(_DOCS.c.id, _DOCS.c.size).where(_DOCS.c.id.in_(wanted))
            )
        }
        taken: list[m.OutboxItem] = []
        total = 0
        for row in rows:
            size = 0 if row.access_only else int(sizes.get(row.document_id) or 0)
            if taken and total + size > max_bytes:
                break
            taken.append(row)
            total += size
        return taken

    def pending_full_reindex(self, document_ids: Sequence[str]) -> set[str]:
        """Which of these documents have outbox work beyond their access (text or metadata)."""
        out: set[str] = set()
        ids = list(dict.fromkeys(document_ids))
        with self._session() as s:
            for first in range(0, len(ids), _IN_CHUNK):
                out.update(
                    s.scalars(
                        select(m.OutboxItem.document_id).where(
                            m.OutboxItem.document_id.in_(ids[first : first + _IN_CHUNK]),
                            m.OutboxItem.access_only.is_(false()),
                        )
                    )
                )
        return out

    def release(self, claim: OutboxClaim, error: str, retry_in: timedelta) -> None:
        """Give a claimed row back after a transient failure, due again after `retry_in`."""
        with self._session(write=True) as s:
            s.execute(
                update(m.OutboxItem)
                .where(*_claimed_row(claim))
                .values(available_at=_now() + retry_in, last_error=error[:2000], claimed_by="")
            )

    def complete(self, claim: OutboxClaim) -> None:
        """Remove a claimed row whose work is done (no-op if it is already gone)."""
        with self._session(write=True) as s:
            s.execute(delete(m.OutboxItem).where(*_claimed_row(claim)))

    def register_owner(self, owner_id: str, host: str, pid: int, started: str) -> None:
        """Record (or refresh) a worker process that is about to claim outbox rows."""
        now = _now()
        owners = _table(m.OutboxOwner)
        with self._session(write=True) as s:
            done = s.execute(
                update(owners)
                .where(owners.c.id == owner_id)
                .values(host=host, pid=pid, started=started, heartbeat_at=now)
            )
            if not rowcount(done):
                s.execute(
                    insert(owners).values(
                        id=owner_id, host=host, pid=pid, started=started, heartbeat_at=now
                    )
                )

    def heartbeat_owner(self, owner_id: str) -> bool:
        """Say the owner is alive; False if its row is gone (it was taken for dead)."""
        owners = _table(m.OutboxOwner)
        with self._session(write=True) as s:
            done = s.execute(
                update(owners).where(owners.c.id == owner_id).values(heartbeat_at=_now())
            )
            return bool(rowcount(done))

    def owners(self) -> list[OutboxOwnerRecord]:
        """Every registered owner, and the owners named by claims but not registered
        (their row was removed: reported with an empty host and pid 0)."""
        owners = _table(m.OutboxOwner)
        outbox = _table(m.OutboxItem)
        with self._session() as s:
            known = [
                OutboxOwnerRecord(r.id, r.host, r.pid, r.started, r.heartbeat_at)
                for r in s.execute(select(owners).order_by(owners.c.id))
            ]
            ids = {o.id for o in known}
            named = s.scalars(
                select(outbox.c.claimed_by).where(outbox.c.claimed_by != "").distinct()
            )
            epoch = datetime.fromtimestamp(0, UTC)
            unknown = [OutboxOwnerRecord(i, "", 0, "", epoch) for i in named if i not in ids]
        return known + unknown

    def reclaim(self, owner_ids: Sequence[str]) -> int:
        """Take back the claims of owners that are gone: their rows are due now.

        The owners' rows are removed too. Returns how many outbox rows were freed.
        """
        if not owner_ids:
            return 0
        owners = _table(m.OutboxOwner)
        outbox = _table(m.OutboxItem)
        ids = list(owner_ids)
        with self._session(write=True) as s:
            freed = s.execute(
                update(outbox)
                .where(outbox.c.claimed_by.in_(ids))
                .values(available_at=_now(), claimed_by="")
            )
            s.execute(delete(owners).where(owners.c.id.in_(ids)))
            return rowcount(freed)

    def backlog(self) -> int:
        with self._session() as s:
            return int(s.scalar(select(func.count()).select_from(m.OutboxItem)) or 0)

    def due_ids(self, limit: int = 1000) -> list[int]:
        now = _now()
        with self._session() as s:
            return list(
                s.scalars(
                    select(m.OutboxItem.id)
                    .where(m.OutboxItem.available_at <= now)
                    .order_by(m.OutboxItem.id)
                    .limit(limit)
                )
            )

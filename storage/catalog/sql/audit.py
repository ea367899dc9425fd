"""The append-only, hash-chained audit log (SQL)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from storage.catalog import models as m
from storage.catalog.records import AuditFilter, AuditRecord, ChainCheck, NewAuditEvent
from storage.catalog.sql.base import SqlRepository
from storage.catalog.sql.database import now as _now
from storage.catalog.sql.database import table
from storage.catalog.sql.recent import remember_recent

GENESIS_HASH = "0" * 64
#: The filter that matches every record.
EVERY_RECORD = AuditFilter()


def chain_hash(prev_hash: str, fields: dict[str, object]) -> str:
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def audit_fields(
    at: datetime,
    actor: str,
    action: str,
    target: str,
    address: str,
    outcome: str,
    detail: dict[str, object],
) -> dict[str, object]:
    """The fields an audit record's hash covers, in canonical form."""
    return {
        "at": at.astimezone(UTC).isoformat(),
        "actor": actor,
        "action": action,
        "target": target,
        "address": address,
        "outcome": outcome,
        "detail": detail,
    }


_EVENTS = table(m.AuditEvent)
_HEAD = table(m.AuditChainHead)
# The head row is the lock that serialises writers of the chain.
_LOCK_HEAD = select(_HEAD.c.last_hash).where(_HEAD.c.id == 1).with_for_update()
_ADVANCE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(
        last_id=bindparam("to_id"),
        last_hash=bindparam("to_hash"),
        count=_HEAD.c.count + bindparam("added"),
    )
)
# One statement for the whole batch, ids returned in the order of the rows.
_INSERT_EVENTS = insert(_EVENTS).returning(_EVENTS.c.id, sort_by_parameter_order=True)


def append_events(s: Session, events: Sequence[NewAuditEvent]) -> None:
    """Extend the chain with `events` in the session's transaction (the caller's
    change and its audit record commit together or not at all).

    Core statements on the session's connection (this is on every upload's path,
    where the ORM's unit of work costs more than the inserts themselves); the
    session's pending changes are flushed first, so statements keep their order.
    """
    if not events:
        return
    s.flush()
    conn = s.connection()
    prev = conn.execute(_LOCK_HEAD).scalar_one_or_none()
    new_head = prev is None
    if prev is None:
        prev = GENESIS_HASH
    rows: list[dict[str, Any]] = []
    for ev in events:
        at = _now()
        digest = chain_hash(
            prev,
            audit_fields(at, ev.actor, ev.action, ev.target, ev.address, ev.outcome, ev.detail),
        )
        rows.append(
            {
                "at": at,
                "actor": ev.actor,
                "action": ev.action,
                "target": ev.target,
                "address": ev.address,
                "outcome": ev.outcome,
                "detail": ev.detail,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    last_id = conn.execute(_INSERT_EVENTS, rows).scalars().all()[-1]
    if new_head:
        conn.execute(insert(_HEAD).values(id=1, last_id=last_id, last_hash=prev, count=len(rows)))
    else:
        conn.execute(_ADVANCE_HEAD, {"to_id": last_id, "to_hash": prev, "added": len(rows)})
    remember_recent(conn, rows)


def _filtered(where: AuditFilter) -> Any:
    """The audit filter, written once: every field given must match."""
    query = select(m.AuditEvent)
    if where.actor:
        query = query.where(m.AuditEvent.actor == where.actor)
    if where.action:
        query = query.where(m.AuditEvent.action == where.action)
    if where.target:
        query = query.where(m.AuditEvent.target == where.target)
    if where.outcome:
        query = query.where(m.AuditEvent.outcome == where.outcome)
    if where.since:
        query = query.where(m.AuditEvent.at >= where.since)
    if where.until:
        query = query.where(m.AuditEvent.at < where.until)
    return query


class SqlAuditLog(SqlRepository):
    """`ports.AuditLog` over SQL."""

    def append(self, events: Sequence[NewAuditEvent]) -> None:
        """Append events to the hash chain (serialised: one writer extends the chain)."""
        if not events:
            return
        with self._session(write=True) as s:
            append_events(s, events)

    def page(
        self,
        where: AuditFilter = EVERY_RECORD,
        *,
        after_id: int = 0,
        limit: int = 100,
        before_id: int | None = None,
        newest_first: bool = False,
    ) -> list[AuditRecord]:
        """Audit records matching `where`, with ids above `after_id` (and below
        `before_id` if given), oldest first, or newest first with `newest_first`.

        Page on with `after_id` set to the last id returned (oldest first) or
        `before_id` set to it (newest first).
        """
        query = _filtered(where).where(m.AuditEvent.id > after_id)
        if before_id is not None:
            query = query.where(m.AuditEvent.id < before_id)
        query = query.order_by(m.AuditEvent.id.desc() if newest_first else m.AuditEvent.id)
        with self._session() as s:
            rows = s.scalars(query.limit(limit))
            return [
                AuditRecord(
                    r.id,
                    r.at,
                    r.actor,
                    r.action,
                    r.target,
                    r.address,
                    r.outcome,
                    dict(r.detail),
                    r.prev_hash,
                    r.hash,
                )
                for r in rows
            ]

    def each(
        self, where: AuditFilter = EVERY_RECORD, *, batch: int = 1000
    ) -> Iterator[AuditRecord]:
        """Every audit record matching `where`, oldest first, read in batches (for exports)."""
        after = 0
        while True:
            rows = self.page(where, after_id=after, limit=batch)
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1].id

    def verify_chain(self) -> ChainCheck:
        """Re-hash the whole chain and compare its end with the head.

        Returns (ok, records checked, first problem). The problem names the
        first record that does not verify: one whose contents were edited, one
        whose predecessor was removed, or the first one missing at the end.
        """
        prev = GENESIS_HASH
        checked = 0
        last_id = 0
        for r in self.each():
            expected = chain_hash(
                prev,
                audit_fields(r.at, r.actor, r.action, r.target, r.address, r.outcome, r.detail),
            )
            if r.prev_hash != prev:
                return ChainCheck(
                    False,
                    checked,
                    f"record {r.id}: chain broken: the record before it "
                    f"(after record {last_id}) was removed or altered",
                )
            if r.hash != expected:
                return ChainCheck(False, checked, f"record {r.id}: contents do not match its hash")
            prev = r.hash
            checked += 1
            last_id = r.id
        with self._session() as s:
            head = s.get(m.AuditChainHead, 1)
            if head is None:
                if checked:
                    return ChainCheck(False, checked, "the chain head is missing")
                return ChainCheck(True, 0, "")
            if head.last_hash != prev or head.count != checked:
                return ChainCheck(
                    False,
                    checked,
                    f"record {last_id + 1}: missing: the log ends at record {last_id} "
                    f"({checked} records) but its head records {head.count} records "
                    f"ending at record {head.last_id}",
                )
        return ChainCheck(True, checked, "")

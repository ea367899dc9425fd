"""The trash: deleted documents listed to those who may manage them, restored within
the retention period (`trash_retention_days`), then purged.

Who may see a document in the trash and restore it is who may delete it: the
`manage` permission of `auth.access` (its uploader, its department's
`dept_admin`s, a `manage` grant or policy), decided on the deleted document's
access facts. A restore and a purge are each one unit of work with their audit
records, the index worker woken after the commit. A purge takes the document out
of the index (queued, through the outbox) and out of the trash for good; its
versions and original bytes stay in the object store (keeping or removing
originals is the retention policy's decision, not the trash's). A purge is
idempotent: a purged document is never purged again, and a crash before the
commit leaves it due for the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from auth.access import Permission, Principal
from services.documents import Caller, Notify
from services.personal import Page, may, page_of
from storage.catalog.ports import CatalogStore, UnitOfWork
from storage.catalog.records import DocumentFilter, DocumentRecord, audit_event

#: Documents purged in one unit of work.
PURGE_BATCH = 500
#: The actor of purges made by the worker's periodic chore.
SYSTEM_ACTOR = "system"


def _now() -> datetime:
    return datetime.now(UTC)


class NotInTrashError(Exception):
    """The document is not deleted: there is nothing to restore (409)."""


class RetentionOverError(Exception):
    """The document's time in the trash is over (purged, or about to be): it can no
    longer be restored (410)."""


@dataclass(frozen=True)
class TrashEntry:
    document: DocumentRecord
    #: When the periodic purge takes it out of the trash for good.
    purge_at: datetime


class TrashService:
    """List, restore and purge deleted documents."""

    def __init__(
        self,
        catalog: CatalogStore,
        retention: timedelta,
        notify: Notify | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._catalog = catalog
        self._retention = retention
        self._notify = notify
        self._clock = clock

    def purge_at(self, doc: DocumentRecord) -> datetime:
        assert doc.deleted_at is not None
        return doc.deleted_at + self._retention

    def manageable(
        self, principal: Principal, where: DocumentFilter, offset: int, limit: int
    ) -> Page[TrashEntry]:
        """The deleted documents the caller may manage (and so restore), most recently
        deleted first; those past their retention are left out (the purge is due)."""
        if principal.disabled:
            return Page(0, [])
        now = self._clock()
        policies = self._catalog.policies.list_all()
        entries = [
            TrashEntry(doc, self.purge_at(doc))
            for doc in self._catalog.documents.trashed(where)
            if self.purge_at(doc) > now and may(principal, doc, policies, Permission.MANAGE, now)
        ]
        return page_of(entries, offset, limit)

    def restore(self, document_id: str, caller: Caller) -> DocumentRecord:
        """Bring a deleted document back (re-indexed through the outbox), audited in the
        same unit of work. The caller's `manage` permission is checked before.
        Raises NotFoundError, NotInTrashError, RetentionOverError."""
        with self._catalog.unit_of_work() as uow:
            doc = uow.documents.get(document_id, include_deleted=True)
            if doc.deleted_at is None:
                raise NotInTrashError(document_id)
            if doc.purged_at is not None or self.purge_at(doc) <= self._clock():
                raise RetentionOverError(document_id)
            restored = uow.documents.restore(document_id)
            uow.audit.append(
                [
                    audit_event(
                        caller.username,
                        "restore",
                        document_id,
                        caller.address,
                        detail={
                            "deleted_at": doc.deleted_at.isoformat(),
                            "deleted_by": doc.deleted_by,
                        },
                    )
                ]
            )
            self._after_commit(uow, [document_id])
            uow.commit()
        return restored

    def due(self, limit: int = 10_000) -> list[DocumentRecord]:
        """What a purge now would purge (oldest deletion first): `--dry-run`."""
        return self._catalog.documents.purgeable(self._clock() - self._retention, limit)

    def purge_due(self, actor: str = SYSTEM_ACTOR, address: str = "") -> list[str]:
        """Purge every document whose retention is over, `PURGE_BATCH` a unit of work,
        each purge audited with it; returns the ids purged (none twice, ever)."""
        purged: list[str] = []
        while True:
            with self._catalog.unit_of_work() as uow:
                ids = uow.documents.purge(self._clock() - self._retention, PURGE_BATCH)
                if not ids:
                    return purged
                docs = uow.documents.get_many(ids, include_deleted=True)
                uow.audit.append(
                    [
                        audit_event(
                            actor,
                            "purge",
                            d.id,
                            address,
                            detail={
                                "deleted_at": d.deleted_at.isoformat() if d.deleted_at else None,
                                "deleted_by": d.deleted_by,
                                "retention_days": self._retention.days,
                            },
                        )
                        for d in docs
                    ]
                )
                self._after_commit(uow, ids)
                uow.commit()
            purged.extend(ids)
            if len(ids) < PURGE_BATCH:
                return purged

    def _after_commit(self, uow: UnitOfWork, ids: list[str]) -> None:
        notify = self._notify
        if notify is not None:
            uow.after_commit(lambda: notify(ids))

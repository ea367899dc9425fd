"""Document changes: a new version, metadata, access (visibility and grants), delete.

Each is one unit of work: the change, its audit record and its outbox row commit
together or not at all (a crash between them leaves neither), and the index
worker is woken only after the commit. Permission checks come before (the
caller has loaded the document for the permission it needs); these functions
do not decide who may change what.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from services.errors import InvalidChangeError
from services.grantees import no_such_principal, principal_exists
from storage.catalog.ports import CatalogStore, UnitOfWork
from storage.catalog.records import (
    DocumentRecord,
    GrantRecord,
    NewAuditEvent,
    NewBlob,
    audit_event,
)

#: Wakes the index worker for these document ids (their outbox rows are committed).
Notify = Callable[[Sequence[str]], None]


@dataclass(frozen=True)
class Caller:
    """Who asks for a change, and from where (for the audit record)."""

    username: str
    address: str = ""


def _iso(at: datetime | None) -> str | None:
    # As the API writes times in JSON (pydantic): UTC as "Z".
    if at is None:
        return None
    text = at.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def acl_detail(visibility: str, grants: Sequence[GrantRecord]) -> dict[str, object]:
    """A document's access as the API shows it (`AclIO`), for audit records."""
    return {
        "visibility": visibility,
        "grants": [
            {"principal": g.principal, "permission": g.permission, "expires_at": _iso(g.expires_at)}
            for g in grants
        ],
    }


class DocumentService:
    """Document changes over a catalog, each in one unit of work."""

    def __init__(self, catalog: CatalogStore, notify: Notify | None = None) -> None:
        self._catalog = catalog
        self._notify = notify

    def _commit(self, uow: UnitOfWork, document_id: str, event: NewAuditEvent) -> None:
        uow.audit.append([event])
        notify = self._notify
        if notify is not None:
            uow.after_commit(lambda: notify([document_id]))
        uow.commit()

    def new_version(self, document_id: str, blob: NewBlob, caller: Caller) -> DocumentRecord:
        """Make `blob` (already durable in the object store) the current version.

        Raises NotFoundError (no such live document), StorageFullError,
        StorageUnavailableError.
        """
        with self._catalog.unit_of_work() as uow:
            updated = uow.documents.add_version(document_id, blob, caller.username)
            detail = {"version": updated.version, "sha256": updated.sha256, "size": updated.size}
            event = audit_event(
                caller.username, "new_version", document_id, caller.address, detail=detail
            )
            self._commit(uow, document_id, event)
        return updated

    def update_metadata(
        self,
        document_id: str,
        caller: Caller,
        *,
        title: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> DocumentRecord:
        """Change the title and/or the tags (None: leave as is). Raises NotFoundError."""
        with self._catalog.unit_of_work() as uow:
            updated = uow.documents.update_metadata(document_id, title=title, tags=tags)
            detail: dict[str, object] = {}
            if title is not None:
                detail["title"] = title
            if tags is not None:
                detail["tags"] = list(tags)
            event = audit_event(
                caller.username, "update_metadata", document_id, caller.address, detail=detail
            )
            self._commit(uow, document_id, event)
        return updated

    def set_acl(
        self,
        document_id: str,
        visibility: str,
        grants: Sequence[GrantRecord],
        caller: Caller,
    ) -> DocumentRecord:
        """Replace visibility and grants; the audit record holds the access before and
        after. Raises NotFoundError, ConflictError (a principal twice),
        InvalidChangeError (`unknown_grantee`: a grantee that does not exist;
        `expired_grant`: a new or changed grant whose expiry has passed)."""
        with self._catalog.unit_of_work() as uow:
            before = uow.documents.get(document_id)
            # Checked in the write transaction, against the organisation as it is now.
            unchanged = set(before.grants)
            now = datetime.now(UTC)
            for i, grant in enumerate(grants):
                if grant in unchanged:
                    continue  # kept as it is (an expired one counts for no one already)
                if not principal_exists(uow.organisation, grant.principal):
                    raise InvalidChangeError(
                        f"grants[{i}].principal: {no_such_principal(grant.principal)}",
                        "unknown_grantee",
                    )
                if grant.expires_at is not None and grant.expires_at <= now:
                    raise InvalidChangeError(
                        f"grants[{i}].expires_at: 이미 지난 시각입니다 · the expiry is in the past",
                        "expired_grant",
                    )
            updated = uow.documents.set_acl(document_id, visibility, grants, caller.username)
            detail = {
                "before": acl_detail(before.visibility, before.grants),
                "after": acl_detail(visibility, grants),
            }
            event = audit_event(
                caller.username, "acl_change", document_id, caller.address, detail=detail
            )
            self._commit(uow, document_id, event)
        return updated

    def delete(self, document_id: str, caller: Caller) -> None:
        """Hide the document everywhere (versions and blobs are kept). Raises NotFoundError."""
        with self._catalog.unit_of_work() as uow:
            uow.documents.soft_delete(document_id, actor=caller.username)
            event = audit_event(caller.username, "delete", document_id, caller.address)
            self._commit(uow, document_id, event)

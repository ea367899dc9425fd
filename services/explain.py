"""Explaining access: why a user can (or cannot) read a document, and who can.

Built over `auth.access.explain`, the function `can` is derived from, with the
same catalog facts (`indexer.access_facts`) that every search and download uses,
so an explanation cannot disagree with enforcement. Each explanation is audited
(`explain_access`, `explain_readers`). Who may ask (roles `admin`, `auditor`) is
the caller's business. Explaining is not reading: the answer holds the document's
access facts, never its title or content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from auth.access import AccessExplanation, AccessSource, Permission, access_sources, explain
from indexer.access_facts import document_access, principal_of
from services.documents import Caller
from storage.catalog.ports import CatalogStore
from storage.catalog.records import DocumentRecord, UserRecord, audit_event
from storage.errors import NotFoundError


@dataclass(frozen=True)
class UserAccess:
    """One user's access to one document, with its reasons."""

    user: UserRecord
    document: DocumentRecord
    result: AccessExplanation


@dataclass(frozen=True)
class Reader:
    user: UserRecord
    because: tuple[AccessSource, ...]


@dataclass(frozen=True)
class DocumentReaders:
    """Every user who may read a document, and the document's active access sources."""

    document: DocumentRecord
    sources: tuple[AccessSource, ...]
    readers: list[Reader]


class ExplainService:
    def __init__(self, catalog: CatalogStore) -> None:
        self._catalog = catalog

    def user_access(
        self, username: str, document_id: str, permission: Permission, caller: Caller
    ) -> UserAccess:
        """Raises NotFoundError (`user`: no such user; `document`: no such document)."""
        user = self._catalog.organisation.get_user(username)
        if user is None:
            raise NotFoundError("user")
        document = self._document(document_id)
        result = explain(
            principal_of(user),
            document_access(document, self._catalog.policies.list_all()),
            permission,
            datetime.now(UTC),
        )
        detail = {
            "user": user.username,
            "permission": permission.name.lower(),
            "allowed": result.allowed,
        }
        self._catalog.audit.append(
            [
                audit_event(
                    caller.username, "explain_access", document.id, caller.address, detail=detail
                )
            ]
        )
        return UserAccess(user=user, document=document, result=result)

    def readers(self, document_id: str, caller: Caller) -> DocumentReaders:
        """Raises NotFoundError (`document`)."""
        document = self._document(document_id)
        access = document_access(document, self._catalog.policies.list_all())
        now = datetime.now(UTC)
        readers = []
        for user in self._catalog.organisation.list_users():
            result = explain(principal_of(user), access, Permission.READ, now)
            if result.allowed:
                readers.append(Reader(user=user, because=result.because))
        self._catalog.audit.append(
            [
                audit_event(
                    caller.username,
                    "explain_readers",
                    document.id,
                    caller.address,
                    detail={"readers": len(readers)},
                )
            ]
        )
        return DocumentReaders(
            document=document, sources=tuple(access_sources(access, now)), readers=readers
        )

    def _document(self, document_id: str) -> DocumentRecord:
        try:
            return self._catalog.documents.get(document_id)
        except NotFoundError:
            raise NotFoundError("document") from None

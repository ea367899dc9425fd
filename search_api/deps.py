"""FastAPI dependencies, as `Annotated` aliases used by every router."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import OAuth2PasswordBearer

from auth.access import Permission, Principal, can
from auth.errors import InvalidTokenError
from crossdoc.wiring import Services
from indexer.access import document_access, principal_of
from search_api.audit import Auditor
from search_api.errors import forbidden, not_found
from storage.catalog.records import DocumentRecord
from storage.errors import NotFoundError

_DOCUMENT_ID = re.compile(r"^[0-9a-f]{32}$")

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_auditor(request: Request) -> Auditor:
    auditor: Auditor = request.app.state.auditor
    return auditor


ServicesDep = Annotated[Services, Depends(get_services)]
AuditorDep = Annotated[Auditor, Depends(get_auditor)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


AddressDep = Annotated[str, Depends(client_address)]


def current_principal(
    services: ServicesDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal:
    """The caller, from a valid access token and the *live* catalog (never from claims)."""
    if not token:
        raise InvalidTokenError("no token")
    claims = services.tokens.verify(token, "access")
    user = services.catalog.get_user(claims.subject)
    if user is None or user.disabled:
        raise InvalidTokenError("unknown or disabled user")
    return principal_of(user)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str) -> Callable[..., Principal]:
    """A dependency that lets only callers with one of `roles` through (403, audited)."""

    def dependency(
        principal: PrincipalDep, auditor: AuditorDep, request: Request, address: AddressDep
    ) -> Principal:
        if not principal.has_role(*roles):
            auditor.record(
                Auditor.event(
                    principal.username,
                    "denied",
                    request.url.path,
                    address,
                    "denied",
                    {"method": request.method, "needs": list(roles)},
                )
            )
            raise forbidden()
        return principal

    return dependency


AdminDep = Annotated[Principal, Depends(require_roles("admin"))]
AuditorRoleDep = Annotated[Principal, Depends(require_roles("auditor", "admin"))]


@dataclass(frozen=True)
class DocumentAccessContext:
    principal: Principal
    document: DocumentRecord


def _load(
    services: Services, principal: Principal, document_id: str, permission: Permission
) -> DocumentRecord:
    # Missing, deleted and unreadable documents answer the same 404, so that ids
    # of documents one may not read cannot be probed.
    if not _DOCUMENT_ID.match(document_id):
        raise not_found()
    try:
        doc = services.catalog.get_document(document_id)
    except NotFoundError:
        raise not_found() from None
    access = document_access(doc, services.catalog.list_policies())
    now = datetime.now(UTC)
    if not can(principal, access, Permission.READ, now):
        raise not_found()
    if not can(principal, access, permission, now):
        raise forbidden(f"you need '{permission.name.lower()}' permission on this document")
    return doc


DocumentId = Annotated[str, Path(max_length=64, description="document id")]


def readable_document(
    services: ServicesDep, principal: PrincipalDep, document_id: DocumentId
) -> DocumentRecord:
    return _load(services, principal, document_id, Permission.READ)


def writable_document(
    services: ServicesDep, principal: PrincipalDep, document_id: DocumentId
) -> DocumentRecord:
    return _load(services, principal, document_id, Permission.WRITE)


def managed_document(
    services: ServicesDep, principal: PrincipalDep, document_id: DocumentId
) -> DocumentRecord:
    return _load(services, principal, document_id, Permission.MANAGE)


ReadableDoc = Annotated[DocumentRecord, Depends(readable_document)]
WritableDoc = Annotated[DocumentRecord, Depends(writable_document)]
ManagedDoc = Annotated[DocumentRecord, Depends(managed_document)]

"""/trash and /documents/{id}/restore: deleted documents, listed to those who may
manage them (the rule of delete: `manage` on the document), restorable for
`trash_retention_days`, then purged by the worker (services/trash.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from auth.access import Permission
from crossdoc.wiring.api import Services
from search_api.audit_writer import Auditor
from search_api.deps import (
    AddressDep,
    AuditorDep,
    CallerDep,
    DocumentId,
    PrincipalDep,
    ServicesDep,
    client_address,
)
from search_api.errors import ApiError, not_found
from search_api.openapi import errors
from search_api.routers.documents import document_out
from search_api.routers.me import ViewQueryDep, audit_list
from search_api.schemas import DocumentOut, TrashItemOut, TrashOut
from services.personal import may
from services.trash import NotInTrashError, RetentionOverError, TrashService
from storage.errors import NotFoundError

router = APIRouter(tags=["trash"])

NOT_IN_TRASH = (
    "휴지통에 있는 문서가 아닙니다 (삭제되지 않았습니다) · "
    "the document is not in the trash (it is not deleted)"
)


def retention_over(days: int) -> str:
    return (
        f"보관 기간({days}일)이 지나 휴지통에서 비워진 문서는 복원할 수 없습니다 · "
        f"the trash keeps deleted documents {days} days; this one is past that and "
        "can no longer be restored"
    )


def trash_for(services: Services) -> TrashService:
    """The trash over the API's catalog, its retention from settings, waking the worker."""
    return TrashService(
        services.catalog,
        timedelta(days=services.settings.trash_retention_days),
        services.dispatcher.notify,
    )


async def trash_service(services: ServicesDep) -> TrashService:
    return trash_for(services)


TrashServiceDep = Annotated[TrashService, Depends(trash_service)]


@router.get("/trash", response_model=TrashOut)
def list_trash(
    principal: PrincipalDep,
    query: ViewQueryDep,
    trash: TrashServiceDep,
    services: ServicesDep,
    auditor: AuditorDep,
    address: AddressDep,
) -> TrashOut:
    """휴지통 · deleted documents I may restore (those I may manage: my uploads, my
    department's as its `dept_admin`, a `manage` grant or policy), most recently deleted
    first, with who deleted them and when they are purged."""
    found = trash.manageable(principal, query.where, query.offset, query.size)
    audit_list(auditor, principal, address, "trash", query, found.total, len(found.items))
    return TrashOut(
        total=found.total,
        page=query.page,
        size=query.size,
        retention_days=services.settings.trash_retention_days,
        items=[
            TrashItemOut(
                document=document_out(e.document),
                deleted_at=e.document.deleted_at,
                deleted_by=e.document.deleted_by,
                purge_at=e.purge_at,
            )
            for e in found.items
            if e.document.deleted_at is not None
        ],
        warnings=query.warnings_out(),
    )


@router.post(
    "/documents/{document_id}/restore",
    response_model=DocumentOut,
    responses={
        **errors(404, 409),
        410: {"description": "past the trash's retention period: purged, not restorable"},
    },
)
def restore_document(
    document_id: DocumentId,
    principal: PrincipalDep,
    trash: TrashServiceDep,
    services: ServicesDep,
    caller: CallerDep,
    auditor: AuditorDep,
    request: Request,
) -> DocumentOut:
    """복원 · bring a deleted document back from the trash (re-indexed): for those who
    may manage it, within `trash_retention_days` of its deletion."""

    def refuse(outcome: str, error: ApiError) -> ApiError:
        # As every document route: missing and unmanageable-unreadable look the same.
        auditor.record_later(
            Auditor.event(
                principal.username,
                "denied",
                document_id,
                client_address(request),
                outcome,
                {"method": "POST", "path": request.url.path, "needs": "manage"},
            )
        )
        return error

    try:
        doc = services.catalog.documents.get(document_id, include_deleted=True)
    except NotFoundError:
        raise refuse("not_found", not_found()) from None
    policies = services.catalog.policies.list_all()
    now = datetime.now(UTC)
    # Decided on the document's own access facts: who may delete it may restore it. The
    # trash is theirs alone: to anyone else a deleted document is not there (404).
    if not may(principal, doc, policies, Permission.MANAGE, now):
        raise refuse("denied", not_found())
    try:
        restored = trash.restore(document_id, caller)
    except NotInTrashError:
        raise ApiError(409, "not_in_trash", NOT_IN_TRASH) from None
    except RetentionOverError:
        raise ApiError(
            410, "retention_expired", retention_over(services.settings.trash_retention_days)
        ) from None
    return document_out(restored)

"""/admin/explain: why a user can or cannot read a document; who can (roles `admin`, `auditor`).

The explaining, and its audit record, is `services.explain.ExplainService`; this
module parses and shapes the answer (with its Korean and English reasons).
Explaining is not reading: the answer names the document's access facts, never
its title or content.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from auth.access import AccessSource, Denial, Permission, SourceKind
from search_api.deps import AddressDep, AuditorRoleDep, ExplainServiceDep
from search_api.errors import not_found
from search_api.openapi import errors
from search_api.schemas import (
    AccessExplanationOut,
    AccessSourceOut,
    DenialOut,
    ExplainedDocument,
    ExplainedUser,
    PermissionName,
    PolicyRef,
    ReaderOut,
    ReadersExplanationOut,
)
from services.documents import Caller
from storage.catalog.records import DocumentRecord
from storage.errors import NotFoundError

router = APIRouter(prefix="/admin/explain", tags=["explain"])

_SOURCE_MESSAGES = {
    SourceKind.OWNER: "문서 소유자 (owner of the document)",
    SourceKind.DEPT_ADMIN: "소유 부서의 부서 관리자 (dept_admin of the owning department)",
    SourceKind.GRANT: "문서에 부여된 권한 (grant on the document)",
    SourceKind.POLICY: "접근 정책 (access policy)",
}
_VISIBILITY_MESSAGES = {
    "dept": "공개 범위: 부서 (visibility: department members)",
    "ministry": "공개 범위: 부처 (visibility: ministry members)",
    "gov": "공개 범위: 전 정부 (visibility: every signed-in user)",
}
_DENIAL_MESSAGES = {
    Denial.DISABLED: "비활성화된 사용자 (the user is disabled)",
    Denial.ADMIN_WITHOUT_GRANT: (
        "관리자는 부여된 권한 없이 문서를 읽을 수 없음 "
        "(the admin role reads no document without a grant to the user)"
    ),
    Denial.NO_MATCHING_SOURCE: (
        "공개 범위, 권한, 정책 중 해당하는 것이 없음 "
        "(no visibility, grant, ownership, role or policy gives this user access)"
    ),
}

DocumentQuery = Annotated[str, Query(min_length=1, max_length=64, description="document id")]


def source_out(source: AccessSource) -> AccessSourceOut:
    if source.kind is SourceKind.VISIBILITY:
        message = _VISIBILITY_MESSAGES.get(source.token.partition(":")[0], source.token)
    else:
        message = _SOURCE_MESSAGES[source.kind]
    policy = None
    if source.policy_id is not None:
        policy = PolicyRef(id=source.policy_id, name=source.policy_name)
        message = f"{message}: {source.policy_name}"
    return AccessSourceOut(
        kind=source.kind.value,
        token=source.token,
        permission=_permission_name(source.permission),
        expires_at=source.expires_at,
        policy=policy,
        message=message,
    )


def _permission_name(permission: Permission) -> PermissionName:
    names: dict[Permission, PermissionName] = {
        Permission.READ: "read",
        Permission.WRITE: "write",
        Permission.MANAGE: "manage",
    }
    return names[permission]


def _document_out(doc: DocumentRecord) -> ExplainedDocument:
    return ExplainedDocument(
        id=doc.id,
        owner=doc.owner,
        department=doc.department,
        ministry=doc.ministry,
        visibility=doc.visibility,
        tags=list(doc.tags),
    )


@router.get(
    "/access",
    response_model=AccessExplanationOut,
    summary="Why user U can (or cannot) read document D",
    responses=errors(404),
)
def explain_access(
    explainer: ExplainServiceDep,
    caller: AuditorRoleDep,
    address: AddressDep,
    user: Annotated[str, Query(min_length=1, max_length=64, description="username")],
    document: DocumentQuery,
    permission: PermissionName = "read",
) -> AccessExplanationOut:
    try:
        found = explainer.user_access(
            user, document, Permission.parse(permission), Caller(caller.username, address)
        )
    except NotFoundError as err:
        raise not_found(str(err)) from None
    record, doc, result = found.user, found.document, found.result
    return AccessExplanationOut(
        user=ExplainedUser(
            username=record.username,
            display_name=record.display_name,
            department=record.department,
            ministry=record.ministry,
            roles=list(record.roles),
            disabled=record.disabled,
        ),
        document=_document_out(doc),
        permission=permission,
        allowed=result.allowed,
        because=[source_out(s) for s in result.because],
        denial=(
            DenialOut(code=result.denial.value, message=_DENIAL_MESSAGES[result.denial])
            if result.denial is not None
            else None
        ),
        expired=[source_out(s) for s in result.expired],
        user_tokens=sorted(result.tokens),
    )


@router.get(
    "/readers",
    response_model=ReadersExplanationOut,
    summary="Who can read document D (every user, with why)",
    responses=errors(404),
)
def explain_readers(
    explainer: ExplainServiceDep,
    caller: AuditorRoleDep,
    address: AddressDep,
    document: DocumentQuery,
) -> ReadersExplanationOut:
    try:
        found = explainer.readers(document, Caller(caller.username, address))
    except NotFoundError as err:
        raise not_found(str(err)) from None
    readers = [
        ReaderOut(
            username=reader.user.username,
            display_name=reader.user.display_name,
            department=reader.user.department,
            ministry=reader.user.ministry,
            because=[source_out(s) for s in reader.because],
        )
        for reader in found.readers
    ]
    return ReadersExplanationOut(
        document=_document_out(found.document),
        sources=[source_out(s) for s in found.sources],
        readers=readers,
        count=len(readers),
    )

"""/folders: each department's folder tree; /documents/{id}/folder: where a document is filed.

Folders are for finding: they grant nothing (see `services.folders` for who sees
and changes them). A folder the caller may not see answers 404, as a missing one.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from search_api.audit_writer import Auditor
from search_api.deps import (
    AddressDep,
    AuditorDep,
    CallerDep,
    FolderServiceDep,
    PrincipalDep,
    WritableDoc,
)
from search_api.errors import ApiError
from search_api.folder_schemas import (
    FOLDER_ID_PATTERN,
    DocumentFolderPatch,
    FolderCreate,
    FolderDocumentsOut,
    FolderOut,
    FolderPatch,
    FolderTreeOut,
)
from search_api.openapi import errors
from search_api.routers.documents import document_out
from search_api.schemas import CODE_PATTERN, DocumentOut, FolderRef
from services.folders import FolderPath, FolderService
from storage.catalog.records import DocumentRecord, FolderRecord
from storage.errors import NotFoundError

router = APIRouter(tags=["folders"])

MAX_PAGE_SIZE = 100
_FOLDER_EXAMPLE = "9b1d4e7a2c3f4a5b8c6d7e8f9a0b1c2d"
FolderIdPath = Annotated[
    str,
    Path(
        description="폴더 ID · the folder's id (32 hexadecimal digits)", examples=[_FOLDER_EXAMPLE]
    ),
]


def _folder_id(raw: str) -> str:
    # Not a 422: a malformed id is a folder that does not exist, as for documents.
    if not re.fullmatch(FOLDER_ID_PATTERN, raw):
        raise NotFoundError("folder not found")
    return raw


def folder_out(folder: FolderRecord, path: FolderPath) -> FolderOut:
    return FolderOut(
        id=folder.id,
        department=folder.department,
        parent=folder.parent_id or None,
        name=folder.name,
        path=path.text,
        created_at=folder.created_at,
        created_by=folder.created_by,
        updated_at=folder.updated_at,
    )


def _one(folders: FolderService, folder: FolderRecord) -> FolderOut:
    return folder_out(folder, folders.paths([folder])[folder.id])


def documents_out(folders: FolderService, docs: list[DocumentRecord]) -> list[DocumentOut]:
    """Documents as the API shows them, with their folder paths (the caller may read them)."""
    paths = folders.paths_for(docs)
    out = []
    for doc in docs:
        item = document_out(doc)
        path = paths.get(doc.id)
        if path is not None:
            item.folder = FolderRef(id=path.id, path=path.text)
        out.append(item)
    return out


@router.get(
    "/folders",
    response_model=FolderTreeOut,
    summary="A department's folders (the whole tree, or right under `parent`)",
    responses=errors(403, 404),
)
def list_folders(
    principal: PrincipalDep,
    folders: FolderServiceDep,
    department: Annotated[
        str | None,
        Query(
            pattern=CODE_PATTERN,
            description="부서 코드 · department code (default: your own)",
            examples=["MOIS-REC"],
        ),
    ] = None,
    parent: Annotated[
        str | None,
        Query(
            pattern=FOLDER_ID_PATTERN,
            description="상위 폴더 · only the folders right under this one",
            examples=[_FOLDER_EXAMPLE],
        ),
    ] = None,
) -> FolderTreeOut:
    code = department or principal.department
    if not code:
        raise ApiError(
            422, "validation_error", "department: 부서를 지정하십시오 · give a department"
        )
    found = folders.tree(principal, code, parent)
    paths = folders.paths(found)
    return FolderTreeOut(
        department=code, parent=parent, folders=[folder_out(f, paths[f.id]) for f in found]
    )


@router.post(
    "/folders",
    status_code=201,
    response_model=FolderOut,
    summary="Create a folder",
    responses=errors(403, 404, 409, 422),
)
def create_folder(
    body: FolderCreate, principal: PrincipalDep, caller: CallerDep, folders: FolderServiceDep
) -> FolderOut:
    code = body.department or principal.department
    if not code:
        raise ApiError(
            422, "validation_error", "department: 부서를 지정하십시오 · give a department"
        )
    if body.parent is not None:
        folders.visible(principal, body.parent)  # 404 for a folder the caller may not see
    return _one(folders, folders.create(principal, caller, code, body.name, body.parent))


@router.get("/folders/{folder_id}", response_model=FolderOut, responses=errors(404))
def get_folder(
    folder_id: FolderIdPath, principal: PrincipalDep, folders: FolderServiceDep
) -> FolderOut:
    return _one(folders, folders.visible(principal, _folder_id(folder_id)))


@router.patch(
    "/folders/{folder_id}",
    response_model=FolderOut,
    summary="Rename (name) and/or move (parent; null: the top level) a folder",
    responses=errors(403, 404, 409, 422),
)
def update_folder(
    folder_id: FolderIdPath,
    body: FolderPatch,
    principal: PrincipalDep,
    caller: CallerDep,
    folders: FolderServiceDep,
) -> FolderOut:
    folder = folders.visible(principal, _folder_id(folder_id))
    if body.name is not None:
        folder = folders.rename(principal, caller, folder.id, body.name)
    if "parent" in body.model_fields_set:
        folder = folders.move(principal, caller, folder.id, body.parent)
    return _one(folders, folder)


@router.delete(
    "/folders/{folder_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an empty folder (409 in_use says what it still holds)",
    responses=errors(403, 404, 409),
)
def delete_folder(
    folder_id: FolderIdPath, principal: PrincipalDep, caller: CallerDep, folders: FolderServiceDep
) -> Response:
    folders.delete(principal, caller, _folder_id(folder_id))
    return Response(status_code=204)


@router.get(
    "/folders/{folder_id}/documents",
    response_model=FolderDocumentsOut,
    summary="The documents filed in a folder that you may read",
    responses=errors(404),
)
def folder_documents(
    folder_id: FolderIdPath,
    principal: PrincipalDep,
    folders: FolderServiceDep,
    auditor: AuditorDep,
    address: AddressDep,
    subtree: Annotated[
        bool, Query(description="하위 폴더 포함 · also the folders under it", examples=[True])
    ] = False,
    page: Annotated[
        int, Query(ge=1, le=10_000, description="쪽 · page number, from 1", examples=[1])
    ] = 1,
    size: Annotated[
        int,
        Query(
            ge=1, le=MAX_PAGE_SIZE, description="쪽당 문서 수 · documents per page", examples=[50]
        ),
    ] = 50,
) -> FolderDocumentsOut:
    folder = folders.visible(principal, _folder_id(folder_id))
    total, docs = folders.readable_documents(
        principal, folder, subtree=subtree, offset=(page - 1) * size, limit=size
    )
    auditor.record_later(
        Auditor.event(
            principal.username,
            "read",
            f"folder:{folder.id}",
            address,
            detail={"what": "documents", "subtree": subtree, "documents": [d.id for d in docs]},
        )
    )
    return FolderDocumentsOut(
        folder=_one(folders, folder),
        total=total,
        page=page,
        size=size,
        documents=documents_out(folders, docs),
    )


@router.patch(
    "/documents/{document_id}/folder",
    response_model=DocumentOut,
    summary="File a document in a folder of its department (null: the top level)",
    responses=errors(403, 404, 422),
)
def file_document(
    body: DocumentFolderPatch,
    doc: WritableDoc,
    principal: PrincipalDep,
    caller: CallerDep,
    folders: FolderServiceDep,
) -> DocumentOut:
    updated = folders.file_document(principal, caller, doc, body.folder)
    return documents_out(folders, [updated])[0]

"""/documents: upload, metadata, content, versions, ACL, delete."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from auth.access import VISIBILITIES, Permission, Principal, Visibility, can
from indexer.access_facts import document_access
from indexer.pipeline import has_text
from search_api.audit_writer import Auditor
from search_api.deps import (
    AddressDep,
    AuditorDep,
    CallerDep,
    DocumentServiceDep,
    DownloadRateDep,
    ManagedDoc,
    PrincipalDep,
    ReadableDoc,
    ServicesDep,
    WritableDoc,
)
from search_api.errors import ApiError, forbidden, not_found
from search_api.http import DOWNLOAD_HEADERS, content_disposition
from search_api.openapi import errors
from search_api.schemas import (
    AclIO,
    DocumentOut,
    DocumentPatch,
    FolderRef,
    GrantIO,
    VersionOut,
)
from search_api.uploads import ParsedUpload, receive_upload
from services.folders import FolderService
from storage.catalog.records import DocumentRecord, GrantRecord
from storage.errors import NotFoundError
from storage.filenames import sanitize_filename
from storage.ingest import SpoolWriter, accept_upload, store_blob

router = APIRouter(prefix="/documents", tags=["documents"])

MAX_TAGS = 50
MAX_TAG_CHARS = 64

_MULTIPART_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "title": {"type": "string", "maxLength": 500},
                        "visibility": {"type": "string", "enum": list(VISIBILITIES)},
                        "tags": {"type": "string", "description": "comma-separated"},
                        "folder": {
                            "type": "string",
                            "pattern": "^[0-9a-f]{32}$",
                            "description": "a folder of your department to file it in",
                        },
                        "allow_duplicate": {
                            "type": "string",
                            "enum": ["true", "false"],
                            "description": "store a new document even when the department "
                            "already holds these bytes",
                        },
                    },
                }
            }
        },
    }
}
_FILE_ONLY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


_UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed or incomplete multipart body (nothing stored)"},
    413: {"description": "the file is larger than the upload limit (nothing stored)"},
    507: {
        "description": "insufficient_storage: a disk or quota is full (nothing stored; "
        "send it again once space is freed, see Retry-After)"
    },
}
_UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_UPLOAD_ERRORS,
    409: {
        "description": "idempotency_key_reused: the Idempotency-Key answered another "
        "upload, or its document was deleted (nothing stored)"
    },
}
_UPLOAD_DESCRIPTION = """Stores the file (durable before the answer) and queues it for indexing.

**Idempotency-Key** (optional, at most 200 characters, per user, kept 24 hours):
a retry of the *same upload* with the same key answers the first document
again (202, same `id`), and stores nothing new. The same upload means the same
bytes (SHA-256), file name, `title`, `visibility` and set of `tags`; the
declared content type is not compared. The key with anything else is refused
with `409 idempotency_key_reused` before the bytes are stored, as is a key
whose document has since been deleted: use a new key for a new upload. After
24 hours the key is free again.

**Duplicates**: when the uploader's department already holds these bytes
(same SHA-256) in a live document the uploader may read, nothing is stored:
the answer is `200` with that document and `"duplicate_of": "<its id>"`.
`allow_duplicate=true` (query parameter or form field) makes a new document
anyway (`202`).

A body cut short (no closing boundary) is `400 bad_request`; a full disk is
`507 insufficient_storage`. Neither stores anything.
"""
_IDEMPOTENCY_KEY_DOC = (
    "Makes a retry safe: the same upload again with the same key answers the first "
    "document; the key with another upload is 409 idempotency_key_reused. Per user, 24 hours."
)


def document_out(doc: DocumentRecord, *, duplicate_of: str | None = None) -> DocumentOut:
    return DocumentOut(
        id=doc.id,
        title=doc.title,
        filename=doc.filename,
        content_type=doc.content_type,
        size=doc.size,
        sha256=doc.sha256,
        department=doc.department,
        ministry=doc.ministry,
        owner=doc.owner,
        visibility=doc.visibility,
        tags=list(doc.tags),
        status=doc.status,  # type: ignore[arg-type]
        status_detail=doc.status_detail,
        has_text=has_text(doc.status, doc.status_detail),
        created_at=doc.created_at,
        updated_at=doc.updated_at,
        version=doc.version,
        duplicate_of=duplicate_of,
    )


def parse_tags(raw: str | None) -> tuple[str, ...]:
    tags = tuple(dict.fromkeys(t.strip() for t in (raw or "").split(",") if t.strip()))
    if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG_CHARS for t in tags):
        raise ApiError(
            422, "validation_error", f"tags: at most {MAX_TAGS} of {MAX_TAG_CHARS} chars"
        )
    return tags


def _visibility(raw: str | None) -> str:
    value = Visibility.DEPARTMENT.value if raw is None else raw.strip()
    if value not in VISIBILITIES:
        raise ApiError(422, "validation_error", f"visibility: one of {', '.join(VISIBILITIES)}")
    return value


def _require_department(principal: Principal) -> str:
    if not principal.department:
        raise forbidden("you belong to no department, so you cannot upload documents")
    return principal.department


async def _receive(request: Request, spool: SpoolWriter) -> ParsedUpload:
    parsed = await receive_upload(request, spool)
    assert parsed.staged is not None
    return parsed


def _true(raw: str | None) -> bool:
    value = (raw or "").strip().lower()
    if value in ("", "false", "0", "no"):
        return False
    if value in ("true", "1", "yes"):
        return True
    raise ApiError(422, "validation_error", "allow_duplicate: true or false")


@router.post(
    "",
    status_code=202,
    response_model=DocumentOut,
    openapi_extra=_MULTIPART_BODY,
    summary="Upload a document (multipart: file, title, visibility, tags)",
    description=_UPLOAD_DESCRIPTION,
    responses={
        **errors(400, 403, 409, 413, 415, 422, 503, 507),
        **_UPLOAD_RESPONSES,
        200: {
            "description": "duplicate: the department already holds these bytes in a "
            "document you may read; that document is the answer (`duplicate_of`), "
            "nothing new is stored",
            "model": DocumentOut,
        },
    },
)
async def upload_document(
    request: Request,
    response: Response,
    services: ServicesDep,
    principal: PrincipalDep,
    auditor: AuditorDep,
    address: AddressDep,
    idempotency_key: Annotated[
        str | None, Header(max_length=200, description=_IDEMPOTENCY_KEY_DOC)
    ] = None,
    allow_duplicate: Annotated[
        bool,
        Query(
            description="store a new document even when the department already holds "
            "these bytes (also a form field)",
            examples=[True],
        ),
    ] = False,
) -> DocumentOut:
    department = _require_department(principal)
    settings = services.settings
    with SpoolWriter(settings.spool_dir, settings.max_upload_bytes) as spool:
        parsed = await _receive(request, spool)
        assert parsed.staged is not None
        title = parsed.fields.get("title")
        if title is not None and len(title) > 500:
            raise ApiError(422, "validation_error", "title: at most 500 characters")
        visibility = _visibility(parsed.fields.get("visibility"))
        tags = parse_tags(parsed.fields.get("tags"))
        folder_id = await run_in_threadpool(
            _upload_folder, services, principal, department, parsed.fields.get("folder")
        )
        duplicates_allowed = allow_duplicate or _true(parsed.fields.get("allow_duplicate"))
        outcome = await run_in_threadpool(
            accept_upload,
            services.catalog,
            services.store,
            parsed.staged,
            filename=parsed.filename,
            declared_type=parsed.content_type,
            title=title,
            department=department,
            owner=principal.username,
            visibility=visibility,
            tags=tags,
            folder_id=folder_id,
            idempotency_key=idempotency_key,
            commits=services.upload_commits,
            answers_duplicate=None if duplicates_allowed else _readable_by(services, principal),
            audit=Auditor.event(
                principal.username,
                "upload",
                "",
                address,
                detail={
                    "filename": sanitize_filename(parsed.filename),
                    "size": parsed.staged.size,
                    "sha256": parsed.staged.sha256,
                },
            ),
        )
    doc = outcome.document
    if outcome.created:
        services.dispatcher.notify([doc.id])
    elif outcome.duplicate:  # nothing stored: the existing document answers
        response.status_code = 200
        await run_in_threadpool(
            auditor.record,
            Auditor.event(
                principal.username,
                "upload",
                doc.id,
                address,
                detail={"duplicate_of": doc.id, "filename": sanitize_filename(parsed.filename)},
            ),
        )
        return document_out(doc, duplicate_of=doc.id)
    else:  # a retry with the same Idempotency-Key: audited on its own
        await run_in_threadpool(
            auditor.record,
            Auditor.event(principal.username, "upload", doc.id, address, detail={"replayed": True}),
        )
    return document_out(doc)


def _upload_folder(
    services: ServicesDep, principal: Principal, department: str, raw: str | None
) -> str | None:
    """The `folder` form field: a folder of the uploader's department they see, or None."""
    if raw is None or not raw.strip():
        return None
    folder_id = raw.strip()
    if not re.fullmatch(r"[0-9a-f]{32}", folder_id):
        raise ApiError(422, "validation_error", "folder: 폴더 id가 아닙니다 · not a folder id")
    try:
        FolderService(services.catalog).check_upload_folder(principal, department, folder_id)
    except NotFoundError:
        raise ApiError(
            422,
            "validation_error",
            "folder: 그런 폴더가 없습니다 · no such folder in your department",
        ) from None
    return folder_id


def with_folder(services: ServicesDep, doc: DocumentRecord) -> DocumentOut:
    """`document_out` with the folder path (the caller may read `doc`: they see its path)."""
    out = document_out(doc)
    path = FolderService(services.catalog).paths_for([doc]).get(doc.id)
    if path is not None:
        out.folder = FolderRef(id=path.id, path=path.text)
    return out


def _readable_by(services: ServicesDep, principal: Principal) -> Callable[[DocumentRecord], bool]:
    """Whether an existing document may answer the principal's upload: they may read it
    (a colleague's private document never does, nor reveals that it exists)."""

    def readable(doc: DocumentRecord) -> bool:
        access = document_access(doc, services.catalog.policies.list_all())
        return can(principal, access, Permission.READ, datetime.now(UTC))

    return readable


@router.get("/{document_id}", response_model=DocumentOut)
def get_document(
    doc: ReadableDoc,
    principal: PrincipalDep,
    auditor: AuditorDep,
    address: AddressDep,
    services: ServicesDep,
) -> DocumentOut:
    auditor.record_later(Auditor.event(principal.username, "read", doc.id, address))
    return with_folder(services, doc)


@router.patch("/{document_id}", response_model=DocumentOut)
def update_document(
    body: DocumentPatch, doc: WritableDoc, documents: DocumentServiceDep, caller: CallerDep
) -> DocumentOut:
    tags = None
    if body.tags is not None:
        tags = parse_tags(",".join(body.tags))
    title = " ".join(body.title.split()) if body.title else None
    return document_out(documents.update_metadata(doc.id, caller, title=title, tags=tags))


def _stream(
    services: ServicesDep, key: str, filename: str, content_type: str, size: int
) -> StreamingResponse:
    headers = {"Content-Disposition": content_disposition(filename), **DOWNLOAD_HEADERS}
    # The catalog's size: the stream is verified against the catalog's SHA-256, so it
    # is exactly this long, or cut short (never completed) when its bytes are wrong.
    headers["Content-Length"] = str(size)
    return StreamingResponse(
        services.store.iter_chunks(key),
        media_type=content_type or "application/octet-stream",
        headers=headers,
    )


_DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        # The detected type of the bytes (THREATS.md: never rendered, hence attachment
        # and nosniff), so any media type; application/octet-stream when unknown.
        "description": "the original bytes, as the media type detected at upload",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        "headers": {
            "Content-Disposition": {
                "description": "always `attachment`, with the file name (RFC 6266 / 5987)",
                "required": True,
                "schema": {"type": "string", "pattern": "^attachment"},
            },
            "X-Content-Type-Options": {
                "description": "always `nosniff`",
                "required": True,
                "schema": {"type": "string", "enum": ["nosniff"]},
            },
        },
    },
    **errors(503),
    429: {"description": "too many downloads (see Retry-After)"},
}


@router.get(
    "/{document_id}/content",
    response_class=StreamingResponse,
    responses=_DOWNLOAD_RESPONSES,
)
def download_content(
    _rate: DownloadRateDep,
    doc: ReadableDoc,
    services: ServicesDep,
    principal: PrincipalDep,
    auditor: AuditorDep,
    address: AddressDep,
) -> StreamingResponse:
    auditor.record_later(
        Auditor.event(
            principal.username,
            "download",
            doc.id,
            address,
            detail={"version": doc.version, "size": doc.size},
        )
    )
    return _stream(services, doc.blob_key, doc.filename, doc.content_type, doc.size)


@router.put(
    "/{document_id}/content",
    response_model=DocumentOut,
    status_code=202,
    openapi_extra=_FILE_ONLY_BODY,
    summary="Upload a new version",
    responses={**errors(400, 413, 415, 503, 507), **_UPLOAD_ERRORS},
)
async def put_content(
    request: Request,
    services: ServicesDep,
    documents: DocumentServiceDep,
    caller: CallerDep,
    doc: WritableDoc,
) -> DocumentOut:
    settings = services.settings
    with SpoolWriter(settings.spool_dir, settings.max_upload_bytes) as spool:
        parsed = await _receive(request, spool)
        assert parsed.staged is not None
        blob = await run_in_threadpool(
            store_blob,
            services.store,
            parsed.staged,
            parsed.filename or doc.filename,
            parsed.content_type,
        )
        updated = await run_in_threadpool(documents.new_version, doc.id, blob, caller)
    return document_out(updated)


@router.get("/{document_id}/versions", response_model=list[VersionOut])
def list_versions(
    doc: ReadableDoc,
    services: ServicesDep,
    principal: PrincipalDep,
    auditor: AuditorDep,
    address: AddressDep,
) -> list[VersionOut]:
    auditor.record_later(
        Auditor.event(principal.username, "read", doc.id, address, detail={"what": "versions"})
    )
    return [
        VersionOut(
            version=v.version,
            filename=v.filename,
            size=v.size,
            sha256=v.sha256,
            created_by=v.created_by,
            created_at=v.created_at,
        )
        for v in services.catalog.documents.list_versions(doc.id)
    ]


@router.get(
    "/{document_id}/versions/{version}/content",
    response_class=StreamingResponse,
    responses=_DOWNLOAD_RESPONSES,
)
def download_version(
    _rate: DownloadRateDep,
    version: int,
    doc: ReadableDoc,
    services: ServicesDep,
    principal: PrincipalDep,
    auditor: AuditorDep,
    address: AddressDep,
) -> StreamingResponse:
    match = [v for v in services.catalog.documents.list_versions(doc.id) if v.version == version]
    if not match:
        raise not_found("version")
    auditor.record_later(
        Auditor.event(principal.username, "download", doc.id, address, detail={"version": version})
    )
    return _stream(services, match[0].blob_key, match[0].filename, doc.content_type, match[0].size)


@router.delete("/{document_id}", status_code=204, response_class=Response)
def delete_document(doc: ManagedDoc, documents: DocumentServiceDep, caller: CallerDep) -> Response:
    documents.delete(doc.id, caller)
    return Response(status_code=204)


def _acl_out(doc: DocumentRecord) -> AclIO:
    return AclIO(
        visibility=doc.visibility,  # type: ignore[arg-type]
        grants=[
            GrantIO(
                principal=g.principal,
                permission=g.permission,  # type: ignore[arg-type]
                expires_at=g.expires_at,
            )
            for g in doc.grants
        ],
    )


@router.get("/{document_id}/acl", response_model=AclIO, responses=errors(403))
def get_acl(
    doc: ReadableDoc,
    services: ServicesDep,
    principal: PrincipalDep,
    auditor: AuditorDep,
    address: AddressDep,
) -> AclIO:
    # Readers see that the document exists; only managers see who else may read it.
    access = document_access(doc, services.catalog.policies.list_all())
    if not can(principal, access, Permission.MANAGE, datetime.now(UTC)):
        auditor.record_later(
            Auditor.event(
                principal.username,
                "denied",
                doc.id,
                address,
                "denied",
                {"method": "GET", "what": "acl", "needs": "manage", "status": 403},
            )
        )
        raise forbidden("you need 'manage' permission to see this document's access list")
    auditor.record_later(
        Auditor.event(principal.username, "read", doc.id, address, detail={"what": "acl"})
    )
    return _acl_out(doc)


@router.put("/{document_id}/acl", response_model=AclIO)
def put_acl(
    body: AclIO, doc: ManagedDoc, documents: DocumentServiceDep, caller: CallerDep
) -> AclIO:
    principals = [g.principal for g in body.grants]
    if len(set(principals)) != len(principals):
        raise ApiError(422, "validation_error", "grants: each principal at most once")
    grants = [GrantRecord(g.principal, g.permission, g.expires_at) for g in body.grants]
    return _acl_out(documents.set_acl(doc.id, body.visibility, grants, caller))

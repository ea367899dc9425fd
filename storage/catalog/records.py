"""Plain, immutable records the catalog returns and accepts (no ORM objects leak out)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from storage.catalog.policy_match import PolicyMatch


@dataclass(frozen=True)
class MinistryRecord:
    code: str
    name: str


@dataclass(frozen=True)
class DepartmentRecord:
    code: str
    name: str
    ministry: str


@dataclass(frozen=True)
class UserRecord:
    username: str
    display_name: str
    department: str | None
    ministry: str | None
    roles: tuple[str, ...]
    disabled: bool
    password_hash: str = field(repr=False, default="")
    #: An administrator reset the password: the user's tokens serve only to change it.
    must_change_password: bool = False
    #: When the password was last set (None: when the user was created).
    password_changed_at: datetime | None = None
    #: Deleted (always disabled too): left out of lists and the directory.
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """One line of the directory members look grantees up in: names and codes only.

    `kind` is `user`, `dept` or `ministry` (the grant principal is `kind:code`);
    `department` is a user's department code (None for the others)."""

    kind: str
    code: str
    name: str
    department: str | None = None


@dataclass(frozen=True, slots=True)
class OrgUsage:
    """What still refers to a ministry or department (what must move before it retires)."""

    documents: int = 0
    users: int = 0
    departments: int = 0
    grants: int = 0
    policies: int = 0
    #: Folders of the department (of the ministry's departments).
    folders: int = 0

    @property
    def empty(self) -> bool:
        return not (
            self.documents
            or self.users
            or self.departments
            or self.grants
            or self.policies
            or self.folders
        )


@dataclass(frozen=True)
class GrantRecord:
    principal: str
    permission: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class PolicyRecord:
    id: int
    name: str
    match: PolicyMatch
    principal: str
    permission: str
    expires_at: datetime | None
    created_at: datetime
    created_by: str
    updated_at: datetime | None = None
    updated_by: str = ""
    #: Bumped when the match changes: the index token of the policy changes with it.
    generation: int = 1
    #: Random, unique, never reused (unlike an id, which SQLite could give out again
    #: after a delete): the policy's index token is made of it.
    uid: str = ""


@dataclass(frozen=True)
class NewPolicy:
    """A policy to create, or the new state of one being changed."""

    name: str
    match: PolicyMatch
    principal: str
    permission: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class PolicyChange:
    """The outcome of creating, changing, deleting or lapsing a policy."""

    policy: PolicyRecord
    #: Live documents the policy matches (now, or before a delete).
    affected_documents: int
    #: Of those, the documents queued for an access-only re-index (new match).
    reindexed_documents: int = 0


@dataclass(frozen=True)
class DocumentRecord:
    id: str
    title: str
    filename: str
    declared_type: str
    content_type: str
    size: int
    sha256: str
    blob_key: str
    department: str
    ministry: str
    owner: str
    visibility: str
    tags: tuple[str, ...]
    status: str
    status_detail: str
    version: int
    revision: int
    acl_revision: int
    indexed_revision: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    grants: tuple[GrantRecord, ...] = ()
    #: The uploader typed the title; otherwise it is automatic (file name or file metadata).
    title_from_user: bool = False
    policy_revision: int = 0
    #: Who moved it to the trash (None: not deleted, or deleted before this was kept).
    deleted_by: str | None = None
    #: Its time in the trash ended: gone from the index and the trash for good.
    purged_at: datetime | None = None
    #: The folder it is filed in (None: the department's top level).
    folder_id: str | None = None
    #: That folder's ancestry, its own id last (() at the top level): what a
    #: policy's folder match looks at.
    folder_path: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DocumentFilter:
    """What the personal views and the trash narrow a list by (None: any).

    `created_from` inclusive, `created_to` exclusive, both on the document's
    creation time (as /search's `from` and `to`)."""

    content_type: str | None = None
    department: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


@dataclass(frozen=True, slots=True)
class SharedDocument:
    """A live document shared with someone by a grant naming one of their tokens: the
    newest such grant (who granted it and when; `granted_by` None when unknown)."""

    document: DocumentRecord
    principal: str
    permission: str
    granted_by: str | None
    granted_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class RecentDocument:
    """A live document a user last opened or changed, when and how (the audit action)."""

    document: DocumentRecord
    at: datetime
    action: str


@dataclass(frozen=True)
class FolderRecord:
    """A folder of a department's tree (for finding; it grants no access)."""

    id: str
    department: str
    #: "" at the department's top level.
    parent_id: str
    name: str
    #: Ids from the top down, this folder last.
    ancestry: tuple[str, ...]
    created_at: datetime
    created_by: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FolderContents:
    """What a folder holds (a folder is deleted only when it holds nothing)."""

    folders: int = 0
    #: Live documents filed in it.
    documents: int = 0
    #: Deleted documents filed in it (they may be restored into it).
    deleted_documents: int = 0

    @property
    def empty(self) -> bool:
        return not (self.folders or self.documents or self.deleted_documents)


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """The access facts of a live document, and nothing else: what a read decision
    needs (every search re-checks its page of hits with these)."""

    id: str
    owner: str
    department: str
    ministry: str
    visibility: str
    tags: tuple[str, ...]
    grants: tuple[GrantRecord, ...] = ()
    #: The ancestry of its folder, its own folder last (() at the top level).
    folder_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccessSnapshot:
    """What a search reads from the catalog before it queries the index, in one
    transaction: the policies (expired ones included), those the index may still
    lack on some documents, and the documents whose index entry is stale on access."""

    policies: tuple[PolicyRecord, ...]
    pending_policy_ids: frozenset[int]
    stale_ids: frozenset[str]


@dataclass(frozen=True)
class VersionRecord:
    document_id: str
    version: int
    blob_key: str
    sha256: str
    size: int
    filename: str
    declared_type: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class NewBlob:
    """A blob already durable in the object store, to attach to a document version."""

    blob_key: str
    sha256: str
    size: int
    filename: str
    declared_type: str
    content_type: str  # sniffed from the first bytes; the extractor refines it


@dataclass(frozen=True)
class NewDocument:
    blob: NewBlob
    title: str
    department: str
    owner: str
    visibility: str
    tags: tuple[str, ...] = ()
    grants: tuple[GrantRecord, ...] = ()
    title_from_user: bool = False  # False: `title` is the file name, replaced by a metadata title
    #: The folder to file it in (of `department`; None: the top level).
    folder_id: str | None = None

    @property
    def fingerprint(self) -> str:
        """The `upload_fingerprint` of the upload this document comes from."""
        return upload_fingerprint(
            self.blob.sha256,
            self.blob.filename,
            self.title if self.title_from_user else "",
            self.visibility,
            self.tags,
            self.folder_id,
        )


def upload_fingerprint(
    sha256: str,
    filename: str,
    title: str,
    visibility: str,
    tags: tuple[str, ...],
    folder_id: str | None = None,
) -> str:
    """What makes a retry with the same `Idempotency-Key` the same upload.

    The bytes (their SHA-256), the (sanitised) file name, the typed title ("" for
    none), the visibility and the set of tags: the same values replay the first
    answer, any other value is a different request and is refused. The declared
    content type is left out (clients guess it differently on a retry). The
    folder counts only when one is given, so fingerprints recorded before folders
    existed stay the same.
    """
    fields: dict[str, object] = {
        "sha256": sha256,
        "filename": filename,
        "title": title,
        "visibility": visibility,
        "tags": sorted(set(tags)),
    }
    if folder_id is not None:
        fields["folder"] = folder_id
    canonical = json.dumps(
        fields,
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class OutboxClaim:
    id: int
    document_id: str
    revision: int
    attempts: int
    access_only: bool = False


@dataclass(frozen=True)
class OutboxOwnerRecord:
    """A worker process that may hold outbox claims (see `models.OutboxOwner`)."""

    id: str
    host: str
    pid: int
    started: str
    heartbeat_at: datetime


@dataclass(frozen=True)
class ExtractionRecord:
    sha256: str
    extractor_version: str
    status: str
    detail: str
    content_type: str
    metadata: dict[str, str]
    text: str
    truncated: bool


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    address: str
    outcome: str
    detail: dict[str, object]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class NewAuditEvent:
    actor: str
    action: str
    target: str = ""
    address: str = ""
    outcome: str = "ok"
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IndexOutcome:
    """What indexing one document did, for `Documents.mark_indexed_many`."""

    document_id: str
    #: The document revision now in the index (the indexed revision only moves forward).
    revision: int
    #: The version whose text was extracted.
    version: int
    #: The new status, or None to leave status, detail, type and title as they are.
    status: str | None
    status_detail: str = ""
    #: The content type the extractor detected, or None to keep the sniffed one.
    content_type: str | None = None
    #: The automatic title (from the file's metadata), or None to keep the current one.
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Revocation:
    """A token revocation: `kind` is `jti`, `family` or `user`; kept until `expires_at`."""

    kind: str
    value: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit records to read: every field given must match (`since` inclusive,
    `until` exclusive); None (or "") matches everything."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


#: Longest string kept in an audit record's detail.
MAX_DETAIL_STRING = 1000


def _clip(value: object) -> object:
    # Detail is stored as JSON (so newlines or ANSI escapes cannot forge records);
    # long strings are clipped so a huge query cannot bloat the log.
    if isinstance(value, str):
        return value[:MAX_DETAIL_STRING]
    if isinstance(value, list | tuple):
        return [_clip(v) for v in value[:100]]
    if isinstance(value, dict):
        return {str(k)[:100]: _clip(v) for k, v in list(value.items())[:50]}
    return value


def audit_event(
    actor: str,
    action: str,
    target: str = "",
    address: str = "",
    outcome: str = "ok",
    detail: Mapping[str, object] | None = None,
) -> NewAuditEvent:
    """An audit event with every field bounded (long names and details clipped)."""
    clipped = _clip(dict(detail or {}))
    assert isinstance(clipped, dict)
    return NewAuditEvent(
        actor=actor[:64],
        action=action,
        target=target[:200],
        address=address[:64],
        outcome=outcome,
        detail=clipped,
    )


class ChainCheck(NamedTuple):
    """The outcome of re-hashing the audit chain (`AuditLog.verify_chain`)."""

    ok: bool
    #: Records that verified before the first problem (all of them if ok).
    checked: int
    #: The first record that does not verify, and why ("" if ok).
    problem: str

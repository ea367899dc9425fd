"""Request and response bodies of the HTTP API (shared API.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from auth.access import GRANT_PRINCIPAL_PATTERN, validate_grant_principal
from services.search_filters import WarningCode

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"

VisibilityName = Literal["private", "department", "ministry", "government"]
PermissionName = Literal["read", "write", "manage"]
RoleName = Literal["member", "dept_admin", "admin", "auditor"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (OAuth2 token type)
    expires_in: int
    refresh_token: str | None = None
    #: The password was reset: these tokens serve only to change it
    #: (`POST /auth/password`); every other call answers 403 `password_change_required`.
    password_change_required: bool = False


class RefreshRequest(Strict):
    refresh_token: str = Field(max_length=4096)


class Me(BaseModel):
    username: str
    display_name: str
    department: str | None
    ministry: str | None
    roles: list[str]
    #: The password was reset and must be changed before anything else.
    password_change_required: bool = False


class PasswordChangeIn(Strict):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(
        max_length=1024, description="the same policy as at creation (8 to 1024 characters)"
    )


class PasswordResetIn(Strict):
    """A password to set, or none: a one-time password is generated (and shown once)."""

    password: str | None = Field(default=None, max_length=1024)


class PasswordResetOut(BaseModel):
    username: str
    #: The generated one-time password (null when one was given): shown this once.
    password: str | None
    password_change_required: bool


class UnlockOut(BaseModel):
    username: str
    #: Whether sign-in was refused for too many failures until now.
    was_locked: bool


class RenameIn(Strict):
    name: str = Field(min_length=1, max_length=200)


class DirectoryEntryOut(BaseModel):
    """A line of the directory: names and codes only."""

    kind: Literal["user", "dept", "ministry"]
    code: str
    name: str
    #: What a grant names: `kind:code`.
    principal: str
    #: A user's department code (null for departments and ministries).
    department: str | None = None


class DirectoryOut(BaseModel):
    total: int
    page: int
    size: int
    items: list[DirectoryEntryOut]


class MinistryIn(Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=200)


class MinistryOut(BaseModel):
    code: str
    name: str


class DepartmentIn(Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    ministry: str = Field(pattern=CODE_PATTERN)


class DepartmentOut(BaseModel):
    code: str
    name: str
    ministry: str


def _member_role() -> list[RoleName]:
    return ["member"]


class UserIn(Strict):
    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(min_length=8, max_length=1024)
    display_name: str = Field(min_length=1, max_length=200)
    department: str | None = Field(default=None, pattern=CODE_PATTERN)
    roles: list[RoleName] = Field(default_factory=_member_role)


class UserPatch(Strict):
    department: str | None = Field(default=None, pattern=CODE_PATTERN)
    roles: list[RoleName] | None = None
    disabled: bool | None = None
    display_name: str | None = Field(default=None, min_length=1, max_length=200)


class UserOut(BaseModel):
    username: str
    display_name: str
    department: str | None
    ministry: str | None
    roles: list[str]
    disabled: bool
    #: The password was reset and must be changed at next sign-in.
    password_change_required: bool = False
    #: Deleted (listed only with `include_deleted`).
    deleted: bool = False


class GrantIO(Strict):
    principal: str = Field(
        max_length=140,
        description="user:NAME, dept:CODE or ministry:CODE",
        # Documented only: the validator below checks it with a clearer message.
        json_schema_extra={"pattern": GRANT_PRINCIPAL_PATTERN},
    )
    permission: PermissionName = "read"
    expires_at: datetime | None = None

    @field_validator("principal")
    @classmethod
    def _principal(cls, value: str) -> str:
        return validate_grant_principal(value)

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expires_at needs a time zone (e.g. 2026-12-31T00:00:00+09:00)")
        return value


class AclIO(Strict):
    visibility: VisibilityName
    grants: list[GrantIO] = Field(default_factory=list, max_length=500)


class FolderRef(BaseModel):
    """The folder a document is filed in, as its readers see it."""

    id: str = Field(description="the folder's id")
    path: str = Field(description="names from the department's top level", examples=["/민원/2026"])


class DocumentOut(BaseModel):
    id: str
    title: str
    filename: str
    content_type: str
    size: int
    sha256: str
    department: str
    ministry: str
    owner: str
    visibility: str
    tags: list[str]
    status: Literal["pending", "indexed", "failed"] = Field(
        description="`pending` until indexed; `indexed`: stored, found by title and file "
        "name, and by its text when it has some (see `has_text`); `failed`: stored and "
        "downloadable, but the file could not be read (corrupt, or over a parser limit)",
        examples=["indexed"],
    )
    status_detail: str = Field(
        description="why a document has no text (`empty`, `encrypted`, `unsupported_format`, "
        "`parse_error: …`, `limit_exceeded: …`) or `ocr` when its text was recognised in images",
        examples=["empty"],
    )
    has_text: bool | None = Field(
        default=None,
        description="whether text was found in the file (null while `pending`)",
        examples=[False],
    )
    created_at: datetime
    updated_at: datetime
    version: int
    folder: FolderRef | None = Field(
        default=None, description="the folder it is filed in (null: the department's top level)"
    )
    duplicate_of: str | None = Field(
        default=None,
        description="set on the answer to an upload whose bytes the department already "
        "held: the id of that document (this one), which answers it; nothing new was stored",
        examples=[None],
    )


class DocumentPatch(Strict):
    title: str | None = Field(default=None, min_length=1, max_length=500)
    tags: list[str] | None = Field(default=None, max_length=50)


class VersionOut(BaseModel):
    version: int
    filename: str
    size: int
    sha256: str
    created_by: str
    created_at: datetime


class FacetOut(BaseModel):
    value: str
    count: int


class HitOut(BaseModel):
    id: str
    title: str
    filename: str
    department: str
    ministry: str
    content_type: str
    created_at: datetime
    score: float
    highlights: list[str]
    folder: FolderRef | None = Field(
        default=None, description="the folder it is filed in (null: the top level)"
    )


class FilterWarningOut(BaseModel):
    """A filter value that names nothing (the search still ran, matching nothing for it)."""

    code: WarningCode
    #: Korean, then English: which value, and what to use instead.
    message: str


class SearchOut(BaseModel):
    total: int
    page: int
    size: int
    hits: list[HitOut]
    facets: dict[str, list[FacetOut]]
    #: With no or few hits: the query with its words corrected to terms of
    #: documents the caller may read ("did you mean"), if one is near enough.
    did_you_mean: str | None = None
    #: Filter values that name no department, ministry or file type.
    warnings: list[FilterWarningOut] = []


class SuggestionOut(BaseModel):
    text: str
    kind: Literal["title", "term"]
    #: How many documents the caller may read hold it.
    count: int


class SuggestOut(BaseModel):
    q: str
    suggestions: list[SuggestionOut]


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    address: str
    outcome: str
    detail: dict[str, object]


# -- access policies ------------------------------------------------------------------


class PolicyMatchIO(Strict):
    """Which documents a policy applies to: every attribute given must match."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    ministry: str | None = Field(default=None, pattern=CODE_PATTERN)
    department: str | None = Field(default=None, pattern=CODE_PATTERN)
    tag: str | None = Field(default=None, min_length=1, max_length=64)
    visibility: VisibilityName | None = None
    folder: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{32}$",
        description="a folder id: documents filed in it or in a folder under it",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> PolicyMatchIO:
        if not self.as_dict():
            # An empty match would grant on every document: refuse (fail closed).
            raise ValueError(
                "match needs at least one of ministry, department, tag, visibility, folder"
            )
        return self

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class PolicyGrantIO(Strict):
    principal: str = Field(
        max_length=140,
        description="user:NAME, dept:CODE or ministry:CODE",
        # Documented only: the validator below checks it with a clearer message.
        json_schema_extra={"pattern": GRANT_PRINCIPAL_PATTERN},
    )
    permission: PermissionName = "read"

    @field_validator("principal")
    @classmethod
    def _principal(cls, value: str) -> str:
        return validate_grant_principal(value)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("expires_at needs a time zone (e.g. 2026-12-31T00:00:00+09:00)")
    return value


class PolicyIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    match: PolicyMatchIO
    grant: PolicyGrantIO
    expires_at: datetime | None = None

    _expiry = field_validator("expires_at")(_aware)


class PolicyPatch(Strict):
    """Any of the fields of `PolicyIn`; `expires_at: null` removes the expiry."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    match: PolicyMatchIO | None = None
    grant: PolicyGrantIO | None = None
    expires_at: datetime | None = None

    _expiry = field_validator("expires_at")(_aware)


class PolicyOut(BaseModel):
    id: int
    name: str
    match: dict[str, str]
    grant: PolicyGrantIO
    expires_at: datetime | None
    #: False once `expires_at` has passed.
    active: bool
    created_at: datetime
    created_by: str
    updated_at: datetime | None
    updated_by: str
    #: On create, change and delete: the documents whose access was re-decided.
    affected_documents: int | None = None


# -- access explanations ----------------------------------------------------------------


class PolicyRef(BaseModel):
    id: int
    name: str


class AccessSourceOut(BaseModel):
    """One thing that gives a reader token a permission on the document."""

    kind: Literal["owner", "dept_admin", "visibility", "grant", "policy"]
    token: str = Field(description="user:…, dept:…, deptadmin:…, ministry:… or gov")
    permission: PermissionName
    expires_at: datetime | None = None
    policy: PolicyRef | None = None
    message: str = Field(description="설명 (Korean, then English)")


class DenialOut(BaseModel):
    code: Literal["user_disabled", "admin_without_grant", "no_matching_source"]
    message: str


class ExplainedUser(BaseModel):
    username: str
    display_name: str
    department: str | None
    ministry: str | None
    roles: list[str]
    disabled: bool


class ExplainedDocument(BaseModel):
    """The facts that decide access (no title or content: explaining is not reading)."""

    id: str
    owner: str
    department: str
    ministry: str
    visibility: str
    tags: list[str]


class AccessExplanationOut(BaseModel):
    user: ExplainedUser
    document: ExplainedDocument
    permission: PermissionName
    allowed: bool
    because: list[AccessSourceOut] = Field(description="what allows it (empty when denied)")
    denial: DenialOut | None = Field(description="why not, when denied")
    expired: list[AccessSourceOut] = Field(
        description="expired grants or policies that would have allowed it"
    )
    user_tokens: list[str] = Field(description="the user's reader tokens, from the catalog")


class ReaderOut(BaseModel):
    username: str
    display_name: str
    department: str | None
    ministry: str | None
    because: list[AccessSourceOut]


class ReadersExplanationOut(BaseModel):
    document: ExplainedDocument
    #: Every source of read access, expanded into `readers` below.
    sources: list[AccessSourceOut]
    readers: list[ReaderOut]
    count: int


# -- personal views and the trash (/me/documents, /me/shared, /me/recent, /trash) ------


class MyDocumentsOut(BaseModel):
    """A page of the documents the caller uploaded (and may still read), newest first."""

    total: int
    page: int
    size: int
    items: list[DocumentOut]
    #: Filter values that name no department or file type.
    warnings: list[FilterWarningOut] = []


class SharedItemOut(BaseModel):
    document: DocumentOut
    #: Who made the grant (null: not recorded, for grants older than this field).
    shared_by: str | None
    shared_at: datetime | None
    #: The grant's principal (`user:…`, `dept:…`, `ministry:…`), permission and end.
    principal: str
    permission: PermissionName
    expires_at: datetime | None = None


class SharedOut(BaseModel):
    """A page of others' documents shared with the caller by a grant, newest grant first."""

    total: int
    page: int
    size: int
    items: list[SharedItemOut]
    warnings: list[FilterWarningOut] = []


class RecentItemOut(BaseModel):
    document: DocumentOut
    #: When the caller last opened or changed it.
    at: datetime
    #: `opened` (metadata, versions, access read or downloaded) or `changed`.
    kind: Literal["opened", "changed"]
    #: The audit action (`read`, `download`, `upload`, `new_version`, …).
    action: str


class RecentOut(BaseModel):
    """A page of the documents the caller last opened or changed, newest first."""

    total: int
    page: int
    size: int
    items: list[RecentItemOut]
    warnings: list[FilterWarningOut] = []


class TrashItemOut(BaseModel):
    document: DocumentOut
    deleted_at: datetime
    #: Who deleted it (null: deleted before this was recorded).
    deleted_by: str | None
    #: When it leaves the trash for good (no restore after).
    purge_at: datetime


class TrashOut(BaseModel):
    """A page of the deleted documents the caller may restore, most recently deleted first."""

    total: int
    page: int
    size: int
    #: Days a deleted document stays restorable.
    retention_days: int
    items: list[TrashItemOut]
    warnings: list[FilterWarningOut] = []
